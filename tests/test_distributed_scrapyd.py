"""scrapyd end to end: `scrapyd-deploy` packages a copy of this checkout as an egg for a real
scrapyd on loopback, which runs `hf_models` against the Hub emulator with its own OUTPUT_DIR
and a JOBDIR per job; a lister job and a worker job crawl together through Redis."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from hfspider import cli
from tests.crawl_support import REPO, listing_ids, parquet_rows
from tests.fixtures.hubsim import HubSim
from tests.fixtures.redis import RedisServer
from tests.fixtures.scrapyd import Scrapyd

pytestmark = pytest.mark.services

LIMIT = 30
DISTRIBUTED_LIMIT = 20
SPIDER = "hf_models"


@pytest.fixture(scope="module")
def deployed(scrapyd: Scrapyd) -> Iterator[Scrapyd]:
    answer = scrapyd.deploy(REPO)
    assert (answer["project"], answer["spiders"]) == ("hfspider", 1)
    yield scrapyd


def expected(hubsim: HubSim, limit: int) -> dict[str, str]:
    newest = listing_ids(hubsim, [("sort", "createdAt"), ("limit", "1000")])[:limit]
    truth = hubsim.truth()
    return {model_id: truth.get(model_id).sha for model_id in newest}


def rows_by_model(output: Path) -> dict[str, str]:
    rows = parquet_rows(output)
    by_model = {row["model_id"]: row["sha"] for row in rows}
    assert len(by_model) == len(rows)
    return by_model


def test_the_egg_carries_the_spider_and_every_settings_default(deployed: Scrapyd) -> None:
    egg = deployed.egg()
    names = set(zipfile.ZipFile(egg).namelist())
    tomls = {path.name for path in (REPO / "pipelines_config").glob("*.toml")}
    assert {f"hfspider/default_config/{name}" for name in tomls} <= names
    assert {"hfspider/spiders/hf_models.py", "hfspider/schema/record.schema.json"} <= names
    # The egg alone (no site-packages, so not this checkout's editable install) finds them.
    probe = (
        "import sys; sys.path.insert(0, sys.argv[1]);"
        "from hfspider.config import config_dir, load_settings;"
        "print(config_dir(), len(load_settings()), load_settings()['DISTRIBUTED_LEASE_SECONDS'])"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe, str(egg)], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    where, count, lease = done.stdout.split()
    assert where.startswith(str(egg)) and int(count) > 50 and float(lease) > 0


def test_scrapyd_runs_a_crawl_with_its_own_output_and_jobdir(
    deployed: Scrapyd, hubsim: HubSim, tmp_path: Path
) -> None:
    output = tmp_path / "job-output"
    settings = {"OUTPUT_DIR": str(output), "HUB_ENDPOINT": hubsim.url, "FILES_ALLOW": ""}
    job = deployed.schedule(SPIDER, settings, {"limit": str(LIMIT)})
    deployed.wait(SPIDER, job)
    log = deployed.job_log(SPIDER, job)
    assert "Spider closed (finished)" in log, log[-3000:]
    assert rows_by_model(output) == expected(hubsim, LIMIT)
    assert (deployed.jobdir(SPIDER, job) / "spider.state").is_file()  # the job's own JOBDIR


def test_scrapyd_runs_a_lister_job_and_a_worker_job_that_ends_by_itself(
    deployed: Scrapyd, hubsim: HubSim, redis_server: RedisServer, tmp_path: Path
) -> None:
    shared = {
        "HUB_ENDPOINT": hubsim.url,
        "FILES_ALLOW": "",
        "RATELIMIT_REDIS_URL": redis_server.url,
    }
    worker = deployed.schedule(
        SPIDER, {**shared, "OUTPUT_DIR": str(tmp_path / "worker")}, {"role": "worker"}
    )
    lister = deployed.schedule(
        SPIDER,
        {**shared, "OUTPUT_DIR": str(tmp_path / "lister")},
        {"role": "lister", "limit": str(DISTRIBUTED_LIMIT)},
    )
    deployed.wait(SPIDER, worker, lister)
    log = deployed.job_log(SPIDER, worker)
    assert "The work queue is empty and every lister is done" in log, log[-3000:]
    out = tmp_path / "merged"
    assert cli.main(["export", "--output-dir", str(out), str(tmp_path / "worker")]) == 0
    assert rows_by_model(out) == expected(hubsim, DISTRIBUTED_LIMIT)
    assert f"'hfspider/distributed/acked': {DISTRIBUTED_LIMIT}," in log

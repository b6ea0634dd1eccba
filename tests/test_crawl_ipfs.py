"""The crawl's IPFS stage end to end: a CAR per snapshot, the crawl root, a real Kubo node.

`scrapy crawl hf_models` runs as a user runs it, against the emulator, pushing to the test
Kubo daemon; Kubo itself (pin/ls, cat) is the judge of what got stored.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

from hfspider.ipfs import read_car, verify_car
from hfspider.ipfs.cid import cid_bytes
from tests.fixtures.hubsim import HubSim
from tests.fixtures.kubo import AUTH_PASSWORD, AUTH_USER, KuboDaemon

ROOT = Path(__file__).resolve().parents[1]
MODELS = 40
CRAWL_TIMEOUT = 180
# Slow enough (10 API requests per second) that the node can be killed mid-crawl.
THROTTLED = ("--window", "5", "--quota", "anonymous:api=50", "--huge-files", "0")


def start_crawl(sim: HubSim, out: Path, kubo: KuboDaemon) -> subprocess.Popen[bytes]:
    settings = {
        "OUTPUT_DIR": str(out),
        "IPFS_PUSH": "true",
        "IPFS_API": kubo.api,
        "IPFS_API_AUTH": f"basic:{AUTH_USER}:{AUTH_PASSWORD}",
        "IPFS_RETRY_DELAY": "0.2",
        "IPFS_RETRY_MAX_DELAY": "1",
        "IPFS_PUSH_INTERVAL": "0.2",
        "RATELIMIT_WINDOW": "5",
        "RATELIMIT_QUOTA_API": "50",
        "PROGRESS_INTERVAL": "0",
    }
    command = [sys.executable, "-m", "scrapy", "crawl", "hf_models"]
    for name, value in settings.items():
        command += ["-s", f"{name}={value}"]
    env = {**os.environ, "HF_ENDPOINT": sim.url}
    log = open(out.parent / "crawl.log", "wb")  # noqa: SIM115 - the child owns it
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)


def queue_counts(out: Path) -> dict[str, int]:
    path = out / "ipfs-queue.sqlite"
    if not path.exists():
        return {}
    with closing(sqlite3.connect(path)) as db:
        try:
            rows = db.execute("SELECT state, count(*) FROM imports GROUP BY state").fetchall()
        except sqlite3.OperationalError:  # the crawl is still creating the table
            return {}
    return dict(rows)


def wait_for(
    predicate: Any, what: str, crawl: subprocess.Popen[bytes], timeout: float = 60
) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if crawl.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"crawl ended or timed out before {what}")
        time.sleep(0.05)


def finish(crawl: subprocess.Popen[bytes], out: Path) -> str:
    assert crawl.wait(CRAWL_TIMEOUT) == 0
    log = (out.parent / "crawl.log").read_text(errors="replace")
    assert "Traceback" not in log, log[-3000:]
    return log


def records(out: Path) -> list[dict[str, Any]]:
    table = ds.dataset(out / "parquet", format="parquet", partitioning="hive").to_table()
    return table.to_pylist()


def assert_all_stored_and_pinned(out: Path, kubo: KuboDaemon, log: str) -> None:
    rows = records(out)
    assert len(rows) >= MODELS
    pinned = kubo.rpc_json("pin/ls", type="recursive")["Keys"]
    for row in rows:
        assert row["cid"] in pinned and row["dir_cid"] in pinned, row["model_id"]
    root = re.search(r"snapshot root CID: (\S+)", log).group(1)
    assert root in pinned
    with closing(sqlite3.connect(out / "ipfs-queue.sqlite")) as db:
        keys = [key for (key,) in db.execute("SELECT key FROM imports")]
    assert len(keys) == len(set(keys)) == len(rows) + 1  # every snapshot and the root, once
    assert queue_counts(out) == {"stored": len(rows) + 1}
    # The root lists every model; its metadata.json is the record without its own CIDs.
    sample = rows[len(rows) // 2]
    metadata = json.loads(kubo.rpc("cat", f"{root}/{sample['model_id']}/metadata.json"))
    assert metadata["model_id"] == sample["model_id"] and metadata["sha"] == sample["sha"]
    assert "cid" not in metadata and "dir_cid" not in metadata


def test_every_snapshot_ends_pinned_although_the_node_dies_mid_crawl(
    hubsim_factory: Any, kubo: KuboDaemon, tmp_path: Path
) -> None:
    sim = hubsim_factory(*THROTTLED, models=MODELS)
    out = tmp_path / "out"
    crawl = start_crawl(sim, out, kubo)
    wait_for(lambda: queue_counts(out).get("stored", 0) >= 3, "3 CARs were pinned", crawl)
    kubo.kill()  # SIGKILL, mid-crawl
    wait_for(lambda: queue_counts(out).get("pending", 0) >= 3, "CARs queued up", crawl)
    kubo.start()
    assert_all_stored_and_pinned(out, kubo, finish(crawl, out))


def test_a_node_down_at_start_gets_everything_once_it_comes_up(
    hubsim_factory: Any, kubo: KuboDaemon, tmp_path: Path
) -> None:
    kubo.stop()
    sim = hubsim_factory(*THROTTLED, models=MODELS)
    out = tmp_path / "out"
    crawl = start_crawl(sim, out, kubo)
    wait_for(lambda: queue_counts(out).get("pending", 0) >= 5, "CARs queued up", crawl)
    assert "stored" not in queue_counts(out)
    kubo.start()
    assert_all_stored_and_pinned(out, kubo, finish(crawl, out))


def test_car_files_are_valid_and_the_record_cid_is_the_car_root(
    hubsim_factory: Any, kubo: KuboDaemon, tmp_path: Path
) -> None:
    """Without a node the CARs are the result: each verifies, roots [dir_cid, cid]."""
    sim = hubsim_factory("--quota", "*:*=100000000", "--huge-files", "0", models=MODELS)
    out = tmp_path / "out"
    command = [sys.executable, "-m", "scrapy", "crawl", "hf_models", "-s", f"OUTPUT_DIR={out}"]
    env = {**os.environ, "HF_ENDPOINT": sim.url}
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, timeout=CRAWL_TIMEOUT)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = records(out)
    assert rows and not list(out.glob("ipfs-queue.sqlite"))
    for row in rows:
        car = out / "car" / row["model_id"] / f"{row['sha']}.car"
        with open(car, "rb") as stream:
            summary = verify_car(stream)
        assert summary.roots == [cid_bytes(row["dir_cid"]), cid_bytes(row["cid"])]
    # Kubo agrees: importing one CAR pins both roots.
    sample = rows[0]
    car = out / "car" / sample["model_id"] / f"{sample['sha']}.car"
    kubo.cli("dag", "import", str(car))
    pinned = kubo.rpc_json("pin/ls", type="recursive")["Keys"]
    assert sample["cid"] in pinned and sample["dir_cid"] in pinned
    with open(car, "rb") as stream:
        _, blocks = read_car(stream)
        assert len(list(blocks)) >= 3  # directory, metadata.json, record

"""Acceptance of the quota pacing: real Scrapy crawls through HubRateLimitMiddleware against the
Hub emulator with a 5 s window, alone and as two worker processes sharing a Redis budget.

The quota lets q requests per window of w seconds through, so N requests need N*w/q seconds at
the rate it sustains: that is the bound the crawl is held to (at most 1.10x of it, measured
from the first to the last request the emulator saw). Spending each window evenly is the
design; a client that fired q requests at the very start of each fixed window could finish a
window earlier (after (N/q - 1)*w), at the cost of bursts the Hub's headers do not invite.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.hubsim import HubSim
from tests.fixtures.redis import RedisServer

pytestmark = pytest.mark.services

ROOT = Path(__file__).resolve().parents[1]
WINDOW, QUOTA, REQUESTS = 5, 40, 200  # five windows' worth

CRAWL = """
import json, sys
from scrapy import Request, Spider
from scrapy.crawler import CrawlerProcess
from scrapy.utils.project import get_project_settings

ids_path, stats_path, overrides = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])

class ModelInfo(Spider):
    name = "ratelimit_acceptance"

    async def start(self):
        endpoint = self.settings["HUB_ENDPOINT"]
        for model_id in json.load(open(ids_path)):
            yield Request(f"{endpoint}/api/models/{model_id}", dont_filter=True)

    def parse(self, response):
        self.crawler.stats.inc_value("acceptance/parsed")

settings = get_project_settings()
settings.setdict(overrides, priority="cmdline")
process = CrawlerProcess(settings)
crawler = process.create_crawler(ModelInfo)
process.crawl(crawler)
process.start()
json.dump(crawler.stats.get_stats(), open(stats_path, "w"), default=str)
"""


def start_crawls(
    sim: HubSim, tmp_path: Path, workers: int, redis_url: str = ""
) -> list[dict[str, Any]]:
    """Crawl REQUESTS model-info URLs, split over `workers` processes; their stats."""
    truth = sim.truth()
    public = [m for m in truth.models.values() if not (m.private or m.disabled or m.renamed_from)]
    ids = [model.id for model in public][:REQUESTS]
    assert len(ids) == REQUESTS
    overrides = {
        "HUB_ENDPOINT": sim.url,
        "RATELIMIT_REDIS_URL": redis_url,
        "ITEM_PIPELINES": {},
        "OUTPUT_DIR": str(tmp_path / "output"),
        "LOG_LEVEL": "INFO",
    }
    env = {
        **os.environ,
        "HF_HOME": str(tmp_path / "hf"),
        "SCRAPY_SETTINGS_MODULE": "hfspider.settings",
    }
    env.pop("HF_TOKEN", None)
    processes = []
    for worker in range(workers):
        ids_path = tmp_path / f"ids{worker}.json"
        ids_path.write_text(json.dumps(ids[worker::workers]))
        stats_path = tmp_path / f"stats{worker}.json"
        args = [sys.executable, "-c", CRAWL, str(ids_path), str(stats_path), json.dumps(overrides)]
        log = open(tmp_path / f"crawl{worker}.log", "wb")  # noqa: SIM115 - closed below
        processes.append((subprocess.Popen(args, cwd=ROOT, env=env, stderr=log), stats_path, log))
    stats = []
    for process, stats_path, log in processes:
        assert process.wait(timeout=120) == 0, (tmp_path / "crawl0.log").read_text()[-3000:]
        log.close()
        stats.append(json.loads(stats_path.read_text()))
    return stats


def check_log(sim: HubSim) -> float:
    """The emulator's log: every request counted, none over the quota in any window, no 429
    once the first answer told the policy; returns the span from first to last request."""
    entries = [e for e in sim.log() if e["bucket"] == "api"]
    assert len(entries) == REQUESTS
    first_answer = entries[0]["time"] + entries[0]["duration"]
    refused = [e for e in entries if e["status"] == 429]
    assert len(refused) <= 1 and all(e["time"] < first_answer for e in refused), refused
    per_window = Counter(e["window"] for e in entries if e["counted"])
    assert max(per_window.values()) <= QUOTA
    return entries[-1]["time"] - entries[0]["time"]


def test_one_crawler_spends_the_quota_evenly_without_429s(
    hubsim_factory: Callable[..., HubSim], tmp_path: Path
) -> None:
    sim = hubsim_factory("--window", str(WINDOW), "--quota", f"anonymous:api={QUOTA}")
    (stats,) = start_crawls(sim, tmp_path, workers=1)
    span = check_log(sim)
    assert span <= 1.10 * REQUESTS * WINDOW / QUOTA
    assert stats["acceptance/parsed"] == REQUESTS
    assert stats["hfspider/ratelimit/api/requests"] == REQUESTS
    assert stats.get("hfspider/ratelimit/api/429", 0) == 0


def test_two_workers_sharing_a_redis_budget_stay_under_one_quota(
    hubsim_factory: Callable[..., HubSim], redis_server: RedisServer, tmp_path: Path
) -> None:
    sim = hubsim_factory("--window", str(WINDOW), "--quota", f"anonymous:api={QUOTA}")
    stats = start_crawls(sim, tmp_path, workers=2, redis_url=redis_server.url)
    span = check_log(sim)
    assert span <= 1.10 * REQUESTS * WINDOW / QUOTA
    assert sum(s["acceptance/parsed"] for s in stats) == REQUESTS
    assert sum(s["hfspider/ratelimit/api/requests"] for s in stats) == REQUESTS

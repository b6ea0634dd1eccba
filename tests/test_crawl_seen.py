"""The identities a crawl has listed, on disk (hfspider/store/seen.py): a model listed twice is
crawled once and counted, a graceful JOBDIR stop resumes with the same dedupe, the file of a
crawl without JOBDIR goes at close. The spider runs in-process on hand-made listing pages."""

from __future__ import annotations

import asyncio
import os
import pickle
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.http import TextResponse
from scrapy.settings import Settings
from scrapy.statscollectors import MemoryStatsCollector

from hfspider import settings as settings_module
from hfspider.pidstate import remove_stale
from hfspider.spiders.hf_models import HfModelsSpider
from hfspider.store.seen import JOBDIR_FILE, TEMP_DIR, SeenIds

HUB = "http://localhost:8000"
DUPLICATES = "hfspider/models/duplicates"


def model(number: int) -> dict[str, Any]:
    return {"_id": f"{number:024x}", "id": f"org/model-{number}", "sha": f"{number:040x}"}


def make_spider(tmp_path: Path, jobdir: Path | None = None) -> HfModelsSpider:
    settings = Settings()
    settings.setmodule(settings_module, priority="project")
    settings.set("OUTPUT_DIR", str(tmp_path / "out"))
    settings.set("HUB_ENDPOINT", HUB)
    if jobdir is not None:
        settings.set("JOBDIR", str(jobdir))
    crawler = Crawler(HfModelsSpider, settings)
    crawler.stats = MemoryStatsCollector(crawler)
    return HfModelsSpider.from_crawler(crawler)


def start(spider: HfModelsSpider) -> list[Any]:
    async def collect() -> list[Any]:
        return [output async for output in spider.start()]

    return asyncio.run(collect())


def listing(spider: HfModelsSpider, page: str, models: list[dict[str, Any]]) -> list[Any]:
    """The spider's outputs for one listing page (`page` must be the one it expects); each
    page links to `page` + `x`, so there is always a next one."""
    headers = {"Link": f'<{page}x>; rel="next"'}
    response = TextResponse(page, body=orjson.dumps(models), headers=headers)
    response.request = Request(page)
    return list(spider.parse_listing(response, page=page))


def crawled(outputs: list[Any]) -> list[str]:
    """Model ids the outputs ask about (model-info requests)."""
    return [o.cb_kwargs["context"]["key"] for o in outputs if "context" in o.cb_kwargs]


def test_a_model_listed_twice_is_crawled_once_and_counted(tmp_path: Path) -> None:
    spider = make_spider(tmp_path)
    [first] = start(spider)
    one = listing(spider, first.url, [model(1), model(2), model(2)])
    two = listing(spider, first.url + "x", [model(3), model(1)])
    assert crawled(one) == ["org/model-1", "org/model-2"]
    assert crawled(two) == ["org/model-3"]
    assert spider.crawler.stats.get_value(DUPLICATES) == 2
    spider.closed("finished")


def test_a_spider_without_listed_ids_still_serialises_its_requests(tmp_path: Path) -> None:
    """A worker lists nothing (no ids); its scrapy-redis queue serialises requests with
    `Request.to_dict`, which reads every member of the spider: none may raise."""
    spider = make_spider(tmp_path)
    spider.closed("finished")
    spider._seen = None  # as in a worker
    request = Request(f"{HUB}/api/models/org/model-1", callback=spider.parse_info)
    assert request.to_dict(spider=spider)["callback"] == "parse_info"


def test_without_jobdir_the_seen_file_is_removed_at_close(tmp_path: Path) -> None:
    spider = make_spider(tmp_path)
    [first] = start(spider)
    listing(spider, first.url, [model(1)])
    path = tmp_path / "out" / TEMP_DIR / f"{os.getpid()}.sqlite"
    assert spider._seen_ids().path == path and path.is_file()
    spider.closed("finished")
    assert list((tmp_path / "out" / TEMP_DIR).iterdir()) == []


def test_a_graceful_jobdir_stop_resumes_with_the_same_dedupe(tmp_path: Path) -> None:
    jobdir = tmp_path / "job"
    spider = make_spider(tmp_path, jobdir)
    spider.state = {}  # what SpiderState gives a spider with JOBDIR
    [first] = start(spider)
    listing(spider, first.url, [model(1), model(2)])
    spider.closed("shutdown")
    saved = pickle.dumps(spider.state)  # as SpiderState keeps it
    assert (jobdir / JOBDIR_FILE).is_file()

    resumed = make_spider(tmp_path, jobdir)
    resumed.state = pickle.loads(saved)
    assert start(resumed) == []  # the JOBDIR queue holds the pending requests
    outputs = listing(resumed, first.url + "x", [model(2), model(3)])
    assert crawled(outputs) == ["org/model-3"]
    assert resumed.crawler.stats.get_value(DUPLICATES) == 1
    resumed.closed("finished")


def test_identities_listed_after_the_saved_state_are_forgotten_on_resume(
    tmp_path: Path,
) -> None:
    # A run resumed from a JOBDIR and then killed (its state never saved) listed more: the
    # next resume starts again from the saved state, so those models must not count as seen.
    jobdir = tmp_path / "job"
    spider = make_spider(tmp_path, jobdir)
    spider.state = {}
    [first] = start(spider)
    listing(spider, first.url, [model(1)])
    spider.closed("shutdown")
    with SeenIds(jobdir / JOBDIR_FILE) as seen:
        seen.add(["000000000000000000000002"])  # listed by the killed run

    resumed = make_spider(tmp_path, jobdir)
    resumed.state = pickle.loads(pickle.dumps(spider.state))
    start(resumed)
    outputs = listing(resumed, first.url + "x", [model(2), model(1)])
    assert crawled(outputs) == ["org/model-2"]
    resumed.closed("finished")


def test_a_fresh_start_in_an_old_jobdir_forgets_its_identities(tmp_path: Path) -> None:
    # kill -9 with JOBDIR and no saved state: the crawl starts over from the store's
    # checkpoint, and the models it lists again are not duplicates.
    jobdir = tmp_path / "job"
    with SeenIds(jobdir / JOBDIR_FILE) as seen:
        seen.add([model(1)["_id"]])
    spider = make_spider(tmp_path, jobdir)
    spider.state = {}
    [first] = start(spider)
    assert crawled(listing(spider, first.url, [model(1)])) == ["org/model-1"]
    spider.closed("finished")


def test_seen_ids_add_in_order_truncate_and_count(tmp_path: Path) -> None:
    with SeenIds(tmp_path / "seen.sqlite") as seen:
        assert seen.add(["a", "b", "a"]) == [True, True, False]
        assert seen.add(["c", "b"]) == [True, False]
        assert len(seen) == 3
        seen.truncate(2)
        assert len(seen) == 2
        assert seen.add(["c", "a"]) == [True, False]
        seen.clear()
        assert len(seen) == 0


def test_stale_files_and_folders_of_dead_processes_are_removed(tmp_path: Path) -> None:
    folder = tmp_path / "seen"
    folder.mkdir()
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        text=True,
        capture_output=True,
        check=True,
    )
    dead = int(gone.stdout)
    for name in (f"{dead}.sqlite", f"{dead}.sqlite-wal", f"{os.getpid()}.sqlite", "notes.txt"):
        (folder / name).write_bytes(b"")
    for name in (str(dead), str(os.getpid())):  # spool folders (hfspider/pipelines/files.py)
        (folder / name).mkdir()
        (folder / name / "blocks").write_bytes(b"")
    remove_stale(folder)
    left = sorted(p.name for p in folder.iterdir())
    assert left == sorted([str(os.getpid()), f"{os.getpid()}.sqlite", "notes.txt"])

"""A worker's request queue: scrapy-redis's scheduler with JSON requests, against a real
redis-server. Requests round-trip exactly (bytes, byte-keyed headers, Hub data with `$` keys);
what Redis holds is JSON with no token; a queued request naming a class or a non-callback
method, or pickle, is refused; a Redis outage keeps requests in memory, and they go back to
Redis once it returns."""

from __future__ import annotations

import json
import pickle
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
import scrapy
from scrapy.crawler import Crawler
from scrapy.settings import Settings
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.request import request_from_dict

from hfspider import settings as settings_module
from hfspider.distributed import serializer
from hfspider.distributed.scheduler import RedisScheduler, scheduler_settings
from hfspider.spiders.hf_models import HfModelsSpider
from tests.fixtures.redis import RedisServer

pytestmark = pytest.mark.services

PREFIX = "test:work"
LISTING = {"id": "org/m", "cardData": {"$b": "not bytes", "$ref": 1}, "tags": ["a"]}


def model_request(spider: scrapy.Spider, priority: int = 0) -> scrapy.Request:
    context = {"page": "p#1", "key": "org/m", "listing": LISTING, "info": b"\x00{\xff}"}
    return scrapy.Request(
        "http://localhost:1/org/m/resolve/abc/README.md",
        callback=spider.parse_file,
        errback=spider.model_failed,
        headers={"Range": "bytes=0-9"},
        cb_kwargs={"context": context, "path": "README.md", "fetched": {}},
        meta={"handle_httpstatus_list": [404, 429]},
        priority=priority,
    )


def as_dict(request: scrapy.Request, spider: scrapy.Spider) -> dict[str, object]:
    return request.to_dict(spider=spider)


def project_settings(output: Path, **extra: object) -> Settings:
    settings = Settings()
    settings.setmodule(settings_module, priority="project")
    settings.setdict({"OUTPUT_DIR": str(output), **extra})
    return settings


@pytest.fixture
def spider(tmp_path: Path) -> HfModelsSpider:
    crawler = Crawler(HfModelsSpider, project_settings(tmp_path))
    crawler.stats = MemoryStatsCollector(crawler)
    return HfModelsSpider.from_crawler(crawler)


def test_requests_round_trip_through_json(spider: HfModelsSpider) -> None:
    request = model_request(spider, priority=5)
    data = serializer.dumps(as_dict(request, spider))
    assert json.loads(data)["cb_kwargs"]["context"]["info"] == {"$b": "AHv/fQ=="}
    back = request_from_dict(serializer.loads(data), spider=spider)
    assert as_dict(back, spider) == as_dict(request, spider)
    assert back.cb_kwargs["context"]["listing"] == LISTING  # `$` keys are data, kept as such


@pytest.mark.parametrize(
    ("change", "refusal"),
    [
        ({"_class": "subprocess.Popen"}, "names a class"),
        ({"callback": "close"}, "is not a spider callback"),
        ({"errback": "__init__"}, "is not a spider callback"),
        ({"url": 7}, "not a request dict"),
    ],
)
def test_a_request_that_would_run_other_code_is_refused(
    spider: HfModelsSpider, change: dict[str, object], refusal: str
) -> None:
    request = {**as_dict(model_request(spider), spider), **change}
    with pytest.raises(ValueError, match=refusal):
        serializer.loads(serializer.dumps(request))


def test_what_json_would_not_give_back_is_refused_when_written(spider: HfModelsSpider) -> None:
    request = model_request(spider)
    request.cb_kwargs["context"]["info"] = spider.options  # a dataclass: would come back a dict
    with pytest.raises(TypeError):
        serializer.dumps(as_dict(request, spider))


def test_pickle_is_refused(spider: HfModelsSpider) -> None:
    with pytest.raises(ValueError, match="not this serializer's JSON"):
        serializer.loads(pickle.dumps(as_dict(model_request(spider), spider)))


Queue = tuple[RedisScheduler, redis.Redis, HfModelsSpider]


@pytest.fixture
def scheduler(tmp_path: Path, redis_server: RedisServer) -> Iterator[Queue]:
    settings = project_settings(tmp_path, RATELIMIT_REDIS_URL=redis_server.url)
    settings.setdict(scheduler_settings(settings, PREFIX))
    crawler = Crawler(HfModelsSpider, settings)
    crawler.stats = MemoryStatsCollector(crawler)
    spider = HfModelsSpider.from_crawler(crawler)
    instance = RedisScheduler.from_crawler(crawler)
    instance.open(spider)
    client = redis.Redis.from_url(redis_server.url)
    try:
        yield instance, client, spider
    finally:
        client.close()


def test_the_queue_in_redis_is_json_in_priority_order(
    scheduler: Queue,
) -> None:
    queue, client, spider = scheduler
    for priority in (1, 9, 5):
        assert queue.enqueue_request(model_request(spider, priority))
    stored = client.zrange(queue.queue.key, 0, -1)
    assert queue.queue.key.startswith(f"{PREFIX}:requests:")
    assert [json.loads(entry)["priority"] for entry in stored] == [9, 5, 1]
    assert queue.has_pending_requests()
    popped = [queue.next_request() for _ in range(3)]
    assert [request.priority for request in popped if request] == [9, 5, 1]
    assert popped[0] is not None and popped[0].callback == spider.parse_file
    assert queue.next_request() is None and not queue.has_pending_requests()


def test_a_hostile_entry_is_refused_and_the_queue_goes_on(
    scheduler: Queue,
) -> None:
    queue, client, spider = scheduler
    hostile = {**as_dict(model_request(spider), spider), "_class": "os.system"}
    client.zadd(queue.queue.key, {serializer.dumps(hostile): -100})
    assert queue.enqueue_request(model_request(spider, 1))
    assert queue.next_request() is None  # the hostile one, first by priority: refused
    assert queue.stats.get_value("scheduler/refused/redis") == 1
    request = queue.next_request()
    assert request is not None and request.priority == 1


def test_while_redis_is_away_requests_wait_in_memory_then_go_back(
    scheduler: Queue, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue, _, spider = scheduler
    monkeypatch.setattr("hfspider.distributed.scheduler.RETRY_AFTER", 0.0)
    redis_server.stop()
    assert queue.enqueue_request(model_request(spider, 3))
    assert queue.has_pending_requests()
    assert queue.stats.get_value("scheduler/enqueued/memory") == 1
    spilled = queue.next_request()
    assert spilled is not None and spilled.priority == 3
    assert queue.has_pending_requests()  # Redis cannot say it is empty: the crawl waits
    redis_server.start()  # empty after a restart (no persistence): the queue was flushed
    assert not queue.has_pending_requests()
    assert queue.enqueue_request(model_request(spider, 4))
    assert queue.stats.get_value("scheduler/enqueued/redis") == 1
    back = queue.next_request()
    assert back is not None and back.priority == 4


def test_a_removal_whose_answer_is_lost_neither_loses_nor_repeats_a_request(
    scheduler: Queue, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue, client, spider = scheduler
    for priority in (2, 1):
        assert queue.enqueue_request(model_request(spider, priority))
    zrem = queue.queue.server.zrem

    def lost(*args: object) -> None:
        zrem(*args)  # Redis ran it, but the answer never came
        raise redis.ConnectionError("connection reset")

    monkeypatch.setattr(queue.queue.server, "zrem", lost)
    first = queue.next_request()
    assert first is not None and first.priority == 2
    monkeypatch.setattr(queue.queue.server, "zrem", zrem)
    second = queue.next_request()
    assert second is not None and second.priority == 1
    assert queue.next_request() is None and client.zcard(queue.queue.key) == 0


def test_a_pop_that_fails_removes_nothing(
    scheduler: Queue, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue, _, spider = scheduler
    monkeypatch.setattr("hfspider.distributed.scheduler.RETRY_AFTER", 0.0)
    assert queue.enqueue_request(model_request(spider, 7))

    def unanswered(*args: object) -> None:
        raise redis.ConnectionError("connection reset")

    monkeypatch.setattr(queue.queue.server, "zrem", unanswered)
    monkeypatch.setattr(queue.queue.server, "zrange", unanswered)
    assert queue.next_request() is None and queue.has_pending_requests()
    monkeypatch.undo()
    request = queue.next_request()
    assert request is not None and request.priority == 7

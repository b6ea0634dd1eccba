"""The leased work queue and a worker's intake, against a real redis-server.

Leases expire on the Redis server's clock and come back at the head of the queue; renewals are
fenced by the delivery number; acknowledgements are final and idempotent; the lister skips
what a worker committed; the queue holds JSON only. A worker started before any lister waits
for one; poisoned or unreadable work is rejected with its reason, never retried forever.
"""

from __future__ import annotations

import asyncio
import json
import pickle
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import redis
from scrapy.crawler import Crawler
from scrapy.settings import Settings

from hfspider import settings as settings_module
from hfspider.budget.backends import PatientRedis
from hfspider.distributed.queue import Lease, WorkQueue
from hfspider.distributed.work import Work
from hfspider.distributed.worker import Worker
from hfspider.spiders.hf_models import HfModelsSpider
from hfspider.store.records import RecordStore
from hfspider.store.rejected import RejectedSink
from tests.fixtures.redis import RedisServer

pytestmark = pytest.mark.services

PREFIX = "test:work"
SHA_A, SHA_B = "a" * 40, "b" * 40


def work(model_id: str = "org/model", sha: str = SHA_A, mode: str = "full") -> Work:
    listing = {"id": model_id, "_id": "0123456789abcdef01234567", "sha": sha, "tags": ["x"]}
    return Work.from_listing("crawl0", mode, listing)


@asynccontextmanager
async def opened(server: RedisServer, lease: float = 30.0) -> AsyncIterator[WorkQueue]:
    queue = WorkQueue(PatientRedis(server.url, "the test"), PREFIX, lease)
    try:
        yield queue
    finally:
        await queue.close()


def run(scenario: Callable[[], Awaitable[Any]]) -> Any:
    return asyncio.run(scenario())


def test_enqueue_queues_once_and_skips_what_a_worker_committed(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        async with opened(redis_server) as queue:
            assert await queue.enqueue(work()) == "queued"
            assert await queue.enqueue(work()) == "duplicate"  # a lister restarted: once
            (lease,), _ = await queue.take(5)
            assert await queue.enqueue(work()) == "duplicate"  # leased counts as queued
            assert await queue.ack(lease, Work.from_json(lease.payload), committed=True)
            assert await queue.enqueue(work()) == "unchanged"
            assert await queue.enqueue(work(mode="lite")) == "unchanged"  # full covers lite
            assert await queue.enqueue(work(sha=SHA_B)) == "queued"  # a new snapshot
            (lite,), _ = await queue.take(5)
            await queue.ack(lite, Work.from_json(lite.payload), committed=False)  # given up
            assert await queue.enqueue(work(sha=SHA_B)) == "queued"  # so: tried again

    run(scenario)


def test_an_expired_lease_comes_back_and_only_its_new_holder_renews_it(
    redis_server: RedisServer,
) -> None:
    async def scenario() -> None:
        async with opened(redis_server, lease=0.3) as queue:
            await queue.enqueue(work("org/first"))
            await queue.enqueue(work("org/second"))
            (first,), requeued = await queue.take(1)
            assert (first.id, first.attempt, requeued) == ("org/first@" + SHA_A + "/full", 1, 0)
            await asyncio.sleep(0.5)  # the holder stalled past its lease
            leases, requeued = await queue.take(1)
            assert requeued == 1
            assert [(lease.id, lease.attempt) for lease in leases] == [(first.id, 2)]  # head
            assert await queue.renew([first]) == [first.id]  # the old holder's is gone
            assert await queue.renew(leases) == []
            # Whoever settles it acknowledges it; the other's acknowledgement changes nothing.
            assert await queue.ack(first, Work.from_json(first.payload), committed=True)
            assert not await queue.ack(leases[0], Work.from_json(first.payload), committed=True)
            status = await queue.status()
            assert (status.pending, status.leased) == (1, 0)

    run(scenario)


def test_renewed_leases_outlive_their_time_and_released_ones_return_first(
    redis_server: RedisServer,
) -> None:
    async def scenario() -> None:
        async with opened(redis_server, lease=0.3) as queue:
            for name in ("org/a", "org/b"):
                await queue.enqueue(work(name))
            (held,), _ = await queue.take(1)
            for _ in range(6):  # 0.6 s, twice the lease
                await asyncio.sleep(0.1)
                assert await queue.renew([held]) == []
            others, requeued = await queue.take(5)
            assert requeued == 0 and [lease.id for lease in others] == [f"org/b@{SHA_A}/full"]
            assert await queue.release([held]) == 1
            assert await queue.release([held]) == 0
            (again,), _ = await queue.take(1)
            assert (again.id, again.attempt) == (held.id, 1)  # a release is no delivery

    run(scenario)


def test_the_queue_holds_json_and_never_unpickles(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        async with opened(redis_server) as queue:
            await queue.enqueue(work())

    run(scenario)
    client = redis.Redis.from_url(redis_server.url)
    (payload,) = client.hvals(f"{PREFIX}:items")
    assert json.loads(payload)["listing"]["id"] == "org/model"
    malicious = pickle.dumps(Lease("x", 1, b"y"))
    with pytest.raises(ValueError, match="not JSON"):
        Work.from_json(malicious)
    with pytest.raises(ValueError, match="format 1"):
        Work.from_json(b'{"format": 2}')


def test_a_lister_whose_mark_redis_lost_is_not_done(redis_server: RedisServer) -> None:
    async def scenario() -> None:
        async with opened(redis_server) as queue:
            assert not (await queue.status()).idle  # no lister yet
            await queue.lister_started("crawl0")
            assert (await queue.status()).running == 1
            assert await queue.lister_finished("crawl0")
            status = await queue.status()
            assert status.idle and 0 < status.last_end <= status.now
            redis.Redis.from_url(redis_server.url).flushall()
            await queue.lister_started("crawl1")
            redis.Redis.from_url(redis_server.url).flushall()  # a Redis without persistence
            assert not await queue.lister_finished("crawl1")

    run(scenario)


def test_queue_calls_wait_for_redis_and_a_durable_one_loses_nothing(
    durable_redis_server: RedisServer,
) -> None:
    server = durable_redis_server

    async def scenario() -> None:
        async with opened(server) as queue:
            assert await queue.enqueue(work()) == "queued"
            server.kill()
            taking = asyncio.ensure_future(queue.take(5))
            await asyncio.sleep(1.0)
            assert not taking.done()  # waiting, not failing
            server.start()
            (lease,), _ = await asyncio.wait_for(taking, timeout=15)
            assert lease.attempt == 1

    run(scenario)


class Stats(dict[str, Any]):
    def inc_value(self, key: str, count: int = 1, start: int = 0) -> None:
        self[key] = self.get(key, start) + count


def make_worker(queue: WorkQueue, tmp_path: Path, **options: Any) -> Worker:
    settings = {"prefetch": 4, "poll_interval": 0.05, "max_deliveries": 2, "renew_every": 10.0}
    worker = Worker(
        queue,
        RecordStore(tmp_path / "records.sqlite"),
        RejectedSink(tmp_path / "rejected", "test"),
        **{**settings, **options},
    )
    worker.stats = Stats()
    return worker


def test_a_worker_waits_for_a_lister_and_stops_once_all_is_settled(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    async def scenario() -> list[str]:
        async with opened(redis_server) as queue:
            worker = make_worker(queue, tmp_path)
            taken: list[str] = []

            async def consume() -> None:
                async for page, item in worker.work():
                    taken.append(item.model.id)
                    worker.settle(page)

            consuming = asyncio.ensure_future(consume())
            await asyncio.sleep(0.5)
            assert not consuming.done()  # no lister yet: it waits
            await queue.lister_started("crawl0")
            for name in ("org/a", "org/b", "org/c"):
                await queue.enqueue(work(name))
            await asyncio.sleep(0.5)
            assert not consuming.done()  # the lister is still running
            await queue.lister_finished("crawl0")
            await asyncio.wait_for(consuming, timeout=5)
            assert worker.stats["hfspider/distributed/acked"] == 3
            return taken

    assert run(scenario) == ["org/a", "org/b", "org/c"]


def test_poisoned_and_unreadable_work_is_rejected_not_retried_forever(
    redis_server: RedisServer, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(redis_server.url)

    async def scenario() -> list[str]:
        async with opened(redis_server, lease=0.1) as queue:
            await queue.lister_started("crawl0")
            await queue.enqueue(work("org/crasher"))
            for _ in range(2):  # two workers died holding it
                await queue.take(1)
                await asyncio.sleep(0.15)
            client.hset(f"{PREFIX}:items", "garbage", b"\x80\x04not json")
            client.rpush(f"{PREFIX}:pending", "garbage")
            await queue.lister_finished("crawl0")
            worker = make_worker(queue, tmp_path)
            return [item.model.id async for _, item in worker.work()]

    assert run(scenario) == []
    lines = (tmp_path / "rejected" / "test.jsonl").read_text().splitlines()
    reasons = sorted(json.loads(line)["reasons"][0] for line in lines)
    assert reasons[0].startswith("delivered 3 times without being settled")
    assert reasons[1].startswith("unreadable work item: work item is not JSON")
    assert client.hlen(f"{PREFIX}:items") == 0 and client.llen(f"{PREFIX}:pending") == 0


@pytest.mark.parametrize(
    ("arguments", "redis_url", "message"),
    [
        ({"role": "boss"}, "redis://127.0.0.1:1/0", "role must be one of lister, worker"),
        ({"role": "worker", "limit": "5"}, "redis://127.0.0.1:1/0", "-a arguments are its"),
        ({"role": "lister"}, "", "needs Redis: set RATELIMIT_REDIS_URL"),
    ],
)
def test_role_arguments_are_checked(
    arguments: dict[str, str], redis_url: str, message: str, tmp_path: Path
) -> None:
    settings = Settings()
    settings.setmodule(settings_module, priority="project")
    settings.set("OUTPUT_DIR", str(tmp_path))
    settings.set("RATELIMIT_REDIS_URL", redis_url)
    with pytest.raises(ValueError, match=message):
        HfModelsSpider.from_crawler(Crawler(HfModelsSpider, settings), **arguments)

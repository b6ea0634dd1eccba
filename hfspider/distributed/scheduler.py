"""A worker's request queue in Redis: scrapy-redis 0.9.1's scheduler, made safe and patient.

Each worker keeps its pending per-model requests in Redis (`<queue_prefix>:requests:<worker>`,
a sorted set by priority) instead of memory or a JOBDIR on its own disk, so a scrapyd job
needs no disk state to be inspected or moved. The queue is the worker's own: the models it
holds leases for are its work, and a killed worker's models come back through their leases
(hfspider.distributed.queue), so a (re)started worker flushes what its predecessor left.

What this adds to `scrapy_redis.scheduler.Scheduler` (scrapy-notes.md, section 6):

* requests are JSON (hfspider.distributed.serializer), never pickle;
* a request is taken from Redis so that a lost answer cannot lose it (`PeekingPriorityQueue`);
* no request is dropped as a duplicate: the lease queue hands out each snapshot once, and a
  model that comes back to this worker after its lease expired must be crawled again (the
  dupefilter class is only set because scrapy-redis 0.9.1 calls `from_settings` on it);
* Redis being away does not fail the crawl: a request that cannot be queued there waits in
  memory (`spill`), served first; while Redis is down it is tried once a second, not on every
  turn of the engine, and the outage is logged once;
* a request that cannot be written as JSON is logged as an error and kept in memory;
* a queued request that is not this serializer's JSON is refused and logged, never run (the
  model it belonged to comes back when its lease expires);
* counters go to the crawl stats without the `spider` argument Scrapy 2.19 deprecates.
"""

from __future__ import annotations

import hashlib
import logging
import socket
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import redis
import scrapy
from redis.backoff import NoBackoff
from redis.retry import Retry
from scrapy.crawler import Crawler
from scrapy.settings import BaseSettings
from scrapy_redis.queue import PriorityQueue
from scrapy_redis.scheduler import Scheduler

logger = logging.getLogger(__name__)
T = TypeVar("T")

# Seconds without trying Redis after it failed (the engine asks for a request many times a
# second); and how long a call may hang on an unanswering Redis.
RETRY_AFTER = 1.0
SOCKET_TIMEOUT = 5.0


def worker_name(settings: BaseSettings) -> str:
    """This worker's stable name: its host and output directory. A worker restarted on the
    same host with the same OUTPUT_DIR reuses (and flushes) its predecessor's queue key."""
    output = Path(settings.get("OUTPUT_DIR", "output")).resolve()
    digest = hashlib.sha256(str(output).encode()).hexdigest()[:12]
    return f"{socket.gethostname()}-{digest}"


def scheduler_settings(settings: BaseSettings, prefix: str) -> dict[str, Any]:
    """The settings that make a worker's scheduler this one."""
    name = worker_name(settings)
    return {
        "SCHEDULER": "hfspider.distributed.scheduler.RedisScheduler",
        "SCHEDULER_SERIALIZER": "hfspider.distributed.serializer",
        "SCHEDULER_QUEUE_KEY": f"{prefix}:requests:{name}",
        "SCHEDULER_QUEUE_CLASS": "hfspider.distributed.scheduler.PeekingPriorityQueue",
        "DUPEFILTER_CLASS": "scrapy_redis.dupefilter.RFPDupeFilter",
        "SCHEDULER_DUPEFILTER_KEY": f"{prefix}:dupefilter:{name}",
        "SCHEDULER_PERSIST": False,
        "SCHEDULER_FLUSH_ON_START": True,
        "REDIS_URL": settings.get("RATELIMIT_REDIS_URL"),
        "REDIS_PARAMS": {
            "socket_timeout": SOCKET_TIMEOUT,
            "socket_connect_timeout": SOCKET_TIMEOUT,
            "retry": Retry(NoBackoff(), 0),  # the scheduler's callers decide when to retry
        },
    }


def _until_redis_answers(call: Callable[[], T]) -> T:
    """`call()`, retried while Redis is unreachable: for the start, before the crawl runs
    (blocking is harmless then)."""
    while True:
        try:
            return call()
        except redis.RedisError as exc:
            logger.warning("Redis for the request queue is unreachable (%s); waiting", exc)
            time.sleep(RETRY_AFTER)


class PeekingPriorityQueue(PriorityQueue):
    """scrapy-redis's priority queue, except that `pop` reads the head and then removes it.

    Its own pop removes and reads in one MULTI: when Redis dies (or the connection drops) after
    running it but before the answer arrives, the request is gone from Redis and never reached
    the worker, whose model then waits for ever. Here a failed read removes nothing, and a
    removal whose answer was lost is repeated before the next read (ZREM is idempotent), so
    the request is neither lost nor served twice. One reader per queue (a worker's own key).
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unremoved: set[bytes] = set()

    def pop(self, timeout: int = 0) -> scrapy.Request | None:
        for data in list(self.unremoved):  # raises while Redis is away: nothing is read
            self.server.zrem(self.key, data)
            self.unremoved.discard(data)
        head = self.server.zrange(self.key, 0, 0)
        if not head:
            return None
        data = head[0]
        try:
            self.server.zrem(self.key, data)
        except redis.RedisError:
            self.unremoved.add(data)
        return self._decode_request(data)

    def __len__(self) -> int:
        return super().__len__() - len(self.unremoved)


class RedisScheduler(Scheduler):
    """See the module docstring."""

    spill: deque[scrapy.Request]
    down_since: float | None
    next_try: float

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> RedisScheduler:
        # scrapy-redis pings Redis here: wait for it, as every other call does
        scheduler = _until_redis_answers(lambda: cls.from_settings(crawler.settings))
        scheduler.stats = crawler.stats
        scheduler.spill = deque()
        scheduler.down_since = None
        scheduler.next_try = 0.0
        return scheduler

    def open(self, spider: scrapy.Spider) -> None:
        _until_redis_answers(lambda: super(RedisScheduler, self).open(spider))

    def close(self, reason: str) -> None:
        try:
            super().close(reason)
        except redis.RedisError as exc:
            logger.warning("Could not flush the request queue in Redis (%s)", exc)

    def _available(self) -> bool:
        return self.down_since is None or time.monotonic() >= self.next_try

    def _failed(self, exc: redis.RedisError) -> None:
        if self.down_since is None:
            self.down_since = time.monotonic()
            logger.warning(
                "Redis for the request queue is unreachable (%s): requests wait in memory",
                type(exc).__name__,
            )
        self.next_try = time.monotonic() + RETRY_AFTER

    def _answered(self) -> None:
        if self.down_since is not None:
            outage = time.monotonic() - self.down_since
            logger.info("Redis for the request queue is back after %.1f s", outage)
            self.down_since = None

    def enqueue_request(self, request: scrapy.Request) -> bool:
        if self._available():
            try:
                self.queue.push(request)
            except redis.RedisError as exc:
                self._failed(exc)
            except TypeError as exc:  # not JSON: a bug, but the request can still run here
                self.stats.inc_value("scheduler/unserializable")
                logger.error(
                    "Request %s cannot be queued in Redis (%s): kept in memory", request, exc
                )
            else:
                self._answered()
                self.stats.inc_value("scheduler/enqueued/redis")
                return True
        self.spill.append(request)
        self.stats.inc_value("scheduler/enqueued/memory")
        return True

    def next_request(self) -> scrapy.Request | None:
        if self.spill:
            self.stats.inc_value("scheduler/dequeued/memory")
            return self.spill.popleft()
        if not self._available():
            return None
        try:
            request = self.queue.pop()
        except redis.RedisError as exc:
            self._failed(exc)
            return None
        except ValueError as exc:  # not our JSON: refused, and its model's lease comes back
            self._answered()
            self.stats.inc_value("scheduler/refused/redis")
            logger.error("Refused a request from the Redis queue %s: %s", self.queue.key, exc)
            return None
        self._answered()
        if request is not None:
            self.stats.inc_value("scheduler/dequeued/redis")
        return request

    def has_pending_requests(self) -> bool:
        if self.spill:
            return True
        if not self._available():
            return True  # unknown until Redis answers: the crawl must not end meanwhile
        try:
            pending = len(self.queue) > 0
        except redis.RedisError as exc:
            self._failed(exc)
            return True
        self._answered()
        return pending

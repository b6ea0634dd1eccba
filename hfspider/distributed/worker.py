"""A worker's side of the work queue: take leased models, keep the leases alive, acknowledge.

`scrapy crawl hf_models -a role=worker` gets its models from `Worker.work()` in the spider's
`start()` and does everything else as a single-process crawl does (the per-model requests,
every item pipeline, its own OUTPUT_DIR). The spider reports each settled model to
`Worker.settle`, which acknowledges it once committed, rejected or given up; until then the
lease is renewed every third of its time, so a model with multi-GB files keeps it. At most
`DISTRIBUTED_PREFETCH` models are held at once, so a worker never hoards the queue.

The worker stops by itself once the queue is empty and every lister is done. A worker
started before any lister waits for one, and so does one started after a crawl had ended.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from scrapy import Spider, signals
from scrapy.crawler import Crawler

from hfspider.distributed.queue import Lease, WorkQueue
from hfspider.distributed.work import Work
from hfspider.store.records import RecordStore
from hfspider.store.rejected import RejectedSink

logger = logging.getLogger(__name__)

STATS_PREFIX = "hfspider/distributed/"
# The longest a closing worker waits for Redis to take its last acknowledgements and return
# its unsettled leases; what it could not hand back comes back when the leases expire.
CLOSE_TIMEOUT = 10.0


@dataclass
class _Held:
    lease: Lease
    work: Work
    settling: bool = False


class Worker:
    """See the module docstring. `store` is the spider's record store: a model counts as
    committed (and is marked done for listers) only if its snapshot is in it."""

    def __init__(
        self,
        queue: WorkQueue,
        store: RecordStore,
        rejected: RejectedSink,
        *,
        prefetch: int,
        poll_interval: float,
        max_deliveries: int,
        renew_every: float,
    ) -> None:
        self.queue = queue
        self.store = store
        self.rejected = rejected
        self.stats: Any = None  # the crawl's, from spider_opened on (Scrapy makes it then)
        self.prefetch = prefetch
        self.poll_interval = poll_interval
        self.max_deliveries = max_deliveries
        self.renew_every = renew_every
        self.held: dict[str, _Held] = {}  # by page token (`<work id>#<attempt>`)
        self.room = asyncio.Event()
        self.acks: set[asyncio.Task[None]] = set()
        self.renewer: asyncio.Task[None] | None = None
        self.born = time.monotonic()

    @classmethod
    def from_crawler(cls, crawler: Crawler, store: RecordStore, rejected: RejectedSink) -> Worker:
        settings = crawler.settings
        queue = WorkQueue.from_settings(settings, "the worker")
        worker = cls(
            queue,
            store,
            rejected,
            prefetch=settings.getint("DISTRIBUTED_PREFETCH"),
            poll_interval=settings.getfloat("DISTRIBUTED_POLL_INTERVAL"),
            max_deliveries=settings.getint("DISTRIBUTED_MAX_DELIVERIES"),
            renew_every=queue.lease_ms / 3000,
        )
        crawler.signals.connect(worker.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(worker.spider_closed, signal=signals.spider_closed)
        return worker

    def _count(self, name: str, value: int = 1) -> None:
        self.stats.inc_value(STATS_PREFIX + name, value)

    # -- taking work --------------------------------------------------------------------------

    async def work(self) -> AsyncIterator[tuple[str, Work]]:
        """(page token, work) of each model leased to this worker, never more than `prefetch`
        unsettled at once; ends when the crawl is over (see the module docstring)."""
        born: int | None = None  # when this worker started, in Redis server milliseconds
        seen_work = False
        while True:
            room = self.prefetch - len(self.held)
            if room <= 0:
                self.room.clear()
                await self.room.wait()
                continue
            leases, requeued = await self.queue.take(room)
            if requeued:
                self._count("requeued_expired", requeued)
                logger.info("%d expired leases went back to the queue", requeued)
            for lease in leases:
                seen_work = True
                held = await self._accept(lease)
                if held is not None:
                    page = f"{lease.id}#{lease.attempt}"
                    self.held[page] = held
                    yield page, held.work
            if leases:
                continue
            status = await self.queue.status()
            if born is None:
                born = status.now - round((time.monotonic() - self.born) * 1000)
            seen_work = seen_work or bool(status.pending or status.leased or status.running)
            if status.idle and (seen_work or status.last_end >= born):
                logger.info("The work queue is empty and every lister is done")
                return
            await asyncio.sleep(self.poll_interval)

    async def _accept(self, lease: Lease) -> _Held | None:
        """The lease's work, or None if it cannot be done: then it is rejected (with the reason
        and the payload, in OUTPUT_DIR/rejected) and acknowledged, never retried forever."""
        self._count("taken")
        if lease.attempt > 1:
            self._count("redelivered")
        try:
            work = Work.from_json(lease.payload)
        except ValueError as exc:
            reason = f"unreadable work item: {exc}"
            work = None
        else:
            if lease.attempt <= self.max_deliveries:
                return _Held(lease, work)
            reason = (
                f"delivered {lease.attempt} times without being settled (workers killed or "
                "stalled past their leases while crawling it); DISTRIBUTED_MAX_DELIVERIES"
            )
        self.rejected.write("distributed", [reason], lease.payload.decode("utf-8", "replace"))
        self._count("poisoned")
        logger.error("Work item %s not crawled: %s", lease.id, reason)
        await self.queue.ack(lease, work, committed=False)
        return None

    # -- settling -----------------------------------------------------------------------------

    def settle(self, page: str) -> None:
        """The spider settled the model of `page`: acknowledge it (in the background)."""
        held = self.held.get(page)
        if held is None or held.settling:
            return  # settled already, or a request restored from an earlier run's JOBDIR
        held.settling = True
        work = held.work
        committed = self.store.has(work.model.id, work.sha, work.mode)
        task = asyncio.ensure_future(self._ack(page, held, committed))
        self.acks.add(task)
        task.add_done_callback(self.acks.discard)

    async def _ack(self, page: str, held: _Held, committed: bool) -> None:
        if await self.queue.ack(held.lease, held.work, committed):
            self._count("acked")
        else:
            self._count("acked_by_another")  # its lease had expired and another worker took it
        del self.held[page]
        self.room.set()

    # -- lease renewal and closing ------------------------------------------------------------

    async def _renew_forever(self) -> None:
        while True:
            await asyncio.sleep(self.renew_every)
            leases = [held.lease for held in self.held.values() if not held.settling]
            lost = set(await self.queue.renew(leases))
            lost = {h.lease.id for h in self.held.values() if h.lease.id in lost and not h.settling}
            if lost:
                self._count("leases_lost", len(lost))
                logger.warning(
                    "%d leases expired before they could be renewed (this worker stalled, or "
                    "Redis was away): other workers may crawl those models too; the store and "
                    "the export merge keep each snapshot once",
                    len(lost),
                )

    def spider_opened(self, spider: Spider) -> None:
        self.stats = spider.crawler.stats
        self.renewer = asyncio.ensure_future(self._renew_forever())

    async def spider_closed(self) -> None:
        if self.renewer is not None:
            self.renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.renewer
        try:
            async with asyncio.timeout(CLOSE_TIMEOUT):
                if self.acks:
                    await asyncio.wait(set(self.acks))
                unsettled = [held.lease for held in self.held.values() if not held.settling]
                if unsettled:
                    released = await self.queue.release(unsettled)
                    self._count("released", released)
                    logger.info("%d unsettled models went back to the queue", released)
        except TimeoutError:
            logger.warning(
                "Redis did not answer within %.0f s: %d leases come back when they expire",
                CLOSE_TIMEOUT,
                len(self.held),
            )
        await self.queue.close()

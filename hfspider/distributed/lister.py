"""The lister's one item pipeline: each listed model goes to the work queue.

`scrapy crawl hf_models -a role=lister` walks the listing as a single-process crawl does (the
same filters, checkpoint and dedupe), but yields one `WorkItem` per model instead of its
requests. This pipeline queues it; once Redis has it, `item_scraped` settles the model, so the
lister's checkpoint only moves past models the queue holds. A model some worker committed
already (the queue's `done` index) is "unchanged": no work, as in a single-process crawl.
"""

from __future__ import annotations

import logging

from scrapy.crawler import Crawler
from scrapy.statscollectors import StatsCollector

from hfspider.distributed.queue import WorkQueue
from hfspider.distributed.work import WorkItem, crawl_id

logger = logging.getLogger(__name__)

STATS_PREFIX = "hfspider/distributed/"
# enqueue outcome -> stat
OUTCOME_STATS = {
    "queued": STATS_PREFIX + "queued",
    "duplicate": STATS_PREFIX + "already_queued",
    "unchanged": "hfspider/models/unchanged",
}


class EnqueuePipeline:
    """Queues `WorkItem`s; marks the lister running while it lists and done when it closes
    (workers stop once every lister is done and the queue is empty)."""

    def __init__(self, crawler: Crawler, queue: WorkQueue, stats: StatsCollector) -> None:
        self.crawler = crawler
        self.queue = queue
        self.stats = stats
        self.crawl = ""

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> EnqueuePipeline:
        return cls(crawler, WorkQueue.from_settings(crawler.settings, "the lister"), crawler.stats)

    async def open_spider(self) -> None:
        spider = self.crawler.spider
        assert spider is not None
        self.crawl = crawl_id(spider.crawl_key)
        await self.queue.lister_started(self.crawl)
        logger.info("Listing into the work queue at %s (crawl %s)", self.queue.prefix, self.crawl)

    async def process_item(self, item: WorkItem) -> WorkItem:
        if not isinstance(item, WorkItem):
            raise TypeError(f"a lister yields WorkItems only, not {type(item).__name__}")
        outcome = await self.queue.enqueue(item.work)
        self.stats.inc_value(OUTCOME_STATS[outcome])
        return item

    async def close_spider(self) -> None:
        if not await self.queue.lister_finished(self.crawl):
            # Redis restarted without its data while this lister ran: work it queued may be
            # gone, and its checkpoint may be past it. Forget the checkpoint; workers wait (no
            # lister is done) until the lister runs again, from the first page.
            spider = self.crawler.spider
            assert spider is not None
            spider.store.save_checkpoint(spider.crawl_key, None)
            self.stats.set_value(STATS_PREFIX + "queue_lost", True)
            logger.error(
                "The work queue lost this lister's mark: Redis restarted without its data (is "
                "it persistent? see README.md). Run the lister again: it lists from the first "
                "page; workers skip what they stored, and the export keeps each snapshot once."
            )
        await self.queue.close()

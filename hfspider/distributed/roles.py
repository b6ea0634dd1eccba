"""What `scrapy crawl hf_models -a role=...` changes in the process: the spider asks `join`.

* `lister`: the item pipelines are replaced by `EnqueuePipeline` (listed models go to the
  queue; nothing is fetched, validated or stored here).
* `worker`: a `Worker` feeds the spider's `start()` and takes its settlements; the worker's
  pending requests live in Redis (scrapy-redis's scheduler, JSON: `scheduler`).

Both need `RATELIMIT_REDIS_URL`: the queue lives there, and so does the budget every process
spends from, so N workers together stay under one quota.
"""

from __future__ import annotations

from scrapy.crawler import Crawler

from hfspider.distributed.scheduler import scheduler_settings
from hfspider.distributed.worker import Worker
from hfspider.store.records import RecordStore
from hfspider.store.rejected import RejectedSink

LISTER, WORKER = "lister", "worker"
ROLES = (LISTER, WORKER)
LISTER_PIPELINES = {"hfspider.distributed.lister.EnqueuePipeline": 100}


def join(crawler: Crawler, role: str, store: RecordStore, rejected: RejectedSink) -> Worker | None:
    """Set this process up for `role`; the worker's intake for a worker, None for a lister.
    ValueError for an unknown role or a missing Redis URL."""
    if role not in ROLES:
        raise ValueError(f"role must be one of {', '.join(ROLES)}, not {role!r}")
    if not crawler.settings.get("RATELIMIT_REDIS_URL"):
        raise ValueError(
            f"-a role={role} needs Redis: set RATELIMIT_REDIS_URL (pipelines_config/"
            "distributed.toml, or -s RATELIMIT_REDIS_URL=redis://host:6379/0)"
        )
    if role == LISTER:
        crawler.settings.set("ITEM_PIPELINES", LISTER_PIPELINES, priority="cmdline")
        return None
    prefix = crawler.settings.get("DISTRIBUTED_QUEUE_PREFIX")
    crawler.settings.setdict(scheduler_settings(crawler.settings, prefix), priority="cmdline")
    return Worker.from_crawler(crawler, store, rejected)

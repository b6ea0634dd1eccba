"""A live progress line while the crawl runs, and a summary when it ends.

Counts come from the crawl stats the components keep (`hfspider/...`, Scrapy's own
`downloader/...` and `retry/...`), so this extension only reads; it never decides anything.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from scrapy import Spider, signals
from scrapy.crawler import Crawler
from scrapy.statscollectors import StatsCollector
from twisted.internet import task

logger = logging.getLogger(__name__)

# Outcomes that settle a model, as (stat, label in the progress line).
OUTCOMES = (
    ("hfspider/records/stored", "stored"),
    ("hfspider/models/unchanged", "unchanged"),
    ("hfspider/models/rejected", "rejected"),
    ("hfspider/models/failed", "failed"),
)
BUCKET_PREFIX = "hfspider/ratelimit/"


def models_done(stats: dict[str, Any]) -> int:
    return sum(int(stats.get(name, 0)) for name, _ in OUTCOMES)


def format_duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"


def progress_line(stats: dict[str, Any], elapsed: float, limit: int | None) -> str:
    """`1234 models (1200 stored, 31 unchanged, 3 rejected, 0 failed), 45.2/s, ETA 3m12s`."""
    done = models_done(stats)
    rate = done / elapsed if elapsed > 0 else 0.0
    parts = ", ".join(f"{int(stats.get(name, 0))} {label}" for name, label in OUTCOMES)
    line = f"{done} models ({parts}), {rate:.1f}/s"
    if limit and rate > 0 and done < limit:
        line += f", ETA {format_duration((limit - done) / rate)}"
    return line


def summary_lines(stats: dict[str, Any], elapsed: float) -> list[str]:
    """The end-of-crawl report: outcomes, retries, requests per bucket, 429s, time, outputs."""
    lines = [
        f"models written: {int(stats.get('hfspider/records/stored', 0))}"
        f" ({int(stats.get('hfspider/records/new', 0))} new snapshots)",
        f"unchanged (skipped, no request): {int(stats.get('hfspider/models/unchanged', 0))}",
        f"rejected: {int(stats.get('hfspider/models/rejected', 0))},"
        f" failed: {int(stats.get('hfspider/models/failed', 0))}"
        f" (reasons in {stats.get('hfspider/rejected_dir', 'output/rejected')})",
        f"retried requests: {int(stats.get('retry/count', 0))},"
        f" 429 answers: {int(stats.get('downloader/response_status_count/429', 0))}",
        f"listing pages: {int(stats.get('hfspider/listing/pages', 0))},"
        f" requests: {int(stats.get('downloader/request_count', 0))}",
    ]
    buckets = sorted(
        (name[len(BUCKET_PREFIX) :].split("/")[0], int(value))
        for name, value in stats.items()
        if name.startswith(BUCKET_PREFIX) and name.endswith("/requests")
    )
    if buckets:
        lines.append("requests per bucket: " + ", ".join(f"{b} {n}" for b, n in buckets))
    lines.append(f"elapsed: {format_duration(elapsed)}")
    if "hfspider/export/path" in stats:
        lines.append(
            f"parquet: {stats['hfspider/export/path']} ({int(stats['hfspider/export/rows'])} rows)"
        )
    if "hfspider/ipfs/root_cid" in stats:
        lines.append(f"snapshot root CID: {stats['hfspider/ipfs/root_cid']}")
    return lines


class CrawlProgress:
    """Logs `progress_line` every PROGRESS_INTERVAL seconds (0 turns it off) and the
    `summary_lines` at the end."""

    def __init__(self, stats: StatsCollector, interval: float) -> None:
        self.stats = stats
        self.interval = interval
        self.started = time.monotonic()
        self.limit: int | None = None
        self._task: task.LoopingCall | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> CrawlProgress:
        interval = crawler.settings.getfloat("PROGRESS_INTERVAL", 10.0)
        extension = cls(crawler.stats, interval)
        crawler.signals.connect(extension.spider_opened, signal=signals.spider_opened)
        crawler.signals.connect(extension.spider_closed, signal=signals.spider_closed)
        return extension

    def spider_opened(self, spider: Spider) -> None:
        self.started = time.monotonic()
        options = getattr(spider, "options", None)
        self.limit = getattr(options, "limit", None)
        if self.interval > 0:
            self._task = task.LoopingCall(self.log_progress)
            self._task.start(self.interval, now=False)

    def log_progress(self) -> None:
        elapsed = time.monotonic() - self.started
        logger.info("progress: %s", progress_line(self.stats.get_stats(), elapsed, self.limit))

    def spider_closed(self, spider: Spider, reason: str) -> None:
        if self._task is not None and self._task.running:
            self._task.stop()
        elapsed = time.monotonic() - self.started
        lines = summary_lines(self.stats.get_stats(), elapsed)
        logger.info("crawl %s:\n  %s", reason, "\n  ".join(lines))

"""Commit each record to the durable store; export Parquet when the crawl closes."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from scrapy.crawler import Crawler
from scrapy.statscollectors import StatsCollector

from hfspider.items import ModelItem
from hfspider.storage.groupcommit import GroupCommit
from hfspider.store.parquet import export_parquet
from hfspider.store.records import STORE_FILE, RecordStore

# The last line `hfspider export` prints.
EXPORTED_RE = re.compile(
    r"^exported (?P<rows>\d+) records in \d+ partitions to (?P<path>.*)$", re.MULTILINE
)


class StorePipeline:
    """The last pipeline: records are keyed by (model_id, sha), so a record processed twice (a
    replay after a crash) is stored once. Records of concurrent items are committed together
    (one transaction, one fsync: hfspider.storage.groupcommit, `STORE_COMMIT_*` settings);
    `process_item` returns once its record is committed, and `item_scraped`, when the spider
    counts a model as done, fires after that.

    The Parquet export at close runs in a child process (`EXPORT_IN_CHILD`, default on): its
    Arrow buffers then never add to the crawl's own peak memory, and are all returned to the
    system when it exits."""

    def __init__(
        self,
        output_dir: Path,
        export: bool,
        batch_rows: int,
        stats: StatsCollector,
        commit: dict[str, Any] | None = None,
        export_in_child: bool = True,
    ):
        self.output_dir = output_dir
        self.export = export
        self.batch_rows = batch_rows
        self.stats = stats
        self.export_in_child = export_in_child
        self.store: RecordStore | None = None
        self.committer: GroupCommit[dict[str, Any]] = GroupCommit(self._commit, **(commit or {}))

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StorePipeline:
        settings = crawler.settings
        return cls(
            Path(settings.get("OUTPUT_DIR", "output")),
            settings.getbool("EXPORT_ON_CLOSE", True),
            settings.getint("EXPORT_BATCH_ROWS", 1000),
            crawler.stats,
            {
                "max_entries": settings.getint("STORE_COMMIT_MAX"),
                "min_delay": settings.getfloat("STORE_COMMIT_MIN_DELAY"),
                "max_delay": settings.getfloat("STORE_COMMIT_MAX_DELAY"),
            },
            settings.getbool("EXPORT_IN_CHILD"),
        )

    def open_spider(self) -> None:
        self.store = RecordStore(self.output_dir / STORE_FILE)

    async def process_item(self, item: ModelItem) -> ModelItem:
        record = item.record
        item.release()
        async with self.committer.entering():
            await self.committer.commit(record)
        return item

    def _commit(self, records: list[dict[str, Any]]) -> None:
        """One transaction for a batch of records (on the event loop's thread: the store's
        connection is used from one thread)."""
        assert self.store is not None
        new = self.store.commit(records)
        self.stats.inc_value("hfspider/records/stored", len(records))
        self.stats.inc_value("hfspider/records/new", new)
        self.stats.inc_value("hfspider/records/commits")

    async def close_spider(self) -> None:
        assert self.store is not None
        await self.committer.close()
        if self.export:
            if self.export_in_child:  # on a thread: the other pipelines close meanwhile
                await asyncio.to_thread(self._export_in_child)
            else:
                result = export_parquet(self.store, self.output_dir, self.batch_rows)
                self.stats.set_value("hfspider/export/rows", result.rows)
                self.stats.set_value("hfspider/export/path", str(result.path))
        self.store.close()

    def _export_in_child(self) -> None:
        """`hfspider export` (hfspider.store.parquet's CLI) in a fresh interpreter, on this
        output directory; its failure fails the export as an in-process one would."""
        command = [sys.executable, "-m", "hfspider.store.parquet", "--output-dir"]
        command += [str(self.output_dir), "--batch-rows", str(self.batch_rows)]
        # The child imports hfspider as this process does (e.g. from a scrapyd egg).
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(path for path in sys.path if path))
        done = subprocess.run(command, capture_output=True, text=True, env=env)
        summary = EXPORTED_RE.search(done.stdout)
        if done.returncode != 0 or summary is None:
            raise RuntimeError(
                f"Parquet export failed (exit {done.returncode}): {done.stderr[-2000:]}"
            )
        self.stats.set_value("hfspider/export/rows", int(summary["rows"]))
        self.stats.set_value("hfspider/export/path", summary["path"])

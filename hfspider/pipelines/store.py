"""Commit each record to the durable store; export Parquet when the crawl closes."""

from __future__ import annotations

from pathlib import Path

from scrapy.crawler import Crawler
from scrapy.statscollectors import StatsCollector

from hfspider.items import ModelItem
from hfspider.store.parquet import export_parquet
from hfspider.store.records import STORE_FILE, RecordStore


class StorePipeline:
    """The last pipeline: one transaction per record, keyed by (model_id, sha), so a record
    processed twice (a replay after a crash) is stored once. `item_scraped` fires after this
    commit, which is when the spider counts a model as done."""

    def __init__(self, output_dir: Path, export: bool, batch_rows: int, stats: StatsCollector):
        self.output_dir = output_dir
        self.export = export
        self.batch_rows = batch_rows
        self.stats = stats
        self.store: RecordStore | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> StorePipeline:
        settings = crawler.settings
        return cls(
            Path(settings.get("OUTPUT_DIR", "output")),
            settings.getbool("EXPORT_ON_CLOSE", True),
            settings.getint("EXPORT_BATCH_ROWS", 1000),
            crawler.stats,
        )

    def open_spider(self) -> None:
        self.store = RecordStore(self.output_dir / STORE_FILE)

    def process_item(self, item: ModelItem) -> ModelItem:
        assert self.store is not None
        new = self.store.commit([item.record])
        item.release()
        self.stats.inc_value("hfspider/records/stored")
        self.stats.inc_value("hfspider/records/new", new)
        return item

    def close_spider(self) -> None:
        assert self.store is not None
        if self.export:
            result = export_parquet(self.store, self.output_dir, self.batch_rows)
            self.stats.set_value("hfspider/export/rows", result.rows)
            self.stats.set_value("hfspider/export/path", str(result.path))
        self.store.close()

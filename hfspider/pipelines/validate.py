"""Refuse records that break the published schema before any work is spent on them."""

from __future__ import annotations

from pathlib import Path

from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem
from scrapy.statscollectors import StatsCollector

from hfspider.items import ModelItem
from hfspider.schema import validate_record
from hfspider.store.rejected import RejectedSink, run_id


class ValidatePipeline:
    """jsonschema-validates `item.record`; an invalid one goes to output/rejected/ with every
    reason and the raw Hub input, is counted, and is dropped."""

    def __init__(self, rejected: RejectedSink, stats: StatsCollector) -> None:
        self.rejected = rejected
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> ValidatePipeline:
        directory = Path(crawler.settings.get("OUTPUT_DIR", "output")) / "rejected"
        return cls(RejectedSink(directory, run_id("validate")), crawler.stats)

    def process_item(self, item: ModelItem) -> ModelItem:
        errors = validate_record(item.record)
        if errors:
            model_id = item.record.get("model_id")
            self.rejected.write(
                "validate", errors, {"record": item.record, **item.source}, model_id
            )
            self.stats.inc_value("hfspider/models/rejected")
            raise DropItem(f"{model_id}: record breaks the schema ({len(errors)} errors)")
        return item

    def close_spider(self) -> None:
        self.rejected.close()

"""Durable output: the record store (SQLite, keyed by (model_id, sha)) with the crawl
checkpoints, the rejected-records sink, and the Parquet export. No Scrapy here.

* `records.RecordStore`: idempotent commits, checkpoints, the current snapshot of each model.
* `progress.ListingProgress`: which listing page a crawl may resume from.
* `rejected.RejectedSink`: output/rejected/*.jsonl, reasons plus raw input.
* `parquet`: the typed, hive-partitioned export and the `hfspider export` command.
"""

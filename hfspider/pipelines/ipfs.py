"""Each snapshot as IPFS data: a UnixFS directory, a DAG-CBOR record, one CAR file; the crawl
ends with one root for every current snapshot, and with a node configured, all of it pinned.

Per model: `build_snapshot` (hfspider.ipfs) turns the record and the fetched files (their
blocks are in the item's store, filled by the files stage: nodes spooled, raw leaves read
back from the verified files) into the directory and record blocks; the CAR goes to
`car/<author>/<name>/<sha>.car` (atomically; a block that cannot be read back as it was, e.g.
a file changed on disk, rejects the snapshot), the record gets `cid` and `dir_cid`, and the
CAR index remembers the directory link for the root. With IPFS_PUSH,
the CAR is queued durably and a background loop imports and pins it (hfspider.storage); a
model counts as stored in IPFS only once the node confirms the pin. At close: the crawl root
CAR (`car/root-<time>.car`), its CID in the stats and the summary, and a last push round.

Group commit: each CAR is fsynced as it is written (on a worker thread), but the index rows
of several models are committed in one transaction (hfspider.storage.groupcommit;
`IPFS_COMMIT_MAX`, `IPFS_COMMIT_MIN_DELAY`, `IPFS_COMMIT_MAX_DELAY`); `process_item` returns
only once its row is committed, so a model leaves the stage with its CAR and row durable.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem, NotConfigured
from scrapy.statscollectors import StatsCollector

from hfspider.files.cache import FileCache
from hfspider.ipfs import (
    BlockstoreError,
    CarError,
    FileBlockstore,
    ImportParams,
    Link,
    MemoryBlockstore,
    SnapshotError,
    build_crawl_root,
    build_snapshot,
    cid_str,
    params_from_settings,
    write_crawl_root_car,
)
from hfspider.ipfs.snapshot import METADATA_NAME
from hfspider.items import ModelItem
from hfspider.pidstate import remove_stale
from hfspider.storage import ImportEntry, KuboStorage, StorageError
from hfspider.storage.carindex import CarIndex, IndexRow, row
from hfspider.storage.groupcommit import GroupCommit
from hfspider.store.records import STORE_FILE, RecordStore
from hfspider.store.rejected import RejectedSink, run_id

logger = logging.getLogger(__name__)
CAR_DIR = "car"
INDEX_FILE = "index.sqlite"
STATS_PREFIX = "hfspider/ipfs/"
# The crawl root's blocks, spooled to disk while the root is built (one folder per process id,
# removed once the root's CAR is written, or by the next crawl after a kill -9): an author's
# directory block lists all of its models, so together they are ~100 bytes per model.
ROOT_SPOOL_DIR = Path("state", "root-spool")


class IpfsPipeline:
    def __init__(
        self,
        params: ImportParams,
        output_dir: Path,
        stats: StatsCollector,
        storage: KuboStorage | None,
        push_interval: float,
        drain_timeout: float,
        commit: dict[str, Any] | None = None,
    ) -> None:
        self.params = params
        self.output_dir = output_dir
        self.car_dir = output_dir / CAR_DIR
        self.stats = stats
        self.storage = storage
        self.push_interval = push_interval
        self.drain_timeout = drain_timeout
        self.rejected = RejectedSink(output_dir / "rejected", run_id("ipfs"))
        self.index = CarIndex(self.car_dir / INDEX_FILE)
        self.committer: GroupCommit[IndexRow] = GroupCommit(
            self.index.put_many, in_thread=True, **(commit or {})
        )
        # Its own handle on the files stage's cache index (pipelines close in parallel).
        self.cache = FileCache(output_dir, 0, stats)
        if storage is not None:
            storage.on_stored = self._pinned
        self._pusher: asyncio.Task[None] | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> IpfsPipeline:
        settings = crawler.settings
        try:
            storage: KuboStorage | None = KuboStorage.from_crawler(crawler)
        except NotConfigured:
            storage = None
        return cls(
            params_from_settings(settings),
            Path(settings.get("OUTPUT_DIR", "output")),
            crawler.stats,
            storage,
            settings.getfloat("IPFS_PUSH_INTERVAL", 1.0),
            settings.getfloat("IPFS_DRAIN_TIMEOUT", 60.0),
            {
                "max_entries": settings.getint("IPFS_COMMIT_MAX"),
                "min_delay": settings.getfloat("IPFS_COMMIT_MIN_DELAY"),
                "max_delay": settings.getfloat("IPFS_COMMIT_MAX_DELAY"),
            },
        )

    def open_spider(self) -> None:
        if self.storage is not None:
            # Also picks up CARs queued by earlier crawls that the node had not confirmed.
            self._pusher = asyncio.ensure_future(self._push_loop())

    async def process_item(self, item: ModelItem) -> ModelItem:
        async with self.committer.entering():
            return await self._process(item)

    async def _process(self, item: ModelItem) -> ModelItem:
        model_id, sha = item.key
        try:
            car_path, roots, index_row, local = await asyncio.to_thread(self._write_snapshot, item)
            await self.committer.commit(index_row)  # the CAR is fsynced, the row committed
            if self.storage is not None:
                await asyncio.to_thread(self.storage.check, model_id, car_path, roots)
                self.storage.submit(model_id, car_path, roots, f"{model_id}@{sha}", checked=True)
        except (SnapshotError, StorageError) as exc:
            self.rejected.write("ipfs", [str(exc)], {"record": item.record, **item.source})
            self.stats.inc_value("hfspider/models/rejected")
            raise DropItem(str(exc)) from None
        finally:
            item.release()
        self.stats.inc_value(STATS_PREFIX + "cars")
        if self.storage is None and local:
            # Without a node the CAR is the IPFS copy: the local files may now be evicted.
            self.cache.mark_stored(local)
        return item

    def _pinned(self, entry: ImportEntry) -> None:
        """The node confirmed a CAR's pin: its local files may now be evicted."""
        self.cache.mark_stored(self.index.files(entry.car_path))

    def _write_snapshot(self, item: ModelItem) -> tuple[Path, list[str], IndexRow, list[str]]:
        """Blocks and CAR of one snapshot: its path, roots, index row to commit and the local
        files it holds (blocking I/O: runs in a worker thread)."""
        model_id, sha = item.key
        if METADATA_NAME in item.fetched:
            # The directory's metadata.json is the record; the repo's own file stays on disk.
            del item.fetched[METADATA_NAME]
            for entry in item.record["files"]:
                if entry["filename"] == METADATA_NAME:
                    entry.update(
                        cid=None,
                        fetch_status="skipped",
                        fetch_reason="metadata.json is the snapshot record's name in IPFS",
                    )
        store = item.blocks if item.blocks is not None else MemoryBlockstore()
        snapshot = build_snapshot(item.record, item.fetched, self.params, store)
        car_path = self.car_dir / model_id / f"{sha}.car"
        try:
            snapshot.write_car(car_path, store)
        except (BlockstoreError, CarError) as exc:  # e.g. a fetched file changed on disk
            raise SnapshotError(model_id, f"CAR not written: {exc}") from None
        local = [e["local_path"] for e in item.record["files"] if e["filename"] in item.fetched]
        index_row = row(model_id, sha, snapshot.directory, snapshot.cid, str(car_path), local)
        item.record = snapshot.record
        return car_path, [snapshot.dir_cid, snapshot.cid], index_row, local

    async def _push_loop(self) -> None:
        assert self.storage is not None
        while True:
            try:
                await self.storage.process_due()
            except Exception:  # never let the loop die: the queue keeps what is pending
                logger.exception("IPFS push round failed; the queue keeps every entry")
            await asyncio.sleep(self.push_interval)

    async def close_spider(self) -> None:
        await self.committer.close()
        self.stats.set_value(STATS_PREFIX + "index_commits", self.committer.batches)
        root = await asyncio.to_thread(self._write_root)
        if self._pusher is not None:
            self._pusher.cancel()
        if self.storage is not None:
            if root is not None:
                self.storage.submit("<crawl root>", *root)
            counts = await self.storage.drain(self.drain_timeout)
            for state, count in counts.items():
                self.stats.set_value(f"{STATS_PREFIX}queue/{state}", count)
            if counts.get("pending"):
                logger.warning(
                    "%d CARs still wait for the IPFS node; the next crawl pushes them",
                    counts["pending"],
                )
            await self.storage.close()
        self.index.close()
        self.cache.close()
        self.rejected.close()

    def _write_root(self) -> tuple[Path, list[str], str] | None:
        """The crawl root over every current snapshot that has a CAR (also from earlier
        crawls), or None when there is none."""
        remove_stale(self.output_dir / ROOT_SPOOL_DIR)
        folder = self.output_dir / ROOT_SPOOL_DIR / str(os.getpid())
        folder.mkdir(parents=True, exist_ok=True)
        try:
            with FileBlockstore(folder / "root.blocks") as store:
                return self._write_root_with(store)
        finally:
            shutil.rmtree(folder, ignore_errors=True)

    def _write_root_with(self, store: FileBlockstore) -> tuple[Path, list[str], str] | None:
        counts = {"included": 0, "no_car": 0, "legacy_id": 0}

        def models() -> Iterator[tuple[str, Link]]:
            with RecordStore(self.output_dir / STORE_FILE) as records:
                for model_id, sha in records.current_snapshots():
                    link = self.index.directory(model_id, sha)
                    if "/" not in model_id:  # a pre-2024 id without a namespace
                        counts["legacy_id"] += 1
                    elif link is None:
                        counts["no_car"] += 1
                    else:
                        counts["included"] += 1
                        yield model_id, link

        root = build_crawl_root(models(), self.params, store)
        if counts["no_car"] or counts["legacy_id"]:
            logger.warning("Snapshots left out of the crawl root: %s", counts)
        if not counts["included"]:
            return None
        stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
        path = self.car_dir / f"root-{stamp}.car"
        write_crawl_root_car(path, root, store)
        root_cid = cid_str(root.cid)
        self.stats.set_value(STATS_PREFIX + "root_cid", root_cid)
        self.stats.set_value(STATS_PREFIX + "root_models", counts["included"])
        logger.info("Crawl root %s (%d models) written to %s", root_cid, counts["included"], path)
        return path, [root_cid], "crawl-root"

"""FilesPipeline (priority 300): the selected files of each snapshot, verified, on disk and
imported for IPFS; every `files[]` entry of the record says what became of its file.

A lite record (`crawl_mode` "lite": listing fields only) gets no file: every entry is
"skipped", nothing is requested. For each entry of a full record: an LFS file gets its
zero-download `sha256_cid` from the Hub's sha256. Then `[files]` selection
(hfspider.files.select) decides; a selected file is taken from disk if a verified copy is
there (hashed again: that gives its CID and checks it once more), else from the body the
spider already read (`item.source["bodies"]`, verified and written into place), else
downloaded (hfspider.files.download). A fetched file gets `cid`, `sha256` (computed),
`sha256_cid`, `local_path` and `fetch_status="fetched"`; its `ImportedFile` goes to
`item.fetched[path]` and its blocks to `item.blocks`, a `FileBlockstore` made for the item on
first use: the tree's nodes in a spool under state/spool/, the raw leaves left in the file
itself (the IPFS stage writes the CAR from it, then calls `item.release()`, and
`FileCache.mark_stored(paths)` once the CAR is written and pinned: until then the cache keeps
the file where it is). Not selected: "skipped" with the reason; not fetched: "failed" with the
reason and no cid. A failed file never stops the record. Stats under `hfspider/files/`;
docs/files.md has the whole story.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import shutil
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from hfspider.files.cache import FileCache
from hfspider.files.config import FilesConfig
from hfspider.files.download import (
    Downloader,
    FetchError,
    HubRefusedError,
    Target,
    clean_reason,
    hash_file,
    land_body,
    open_session,
)
from hfspider.files.paths import (
    UnsafePathError,
    local_path,
    partial_paths,
    prepare_destination,
)
from hfspider.files.select import Selection
from hfspider.files.verify import Computed, Expected, VerificationError, check
from hfspider.hub.auth import get_token
from hfspider.hub.endpoints import resolve_cache_url, resolve_url
from hfspider.ipfs import FileBlockstore, params_from_settings, sha256_cid
from hfspider.items import ModelItem
from hfspider.middlewares.ratelimit import limiter_for
from hfspider.pidstate import remove_stale

if TYPE_CHECKING:
    from typing import Self

    from scrapy.crawler import Crawler

logger = logging.getLogger(__name__)

STATS_PREFIX = "hfspider/files"
SPOOL_DIR = Path("state", "spool")
LITE_REASON = "lite record (mode=lite): listing fields only, no file is fetched"


class FilesPipeline:
    """Fetches, verifies and records each snapshot's selected files (module docstring)."""

    def __init__(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.crawler = crawler
        self.stats = crawler.stats
        self.config = FilesConfig.from_settings(settings)
        self.selection = Selection.from_config(self.config)
        self.output = Path(settings.get("OUTPUT_DIR") or "output")
        self.params = params_from_settings(settings)
        self.limiter = limiter_for(crawler)
        self.endpoint = self.limiter.endpoint
        self.token = get_token()
        self.cache = FileCache(self.output, self.config.cache_max_size, crawler.stats)
        self.spool_dir = self.output / SPOOL_DIR / str(os.getpid())
        self._spool_names = itertools.count(1)
        self._slots = asyncio.Semaphore(self.config.concurrency)
        self._downloader: Downloader | None = None

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    async def open_spider(self) -> None:
        remove_stale(self.output / SPOOL_DIR)
        settings = self.crawler.settings
        self._downloader = Downloader(
            open_session(settings.getfloat("DOWNLOAD_TIMEOUT"), self.config.receive_buffer),
            self.limiter,
            self.params,
            token=self.token,
            user_agent=settings.get("USER_AGENT"),
            retry_times=settings.getint("RETRY_TIMES"),
            retry_429_times=settings.getint("RATELIMIT_RETRY_429_TIMES"),
            max_redirects=settings.getint("REDIRECT_MAX_TIMES"),
            stats=self.stats,
        )

    async def close_spider(self) -> None:
        if self._downloader is not None:
            await self._downloader.session.close()
        self.cache.close()
        shutil.rmtree(self.spool_dir, ignore_errors=True)

    def _count(self, name: str, value: int = 1) -> None:
        self.stats.inc_value(f"{STATS_PREFIX}/{name}", value)

    async def process_item(self, item: ModelItem) -> ModelItem:
        record = item.record
        lite = record.get("crawl_mode") == "lite"
        used = 0  # bytes selected so far in this model (the per-model cap)
        refused: str | None = None  # the Hub's answer for the whole repo, once it gave one
        for entry in record["files"]:
            if entry.get("lfs") and entry.get("sha256"):
                entry["sha256_cid"] = sha256_cid(entry["sha256"])
                self._count("sha256_cid")
            if lite:
                self._settle(item, entry, "skipped", LITE_REASON)
                continue
            size = entry.get("size_bytes")
            reason = self.selection.skip_reason(entry["filename"], size, used)
            if reason is not None:
                self._settle(item, entry, "skipped", reason)
                continue
            if refused is not None:
                self._settle(item, entry, "failed", refused)
                continue
            try:
                computed, relative = await self._fetch(item, entry)
            except HubRefusedError as exc:
                reason = clean_reason(str(exc), self.token)
                refused = reason if exc.whole_repo else None
                self._count("refused")
                self._settle(item, entry, "failed", reason)
            except FetchError as exc:
                self._settle(item, entry, "failed", clean_reason(str(exc), self.token))
            except UnsafePathError as exc:
                self._count("unsafe_path")
                self._settle(item, entry, "failed", f"unsafe path: {exc}")
            except Exception as exc:  # a disk error or a bug: the record goes on regardless
                logger.exception(
                    "Model %s: file %r not fetched", record["model_id"], entry["filename"]
                )
                reason = clean_reason(f"{type(exc).__name__}: {exc}", self.token)
                self._settle(item, entry, "failed", reason)
            else:
                self._record(item, entry, computed, relative)
            used += size or 0
        return item

    def _settle(self, item: ModelItem, entry: dict[str, Any], status: str, reason: str) -> None:
        entry.update(cid=None, local_path=None, fetch_status=status, fetch_reason=reason)
        self._count(status)
        if status == "failed":
            logger.warning(
                "Model %s: file %r failed: %s", item.record["model_id"], entry["filename"], reason
            )

    def _record(
        self, item: ModelItem, entry: dict[str, Any], computed: Computed, relative: str
    ) -> None:
        entry.update(
            cid=computed.imported.cid,
            local_path=relative,
            sha256=computed.sha256,
            sha256_cid=sha256_cid(computed.sha256),
            fetch_status="fetched",
            fetch_reason=None,
        )
        item.fetched[entry["filename"]] = computed.imported
        self._count("fetched")
        self._count("fetched_bytes", computed.size)

    def _blocks(self, item: ModelItem) -> FileBlockstore:
        if item.blocks is None:
            self.spool_dir.mkdir(parents=True, exist_ok=True)
            item.blocks = FileBlockstore(self.spool_dir / f"{next(self._spool_names)}.blocks")
        return item.blocks

    async def _fetch(self, item: ModelItem, entry: dict[str, Any]) -> tuple[Computed, str]:
        """The verified file in place, from disk, from the spider's body or from the Hub, and
        its path relative to OUTPUT_DIR; FetchError (or UnsafePathError) if not. Its raw
        leaves are then indexed in the item's store, read from the file when the CAR is
        written: the file is in the cache's working set from now on, so it stays there."""
        model_id, sha, filename = item.record["model_id"], item.record["sha"], entry["filename"]
        relative = local_path(model_id, sha, filename)
        expected = Expected.from_entry(entry)
        async with self._slots:
            dest = prepare_destination(self.output, relative)
            store = self._blocks(item)
            part, meta = partial_paths(self.output, model_id, sha, filename)
            blob_id = entry.get("blob_id") if entry.get("lfs") is False else None
            url = resolve_url(self.endpoint, model_id, sha, filename)
            target = Target(
                label=f"{model_id}@{sha[:12]}:{filename}",
                url=resolve_cache_url(self.endpoint, model_id, sha, filename, blob_id)
                if blob_id
                else url,
                fallback_url=url if blob_id else None,
                expected=expected,
                dest=dest,
                part=part,
                meta=meta,
            )
            computed = await self._reuse(target, relative, store)
            if computed is None:
                body = (item.source.get("bodies") or {}).get(filename)
                if body is not None:
                    computed = await self._land(target, relative, body, store)
            if computed is None:
                assert self._downloader is not None, "open_spider() was not called"
                self.cache.make_room(expected.size or 0)
                fetched = await self._downloader.fetch(target, store)
                computed = fetched.computed
                self._count("downloaded_bytes", fetched.downloaded)
                self.cache.add(relative, computed.size)
            store.add_file(dest, computed.leaves)
        return computed, relative.as_posix()

    async def _reuse(
        self, target: Target, relative: PurePosixPath, store: FileBlockstore
    ) -> Computed | None:
        """A copy on disk from an earlier run, hashed again and verified; None if there is
        none or it does not verify (then it is deleted). It joins the cache's working set
        before it is read, so that no eviction can take it from under this item."""
        dest, expected = target.dest, target.expected
        if not expected.known or not dest.exists():
            return None
        self.cache.add(relative, dest.stat().st_size)
        computed = await asyncio.to_thread(hash_file, dest, expected, self.params, store)
        try:
            check(expected, computed)
        except VerificationError as exc:
            logger.warning("File %s on disk does not verify (%s): fetching it again", relative, exc)
            dest.unlink()
            self.cache.forget(relative)
            self._count("reuse_rejected")
            return None
        self._count("reused")
        return computed

    async def _land(
        self, target: Target, relative: PurePosixPath, body: bytes, store: FileBlockstore
    ) -> Computed | None:
        """The body the spider already read, verified and written into place: no request.
        None if it is not the file the Hub describes (then the file is downloaded)."""
        if not target.expected.known:
            return None
        try:
            computed = await asyncio.to_thread(land_body, body, target, self.params, store)
        except VerificationError as exc:
            logger.warning("The spider's body of %r does not verify (%s)", target.label, exc)
            self._count("body_rejected")
            return None
        self.cache.add(relative, computed.size)
        self._count("body_reused")
        return computed

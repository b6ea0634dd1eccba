"""`scrapy crawl hf_models`: every model matching the filters, one record per snapshot.

Requests per model, at most: none from the listing itself (pages of 1000 with every field the
listing can `expand`), one pinned model-info request for file sizes and hashes (`full` mode,
new or changed snapshots only), and one resolve request for each of README.md and config.json
when the snapshot has them. All of a model's requests are pinned to the commit `sha` the
listing announced, so a record is one consistent snapshot.

Resume: the record store (keyed by (model_id, sha)) and the listing checkpoint (the earliest
page not fully settled) are durable, so the same command after a `kill -9` continues from
that page and skips what is committed. A graceful stop with JOBDIR resumes from Scrapy's own
queue and the progress saved in `spider.state`.

Arguments (`-a name=value`): limit, author, search, filter (comma-separated tags, AND),
pipeline_tag, library, sort, min_downloads, mode (full|lite).

Distributed (hfspider.distributed): `-a role=lister` walks the listing as above but hands each
new or changed model to a Redis work queue instead of crawling it; `-a role=worker` (with no
other argument) crawls the models it leases from that queue, and settling a model
acknowledges its lease.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import scrapy
from scrapy import signals
from scrapy.crawler import Crawler
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.exceptions import CloseSpider
from scrapy.http import Response
from scrapy.settings import BaseSettings
from scrapy.utils.job import job_dir
from twisted.python.failure import Failure

from hfspider.distributed.roles import LISTER, WORKER, join
from hfspider.distributed.work import Work, WorkItem, crawl_id
from hfspider.hub.api import HubFormatError, ModelInfo, parse_listing_page, parse_model_info
from hfspider.hub.card import CardLimits
from hfspider.hub.endpoints import (
    LISTING_SORTS,
    ListingQuery,
    hub_endpoint,
    model_info_url,
    next_page_url,
    resolve_cache_url,
    resolve_url,
)
from hfspider.hub.normalise import normalise
from hfspider.items import ModelItem
from hfspider.store.progress import ListingProgress
from hfspider.store.records import STORE_FILE, RecordStore
from hfspider.store.rejected import RejectedSink, run_id
from hfspider.store.seen import SeenIds

MODES = ("full", "lite")
README = "README.md"
CONFIG = "config.json"
# A config.json bigger than this is not a model config; it is not fetched.
CONFIG_MAX_BYTES = 16 << 20
# Listing pages first come last: a model's requests go before the next page, so the number of
# models in flight stays near one page and the checkpoint follows closely.
MODEL_PRIORITY = 1
LISTING_PRIORITY = 0
DISABLED_WARNING = "the Hub disabled this model: listing fields only"
# Statuses a model request handles itself (the Hub's answers for gone, gated, disabled).
HANDLED_STATUSES = [401, 403, 404]
# Scrapy runs CONCURRENT_ITEMS + 1 asyncio tasks for every response, whatever it yields. In
# full mode no response yields more than one item (a listing page yields requests, which are
# only queued), so one is enough: ~25% less CPU per model than 8. A listing page in lite mode
# or a lister's yields up to 1,000 items that share group commits: those keep CONCURRENT_ITEMS.
FULL_MODE_CONCURRENT_ITEMS = 1
# Parsed model infos kept for their README/config responses (about the models in flight), and
# only small ones (a typical answer is ~4 KB): a repo of 100,000 files would pin ~100 MB.
PARSED_INFOS = 32
PARSED_INFO_MAX_BYTES = 128 << 10


@dataclass(frozen=True)
class CrawlOptions:
    """The crawl's arguments, checked. `key` names the crawl for its checkpoint."""

    query: ListingQuery
    mode: str = "full"
    limit: int | None = None
    min_downloads: int | None = None

    @classmethod
    def from_arguments(cls, settings: BaseSettings, **arguments: str | None) -> CrawlOptions:
        """From `-a` arguments (strings) over the `CRAWL_*` settings; ValueError if wrong."""
        unknown = sorted(set(arguments) - set(ARGUMENTS))
        if unknown:
            raise ValueError(f"unknown arguments {unknown}; known: {', '.join(ARGUMENTS)}")
        args = {name: value for name, value in arguments.items() if value not in (None, "")}
        mode = args.get("mode") or settings.get("CRAWL_MODE", "full")
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        sort = args.get("sort") or settings.get("CRAWL_SORT", "createdAt")
        if sort not in LISTING_SORTS:
            raise ValueError(f"sort must be one of {', '.join(LISTING_SORTS)}, not {sort!r}")
        filters = tuple(tag.strip() for tag in args.get("filter", "").split(",") if tag.strip())
        query = ListingQuery(
            search=args.get("search"),
            author=args.get("author"),
            filters=filters,
            pipeline_tag=args.get("pipeline_tag"),
            library=args.get("library"),
            sort=sort,
            limit=int(settings.get("CRAWL_PAGE_SIZE", 1000)),
        )
        return cls(
            query=query,
            mode=mode,
            limit=_positive_int(args, "limit"),
            min_downloads=_positive_int(args, "min_downloads", minimum=0),
        )

    def key(self, first_page: str) -> str:
        """Checkpoint key: the same listing and selection resume each other, nothing else."""
        parts = {
            "url": first_page,
            "mode": self.mode,
            "limit": self.limit,
            "min_downloads": self.min_downloads,
        }
        return json.dumps(parts, sort_keys=True)


ARGUMENTS = (
    "limit",
    "author",
    "search",
    "filter",
    "pipeline_tag",
    "library",
    "sort",
    "min_downloads",
    "mode",
)


def _positive_int(args: dict[str, str], name: str, minimum: int = 1) -> int | None:
    if name not in args:
        return None
    try:
        value = int(args[name])
    except ValueError:
        raise ValueError(f"{name} must be an integer, not {args[name]!r}") from None
    if value < minimum:
        raise ValueError(f"{name} must be at least {minimum}, not {value}")
    return value


class HfModelsSpider(scrapy.Spider):
    name = "hf_models"

    def __init__(self, **arguments: Any) -> None:
        super().__init__(name=self.name)
        self.role: str | None = arguments.pop("role", None) or None
        self.arguments = {name: arguments.pop(name) for name in ARGUMENTS if name in arguments}
        unknown = sorted(name for name in arguments if name not in {"_job"})
        if unknown:
            raise ValueError(f"unknown arguments {unknown}; known: {', '.join(ARGUMENTS)}")

    @classmethod
    def from_crawler(cls, crawler: Crawler, *args: Any, **kwargs: Any) -> HfModelsSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        spider._configure(crawler)
        return spider

    def _configure(self, crawler: Crawler) -> None:
        settings = crawler.settings
        self.options = CrawlOptions.from_arguments(settings, **self.arguments)
        if self.options.mode == "full" and self.role != LISTER:
            # Spider priority: a CONCURRENT_ITEMS given with -s still wins.
            settings.set("CONCURRENT_ITEMS", FULL_MODE_CONCURRENT_ITEMS, priority="spider")
        self.endpoint = hub_endpoint(settings.get("HUB_ENDPOINT"))
        self.first_page = self.options.query.url(self.endpoint)
        self.crawl_key = self.options.key(self.first_page)
        self.card_limits = CardLimits.from_settings(settings)
        output = Path(settings.get("OUTPUT_DIR", "output"))
        self.store = RecordStore(output / STORE_FILE)
        self.rejected = RejectedSink(output / "rejected", run_id=run_id("crawl"))
        if self.role == WORKER and self.arguments:
            raise ValueError("a worker crawls what the lister queued: -a arguments are its")
        self.worker = join(crawler, self.role, self.store, self.rejected) if self.role else None
        # The identities listed so far, on disk (O(models): hfspider/store/seen.py).
        self._seen: SeenIds | None = None
        if self.worker is None:
            self._seen = SeenIds.for_crawl(output, job_dir(settings))
        crawler.signals.connect(self.item_scraped, signal=signals.item_scraped)
        crawler.signals.connect(self.item_dropped, signal=signals.item_dropped)
        crawler.signals.connect(self.item_error, signal=signals.item_error)
        crawler.signals.connect(self.spider_error, signal=signals.spider_error)

    @property
    def stats(self) -> Any:
        return self.crawler.stats

    # -- start and listing -------------------------------------------------------------------

    async def start(self) -> AsyncIterator[scrapy.Request]:
        self.stats.set_value("hfspider/rejected_dir", str(self.rejected.path.parent))
        if self.worker is not None:  # the models come from the work queue
            async for page, work in self.worker.work():
                for output in self._model_requests(page, work.model, work.listing, work.mode):
                    yield output
            return
        state = getattr(self, "state", None)  # set by SpiderState when JOBDIR is used
        if state and "progress" in state:
            # A graceful stop with JOBDIR: Scrapy's queue holds the pending requests.
            self._progress: ListingProgress = state["progress"]
            self._page_start: dict[str, int] = state["page_start"]
            self._resume_seen(state)
            self.logger.info("Resuming from JOBDIR at %s", self._progress.checkpoint)
            return
        checkpoint = self.store.checkpoint(self.crawl_key)
        url, position = checkpoint or (self.first_page, 0)
        if checkpoint:
            self.logger.info("Resuming from the checkpoint %s (model #%d)", url, position)
            self.stats.set_value("hfspider/resumed_from_position", position)
        self._progress = ListingProgress(url)
        self._page_start = {url: position}
        self._seen_ids().clear()  # a JOBDIR's file after a kill -9: not deduped yet
        if state is not None:
            state.update(progress=self._progress, page_start=self._page_start, seen=0)
        yield self._listing_request(url)

    def _seen_ids(self) -> SeenIds:
        """The listed ids (a method, not a property: Scrapy's `Request.to_dict`, which a
        worker's queue uses, reads every property of the spider, and a worker has none)."""
        assert self._seen is not None, "a worker lists nothing"
        return self._seen

    def _resume_seen(self, state: dict[str, Any]) -> None:
        """The identities seen at the graceful stop, and none listed since (by a run killed
        after resuming from the same state)."""
        seen, count = self._seen_ids(), state["seen"]
        if isinstance(count, set):  # a JOBDIR from before the identities were on disk
            seen.clear()
            seen.add(sorted(count))
        elif len(seen) < count:
            self.logger.warning(
                "%s lost identities (%d of %d): a model listed twice may be crawled twice",
                seen.path,
                len(seen),
                count,
            )
        else:
            seen.truncate(count)

    def _listing_request(self, url: str) -> scrapy.Request:
        return scrapy.Request(
            url,
            callback=self.parse_listing,
            errback=self.listing_failed,
            cb_kwargs={"page": url},
            priority=LISTING_PRIORITY,
            dont_filter=True,
        )

    def parse_listing(self, response: Response, page: str) -> Iterator[Any]:
        if page != self._progress.expected_page:
            # Left over in a queue from before a crash; the checkpoint page supersedes it.
            self.stats.inc_value("hfspider/listing/stale_pages")
            return
        try:
            listing = parse_listing_page(response.body)
        except HubFormatError as exc:
            yield self._retry(response, str(exc), fatal=True)
            return
        self.stats.inc_value("hfspider/listing/pages")
        for item in listing.rejected:
            self.rejected.write("listing", [item.reason], item.raw)
            self.stats.inc_value("hfspider/models/rejected")
        next_url = next_page_url(response.headers.get("Link", b"").decode("latin-1"), page)
        taken = self._page_start[page]
        chosen: list[tuple[ModelInfo, Any]] = []
        # The whole page at once (one transaction); once the loop breaks, no page follows.
        seen = self._seen_ids()
        new = seen.add([model.hub_id or model.id for model in listing.models])
        if (state := getattr(self, "state", None)) is not None:
            state["seen"] = len(seen)
        for model, raw, is_new in zip(listing.models, listing.raw, new, strict=True):
            if not is_new:
                self.stats.inc_value("hfspider/models/duplicates")
                continue
            if self.options.min_downloads is not None and (
                (model.downloads or 0) < self.options.min_downloads
            ):
                if self.options.query.sort == "downloads":
                    next_url = None  # sorted by downloads: everything after is smaller
                    break
                continue
            taken += 1
            chosen.append((model, raw))
            if self.options.limit is not None and taken >= self.options.limit:
                next_url = None  # the limit is reached: no further page is needed
                break
        if next_url is not None:
            self._page_start[next_url] = taken
        self.stats.inc_value("hfspider/models/listed", len(chosen))
        self._settled_if(self._progress.add_page(page, [m.id for m, _ in chosen], next_url))
        for model, raw in chosen:
            yield from self._model_requests(page, model, raw)
        if next_url is not None:
            yield self._listing_request(next_url)

    def listing_failed(self, failure: Failure) -> None:
        self.logger.error("Listing page failed for good: %s", _describe(failure))
        raise CloseSpider("listing_failed")

    # -- one model ---------------------------------------------------------------------------

    def _model_requests(
        self, page: str, model: ModelInfo, raw: Any, requested: str | None = None
    ) -> Iterator[Any]:
        """The model's first request (or item); `requested` is the lister's mode in a worker."""
        if model.sha is None:
            self._give_up(page, model.id, raw, ["the listing gave no commit sha for this model"])
            return
        # The Hub refuses a disabled model's info and files (403): the listing is all there is,
        # so its lite record is complete and asking again would spend a request every crawl.
        requested = requested or self.options.mode
        mode = "lite" if model.disabled else requested
        if self.role == LISTER:  # a worker does the rest; the queue knows what is stored
            yield WorkItem(page, Work.from_listing(crawl_id(self.crawl_key), mode, raw))
            return
        if self.store.has(model.id, model.sha, mode):
            self.stats.inc_value("hfspider/models/unchanged")
            self._settle(page, model.id)
            return
        context = {"page": page, "key": model.id, "listing": raw, "sha": model.sha}
        if mode == "lite":
            warnings = [DISABLED_WARNING] if mode != requested else []
            yield self._item(context, model, None, None, None, warnings)
            return
        yield self._model_request(model_info_url(self.endpoint, model.id, model.sha), context)

    def _model_request(self, url: str, context: dict[str, Any], **kwargs: Any) -> scrapy.Request:
        return scrapy.Request(
            url,
            callback=self.parse_info,
            errback=self.model_failed,
            cb_kwargs={"context": context},
            meta={"handle_httpstatus_list": HANDLED_STATUSES},
            priority=MODEL_PRIORITY,
            **kwargs,
        )

    def parse_info(self, response: Response, context: dict[str, Any]) -> Iterator[Any]:
        error = response.headers.get("X-Error-Code", b"").decode("latin-1")
        if response.status == 404 and error == "RevisionNotFound" and "repinned" not in context:
            # Changed between listing and detail (a force-push): take the snapshot as it is now.
            self.stats.inc_value("hfspider/models/repinned")
            context = {**context, "repinned": True}
            yield self._model_request(model_info_url(self.endpoint, context["key"], None), context)
            return
        if response.status in (401, 404):
            reason = f"model info: HTTP {response.status} {error or _error_text(response)}"
            self._give_up(context["page"], context["key"], context["listing"], [reason])
            return
        if response.status == 403:
            # Disabled (or otherwise refused): the listing is all the Hub will say.
            warning = f"model info refused: HTTP 403 {_error_text(response)}"
            listed = parse_model_info(context["listing"])
            yield self._item(context, listed, None, None, None, [warning])
            return
        try:
            info = _parsed_info(response.body)
        except HubFormatError as exc:
            yield self._retry(response, str(exc))
            return
        context = {**context, "info": response.body, "sha": info.sha or context["sha"]}
        yield from self._next_file(context, info, {})

    def _next_file(
        self, context: dict[str, Any], info: ModelInfo, fetched: dict[str, Any]
    ) -> Iterator[Any]:
        """Request README.md, then config.json (when the snapshot has them), then the item."""
        files = {entry.path: entry for entry in info.siblings or ()}
        for path in (README, CONFIG):
            if path in fetched or path not in files:
                continue
            entry = files[path]
            headers = {}
            if path == CONFIG and entry.size is not None and entry.size > CONFIG_MAX_BYTES:
                fetched[path] = {"warning": f"{CONFIG} is {entry.size} bytes; not fetched"}
                continue
            if (
                path == README
                and entry.size is not None
                and entry.size > self.card_limits.max_bytes
            ):
                headers["Range"] = f"bytes=0-{self.card_limits.max_bytes - 1}"
            if entry.blob_id and not entry.lfs and not context.get("via_resolve"):
                url = resolve_cache_url(self.endpoint, info.id, context["sha"], path, entry.blob_id)
            else:
                url = resolve_url(self.endpoint, info.id, context["sha"], path)
            yield scrapy.Request(
                url,
                callback=self.parse_file,
                errback=self.model_failed,
                headers=headers,
                cb_kwargs={"context": context, "path": path, "fetched": fetched},
                meta={"handle_httpstatus_list": HANDLED_STATUSES},
                priority=MODEL_PRIORITY,
            )
            return
        warnings = [entry["warning"] for entry in fetched.values() if "warning" in entry]
        readme = fetched.get(README, {}).get("body")
        config = fetched.get(CONFIG, {}).get("body")
        listed = parse_model_info(context["listing"])
        # Whole files already read (not a Range-cut card): the files stage reuses them.
        bodies = {p: e["body"] for p, e in fetched.items() if "body" in e and "warning" not in e}
        yield self._item(context, listed, info, readme, config, warnings, bodies)

    def parse_file(
        self, response: Response, context: dict[str, Any], path: str, fetched: dict[str, Any]
    ) -> Iterator[Any]:
        info = _parsed_info(context["info"])
        error = response.headers.get("X-Error-Code", b"").decode("latin-1")
        if response.status == 404 and not error and not context.get("via_resolve"):
            # The resolve-cache shortcut was not understood: ask the documented way.
            self.stats.inc_value("hfspider/files/resolve_fallback")
            yield from self._next_file({**context, "via_resolve": True}, info, fetched)
            return
        if response.status in (200, 206):
            fetched = {**fetched, path: {"body": response.body}}
            if response.status == 206:  # the Range asked for the card size limit only
                size = next(entry.size for entry in info.siblings or () if entry.path == path)
                warning = f"{path} is {size} bytes; the card keeps the first {len(response.body)}"
                fetched[path]["warning"] = warning
        else:
            reason = f"{path} not readable: HTTP {response.status} {error or _error_text(response)}"
            fetched = {**fetched, path: {"warning": reason}}
        yield from self._next_file(context, info, fetched)

    def model_failed(self, failure: Failure) -> None:
        context = failure.request.cb_kwargs["context"]
        reason = f"{failure.request.url}: {_describe(failure)}"
        self._give_up(context["page"], context["key"], context["listing"], [reason])

    def _item(
        self,
        context: dict[str, Any],
        listed: ModelInfo,
        info: ModelInfo | None,
        readme: bytes | None,
        config: bytes | None,
        warnings: list[str],
        bodies: dict[str, bytes] | None = None,
    ) -> ModelItem:
        record = normalise(
            listed,
            info,
            readme,
            config,
            crawled_at=dt.datetime.now(dt.UTC),
            limits=self.card_limits,
        )
        record["warnings"] = [*warnings, *record["warnings"]]
        source = {
            "page": context["page"],
            "key": context["key"],
            "listing": context["listing"],
            "info": context.get("info"),
            "bodies": bodies or {},
        }
        return ModelItem(record=record, source=source)

    def _retry(self, response: Response, reason: str, fatal: bool = False) -> Any:
        """Ask again for a malformed answer; after RETRY_TIMES, give the model up (or stop,
        for a listing page: without it there is no next page)."""
        self.logger.warning("Malformed answer from %s: %s", response.url, reason)
        retry = get_retry_request(response.request, spider=self, reason="malformed_answer")
        if retry is not None:
            return retry
        if fatal:
            raise CloseSpider("listing_failed")
        context = response.request.cb_kwargs["context"]
        self._give_up(context["page"], context["key"], context["listing"], [reason])
        return None

    # -- settlement: a model is done once it is committed, rejected or given up --------------

    def _give_up(self, page: str, key: str, raw: Any, reasons: list[str]) -> None:
        self.rejected.write("fetch", reasons, raw, model_id=key)
        self.stats.inc_value("hfspider/models/failed")
        self.logger.warning("Model %s not crawled: %s", key, "; ".join(reasons))
        self._settle(page, key)

    def item_scraped(self, item: Any) -> None:
        if (origin := _origin(item)) is not None:
            self._settle(*origin)

    def item_dropped(self, item: Any, exception: BaseException) -> None:
        if (origin := _origin(item)) is not None:
            self._settle(*origin)

    def item_error(self, item: Any, failure: Failure) -> None:
        if (origin := _origin(item)) is not None:
            source = item.source if isinstance(item, ModelItem) else item.work.listing
            model_id = origin[1] if isinstance(item, WorkItem) else item.record.get("model_id")
            self.rejected.write("pipeline", [_describe(failure)], source, model_id=model_id)
            self.stats.inc_value("hfspider/models/failed")
            self._settle(*origin)

    def spider_error(self, failure: Failure, response: Response) -> None:
        """A model's callback raised (input nothing foresaw, or a bug): the model is given up
        with the reason, not left unsettled, which would hold back its listing page's
        checkpoint (or, in a worker, keep renewing its lease) for ever. A listing callback's
        error only holds its page: the next run lists it again."""
        context = response.request.cb_kwargs.get("context") if response.request else None
        if context is None:
            return
        reason = f"crawl error at {response.url}: {_describe(failure)}"
        self._give_up(context["page"], context["key"], context["listing"], [reason])

    def _settle(self, page: str, key: str) -> None:
        if self.worker is not None:  # `page` names the lease
            self.worker.settle(page)
            return
        try:
            moved = self._progress.settle(page, key)
        except KeyError:
            return  # a request left over from before a crash: its page is redone anyway
        self._settled_if(moved)

    def _settled_if(self, moved: bool) -> None:
        """Persist the checkpoint when it moved (None: the listing is done, forget it)."""
        if moved:
            url = self._progress.checkpoint
            self.store.save_checkpoint(self.crawl_key, url, self._page_start.get(url or "", 0))
            # The pages before the checkpoint are settled: their start positions are done with
            # (kept, they would be one entry per page of the whole listing).
            if url is None or url in self._page_start:
                while self._page_start and (first := next(iter(self._page_start))) != url:
                    del self._page_start[first]

    def closed(self, reason: str) -> None:
        if self._seen is not None:
            self._seen.close()
        self.store.close()
        self.rejected.close()


def _origin(item: Any) -> tuple[str, str] | None:
    """(page, key) of an item that settles a model when it leaves the pipelines."""
    if isinstance(item, ModelItem):
        return item.source["page"], item.source["key"]
    if isinstance(item, WorkItem):
        return item.page, item.work.model.id
    return None


def _parsed_info(body: bytes) -> ModelInfo:
    """A model info answer, parsed once for its model's file responses when it is small."""
    return parse_model_info(body) if len(body) > PARSED_INFO_MAX_BYTES else _parse_cached(body)


@functools.lru_cache(maxsize=PARSED_INFOS)
def _parse_cached(body: bytes) -> ModelInfo:
    """ModelInfo is frozen, so sharing it is safe; the same bytes object travels in the
    requests' context, so its hash is computed once."""
    return parse_model_info(body)


def _error_text(response: Response) -> str:
    return response.headers.get("X-Error-Message", b"").decode("utf-8", "replace")[:200]


def _describe(failure: Failure) -> str:
    value = failure.value
    response = getattr(value, "response", None)
    if response is not None:
        return f"HTTP {response.status} {_error_text(response)}".strip()
    return f"{type(value).__name__}: {value}"[:500]

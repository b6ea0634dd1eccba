"""Streaming, resumable, verified downloads of Hub files, outside Scrapy's in-memory bodies.

One `Downloader.fetch(target, sink)` call:

* follows the Hub's redirects itself (resolve -> resolve-cache on the Hub's origin, or -> a
  CDN on another host), sending the token only to the Hub's origin (`is_hub_origin`), and
  spending one `resolvers` grant of the shared limiter per Hub request (the CDN is not
  counted by the Hub, so it gets none);
* streams the body in chunks into `state/partial/<key>.part` while the sha256, the UnixFS
  CID (blocks into `sink`) and, for regular files, the git blob sha1 are computed: memory is
  a few chunks whatever the file size;
* resumes with `Range: bytes=<part size>-` after an interruption, in this process or after a
  `kill -9` and a restart (the sidecar `.json` names the file and its validator; the bytes
  already there are hashed once more, the only second read). A 200 instead of a 206 starts
  the file over from that body; a 206 that does not continue the part, a 416, or a changed
  validator (`X-Linked-Etag`, else `ETag`) start it over from zero;
* verifies size and hashes against the Hub's values; a mismatch deletes the part and starts
  once more from zero, a second mismatch fails the file. Only a verified file is renamed into
  place.

Retries follow the crawl's policy: network errors, truncated bodies and the
RATELIMIT_FAILURE_CODES statuses are retried up to RETRY_TIMES attempts in a row that brought
no new bytes (so a long download is not given up for a few resets spread over hours), with
the limiter's backoff; 429s pause the bucket (limiter) and are retried up to
RATELIMIT_RETRY_429_TIMES. The Hub's refusals (401, 403, 404...) are not retried.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol
from urllib.parse import urljoin, urlsplit

import aiohttp

from hfspider.budget.limiter import Grant, Limiter
from hfspider.files.verify import (
    Computed,
    ContentHashes,
    Expected,
    RangeMismatchError,
    VerificationError,
    body_span,
    check,
)
from hfspider.hub.auth import is_hub_origin
from hfspider.ipfs import BlockSink, ImportParams

logger = logging.getLogger(__name__)

CHUNK_SIZE = 1 << 20  # bytes read from the network (and written) at a time
REDIRECTS = frozenset({301, 302, 303, 307, 308})
REASON_MAX_CHARS = 300
_URL_QUERY_RE = re.compile(r"(https?://[^\s?#'\"]*)[?#][^\s'\"]*")


class Stats(Protocol):
    def inc_value(self, key: str, count: int = 1, start: int = 0) -> None: ...


class FetchError(Exception):
    """A file that ends up not fetched; the message is the record's `fetch_reason`."""

    status = "failed"


class FileSkippedError(FetchError):
    """Over a size cap that only the download could tell (a lite record has no sizes)."""

    status = "skipped"


class HubRefusedError(FetchError):
    """The Hub said no. `whole_repo`: every file of the repo would get the same answer
    (gated without access, disabled, missing repo or revision), so none is asked again."""

    def __init__(self, reason: str, whole_repo: bool) -> None:
        super().__init__(reason)
        self.whole_repo = whole_repo


class _RetryError(Exception):
    """One attempt failed in a way that another may not (network, server failure)."""


class _RateLimitedError(Exception):
    """A 429 from the Hub: the limiter paused the bucket, ask again."""


@dataclass(frozen=True)
class Target:
    """One file to fetch, with what the Hub says it is and where it goes."""

    label: str  # "model@sha:path", for logs and the partial's sidecar
    url: str  # pinned to the commit: resolve, or the resolve-cache shortcut
    fallback_url: str | None  # the documented resolve URL, if `url` is the shortcut
    expected: Expected
    dest: Path
    part: Path
    meta: Path
    size_check: Callable[[int], str | None]  # why a file of that size is not wanted, or None


@dataclass(frozen=True)
class Fetched:
    computed: Computed
    downloaded: int  # bytes that came over the network for this file, all attempts


def clean_reason(text: str, token: str | None = None) -> str:
    """A reason fit for a record or a log line: no token, no signed URL query strings, no
    control characters, bounded length."""
    if token:
        text = text.replace(token, "<token>")
    text = _URL_QUERY_RE.sub(r"\1?...", text)
    text = "".join(c if c.isprintable() else " " for c in text)
    return text[:REASON_MAX_CHARS]


def refusal(status: int, headers: Mapping[str, str]) -> HubRefusedError:
    """The Hub's answer for a file it will not serve, with its own error code and message."""
    code = headers.get("X-Error-Code", "")
    message = headers.get("X-Error-Message", "")
    reason = " ".join(part for part in (f"HTTP {status}", code and f"{code}:", message) if part)
    return HubRefusedError(reason, whole_repo=not (status == 404 and code == "EntryNotFound"))


class Partial:
    """The `.part` file of one target, its sidecar and the running hashes of its bytes."""

    def __init__(self, target: Target, params: ImportParams, sink: BlockSink) -> None:
        self.target = target
        self.params = params
        self.sink = sink
        self.expected = target.expected
        self.validator: str | None = None
        self.total: int | None = None
        self.offset = 0
        self.received = 0  # bytes written from the network (not from an earlier run)
        self._hashes: ContentHashes | None = None
        self._fd: int | None = None

    @property
    def started(self) -> bool:
        return self._hashes is not None

    def load(self) -> None:
        """Take up the part an earlier attempt or run left, if its sidecar matches the target,
        hashing its bytes again; otherwise start clean. Runs in a worker thread."""
        self.close()
        self._hashes, self.offset = None, 0
        try:
            meta = json.loads(self.target.meta.read_text("utf-8"))
            size = self.target.part.stat().st_size
            expected = Expected(**meta["expected"])
            validator, total = meta["validator"], meta["total"]
            usable = (
                meta["label"] == self.target.label
                and (not self.target.expected.known or expected == self.target.expected)
                and isinstance(total, int)
                and 0 < size <= total
            )
        except (OSError, ValueError, KeyError, TypeError):
            usable = False
        if not usable:
            self.discard()
            return
        self.expected, self.validator, self.total = expected, validator, total
        self._hashes = self._new_hashes()
        with open(self.target.part, "rb") as part:
            while self.offset < size:
                piece = part.read(min(CHUNK_SIZE, size - self.offset))
                if not piece:
                    break
                self._hashes.update(piece)
                self.offset += len(piece)
        self._fd = os.open(self.target.part, os.O_WRONLY | os.O_APPEND)
        os.ftruncate(self._fd, self.offset)

    def start(self, total: int, validator: str | None, expected: Expected) -> None:
        """Begin from byte zero: the sidecar first, then an empty part file."""
        self.close()
        self.expected, self.validator, self.total = expected, validator, total
        self.target.part.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "label": self.target.label,
            "validator": validator,
            "total": total,
            "expected": expected.to_json(),
        }
        scratch = self.target.meta.with_suffix(".tmp")
        scratch.write_text(json.dumps(meta), "utf-8")
        os.replace(scratch, self.target.meta)
        self._fd = os.open(self.target.part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._hashes = self._new_hashes()
        self.offset = 0

    def _new_hashes(self) -> ContentHashes:
        git_size = self.total if self.expected.blob_id is not None else None
        return ContentHashes(self.params, self.sink, git_size)

    def write(self, data: bytes) -> None:
        assert self._fd is not None and self._hashes is not None
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        self._hashes.update(data)
        self.offset += len(data)
        self.received += len(data)

    def finish(self) -> Computed:
        assert self._hashes is not None
        self.close()
        return self._hashes.finish()

    def discard(self) -> None:
        """Forget the part: delete it and its sidecar."""
        self.close()
        self.target.part.unlink(missing_ok=True)
        self.target.meta.unlink(missing_ok=True)
        self._hashes, self.offset, self.validator, self.total = None, 0, None, None
        self.expected = self.target.expected

    def commit(self) -> None:
        """The verified part becomes the file (an atomic rename)."""
        self.close()
        os.replace(self.target.part, self.target.dest)
        self.target.meta.unlink(missing_ok=True)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def import_file(path: Path, expected: Expected, params: ImportParams, sink: BlockSink) -> Computed:
    """Hash a file already on disk exactly like a download would (for reuse after a rerun)."""
    git_size = path.stat().st_size if expected.blob_id is not None else None
    hashes = ContentHashes(params, sink, git_size)
    with open(path, "rb") as source:
        while piece := source.read(CHUNK_SIZE):
            hashes.update(piece)
    return hashes.finish()


class Downloader:
    """Fetches Hub files into place, verified (see the module docstring)."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        limiter: Limiter,
        params: ImportParams,
        *,
        token: str | None,
        user_agent: str,
        retry_times: int,
        retry_429_times: int,
        max_redirects: int,
        stats: Stats | None = None,
    ) -> None:
        self.session = session
        self.limiter = limiter
        self.endpoint = limiter.endpoint
        self.params = params
        self.token = token
        self.user_agent = user_agent
        self.retry_times = retry_times
        self.retry_429_times = retry_429_times
        self.max_redirects = max_redirects
        self.stats = stats

    def _count(self, name: str, value: int = 1) -> None:
        if self.stats is not None:
            self.stats.inc_value(f"hfspider/files/{name}", value)

    async def fetch(self, target: Target, sink: BlockSink) -> Fetched:
        """Download, verify and move `target` into place; FetchError (or a subclass) if not."""
        partial = Partial(target, self.params, sink)
        mismatches = 0
        while True:
            await asyncio.to_thread(partial.load)
            try:
                computed = await self._transfer(target, partial)
                check(partial.expected, computed)
            except VerificationError as exc:
                partial.discard()
                self._count("verify_failed")
                mismatches += 1
                if mismatches > 1:
                    raise FetchError(f"verification failed twice: {exc}") from None
                logger.warning(
                    "File %r failed verification (%s); once more from zero", target.label, exc
                )
                continue
            except BaseException:
                partial.close()
                raise
            partial.commit()
            return Fetched(computed, partial.received)

    async def _transfer(self, target: Target, partial: Partial) -> Computed:
        """Attempts until the part holds the whole file (retry policy in the module doc)."""
        url = target.url
        failures = times_429 = 0
        while not (partial.started and partial.offset == partial.total):
            received = partial.received
            try:
                next_url = await self._attempt(url, target, partial)
            except _RateLimitedError:
                times_429 += 1
                self._count("retry_429")
                if times_429 > self.retry_429_times:
                    raise FetchError(f"HTTP 429 from the Hub {times_429} times") from None
                continue
            except _RetryError as exc:
                failures = 0 if partial.received > received else failures + 1
                if failures > self.retry_times:
                    raise FetchError(
                        f"{exc} (gave up after {failures} attempts without progress)"
                    ) from None
                self._count("retries")
                logger.info("File %r: %s; retrying", target.label, exc)
                continue
            if next_url is not None:
                url = next_url
        return partial.finish()

    async def _attempt(self, url: str, target: Target, partial: Partial) -> str | None:
        """One request chain, redirects followed by hand. Returns None once the body is all
        in the part, or the URL to use instead (the resolve-cache shortcut was refused)."""
        linked_etag = linked_size = None
        grant: Grant | None = None
        for _hop in range(self.max_redirects + 1):
            headers = {"Accept-Encoding": "identity", "User-Agent": self.user_agent}
            if partial.started and partial.offset:
                headers["Range"] = f"bytes={partial.offset}-"
            hub = is_hub_origin(url, self.endpoint)
            authorization = f"Bearer {self.token}" if hub and self.token else None
            if authorization:
                headers["Authorization"] = authorization
            bucket = self.limiter.bucket(url)  # None off the Hub's origin: its CDN
            hop_grant = None
            if bucket is not None:
                hop_grant = grant = await self.limiter.acquire(bucket, authorization)
            try:
                async with self.session.get(url, headers=headers, allow_redirects=False) as answer:
                    if hop_grant is not None:
                        await self.limiter.observe(hop_grant, answer.status, answer.headers)
                    status = answer.status
                    if status in REDIRECTS:
                        linked_etag = linked_etag or answer.headers.get("X-Linked-Etag")
                        linked_size = linked_size or answer.headers.get("X-Linked-Size")
                        location = answer.headers.get("Location")
                        if not location:
                            raise _RetryError(f"HTTP {status} without a Location")
                        url = urljoin(url, location)
                        if urlsplit(url).scheme not in ("http", "https"):
                            raise FetchError(f"redirect to a non-HTTP URL ({urlsplit(url).scheme})")
                        continue
                    if status in (200, 206):
                        validator = linked_etag or answer.headers.get("ETag")
                        await self._receive(answer, target, partial, validator, linked_size)
                        return None
                    return await self._failed_status(answer, url, target, partial, hub, grant)
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = clean_reason(f"{type(exc).__name__}: {exc}", self.token)
                if grant is not None:
                    await self.limiter.failed(grant, type(exc).__name__)
                raise _RetryError(reason) from None
        raise FetchError(f"more than {self.max_redirects} redirects")

    async def _failed_status(
        self,
        answer: aiohttp.ClientResponse,
        url: str,
        target: Target,
        partial: Partial,
        hub: bool,
        grant: Grant | None,
    ) -> str:
        status = answer.status
        if status == 429 and hub:
            raise _RateLimitedError
        if status == 416:
            partial.discard()
            self._count("restarted")
            raise _RetryError("HTTP 416: the partial file does not fit the file; starting over")
        code = answer.headers.get("X-Error-Code")
        if status == 404 and not code and target.fallback_url and url == target.url:
            self._count("resolve_fallback")
            return target.fallback_url
        if hub and status not in self.limiter.config.failure_codes:
            raise refusal(status, answer.headers)
        if not hub and grant is not None:
            await self.limiter.failed(grant, f"HTTP {status} from the file host")
        raise _RetryError(f"HTTP {status} from {'the Hub' if hub else 'the file host'}")

    async def _receive(
        self,
        answer: aiohttp.ClientResponse,
        target: Target,
        partial: Partial,
        validator: str | None,
        linked_size: str | None,
    ) -> None:
        """Stream a 200/206 body into the part (see `body_span` for which is which)."""
        if partial.started and partial.offset and validator != partial.validator:
            partial.discard()
            self._count("restarted")
            raise _RetryError("the file changed on the Hub (another validator); starting over")
        try:
            span = body_span(answer.status, answer.headers, partial.offset)
        except RangeMismatchError as exc:
            partial.discard()
            self._count("restarted")
            raise _RetryError(f"{exc}; starting over") from None
        if span.start == 0:
            if partial.offset:
                self._count("restarted")
                logger.info("File %r: the server sent the whole file; starting over", target.label)
            expected = partial.expected.with_linked(validator, linked_size)
            total = span.total if span.total is not None else expected.size
            if total is None:
                raise FetchError("neither the Hub nor the answer gives the file's size")
            if expected.size is not None and total != expected.size:
                raise VerificationError(
                    f"the server sends {total} bytes, the Hub says {expected.size}"
                )
            skip = target.size_check(total)
            if skip is not None:
                raise FileSkippedError(skip)
            partial.start(total, validator, expected)
        elif span.total != partial.total:
            partial.discard()
            raise _RetryError(f"the file is now {span.total} bytes, was {partial.total}; again")
        else:
            self._count("resumed")
        assert partial.total is not None
        async for chunk in answer.content.iter_chunked(CHUNK_SIZE):
            if partial.offset + len(chunk) > partial.total:
                raise VerificationError(f"more than the {partial.total} bytes announced")
            partial.write(chunk)
        if partial.offset < partial.total:
            raise _RetryError(f"the body ended at byte {partial.offset} of {partial.total}")

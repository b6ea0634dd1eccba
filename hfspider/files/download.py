"""Streaming, resumable, verified downloads of Hub files, outside Scrapy's in-memory bodies.

One `Downloader.fetch(target, sink)` call:

* follows the Hub's redirects itself (resolve -> resolve-cache on the Hub's origin, or -> a
  CDN on another host), sending the token only to the Hub's origin (`is_hub_origin`), and
  spending one `resolvers` grant of the shared limiter per Hub request (the CDN is not
  counted by the Hub, so it gets none);
* writes each piece of the body to `state/partial/<key>.part` as soon as it arrives, and
  hands it to a thread of its own (`Hasher`) that computes the sha256, the UnixFS CID
  (blocks into `sink`, raw leaves noted rather than copied) and, for regular files, the git
  blob sha1, a few chunks behind the network at most: memory is a few chunks whatever the
  file size, and the bytes received but not yet in the part stay under one chunk (the
  session's sockets have a bounded receive buffer, `open_session`);
* resumes with `Range: bytes=<part size>-` after an interruption, in this process or after a
  `kill -9` and a restart (the sidecar `.json` names the file and its validator; the bytes
  already there are hashed once more, the only second read). A 200 instead of a 206 starts
  the file over from that body; a 206 that does not continue the part, a 416, or a changed
  validator (`X-Linked-Etag`, else `ETag`) start it over from zero;
* verifies size and hashes against the Hub's values; a mismatch deletes the part and starts
  once more from zero, a second mismatch fails the file. Only a verified file is renamed into
  place. A file the Hub gave no size and hash for is not asked for at all.

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
import socket
from collections import deque
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol
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
from hfspider.memory import keep_freed_memory

logger = logging.getLogger(__name__)

# "One chunk": the batch of bytes hashed at a time, the read size of files on disk, and the
# bound on bytes received but not yet written to the part (what a kill -9 can cost twice).
CHUNK_SIZE = 1 << 20
HASH_BACKLOG = 4  # chunks waiting for the hashing thread before the network is paused
REDIRECTS = frozenset({301, 302, 303, 307, 308})
REASON_MAX_CHARS = 300
_URL_QUERY_RE = re.compile(r"(https?://[^\s?#'\"]*)[?#][^\s'\"]*")


class Stats(Protocol):
    def inc_value(self, key: str, count: int = 1, start: int = 0) -> None: ...


class FetchError(Exception):
    """A file that ends up not fetched; the message is the record's `fetch_reason`."""


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


def open_session(timeout: float, receive_buffer: int) -> aiohttp.ClientSession:
    """The aiohttp session for file downloads: `timeout` bounds connecting and each silence,
    never a whole transfer; no decompression, no cookies. `receive_buffer` (SO_RCVBUF, 0: the
    kernel's autotuning, up to tcp_rmem's maximum) bounds what the kernel holds received but
    unread, and with it what a kill -9 loses; a small one also caps the rate over long links
    (about twice receive_buffer per round trip)."""

    def make_socket(addr_info: tuple[Any, ...]) -> socket.socket:
        family, kind, proto, _, _ = addr_info
        sock = socket.socket(family, kind, proto)
        if receive_buffer:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
        return sock

    keep_freed_memory()
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(socket_factory=make_socket),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout),
        auto_decompress=False,
        cookie_jar=aiohttp.DummyCookieJar(),
    )


class Hasher:
    """A `ContentHashes` fed in arrival order on a thread of its own, so that the hashes of
    one chunk are computed while the next arrives: pieces go over in batches of CHUNK_SIZE,
    at most HASH_BACKLOG batches behind, after which `update` waits (and TCP slows the
    sender). The hashes release the GIL; the leaves are hashed on the importer's pool."""

    def __init__(self, hashes: ContentHashes) -> None:
        self._hashes = hashes
        self._batch: list[bytes] = []
        self._batch_bytes = 0
        self._jobs: deque[asyncio.Future[None]] = deque()
        self._thread: ThreadPoolExecutor | None = None

    async def update(self, piece: bytes) -> None:
        self._batch.append(piece)
        self._batch_bytes += len(piece)
        if self._batch_bytes >= CHUNK_SIZE:
            await self._submit()

    async def _submit(self) -> None:
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        if self._thread is None:
            self._thread = ThreadPoolExecutor(1, thread_name_prefix="hfspider-file-hash")
        loop = asyncio.get_running_loop()
        self._jobs.append(loop.run_in_executor(self._thread, self._feed, batch))
        while len(self._jobs) > HASH_BACKLOG:
            await self._jobs.popleft()

    def _feed(self, batch: list[bytes]) -> None:
        for piece in batch:
            self._hashes.update(piece)

    async def finish(self) -> Computed:
        if self._thread is None:  # less than a chunk came: not worth a thread
            self._feed(self._batch)
            return self._hashes.finish()
        if self._batch:
            await self._submit()
        while self._jobs:
            await self._jobs.popleft()
        loop = asyncio.get_running_loop()
        computed = await loop.run_in_executor(self._thread, self._hashes.finish)
        self.close()
        return computed

    def close(self) -> None:
        """Stop (an abandoned attempt): batches not yet started are dropped."""
        if self._thread is not None:
            self._thread.shutdown(wait=False, cancel_futures=True)
            self._thread = None


class Partial:
    """The `.part` file of one target, its sidecar and the running hashes of its bytes."""

    def __init__(self, target: Target, params: ImportParams, sink: BlockSink) -> None:
        self.target = target
        self.params = params
        self.sink = sink
        self.validator: str | None = None
        self.total: int | None = None
        self.offset = 0
        self.received = 0  # bytes written from the network (not from an earlier run)
        self._hasher: Hasher | None = None
        self._fd: int | None = None

    @property
    def started(self) -> bool:
        return self._hasher is not None

    def load(self) -> None:
        """Take up the part an earlier attempt or run left, if its sidecar matches the target,
        hashing its bytes again; otherwise start clean. Runs in a worker thread."""
        self.close()
        self._hasher, self.offset = None, 0
        try:
            meta = json.loads(self.target.meta.read_text("utf-8"))
            size = self.target.part.stat().st_size
            validator, total = meta["validator"], meta["total"]
            usable = (
                meta["label"] == self.target.label
                and Expected(**meta["expected"]) == self.target.expected
                and total == self.target.expected.size
                and 0 < size <= total
            )
        except (OSError, ValueError, KeyError, TypeError):
            usable = False
        if not usable:
            self.discard()
            return
        self.validator, self.total = validator, total
        hashes = self._new_hashes()
        with open(self.target.part, "rb") as part:
            while self.offset < size:
                piece = part.read(min(CHUNK_SIZE, size - self.offset))
                if not piece:
                    break
                hashes.update(piece)
                self.offset += len(piece)
        self._hasher = Hasher(hashes)
        self._fd = os.open(self.target.part, os.O_WRONLY | os.O_APPEND)
        os.ftruncate(self._fd, self.offset)

    def start(self, total: int, validator: str | None) -> None:
        """Begin from byte zero: the sidecar first, then an empty part file."""
        self.close()
        self.validator, self.total = validator, total
        self.target.part.parent.mkdir(parents=True, exist_ok=True)
        meta = {
            "label": self.target.label,
            "validator": validator,
            "total": total,
            "expected": self.target.expected.to_json(),
        }
        scratch = self.target.meta.with_suffix(".tmp")
        scratch.write_text(json.dumps(meta), "utf-8")
        os.replace(scratch, self.target.meta)
        self._fd = os.open(self.target.part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        self._hasher = Hasher(self._new_hashes())
        self.offset = 0

    def _new_hashes(self) -> ContentHashes:
        git_size = self.total if self.target.expected.blob_id is not None else None
        return ContentHashes(self.params, self.sink, git_size)

    async def write(self, piece: bytes) -> None:
        """Into the part at once (a kill -9 after this loses nothing), then to the hashes."""
        assert self._fd is not None and self._hasher is not None
        view = memoryview(piece)
        while view:
            view = view[os.write(self._fd, view) :]
        self.offset += len(piece)
        self.received += len(piece)
        await self._hasher.update(piece)

    async def finish(self) -> Computed:
        assert self._hasher is not None
        computed = await self._hasher.finish()
        self.close()
        return computed

    def discard(self) -> None:
        """Forget the part: delete it and its sidecar."""
        self.close()
        self.target.part.unlink(missing_ok=True)
        self.target.meta.unlink(missing_ok=True)
        self._hasher, self.offset, self.validator, self.total = None, 0, None, None

    def commit(self) -> None:
        """The verified part becomes the file (an atomic rename)."""
        self.close()
        os.replace(self.target.part, self.target.dest)
        self.target.meta.unlink(missing_ok=True)

    def close(self) -> None:
        if self._hasher is not None:
            self._hasher.close()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


def hash_file(path: Path, expected: Expected, params: ImportParams, sink: BlockSink) -> Computed:
    """Hash a file already on disk exactly like a download would (reuse after a rerun)."""
    git_size = path.stat().st_size if expected.blob_id is not None else None
    hashes = ContentHashes(params, sink, git_size)
    with open(path, "rb") as source:
        while piece := source.read(CHUNK_SIZE):
            hashes.update(piece)
    return hashes.finish()


def land_body(body: bytes, target: Target, params: ImportParams, sink: BlockSink) -> Computed:
    """A body read elsewhere (the spider's card and config) verified, hashed and moved into
    place through the target's part file; VerificationError (nothing written) if it is not
    the file the Hub describes."""
    git_size = len(body) if target.expected.blob_id is not None else None
    hashes = ContentHashes(params, sink, git_size)
    hashes.update(body)
    computed = hashes.finish()
    check(target.expected, computed)
    target.part.parent.mkdir(parents=True, exist_ok=True)
    target.meta.unlink(missing_ok=True)  # whatever an earlier run left is superseded
    fd = os.open(target.part, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(body)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    os.replace(target.part, target.dest)
    return computed


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
        if not target.expected.known:
            raise FetchError("the Hub gave no size and hash to verify against; not fetched")
        partial = Partial(target, self.params, sink)
        mismatches = 0
        while True:
            await asyncio.to_thread(partial.load)
            try:
                computed = await self._transfer(target, partial)
                check(target.expected, computed)
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
        return await partial.finish()

    async def _attempt(self, url: str, target: Target, partial: Partial) -> str | None:
        """One request chain, redirects followed by hand. Returns None once the body is all
        in the part, or the URL to use instead (the resolve-cache shortcut was refused)."""
        linked_etag = None
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
                        location = answer.headers.get("Location")
                        if not location:
                            raise _RetryError(f"HTTP {status} without a Location")
                        url = urljoin(url, location)
                        if urlsplit(url).scheme not in ("http", "https"):
                            raise FetchError(f"redirect to a non-HTTP URL ({urlsplit(url).scheme})")
                        continue
                    if status in (200, 206):
                        validator = linked_etag or answer.headers.get("ETag")
                        await self._receive(answer, target, partial, validator)
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
        expected_size = target.expected.size
        if span.start == 0:
            if partial.offset:
                self._count("restarted")
                logger.info("File %r: the server sent the whole file; starting over", target.label)
            total = span.total if span.total is not None else expected_size
            if total != expected_size:
                raise VerificationError(
                    f"the server sends {total} bytes, the Hub says {expected_size}"
                )
            partial.start(total, validator)
        elif span.total != partial.total:
            partial.discard()
            raise _RetryError(f"the file is now {span.total} bytes, was {partial.total}; again")
        else:
            self._count("resumed")
        assert partial.total is not None
        body = answer.content
        while True:
            piece, end_of_http_chunk = await body.readchunk()  # as received: no copy, no join
            if not piece:
                if end_of_http_chunk:
                    continue
                break
            if partial.offset + len(piece) > partial.total:
                raise VerificationError(f"more than the {partial.total} bytes announced")
            await partial.write(piece)
        if partial.offset < partial.total:
            raise _RetryError(f"the body ended at byte {partial.offset} of {partial.total}")

"""Streaming UnixFS file importer: bytes in as they arrive, a Kubo-identical root CID out.

Memory is a few chunks (the one being filled and those being hashed) plus, per tree level,
the links of the node being filled (balanced) or of the open subtrees (trickle): independent
of the file size. Every block goes to the sink once, in file order, when it is complete; the
file is never read twice. The whole-file sha256 comes out of the same pass.
"""

from __future__ import annotations

import hashlib
import os
from collections import deque
from collections.abc import Callable, Generator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import BinaryIO, NamedTuple

from hfspider.ipfs.blockstore import BlockSink, DiscardSink
from hfspider.ipfs.cid import DAG_PB, RAW, BytesLike, cid_str, varint
from hfspider.ipfs.dagpb import encode_node
from hfspider.ipfs.nodes import Link, NodeMaker
from hfspider.ipfs.params import ImportParams
from hfspider.ipfs.unixfs import FILE, file_data, leaf_data_parts
from hfspider.ipfs.unixfs import RAW as UNIXFS_RAW

# boxo's trickle layout adds this many subtrees of each depth before going one level deeper.
TRICKLE_DEPTH_REPEAT = 4
# Leaves are hashed on worker threads in batches of about this many bytes: fewer hand-offs
# of the GIL between threads (each can wait for the 5 ms switch interval). A smaller last
# batch is hashed in place.
HASH_BATCH = 1 << 20
HASH_WORKERS = min(os.cpu_count() or 2, 4)
_POOL: ThreadPoolExecutor | None = None
Batch = list[tuple[BytesLike, int]]  # (leaf block, file bytes in it)


class ImportedFile(NamedTuple):
    """The result of importing one file: what a record and a directory need to know."""

    cid: str
    size: int
    tsize: int
    sha256: str | None

    @classmethod
    def from_link(cls, link: Link, sha256: str | None = None) -> ImportedFile:
        return cls(cid_str(link.cid), link.size, link.tsize, sha256)


class FileImporter:
    """Feed with `update(data)` as bytes arrive; `finish()` returns the file's CID.

    >>> importer = FileImporter(preset("unixfs-v1-2025"), sha256=True)
    >>> for piece in response_body: importer.update(piece)
    >>> imported = importer.finish()   # ImportedFile(cid, size, tsize, sha256)

    Chunks are hashed on worker threads (hashlib releases the GIL) while the caller goes on
    and the main thread hashes the whole file; at most `workers + 1` chunks wait in flight.
    Pieces passed as read-only buffers (bytes) are used in place; others are copied once.
    """

    def __init__(
        self, params: ImportParams, sink: BlockSink | None = None, *, sha256: bool = False
    ) -> None:
        self.params = params
        self._nodes = NodeMaker(params, DiscardSink() if sink is None else sink)
        self._chunk = params.chunk_size
        # Grown on demand: a small file (a record's metadata.json) never pays for a whole
        # zeroed chunk.
        self._buffer = bytearray()
        self._spare: list[bytearray] = []  # leaf buffers the sink is done with, for reuse
        self._fill = 0
        self._size = 0
        self._sha256 = hashlib.sha256() if sha256 else None
        self._finished = False
        self._batch: Batch = []
        self._batch_bytes = 0
        self._pending: deque[tuple[Future[list[bytes]] | list[bytes], Batch]] = deque()
        self._max_pending = HASH_WORKERS + 1
        self._codec = RAW if params.raw_leaves else DAG_PB
        # Kubo's balanced layout uses UnixFS File leaves, trickle uses Raw ones.
        self._leaf_kind = FILE if params.layout == "balanced" else UNIXFS_RAW
        self._layout: BalancedLayout | TrickleLayout
        if params.layout == "balanced":
            self._layout = BalancedLayout(params.max_links, self._nodes.file_node)
        else:
            self._layout = TrickleLayout(params.max_links, self._nodes.file_node)

    def update(self, data: BytesLike) -> None:
        if self._finished:
            raise RuntimeError("update() after finish()")
        view = memoryview(data).cast("B")
        size = len(view)
        self._size += size
        pos = 0
        chunk = self._chunk
        if self._fill:
            pos = min(chunk - self._fill, size)
            self._buffer[self._fill : self._fill + pos] = view[:pos]
            self._fill += pos
            if self._fill < chunk:
                return
            self._leaf(self._buffer)
            if self.params.raw_leaves:  # the buffer is the leaf now: take another
                self._buffer = self._spare.pop() if self._spare else bytearray(chunk)
            self._fill = 0
        while size - pos >= chunk:  # whole chunks straight from the caller's buffer
            piece = view[pos : pos + chunk]
            self._leaf(piece if view.readonly else bytes(piece))
            pos += chunk
        if pos < size:
            self._fill = size - pos
            self._buffer[: self._fill] = view[pos:]

    def finish(self) -> ImportedFile:
        if self._finished:
            raise RuntimeError("finish() called twice")
        self._finished = True
        if self._fill or (self._size == 0 and self.params.layout == "balanced"):
            self._leaf(memoryview(self._buffer)[: self._fill])  # empty file: one empty leaf
        if self._batch:
            self._submit(parallel=False)
        while self._pending:
            self._settle()
        root = self._layout.finish()
        sha256 = self._sha256.hexdigest() if self._sha256 is not None else None
        return ImportedFile.from_link(root, sha256)

    def _leaf(self, chunk: BytesLike) -> None:
        """Start hashing one chunk (the importer owns it from now on)."""
        size = len(chunk)
        if self.params.raw_leaves:
            block: BytesLike = chunk
        elif size:
            prefix, suffix = leaf_data_parts(size, self._leaf_kind)
            data_len = len(prefix) + size + len(suffix)
            block = b"".join((b"\x0a", varint(data_len), prefix, chunk, suffix))
        else:
            block = encode_node([], file_data(0, [], self._leaf_kind))
        self._batch.append((block, size))
        self._batch_bytes += len(block)
        if self._batch_bytes >= HASH_BATCH:
            self._submit(parallel=True)
        if self._sha256 is not None:  # on this thread, while the workers hash the leaves
            self._sha256.update(chunk)

    def _submit(self, parallel: bool) -> None:
        batch, self._batch, self._batch_bytes = self._batch, [], 0
        if parallel:
            self._pending.append((_hash_pool().submit(self._digests, batch), batch))
        else:
            self._pending.append((self._digests(batch), batch))
        while len(self._pending) > self._max_pending:
            self._settle()

    def _digests(self, batch: Batch) -> list[bytes]:
        return [self._nodes.digest(block) for block, _ in batch]

    def _settle(self) -> None:
        """Sink the oldest hashed batch and hand its leaves to the layout, in file order."""
        digests, batch = self._pending.popleft()
        if isinstance(digests, Future):
            digests = digests.result()
        for (block, size), digest in zip(batch, digests, strict=True):
            cid = self._nodes.store(block, digest, self._codec)
            self._layout.add(Link(cid, len(block), size))
            if type(block) is bytearray and len(block) == self._chunk:
                self._spare.append(block)  # one of ours, sunk: reuse it (no zeroing, no faults)


def _hash_pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(HASH_WORKERS, thread_name_prefix="hfspider-hash")
    return _POOL


class BalancedLayout:
    """boxo's balanced layout, built bottom-up as leaves arrive.

    Leaves fill nodes of `max_links`; full nodes fill the level above. Closing a full node at
    once is safe: in the balanced tree every node except the last of each level is full.
    """

    def __init__(self, max_links: int, make_node: Callable[[list[Link]], Link]) -> None:
        self._max = max_links
        self._make = make_node
        self._levels: list[list[Link]] = [[]]

    def add(self, leaf: Link) -> None:
        levels = self._levels
        levels[0].append(leaf)
        level = 0
        while len(levels[level]) == self._max:
            node = self._make(levels[level])
            levels[level] = []
            if level + 1 == len(levels):
                levels.append([])
            levels[level + 1].append(node)
            level += 1

    def finish(self) -> Link:
        levels = self._levels
        level = 0
        while True:
            top = level == len(levels) - 1
            if top and len(levels[level]) == 1:
                return levels[level][0]
            if levels[level]:
                if top:
                    levels.append([])
                levels[level + 1].append(self._make(levels[level]))
                levels[level] = []
            level += 1


class TrickleLayout:
    """boxo's trickle layout (`ipfs add --trickle`), as a coroutine fed one leaf at a time.

    The recursive builder needs to know whether more data follows before it opens a subtree,
    so it looks one leaf ahead: `add` sends a leaf in, `finish` sends the end (None).
    """

    def __init__(self, max_links: int, make_node: Callable[[list[Link]], Link]) -> None:
        self._max = max_links
        self._make = make_node
        self._next: Link | None = None
        self._builder = self._build()
        next(self._builder)

    def add(self, leaf: Link) -> None:
        self._builder.send(leaf)

    def finish(self) -> Link:
        try:
            self._builder.send(None)
        except StopIteration as done:
            return done.value
        raise RuntimeError("trickle builder did not finish")

    def _build(self) -> Generator[None, Link | None, Link]:
        self._next = yield
        return (yield from self._fill(-1))

    def _fill(self, max_depth: int) -> Generator[None, Link | None, Link]:
        children: list[Link] = []
        while len(children) < self._max and self._next is not None:
            children.append(self._next)
            self._next = yield
        depth = 1
        while (max_depth == -1 or depth < max_depth) and self._next is not None:
            for _ in range(TRICKLE_DEPTH_REPEAT):
                if self._next is None:
                    break
                children.append((yield from self._fill(depth)))
            depth += 1
        return self._make(children)


def import_stream(
    stream: BinaryIO,
    params: ImportParams,
    sink: BlockSink | None = None,
    *,
    sha256: bool = False,
) -> ImportedFile:
    """Import a readable binary stream one chunk-sized read at a time (no extra copy)."""
    importer = FileImporter(params, sink, sha256=sha256)
    while piece := stream.read(params.chunk_size):
        importer.update(piece)
    return importer.finish()


def import_bytes(data: bytes, params: ImportParams, sink: BlockSink | None = None) -> ImportedFile:
    importer = FileImporter(params, sink)
    importer.update(data)
    return importer.finish()

"""Where encoded blocks go: discarded (CIDs only), kept in memory, or spooled to a file, or
left in the very file they are a slice of.

The importer hands every block to a sink exactly once, as it is made; a sink that keeps a
block must copy it (the importer may pass a view of a buffer it reuses). CARs are written
from a Blockstore afterwards, in `ipfs dag export` order (see car.py). With raw leaves (CIDv1,
raw codec: profiles `kubo-v1` and `unixfs-v1-2025`) a leaf block IS bytes [offset, offset +
length) of the file: `RawLeaves` notes where instead of keeping them, and `FileBlockstore`
reads them back from the file when the CAR is written, checking each against its CID.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from hfspider.ipfs.cid import RAW, BytesLike, cid_str, varint, verify_block

SPOOL = -1
RAW_CID_PREFIX = b"\x01" + varint(RAW)  # CIDv1, raw codec: how every raw leaf's CID starts


class BlockSink(Protocol):
    def put(self, cid: bytes, block: BytesLike) -> None: ...


class Blockstore(BlockSink, Protocol):
    def get(self, cid: bytes) -> bytes: ...

    def __contains__(self, cid: object) -> bool: ...


class DiscardSink:
    """For `--only-hash`: the CID is all that is wanted."""

    def put(self, cid: bytes, block: BytesLike) -> None:
        pass


class MemoryBlockstore:
    """Small DAGs (directories, records, tests)."""

    def __init__(self) -> None:
        self._blocks: dict[bytes, bytes] = {}

    def put(self, cid: bytes, block: BytesLike) -> None:
        if cid not in self._blocks:
            self._blocks[cid] = bytes(block)

    def get(self, cid: bytes) -> bytes:
        return self._blocks[cid]

    def __contains__(self, cid: object) -> bool:
        return cid in self._blocks

    def __len__(self) -> int:
        return len(self._blocks)


class BlockstoreError(ValueError):
    """A block that cannot be read back as it was: its file changed, shrank or went away."""


class RawLeaves:
    """The sink of one file's import: raw leaves are noted as (cid, offset, length) in the file
    (the importer sinks them in file order), everything else goes on to `sink`.

    Once the file is verified and in its place, `FileBlockstore.add_file(path, leaves)` makes
    the noted leaves readable; the bytes themselves are never copied.
    """

    def __init__(self, sink: BlockSink) -> None:
        self.sink = sink
        self.leaves: list[tuple[bytes, int, int]] = []
        self._offset = 0

    def put(self, cid: bytes, block: BytesLike) -> None:
        if cid[:2] == RAW_CID_PREFIX:
            size = len(block)
            self.leaves.append((cid, self._offset, size))
            self._offset += size
        else:
            self.sink.put(cid, block)


class FileBlockstore:
    """Blocks appended to one spool file, plus raw leaves left in the files they come from;
    bounded RAM for any file size, and no second copy of a file's bytes.

    `put` spools a block (unbuffered `pwrite`: a buffered file object costs ~4x the CPU for
    MiB blocks). `add_file` indexes the raw leaves `RawLeaves` noted for a file; `get` reads
    such a leaf back with `pread` and re-hashes it, so a file changed on disk since it was
    imported is a BlockstoreError naming the file, never a wrong block in a CAR. Such a file
    must stay where it is until the CAR is written (the file cache keeps it: docs/files.md).
    The index costs about 100 bytes per block (a 10 GB file in 1 MiB chunks: ~1 MB).
    Thread-safe: the importer may sink from a worker thread while another file is read.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
        # cid -> (source, offset, length); source SPOOL is the spool, else a file's number
        self._index: dict[bytes, tuple[int, int, int]] = {}
        self._files: list[Path] = []
        self._readers: dict[int, int] = {}  # file number -> open descriptor
        self._end = 0
        self._lock = threading.Lock()

    def put(self, cid: bytes, block: BytesLike) -> None:
        with self._lock:
            if cid in self._index:
                return
            view = memoryview(block)
            offset = self._end
            while view:
                view = view[os.pwrite(self._fd, view, self._end) :]
            self._index[cid] = (SPOOL, offset, len(block))
            self._end += len(block)

    def add_file(
        self, path: str | os.PathLike[str], leaves: Iterable[tuple[bytes, int, int]]
    ) -> None:
        """Index the raw leaves of the file now at `path` (a block already here stays)."""
        with self._lock:
            number = len(self._files)
            self._files.append(Path(path))
            for cid, offset, length in leaves:
                self._index.setdefault(cid, (number, offset, length))

    def get(self, cid: bytes) -> bytes:
        with self._lock:
            source, offset, length = self._index[cid]
            if source == SPOOL:
                return _pread(self._fd, length, offset)
            path = self._files[source]
            try:
                fd = self._readers.get(source)
                if fd is None:
                    fd = self._readers[source] = os.open(path, os.O_RDONLY)
                block = _pread(fd, length, offset)
            except OSError as exc:
                raise BlockstoreError(f"{path} cannot be read back: {exc}") from None
        if len(block) != length or not verify_block(cid, block):
            raise BlockstoreError(
                f"{path} changed on disk since it was imported (bytes {offset}-"
                f"{offset + length - 1} are not block {cid_str(cid)})"
            )
        return block

    def __contains__(self, cid: object) -> bool:
        return cid in self._index

    def __len__(self) -> int:
        return len(self._index)

    def close(self) -> None:
        """Close and delete the spool file (it holds nothing a CAR does not)."""
        with self._lock:
            for fd in self._readers.values():
                os.close(fd)
            self._readers.clear()
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> FileBlockstore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _pread(fd: int, length: int, offset: int) -> bytes:
    """`length` bytes at `offset`, or fewer only at the end of the file."""
    block = os.pread(fd, length, offset)
    while len(block) < length:
        more = os.pread(fd, length - len(block), offset + len(block))
        if not more:
            break
        block += more
    return block

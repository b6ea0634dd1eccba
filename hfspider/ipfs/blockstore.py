"""Where encoded blocks go: discarded (CIDs only), kept in memory, or spooled to a file.

The importer hands every block to a sink exactly once, as it is made; a sink that keeps a
block must copy it (the importer may pass a view of a buffer it reuses). CARs are written
from a Blockstore afterwards, in `ipfs dag export` order (see car.py), without touching the
original file again.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO, Protocol

from hfspider.ipfs.cid import BytesLike


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


class FileBlockstore:
    """Blocks appended to one spool file, indexed in memory: bounded RAM for any file size.

    The index costs about 100 bytes per block (a 10 GB file in 1 MiB chunks: ~1 MB).
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._file: BinaryIO = open(self.path, "w+b")  # noqa: SIM115 - closed by close()
        self._index: dict[bytes, tuple[int, int]] = {}
        self._end = 0

    def put(self, cid: bytes, block: BytesLike) -> None:
        if cid in self._index:
            return
        self._file.seek(self._end)
        length = self._file.write(block)
        self._index[cid] = (self._end, length)
        self._end += length

    def get(self, cid: bytes) -> bytes:
        offset, length = self._index[cid]
        self._file.seek(offset)
        return self._file.read(length)

    def __contains__(self, cid: object) -> bool:
        return cid in self._index

    def __len__(self) -> int:
        return len(self._index)

    def close(self) -> None:
        """Close and delete the spool file (it holds nothing a CAR does not)."""
        self._file.close()
        self.path.unlink(missing_ok=True)

    def __enter__(self) -> FileBlockstore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

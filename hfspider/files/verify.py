"""What a downloaded file must be, the hashes that prove it, and how to read a file answer.

The Hub's own values are the reference: for an LFS file the sha256 and size of its LFS
pointer, for a regular file the git blob sha1 (`oid`, which covers size and content). A file
whose hashes cannot be compared with a Hub value is never accepted (a lite record has none,
and its files are not fetched at all).

All hashes come from one pass over the bytes as they arrive (`ContentHashes`): the sha256 and
the UnixFS CID from `hfspider.ipfs.FileImporter`, plus the git blob sha1 for regular files.
Raw leaves are not kept: `RawLeaves` notes where each lies in the file, so the IPFS stage
reads them back from the verified file itself (hfspider.ipfs.FileBlockstore.add_file).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hfspider.ipfs import BlockSink, FileImporter, ImportedFile, ImportParams, RawLeaves

_CONTENT_RANGE = re.compile(r"bytes ([0-9]+)-([0-9]+)/([0-9]+)")


class VerificationError(ValueError):
    """The bytes are not the file the Hub describes (or cannot be shown to be)."""


class RangeMismatchError(ValueError):
    """A 206 answer that does not continue the partial file: start over from zero."""


@dataclass(frozen=True)
class Expected:
    """The Hub's values for one file; sha256 for LFS files, blob_id for regular ones."""

    size: int | None = None
    sha256: str | None = None
    blob_id: str | None = None

    @classmethod
    def from_entry(cls, entry: Mapping[str, Any]) -> Expected:
        """From a record's `files[]` entry (`lfs` None: no blob data, hashes unknown)."""
        if entry.get("lfs") is True:
            return cls(entry.get("size_bytes"), sha256=entry.get("sha256"))
        if entry.get("lfs") is False:
            return cls(entry.get("size_bytes"), blob_id=entry.get("blob_id"))
        return cls(entry.get("size_bytes"))

    @property
    def known(self) -> bool:
        """Whether there is something to verify against: a size and a Hub hash."""
        return self.size is not None and (self.sha256 is not None or self.blob_id is not None)

    def to_json(self) -> dict[str, Any]:
        return {"size": self.size, "sha256": self.sha256, "blob_id": self.blob_id}


@dataclass(frozen=True)
class Computed:
    """What one pass over the bytes gave."""

    size: int
    sha256: str
    blob_id: str | None
    imported: ImportedFile
    leaves: list[tuple[bytes, int, int]]  # raw leaves: (cid, offset, length) in the file


def check(expected: Expected, computed: Computed) -> None:
    """VerificationError unless `computed` matches every value the Hub gave."""
    if not expected.known:
        raise VerificationError("the Hub gave no size and hash to verify against")
    if computed.size != expected.size:
        raise VerificationError(f"size {computed.size}, the Hub says {expected.size}")
    if expected.sha256 is not None and computed.sha256 != expected.sha256:
        raise VerificationError(f"sha256 {computed.sha256}, the Hub says {expected.sha256}")
    if expected.blob_id is not None and computed.blob_id != expected.blob_id:
        raise VerificationError(
            f"git blob sha1 {computed.blob_id}, the Hub says {expected.blob_id}"
        )


class ContentHashes:
    """sha256, CID and, with `git_size`, the git blob sha1, in one pass. The CID's blocks go
    to `sink` but for raw leaves, which are noted (`Computed.leaves`) instead of copied.

    The git blob id hashes a `blob <size>\\0` header first, so the size must be known before
    the first byte (it is: from the Hub's metadata). Not thread-safe: one caller at a time."""

    def __init__(self, params: ImportParams, sink: BlockSink, git_size: int | None) -> None:
        self._leaves = RawLeaves(sink)
        self._importer = FileImporter(params, self._leaves, sha256=True)
        self._sha1 = hashlib.sha1(b"blob %d\0" % git_size) if git_size is not None else None
        self.size = 0

    def update(self, data: bytes) -> None:
        self._importer.update(data)
        if self._sha1 is not None:
            self._sha1.update(data)
        self.size += len(data)

    def finish(self) -> Computed:
        imported = self._importer.finish()
        assert imported.sha256 is not None  # the importer was asked for it
        blob_id = self._sha1.hexdigest() if self._sha1 is not None else None
        return Computed(self.size, imported.sha256, blob_id, imported, self._leaves.leaves)


@dataclass(frozen=True)
class Span:
    """Where an answer's body sits in the file: first byte, and the file's size if known."""

    start: int
    total: int | None


def body_span(status: int, headers: Mapping[str, str], offset: int) -> Span:
    """Read a 200 or 206 answer to a request for bytes `offset`- (no Range when 0).

    A 200 is the whole file, whatever was asked: a server may ignore Range, and then the
    partial file starts over from this body. A 206 must start exactly at `offset` and run to
    the end of the file, else RangeMismatchError.
    """
    if status == 200:
        length = headers.get("Content-Length")
        return Span(0, int(length) if length and length.isdigit() else None)
    if status != 206:
        raise ValueError(f"not a file body: HTTP {status}")
    match = _CONTENT_RANGE.fullmatch((headers.get("Content-Range") or "").strip())
    if match is None:
        raise RangeMismatchError(
            f"206 without a usable Content-Range: {headers.get('Content-Range')!r}"
        )
    first, last, total = (int(value) for value in match.groups())
    if first != offset or last != total - 1:
        raise RangeMismatchError(f"asked for bytes {offset}-, got {first}-{last}/{total}")
    return Span(first, total)

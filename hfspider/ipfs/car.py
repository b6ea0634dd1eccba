"""CARv1 files laid out exactly as `ipfs dag export` writes them, and a verifying reader.

Layout: varint-prefixed DAG-CBOR header `{roots, version: 1}`, then one section per block,
`varint(len(cid) + len(block)) cid block`, in depth-first pre-order from each root following
link order, each CID once.
"""

from __future__ import annotations

import os
from collections.abc import Container, Iterator, Mapping
from pathlib import Path
from typing import BinaryIO, NamedTuple

from hfspider.ipfs import dagcbor
from hfspider.ipfs.blockstore import Blockstore
from hfspider.ipfs.cid import DAG_CBOR, DAG_PB, cid_parts, cid_str, read_varint, varint
from hfspider.ipfs.cid import verify_block as block_matches
from hfspider.ipfs.dagpb import decode_node

# A section longer than this is not a block Kubo would accept (2 MiB) plus its CID.
MAX_SECTION = 2 * 1024 * 1024 + 128
MAX_HEADER = 64 * 1024


class CarError(ValueError):
    """A CAR that is truncated, malformed, or holds a block that does not match its CID."""


class CarSummary(NamedTuple):
    roots: list[bytes]
    blocks: int
    bytes: int


def header(roots: list[bytes]) -> bytes:
    body = dagcbor.encode({"roots": [dagcbor.CidLink(root) for root in roots], "version": 1})
    return varint(len(body)) + body


def block_links(cid: bytes, block: bytes) -> list[bytes]:
    """The CIDs a block links to, in the order `dag export` follows them."""
    codec = cid_parts(cid)[1]
    if codec == DAG_PB:
        return [link.cid for link in decode_node(block)[0]]
    if codec == DAG_CBOR:
        return dagcbor.links(dagcbor.decode(block))
    return []


def export_car(
    out: BinaryIO,
    roots: list[bytes],
    store: Blockstore,
    *,
    stop_at: Container[bytes] = frozenset(),
    links: Mapping[bytes, list[bytes]] | None = None,
) -> CarSummary:
    """Write the DAGs under `roots` from `store`; CIDs in `stop_at` are neither written nor
    descended into (their blocks live in another CAR, e.g. models under the crawl root).
    `links` gives the links of blocks the caller has just encoded (not decoded again)."""
    known = links or {}
    out.write(header(roots))
    seen: set[bytes] = set()
    count = size = 0
    for root in roots:
        stack = [root]
        while stack:
            cid = stack.pop()
            if cid in seen or cid in stop_at:
                continue
            seen.add(cid)
            if cid not in store:
                raise CarError(f"block {cid_str(cid)} is missing from the blockstore")
            block = store.get(cid)
            out.write(varint(len(cid) + len(block)))
            out.write(cid)
            out.write(block)
            count, size = count + 1, size + len(block)
            linked = known.get(cid)
            stack.extend(reversed(block_links(cid, block) if linked is None else linked))
    return CarSummary(list(roots), count, size)


def write_car_file(
    path: str | os.PathLike[str],
    roots: list[bytes],
    store: Blockstore,
    *,
    stop_at: Container[bytes] = frozenset(),
    links: Mapping[bytes, list[bytes]] | None = None,
) -> CarSummary:
    """`export_car` to `path` atomically: a crash leaves the old file or none, never half;
    an error (a missing or unreadable block) leaves no partial file either."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".part")
    try:
        with open(partial, "wb") as out:
            summary = export_car(out, roots, store, stop_at=stop_at, links=links)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    os.replace(partial, path)
    return summary


def _read_exact(stream: BinaryIO, size: int, what: str) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise CarError(f"CAR truncated in {what}")
    return data


def _read_varint(stream: BinaryIO) -> int | None:
    raw = bytearray()
    while True:
        byte = stream.read(1)
        if not byte:
            if raw:
                raise CarError("CAR truncated in a section length")
            return None
        raw += byte
        if byte[0] < 0x80:
            return read_varint(raw, 0)[0]
        if len(raw) > 9:
            raise CarError("CAR section length is not a valid varint")


def read_car(stream: BinaryIO) -> tuple[list[bytes], Iterator[tuple[bytes, bytes]]]:
    """(roots, iterator of (cid, block)) of a CARv1 stream; structure errors raise CarError.

    Blocks are not re-hashed here; `verify_car` does that.
    """
    length = _read_varint(stream)
    if length is None or not 0 < length <= MAX_HEADER:
        raise CarError("not a CARv1 file (bad header length)")
    try:
        head = dagcbor.decode(_read_exact(stream, length, "the header"))
    except ValueError as exc:
        raise CarError(f"CAR header is not DAG-CBOR: {exc}") from None
    if not isinstance(head, dict) or head.get("version") != 1:
        raise CarError("not a CARv1 file (header version is not 1)")
    roots = head.get("roots")
    if not isinstance(roots, list) or not all(isinstance(r, dagcbor.CidLink) for r in roots):
        raise CarError("CAR header roots are not a list of CIDs")

    def sections() -> Iterator[tuple[bytes, bytes]]:
        while (size := _read_varint(stream)) is not None:
            if not 0 < size <= MAX_SECTION:
                raise CarError(f"CAR section of {size} bytes is out of range")
            section = _read_exact(stream, size, "a block")
            cid_len = _cid_length(section)
            yield section[:cid_len], section[cid_len:]

    return [root.cid for root in roots], sections()


def _cid_length(section: bytes) -> int:
    try:
        if section[:2] == b"\x12\x20":
            return 34
        pos = 0
        for _ in range(3):  # version, codec, multihash code
            pos = read_varint(section, pos)[1]
        digest_len, pos = read_varint(section, pos)
    except ValueError as exc:
        raise CarError(f"CAR section does not start with a CID: {exc}") from None
    if pos + digest_len > len(section):
        raise CarError("CAR section shorter than its CID")
    return pos + digest_len


def verify_car(stream: BinaryIO) -> CarSummary:
    """Re-hash every block, as `ipfs dag import` does; CarError names the first bad one."""
    roots, sections = read_car(stream)
    count = size = 0
    for cid, block in sections:
        try:
            good = block_matches(cid, block)
        except ValueError as exc:
            raise CarError(f"block {count}: {exc}") from None
        if not good:
            raise CarError(f"block {count} does not match its CID {cid_str(cid)}")
        count, size = count + 1, size + len(block)
    return CarSummary(roots, count, size)

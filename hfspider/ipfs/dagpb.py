"""dag-pb blocks exactly as Kubo writes them (and a reader for walking them).

Kubo's encoder puts Links (field 2) before Data (field 1) and always writes a link's Name,
even when empty, and its Tsize; changing either changes every CID above a single chunk.
"""

from __future__ import annotations

from typing import NamedTuple

from hfspider.ipfs.cid import BytesLike, read_varint, varint


class PBLink(NamedTuple):
    cid: bytes
    name: bytes
    tsize: int


def encode_link(cid: bytes, name: bytes, tsize: int) -> bytes:
    body = b"\x0a" + varint(len(cid)) + cid + b"\x12" + varint(len(name)) + name
    body += b"\x18" + varint(tsize)
    return b"\x12" + varint(len(body)) + body


def encode_node(links: list[bytes], data: bytes) -> bytes:
    """A PBNode from already encoded links (see `encode_link`) and the UnixFS Data bytes."""
    return b"".join(links) + b"\x0a" + varint(len(data)) + data


def _fields(block: BytesLike) -> list[tuple[int, int | memoryview]]:
    """(field number, value) of a protobuf message: varints as int, bytes as memoryview."""
    view = memoryview(block)
    fields: list[tuple[int, int | memoryview]] = []
    pos = 0
    while pos < len(view):
        key, pos = read_varint(view, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, pos = read_varint(view, pos)
            fields.append((number, value))
        elif wire == 2:
            length, pos = read_varint(view, pos)
            if pos + length > len(view):
                raise ValueError("dag-pb field runs past the end of the block")
            fields.append((number, view[pos : pos + length]))
            pos += length
        else:
            raise ValueError(f"unexpected protobuf wire type {wire} in a dag-pb block")
    return fields


def _decode_link(message: memoryview) -> PBLink:
    cid, name, tsize = b"", b"", 0
    for number, value in _fields(message):
        if number == 1 and isinstance(value, memoryview):
            cid = bytes(value)
        elif number == 2 and isinstance(value, memoryview):
            name = bytes(value)
        elif number == 3 and isinstance(value, int):
            tsize = value
        else:
            raise ValueError(f"unexpected field {number} in a dag-pb link")
    if not cid:
        raise ValueError("dag-pb link without a CID")
    return PBLink(cid, name, tsize)


def decode_node(block: BytesLike) -> tuple[list[PBLink], bytes | None]:
    """(links, data) of a dag-pb block; ValueError when it is not valid dag-pb."""
    links: list[PBLink] = []
    data: bytes | None = None
    for number, value in _fields(block):
        if number == 2 and isinstance(value, memoryview):
            links.append(_decode_link(value))
        elif number == 1 and isinstance(value, memoryview):
            data = bytes(value)
        else:
            raise ValueError(f"unexpected field {number} in a dag-pb block")
    return links, data

"""UnixFS `Data` messages (the payload of every dag-pb node `ipfs add` makes).

Fields in number order, blocksizes unpacked (one `20 xx` per entry), absent fields omitted:
the exact bytes Kubo writes, since any difference changes the CID.
"""

from __future__ import annotations

from collections.abc import Sequence

from hfspider.ipfs.cid import varint

RAW, DIRECTORY, FILE, METADATA, SYMLINK, HAMT_SHARD = range(6)
MURMUR3_X64_64 = 0x22

DIRECTORY_DATA = b"\x08\x01"


def file_data(filesize: int, blocksizes: Sequence[int] = (), kind: int = FILE) -> bytes:
    """An internal file node (or an empty file): type, filesize, then one blocksize per child."""
    return (
        b"\x08"
        + varint(kind)
        + b"\x18"
        + varint(filesize)
        + b"".join(b"\x20" + varint(size) for size in blocksizes)
    )


def leaf_data_parts(size: int, kind: int = FILE) -> tuple[bytes, bytes]:
    """(prefix, suffix) around a chunk of `size` > 0 bytes in a dag-pb leaf's Data message."""
    return b"\x08" + varint(kind) + b"\x12" + varint(size), b"\x18" + varint(size)


def symlink_data(target: bytes) -> bytes:
    return b"\x08" + varint(SYMLINK) + b"\x12" + varint(len(target)) + target


def hamt_data(bitfield: bytes, fanout: int) -> bytes:
    return (
        b"\x08"
        + varint(HAMT_SHARD)
        + b"\x12"
        + varint(len(bitfield))
        + bitfield
        + b"\x28"
        + varint(MURMUR3_X64_64)
        + b"\x30"
        + varint(fanout)
    )

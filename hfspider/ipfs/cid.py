"""CIDs as bytes: multihash, CIDv0/v1, varints, and the string forms `ipfs add` prints.

Encoding works on raw CID bytes (hashable, cheap, exactly what dag-pb links and CAR sections
hold); `multiformats` parses and prints them at the edges, where its per-call cost does not
matter.
"""

from __future__ import annotations

import hashlib

from multiformats import CID, multibase

# Anything hashlib and memoryview accept without copying.
BytesLike = bytes | bytearray | memoryview

DAG_PB = 0x70
RAW = 0x55
DAG_CBOR = 0x71

# multihash code -> (hashlib name, digest length)
HASHES: dict[str, tuple[int, str, int]] = {
    "sha2-256": (0x12, "sha256", 32),
    "sha2-512": (0x13, "sha512", 64),
}
CODE_TO_HASH = {code: name for name, (code, _, _) in HASHES.items()}


def varint(value: int) -> bytes:
    """Unsigned LEB128, as used by multiformats, protobuf and CAR."""
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def read_varint(data: BytesLike, pos: int) -> tuple[int, int]:
    """Decode the varint at `pos`; returns (value, position after it)."""
    view = memoryview(data)
    value = shift = 0
    while True:
        if pos >= len(view):
            raise ValueError("truncated varint")
        byte = view[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 9 bytes")


def multihash(digest: bytes, hash_name: str = "sha2-256") -> bytes:
    code, _, length = HASHES[hash_name]
    return varint(code) + varint(length) + digest


def make_cid(version: int, codec: int, digest: bytes, hash_name: str = "sha2-256") -> bytes:
    """CID bytes for a digest: CIDv0 is the bare sha2-256 multihash of a dag-pb block."""
    if version == 0:
        if codec != DAG_PB or hash_name != "sha2-256":
            raise ValueError("CIDv0 only exists for dag-pb blocks hashed with sha2-256")
        return b"\x12\x20" + digest
    return b"\x01" + varint(codec) + multihash(digest, hash_name)


def block_cid(block: BytesLike, version: int, codec: int, hash_name: str = "sha2-256") -> bytes:
    return make_cid(version, codec, hashlib.new(HASHES[hash_name][1], block).digest(), hash_name)


def cid_parts(cid: bytes) -> tuple[int, int, int, bytes]:
    """(version, codec, multihash code, digest) of CID bytes."""
    if cid[:2] == b"\x12\x20" and len(cid) == 34:
        return 0, DAG_PB, 0x12, cid[2:]
    version, pos = read_varint(cid, 0)
    if version != 1:
        raise ValueError(f"unsupported CID version {version}")
    codec, pos = read_varint(cid, pos)
    code, pos = read_varint(cid, pos)
    length, pos = read_varint(cid, pos)
    if len(cid) - pos != length:
        raise ValueError("CID digest length does not match its multihash")
    return 1, codec, code, cid[pos:]


def verify_block(cid: bytes, block: BytesLike) -> bool:
    """Whether `block` hashes to `cid` (the check `ipfs dag import` makes on every block)."""
    _, _, code, digest = cid_parts(cid)
    if code not in CODE_TO_HASH:
        raise ValueError(f"unsupported multihash code 0x{code:x}")
    return hashlib.new(HASHES[CODE_TO_HASH[code]][1], block).digest() == digest


def cid_str(cid: bytes) -> str:
    """The text form Kubo prints: base58btc for CIDv0 (`Qm...`), base32 for CIDv1 (`b...`)."""
    if cid[:1] == b"\x12":
        return multibase.encode(cid, "base58btc")[1:]
    return multibase.encode(cid, "base32")


def cid_bytes(text: str) -> bytes:
    """Parse a CID string in any multibase (or a bare CIDv0); ValueError when it is not one."""
    try:
        return bytes(CID.decode(text))
    except Exception as exc:  # multiformats raises several unrelated types
        raise ValueError(f"not a CID: {text!r} ({exc})") from None


def sha256_cid(sha256_hex: str) -> str:
    """Zero-download content id: CIDv1, raw codec, over a sha256 the Hub already published.

    It equals the `ipfs add --cid-version=1` CID only for files of one chunk or less.
    """
    digest = bytes.fromhex(sha256_hex)
    if len(digest) != 32:
        raise ValueError(f"not a sha256 hex digest: {sha256_hex!r}")
    return cid_str(make_cid(1, RAW, digest))

"""CIDs as bytes: multihash, CIDv0/v1, varints, and the string forms `ipfs add` prints.

Encoding works on raw CID bytes (hashable, cheap, exactly what dag-pb links and CAR sections
hold). The two text forms Kubo prints (base32 CIDv1, base58btc CIDv0) are written and read
here with the standard library: `multiformats` costs ~0.3 ms a call (runtime type checks),
several times per model in a crawl. Any other form is parsed by `multiformats`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib

from multiformats import CID

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


BASE58_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_BASE58_INDEX = {char: value for value, char in enumerate(BASE58_ALPHABET)}
_BASE32_CHARS = frozenset("abcdefghijklmnopqrstuvwxyz234567")


def _base58(data: bytes) -> str:
    number = int.from_bytes(data, "big")
    out = []
    while number:
        number, digit = divmod(number, 58)
        out.append(BASE58_ALPHABET[digit])
    zeros = len(data) - len(data.lstrip(b"\0"))
    return "1" * zeros + "".join(reversed(out))


def _unbase58(text: str) -> bytes:
    number = 0
    for char in text:
        number = number * 58 + _BASE58_INDEX[char]  # KeyError: not base58btc
    zeros = len(text) - len(text.lstrip("1"))
    return b"\0" * zeros + number.to_bytes((number.bit_length() + 7) // 8, "big")


def cid_str(cid: bytes) -> str:
    """The text form Kubo prints: base58btc for CIDv0 (`Qm...`), base32 for CIDv1 (`b...`)."""
    if cid[:1] == b"\x12":
        return _base58(bytes(cid))
    return "b" + base64.b32encode(cid).decode("ascii").rstrip("=").lower()


def cid_bytes(text: str) -> bytes:
    """Parse a CID string in any multibase (or a bare CIDv0); ValueError when it is not one."""
    fast = _known_cid_bytes(text)
    if fast is not None:
        return fast
    try:
        return bytes(CID.decode(text))
    except Exception as exc:  # multiformats raises several unrelated types
        raise ValueError(f"not a CID: {text!r} ({exc})") from None


def _known_cid_bytes(text: str) -> bytes | None:
    """The CID bytes of a base32 CIDv1 or base58btc CIDv0 with a codec and hash this package
    writes; None for anything else (multiformats then decides, with its own errors)."""
    try:
        if len(text) == 46 and text.startswith("Qm"):
            cid = _unbase58(text)
            return cid if len(cid) == 34 and cid[:2] == b"\x12\x20" else None
        if text[:1] != "b" or not _BASE32_CHARS.issuperset(text[1:]):
            return None
        body = text[1:].upper()
        cid = base64.b32decode(body + "=" * (-len(body) % 8))
        if cid[:1] != b"\x01" or cid_str(cid) != text:  # non-canonical padding bits
            return None
        version, codec, code, digest = cid_parts(cid)
    except (KeyError, ValueError, binascii.Error):
        return None
    known = codec in (DAG_PB, RAW, DAG_CBOR) and code in CODE_TO_HASH
    return cid if known and len(digest) == HASHES[CODE_TO_HASH[code]][2] else None


def sha256_cid(sha256_hex: str) -> str:
    """Zero-download content id: CIDv1, raw codec, over a sha256 the Hub already published.

    It equals the `ipfs add --cid-version=1` CID only for files of one chunk or less.
    """
    digest = bytes.fromhex(sha256_hex)
    if len(digest) != 32:
        raise ValueError(f"not a sha256 hex digest: {sha256_hex!r}")
    return cid_str(make_cid(1, RAW, digest))

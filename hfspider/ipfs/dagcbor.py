"""DAG-CBOR, the strict CBOR subset IPLD hashes: the record block and the CAR header.

Strictness is what makes the CID reproducible: shortest integer and length forms, map keys
sorted by length then bytes, floats always 64-bit, no NaN or infinities, links as tag 42.
Written here (about a hundred lines) because the PyPI `dag-cbor` package has not been
released since 2023 and we also need the exact bytes of Kubo's CAR header.
"""

from __future__ import annotations

import math
import struct
from collections.abc import Mapping
from typing import Any, NamedTuple

from hfspider.ipfs.cid import cid_str

CID_TAG = 42


class CidLink(NamedTuple):
    """An IPLD link inside DAG-CBOR data (CID bytes)."""

    cid: bytes

    def __str__(self) -> str:
        return cid_str(self.cid)


def _head(major: int, value: int) -> bytes:
    if value < 24:
        return bytes([major << 5 | value])
    for info, size in ((24, 1), (25, 2), (26, 4), (27, 8)):
        if value < 1 << (8 * size):
            return bytes([major << 5 | info]) + value.to_bytes(size, "big")
    raise ValueError(f"integer {value} does not fit in 64 bits")


def encode(value: Any) -> bytes:
    """Encode plain data (dict/list/str/bytes/int/float/bool/None/CidLink) as DAG-CBOR."""
    out: list[bytes] = []
    try:
        _encode_fast(value, out)
    except (ValueError, TypeError, OverflowError, RecursionError):
        out = []
        _encode(value, out, "$")  # the same bytes, or the error with the value's path
    return b"".join(out)


# Heads of small lengths and of common map keys: a record repeats the same few dozen keys.
_SMALL_HEADS = [[bytes([major << 5 | value]) for value in range(24)] for major in range(8)]
_KEYS: dict[str, tuple[tuple[int, bytes], bytes]] = {}
_KEYS_MAX = 4096


def _key(key: str) -> tuple[tuple[int, bytes], bytes]:
    """(sort key, encoded key) of a map key; TypeError if it is not a string."""
    known = _KEYS.get(key)
    if known is not None:
        return known
    if type(key) is not str:
        raise TypeError("map key is not a string")
    raw = key.encode("utf-8")
    known = ((len(raw), raw), _head(3, len(raw)) + raw)
    if len(_KEYS) < _KEYS_MAX:
        _KEYS[key] = known
    return known


def _encode_fast(value: Any, out: list[bytes]) -> None:
    """`_encode` for the plain types a record holds (exact types only: anything else raises
    and `encode` starts again with `_encode`, which knows every case and names the path)."""
    kind = type(value)
    if kind is str:
        raw = value.encode("utf-8")
        size = len(raw)
        out.append(_SMALL_HEADS[3][size] if size < 24 else _head(3, size))
        out.append(raw)
    elif kind is dict:
        size = len(value)
        out.append(_SMALL_HEADS[5][size] if size < 24 else _head(5, size))
        keys = sorted((_key(key), key) for key in value)
        for (_, encoded), key in keys:
            out.append(encoded)
            _encode_fast(value[key], out)
    elif kind is list:
        size = len(value)
        out.append(_SMALL_HEADS[4][size] if size < 24 else _head(4, size))
        for item in value:
            _encode_fast(item, out)
    elif value is None:
        out.append(b"\xf6")
    elif value is True:
        out.append(b"\xf5")
    elif value is False:
        out.append(b"\xf4")
    elif kind is int:
        if 0 <= value < 24:
            out.append(_SMALL_HEADS[0][value])
        else:
            out.append(_head(0, value) if value >= 0 else _head(1, -1 - value))
    elif kind is float and math.isfinite(value):
        out.append(b"\xfb" + struct.pack(">d", value))
    else:
        raise TypeError("not a plain type: the general encoder takes it")


def _encode(value: Any, out: list[bytes], path: str) -> None:
    if value is None:
        out.append(b"\xf6")
    elif value is True:
        out.append(b"\xf5")
    elif value is False:
        out.append(b"\xf4")
    elif isinstance(value, CidLink):
        payload = b"\x00" + value.cid
        out += (b"\xd8\x2a", _head(2, len(payload)), payload)
    elif isinstance(value, int):
        out.append(_head(0, value) if value >= 0 else _head(1, -1 - value))
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"DAG-CBOR cannot hold {value} (at {path})")
        out.append(b"\xfb" + struct.pack(">d", value))
    elif isinstance(value, str):
        raw = value.encode("utf-8")
        out += (_head(3, len(raw)), raw)
    elif isinstance(value, bytes | bytearray | memoryview):
        out += (_head(2, len(value)), bytes(value))
    elif isinstance(value, list | tuple):
        out.append(_head(4, len(value)))
        for index, item in enumerate(value):
            _encode(item, out, f"{path}[{index}]")
    elif isinstance(value, Mapping):
        keys = []
        for key in value:
            if not isinstance(key, str):
                raise ValueError(f"DAG-CBOR map keys must be strings, not {key!r} (at {path})")
            keys.append((len(key.encode("utf-8")), key.encode("utf-8"), key))
        out.append(_head(5, len(keys)))
        for _, raw, key in sorted(keys):
            out += (_head(3, len(raw)), raw)
            _encode(value[key], out, f"{path}.{key}")
    else:
        raise ValueError(f"DAG-CBOR cannot hold a {type(value).__name__} (at {path})")


def decode(data: bytes) -> Any:
    """Decode one DAG-CBOR value (the subset `encode` writes); ValueError on anything else."""
    value, pos = _decode(memoryview(data), 0)
    if pos != len(data):
        raise ValueError("trailing bytes after the DAG-CBOR value")
    return value


def _decode(view: memoryview, pos: int) -> tuple[Any, int]:
    if pos >= len(view):
        raise ValueError("truncated DAG-CBOR")
    major, info = view[pos] >> 5, view[pos] & 31
    pos += 1
    if major == 7:
        simple = {20: False, 21: True, 22: None}
        if info in simple:
            return simple[info], pos
        if info == 27:
            return struct.unpack(">d", view[pos : pos + 8])[0], pos + 8
        raise ValueError(f"unsupported DAG-CBOR simple value {info}")
    if info < 24:
        arg = info
    elif info <= 27:
        size = 1 << (info - 24)
        arg = int.from_bytes(view[pos : pos + size], "big")
        pos += size
    else:
        raise ValueError("indefinite lengths are not DAG-CBOR")
    if major == 0:
        return arg, pos
    if major == 1:
        return -1 - arg, pos
    if major in (2, 3):
        raw = bytes(view[pos : pos + arg])
        if len(raw) != arg:
            raise ValueError("truncated DAG-CBOR string")
        return (raw if major == 2 else raw.decode("utf-8")), pos + arg
    if major == 4:
        items = []
        for _ in range(arg):
            item, pos = _decode(view, pos)
            items.append(item)
        return items, pos
    if major == 5:
        result = {}
        for _ in range(arg):
            key, pos = _decode(view, pos)
            result[key], pos = _decode(view, pos)
        return result, pos
    if major == 6 and arg == CID_TAG:
        payload, pos = _decode(view, pos)
        if not isinstance(payload, bytes) or payload[:1] != b"\x00":
            raise ValueError("malformed CID link in DAG-CBOR")
        return CidLink(payload[1:]), pos
    raise ValueError(f"unsupported DAG-CBOR major type {major} (tag {arg})")


def links(value: Any) -> list[bytes]:
    """CIDs linked from decoded DAG-CBOR data, in encoding order (the `dag export` walk)."""
    if isinstance(value, CidLink):
        return [value.cid]
    if isinstance(value, list):
        return [cid for item in value for cid in links(item)]
    if isinstance(value, dict):
        ordered = sorted(value, key=lambda k: (len(k.encode("utf-8")), k.encode("utf-8")))
        return [cid for key in ordered for cid in links(value[key])]
    return []

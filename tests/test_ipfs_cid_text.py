"""CID text forms written and read without `multiformats` agree with it exactly, and what
the fast path does not know still goes through it (same results, same errors)."""

from __future__ import annotations

import random

import pytest
from multiformats import CID, multibase

from hfspider.ipfs.cid import DAG_CBOR, DAG_PB, RAW, cid_bytes, cid_str, make_cid


def _digests() -> list[bytes]:
    rng = random.Random(7)
    return [b"\0" * 32, b"\xff" * 32, b"\0\0\1" + b"\0" * 29] + [
        rng.randbytes(32) for _ in range(200)
    ]


@pytest.mark.parametrize("version,codec", [(0, DAG_PB), (1, DAG_PB), (1, RAW), (1, DAG_CBOR)])
def test_text_forms_match_multiformats(version: int, codec: int) -> None:
    for digest in _digests():
        cid = make_cid(version, codec, digest)
        text = (
            multibase.encode(cid, "base58btc")[1:]
            if version == 0
            else multibase.encode(cid, "base32")
        )
        assert cid_str(cid) == text
        assert cid_bytes(text) == cid == bytes(CID.decode(text))


def test_other_multibases_and_hashes_still_parse() -> None:
    cid = make_cid(1, RAW, bytes(range(32)))
    for base in ("base58btc", "base32upper", "base36"):
        assert cid_bytes(multibase.encode(cid, base)) == cid
    sha512 = make_cid(1, RAW, bytes(64), "sha2-512")
    assert cid_bytes(cid_str(sha512)) == sha512


@pytest.mark.parametrize(
    "text", ["", "b", "bafy", "Qm" + "0" * 44, "bAFYBEI", "not a cid", "b" + "a" * 57 + "1"]
)
def test_malformed_text_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError):
        cid_bytes(text)

"""DAG-CBOR encoding: RFC 8949 Appendix A examples and the DAG-CBOR strictness rules."""

from __future__ import annotations

import math

import pytest

from hfspider.ipfs import dagcbor
from hfspider.ipfs.dagcbor import CidLink

# (value, hex) from RFC 8949 Appendix A (those valid in DAG-CBOR).
RFC_EXAMPLES = [
    (0, "00"),
    (23, "17"),
    (24, "1818"),
    (100, "1864"),
    (1000, "1903e8"),
    (1000000, "1a000f4240"),
    (1000000000000, "1b000000e8d4a51000"),
    (18446744073709551615, "1bffffffffffffffff"),
    (-1, "20"),
    (-1000, "3903e7"),
    (-18446744073709551616, "3bffffffffffffffff"),
    (1.1, "fb3ff199999999999a"),
    (-4.1, "fbc010666666666666"),
    (1.0e300, "fb7e37e43c8800759c"),
    (False, "f4"),
    (True, "f5"),
    (None, "f6"),
    (b"", "40"),
    (b"\x01\x02\x03\x04", "4401020304"),
    ("", "60"),
    ("a", "6161"),
    ("IETF", "6449455446"),
    ("\u00fc", "62c3bc"),
    ("\u6c34", "63e6b0b4"),
    ([], "80"),
    ([1, [2, 3], [4, 5]], "8301820203820405"),
    ({}, "a0"),
    ({"a": 1, "b": [2, 3]}, "a26161016162820203"),
    (["a", {"b": "c"}], "826161a161626163"),
]


@pytest.mark.parametrize(("value", "expected"), RFC_EXAMPLES)
def test_rfc_8949_examples(value: object, expected: str) -> None:
    assert dagcbor.encode(value).hex() == expected
    assert dagcbor.decode(bytes.fromhex(expected)) == value


def test_map_keys_sort_by_length_then_bytes() -> None:
    """DAG-CBOR's canonical order: shorter keys first, then bytewise (not plain sorting)."""
    encoded = dagcbor.encode({"aa": 1, "b": 2, "ab": 3, "c": {"zz": 0, "y": 0}})
    # {"b": 2, "c": {"y": 0, "zz": 0}, "aa": 1, "ab": 3}, written out by hand from the rule
    assert encoded.hex() == "a46162026163a2617900627a7a006261610162616203"


def test_links_are_tag_42_over_a_zero_prefixed_cid() -> None:
    cid = bytes.fromhex("01551220") + bytes(32)
    encoded = dagcbor.encode({"x": CidLink(cid)})
    assert encoded.startswith(bytes.fromhex("a16178d82a5825 00".replace(" ", "")))
    assert dagcbor.decode(encoded) == {"x": CidLink(cid)}
    assert dagcbor.links(dagcbor.decode(encoded)) == [cid]


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (math.nan, "nan"),
        (math.inf, "inf"),
        ({1: "x"}, "keys must be strings"),
        ({"a": {1, 2}}, r"set \(at \$\.a\)"),
        (2**64, "64 bits"),
    ],
)
def test_values_outside_dag_cbor_are_refused(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        dagcbor.encode(value)


@pytest.mark.parametrize("raw", ["5f", "9f", "a1", "fa3fc00000", "d90100", "6161ff"])
def test_bad_input_is_refused(raw: str) -> None:
    with pytest.raises(ValueError):
        dagcbor.decode(bytes.fromhex(raw))

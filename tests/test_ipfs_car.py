"""CARv1 files: byte-identical rebuilds of the Kubo `dag export` fixtures, and a strict reader.

The recipes are those of tests/data/ipfs-fixtures/README.md (gateway-conformance); the
expected bytes are the fixture files themselves.
"""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest

from hfspider.ipfs import (
    PRESETS,
    CarError,
    ImportParams,
    Link,
    MemoryBlockstore,
    build_directory,
    build_tree,
    cid_bytes,
    cid_str,
    export_car,
    import_bytes,
    read_car,
    verify_car,
    write_car_file,
)
from tests.fixtures.ipfs_data import FIXTURES, params_of
from tests.test_ipfs_vectors import fixture_file

KUBO_V1 = PRESETS["kubo-v1"]
CAR_TXT = "hello application/vnd.ipld.car\n"
ROOT_DIR = {
    "ą/ę/file-źł.txt": "I am a txt file on path with utf8\n",
    "api/file.txt": "I am a txt file in confusing /api dir\n",
    "ipfs/file.txt": "I am a txt file in confusing /ipfs dir\n",
    "ipns/file.txt": "I am a txt file in confusing /ipns dir\n",
}
ALL_FIXTURES = sorted(path.name for path in FIXTURES.glob("*.car"))


def link_of(data: bytes, params: ImportParams, store: MemoryBlockstore) -> Link:
    imported = import_bytes(data, params, store)
    return Link(cid_bytes(imported.cid), imported.tsize, imported.size)


def tree_car(
    texts: dict[str, str],
    extra: dict[str, Link] | None = None,
    store: MemoryBlockstore | None = None,
) -> bytes:
    store = store if store is not None else MemoryBlockstore()
    tree = {path: link_of(text.encode(), KUBO_V1, store) for path, text in texts.items()}
    root = build_tree({**tree, **(extra or {})}, KUBO_V1, store)
    out = io.BytesIO()
    export_car(out, [root.cid], store)
    return out.getvalue()


def lorem_link(store: MemoryBlockstore) -> Link:
    """multiblock.txt: the 1026-byte lorem text added with --cid-version=1 --chunker=size-256."""
    text = fixture_file("path_gateway_unixfs__dir-with-files.car", "multiblock.txt")
    return link_of(text, params_of("kubo-cidv1-chunk256"), store)


def test_raw_block_fixture_wrapped_directory() -> None:
    built = tree_car({"dir/ascii.txt": "hello application/vnd.ipld.raw\n"})
    assert built == (FIXTURES / "gateway-raw-block.car").read_bytes()


@pytest.mark.parametrize("name", ["dir_listing__fixtures.car", "path_gateway_tar__fixtures.car"])
def test_root_dir_fixtures(name: str) -> None:
    assert tree_car(ROOT_DIR) == (FIXTURES / name).read_bytes()


def test_json_cbor_fixture() -> None:
    texts = {**ROOT_DIR, "ą/ę/t.json": '{ "test": "i am a plain json file" }\n'}
    assert tree_car(texts) == (FIXTURES / "path_gateway_dag__gateway-json-cbor.car").read_bytes()


@pytest.mark.parametrize(
    "name",
    [
        "path_gateway_unixfs__dir-with-files.car",
        "trustless_gateway_car__dir-with-duplicate-files.car",
    ],
)
def test_dir_with_duplicate_files_fixture(name: str) -> None:
    store = MemoryBlockstore()
    texts = {"ascii-copy.txt": CAR_TXT, "ascii.txt": CAR_TXT, "hello.txt": "hello world\n"}
    built = tree_car(texts, {"multiblock.txt": lorem_link(store)}, store)
    assert built == (FIXTURES / name).read_bytes()


def test_percent_encoded_name_fixture() -> None:
    name = "Portugal%2C+España=Peninsula Ibérica.txt"
    texts = {name: "hello from a percent encoded filename\n"}
    built = tree_car(texts)
    assert (
        built
        == (FIXTURES / "path_gateway_unixfs__dir-with-percent-encoded-filename.car").read_bytes()
    )


def test_subdir_fixture() -> None:
    built = tree_car({"subdir/ascii.txt": CAR_TXT, "subdir/hello.txt": "hello world\n"})
    expected = FIXTURES / "trustless_gateway_car__subdir-with-two-single-block-files.car"
    assert built == expected.read_bytes()


def test_hamt_fixture_forced_sharding() -> None:
    """1000 names -> one file, sharding forced with a 1-byte threshold (README recipe)."""
    store = MemoryBlockstore()
    params = params_of("kubo-cidv1-chunk256")
    lorem = lorem_link(store)
    params = dataclasses.replace(params, hamt_threshold=1)
    root = build_directory({f"{i}.txt": lorem for i in range(1, 1001)}, params, store)
    out = io.BytesIO()
    summary = export_car(out, [root.cid], store)
    expected = FIXTURES / "trustless_gateway_car__single-layer-hamt-with-multi-block-files.car"
    assert out.getvalue() == expected.read_bytes()
    assert summary.blocks == 243


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_reader_verifies_every_fixture(name: str) -> None:
    with open(FIXTURES / name, "rb") as car:
        summary = verify_car(car)
    raw = (FIXTURES / name).read_bytes()
    header_len = raw[0]
    assert header_len == (56 if cid_str(summary.roots[0]).startswith("Qm") else 58)
    assert summary.blocks > 0


def test_missing_block_fixture_cannot_be_exported_whole() -> None:
    store = MemoryBlockstore()
    with open(
        FIXTURES / "trustless_gateway_car__file-3k-and-3-blocks-missing-block.car", "rb"
    ) as f:
        roots, blocks = read_car(f)
        for cid, block in blocks:
            store.put(cid, block)
    with pytest.raises(CarError, match="QmSNLTo6Wv9dfroVaw7MFYjLqf9ho7PKrgsjdzYDtv8h1W"):
        export_car(io.BytesIO(), roots, store)


def test_flipped_byte_is_detected() -> None:
    raw = bytearray(
        (FIXTURES / "trustless_gateway_car__subdir-with-two-single-block-files.car").read_bytes()
    )
    raw[-3] ^= 0x01
    with pytest.raises(CarError, match="does not match its CID"):
        verify_car(io.BytesIO(bytes(raw)))


@pytest.mark.parametrize("cut", [1, 30, 100, 415])
def test_truncated_car_is_detected(cut: int) -> None:
    raw = (FIXTURES / "trustless_gateway_car__subdir-with-two-single-block-files.car").read_bytes()
    with pytest.raises(CarError):
        verify_car(io.BytesIO(raw[:cut]))


def test_not_a_car() -> None:
    with pytest.raises(CarError, match="CAR header"):
        verify_car(io.BytesIO(b"\x05hello world"))


def test_write_car_file_is_atomic_and_complete(tmp_path: Path) -> None:
    store = MemoryBlockstore()
    root = build_tree({"a/b.txt": link_of(b"b\n", KUBO_V1, store)}, KUBO_V1, store)
    path = tmp_path / "out" / "x.car"
    summary = write_car_file(path, [root.cid], store)
    assert not list(path.parent.glob("*.part"))
    with open(path, "rb") as f:
        assert verify_car(f) == summary

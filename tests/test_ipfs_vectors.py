"""Every vector of tests/data/ipfs-fixtures/vectors.json against our importer (none skipped).

The expected CIDs come from the file (Kubo's own tests, Kubo, the npm importer, the
fixtures), never from our output. The 1 GiB inputs stream from a generator.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterator

import pytest

from hfspider.ipfs import (
    PRESETS,
    FileImporter,
    Link,
    MemoryBlockstore,
    build_directory,
    build_tree,
    cid_bytes,
    cid_str,
    export_car,
    import_bytes,
    read_car,
    symlink,
)
from hfspider.ipfs.cid import DAG_PB, RAW, cid_parts, make_cid
from hfspider.ipfs.dagpb import decode_node
from hfspider.ipfs.unixfs import DIRECTORY, HAMT_SHARD
from tests.fixtures.ipfs_data import (
    FIXTURES,
    VECTORS,
    chacha20,
    hamt_dir_names,
    params_of,
    zeros,
)

ALL = VECTORS["vectors"]
FILE_KINDS = {"literal", "chacha20", "zeros", "fixture-file"}


def ids(kinds: set[str]) -> list[str]:
    return [v["id"] for v in ALL if v["content"]["kind"] in kinds]


def by_id(vector_id: str) -> dict:
    return next(v for v in ALL if v["id"] == vector_id)


def test_every_vector_has_a_test() -> None:
    covered = ids(FILE_KINDS) + ids({"tree", "hamt-dir", "empty-dir"})
    covered += ids({"raw-dag-pb-block"})
    assert sorted(covered) == sorted(v["id"] for v in ALL)
    assert len(ALL) == 53


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [("kubo", "kubo-default"), ("kubo-v1", "kubo-cidv1"), ("unixfs-v1-2025", "unixfs-v1-2025")],
)
def test_presets_match_the_vector_presets(ours: str, theirs: str) -> None:
    assert PRESETS[ours] == params_of(theirs)


def file_content(content: dict) -> Iterator[bytes]:
    kind = content["kind"]
    if kind == "literal":
        yield content["utf8"].encode("utf-8")
    elif kind == "chacha20":
        yield from chacha20(content["seed"], content["size"])
    elif kind == "zeros":
        yield from zeros(content["size"])
    else:
        yield fixture_file(content["car_fixture"], content["path"])


def unixfs_cat(store: MemoryBlockstore, cid: bytes) -> bytes:
    """The bytes of a file made of raw leaves (what the fixture's lorem file is)."""
    if cid_parts(cid)[1] == RAW:
        return store.get(cid)
    links, _ = decode_node(store.get(cid))
    assert links, "a dag-pb leaf: not expected in this fixture"
    return b"".join(unixfs_cat(store, link.cid) for link in links)


def fixture_file(car_name: str, path: str) -> bytes:
    store = MemoryBlockstore()
    with open(FIXTURES / car_name, "rb") as car:
        roots, blocks = read_car(car)
        for cid, block in blocks:
            store.put(cid, block)
    node = roots[0]
    for part in path.split("/"):
        links, _ = decode_node(store.get(node))
        node = next(link.cid for link in links if link.name == part.encode())
    return unixfs_cat(store, node)


@pytest.mark.parametrize("vector_id", ids(FILE_KINDS))
def test_file_vector(vector_id: str) -> None:
    vector = by_id(vector_id)
    importer = FileImporter(params_of(vector["preset"]), sha256=True)
    size = 0
    for piece in file_content(vector["content"]):
        importer.update(piece)
        size += len(piece)
    result = importer.finish()
    assert result.cid == vector["cid"]
    assert result.size == size == vector["content"].get("size", size)


def directory_vector(vector: dict) -> tuple[Link, MemoryBlockstore]:
    params = params_of(vector["preset"])
    store = MemoryBlockstore()
    content = vector["content"]
    if content["kind"] == "empty-dir":
        return build_directory({}, params, store), store
    if content["kind"] == "hamt-dir":
        one = import_bytes(content["file_content"].encode(), params, store)
        link = Link(cid_bytes(one.cid), one.tsize, one.size)
        return build_directory(dict.fromkeys(hamt_dir_names(content), link), params, store), store
    tree = {}
    for path, text in content["entries"].items():
        imported = import_bytes(text.encode("utf-8"), params, store)
        tree[path] = Link(cid_bytes(imported.cid), imported.tsize, imported.size)
    for path, target in content.get("symlinks", {}).items():
        tree[path] = symlink(target, params, store)
    return build_tree(tree, params, store), store


def unixfs_type(block: bytes) -> int:
    _, data = decode_node(block)
    assert data is not None and data[0] == 0x08
    return data[1]


@pytest.mark.parametrize("vector_id", ids({"tree", "hamt-dir", "empty-dir"}))
def test_directory_vector(vector_id: str) -> None:
    vector = by_id(vector_id)
    root, store = directory_vector(vector)
    assert cid_str(root.cid) == vector["cid"]
    if "expect_type" in vector:
        expected = HAMT_SHARD if vector["expect_type"] == "HAMTShard" else DIRECTORY
        assert unixfs_type(store.get(root.cid)) == expected
    if "car_fixture" in vector:
        out = io.BytesIO()
        export_car(out, [root.cid], store)
        assert out.getvalue() == (FIXTURES / vector["car_fixture"]).read_bytes()


@pytest.mark.parametrize("vector_id", ids({"raw-dag-pb-block"}))
def test_raw_dag_pb_block_vector(vector_id: str) -> None:
    vector = by_id(vector_id)
    block = bytes.fromhex(vector["content"]["bytes_hex"])
    version = 0 if vector["cid"].startswith("Qm") else 1
    assert cid_str(make_cid(version, DAG_PB, hashlib.sha256(block).digest())) == vector["cid"]

"""Model snapshots (directory + DAG-CBOR record) and the crawl root, on synthetic records."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from hfspider.ipfs import (
    PRESETS,
    MemoryBlockstore,
    SnapshotError,
    build_crawl_root,
    build_snapshot,
    cid_bytes,
    cid_str,
    dagcbor,
    read_car,
    verify_car,
    write_crawl_root_car,
)
from hfspider.ipfs.cid import DAG_CBOR, block_cid
from hfspider.ipfs.dagpb import decode_node
from hfspider.ipfs.snapshot import METADATA_NAME, metadata_json
from hfspider.ipfs.unixfs import HAMT_SHARD
from tests.fixtures.ipfs_data import synthetic_model

PARAMS = PRESETS["unixfs-v1-2025"]


def listing(store: MemoryBlockstore, cid: bytes) -> dict[str, bytes]:
    links, _ = decode_node(store.get(cid))
    return {link.name.decode(): link.cid for link in links}


def test_snapshot_directory_record_and_car(tmp_path: Path) -> None:
    store = MemoryBlockstore()
    record, files, contents = synthetic_model("acme/bert-tiny", PARAMS, store, big=3 << 20)
    snapshot = build_snapshot(record, files, PARAMS, store)

    top = listing(store, snapshot.directory.cid)
    assert sorted(top) == [
        "README.md",
        "config.json",
        METADATA_NAME,
        "model.safetensors",
        "tokenizer",
    ]
    assert listing(store, top["tokenizer"]) == {
        "vocab.txt": cid_bytes(files["tokenizer/vocab.txt"].cid)
    }
    metadata = json.loads(store.get(top[METADATA_NAME]))
    assert "cid" not in metadata and "dir_cid" not in metadata
    assert metadata["files"][0]["cid"] == files["README.md"].cid

    # The record block: links for fetched files, null for the rest, no cid/dir_cid fields.
    block = store.get(snapshot.record_cid)
    assert block_cid(block, 1, DAG_CBOR) == snapshot.record_cid
    decoded = dagcbor.decode(block)
    assert "cid" not in decoded and "dir_cid" not in decoded
    by_name = {entry["filename"]: entry["cid"] for entry in decoded["files"]}
    assert by_name["pytorch_model.bin"] is None
    assert by_name["config.json"] == dagcbor.CidLink(cid_bytes(files["config.json"].cid))
    assert snapshot.record["cid"] == snapshot.cid == cid_str(snapshot.record_cid)
    assert snapshot.record["dir_cid"] == snapshot.dir_cid
    assert record.get("cid") is None  # the input is not modified

    summary = snapshot.write_car(tmp_path / "car" / "acme" / "bert-tiny" / "x.car", store)
    with open(tmp_path / "car" / "acme" / "bert-tiny" / "x.car", "rb") as car:
        assert verify_car(car) == summary
    assert summary.roots == [snapshot.directory.cid, snapshot.record_cid]
    assert summary.blocks == len(store)  # every block, once


def test_record_cid_ignores_stored_cid_fields() -> None:
    store = MemoryBlockstore()
    record, files, _ = synthetic_model("acme/a", PARAMS, store)
    first = build_snapshot(record, files, PARAMS, store)
    again = build_snapshot(first.record, files, PARAMS, store)
    assert again.cid == first.cid and again.dir_cid == first.dir_cid
    changed = build_snapshot({**record, "likes": 6}, files, PARAMS, store)
    assert changed.cid != first.cid and changed.dir_cid != first.dir_cid


def test_metadata_json_is_stable() -> None:
    assert metadata_json({"b": 1, "a": "é"}) == '{\n  "a": "é",\n  "b": 1\n}\n'.encode()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (
            lambda r, f: r["files"][0].update(
                cid="bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy"
            ),
            "CID mismatch for 'README.md'",
        ),
        (lambda r, f: r["files"].pop(0), "'README.md' is not in the record"),
        (
            lambda r, f: r["files"][3].update(cid=f["README.md"].cid),
            "has a cid but was not imported",
        ),
        (lambda r, f: r.pop("model_id"), "no model_id"),
        (
            lambda r, f: (
                r["files"].append({"filename": "../x"}) or f.update({"../x": f["README.md"]})
            ),
            "not a clean relative path",
        ),
        (
            lambda r, f: (
                r["files"].append({"filename": METADATA_NAME})
                or f.update({METADATA_NAME: f["README.md"]})
            ),
            "own metadata.json",
        ),
        (lambda r, f: r.update(score=float("nan")), "not valid DAG-CBOR"),
    ],
)
def test_bad_records_name_the_model(mutate, message: str) -> None:  # type: ignore[no-untyped-def]
    store = MemoryBlockstore()
    record, files, _ = synthetic_model("acme/broken", PARAMS, store)
    mutate(record, files)
    with pytest.raises(SnapshotError, match=message) as error:
        build_snapshot(record, files, PARAMS, store)
    assert str(error.value).startswith(record.get("model_id", "<no model_id>"))


def test_files_must_be_in_the_store() -> None:
    record, files, _ = synthetic_model("acme/elsewhere", PARAMS, MemoryBlockstore())
    with pytest.raises(SnapshotError, match="not in the store"):
        build_snapshot(record, files, PARAMS, MemoryBlockstore())


def test_crawl_root_by_author_and_name(tmp_path: Path) -> None:
    store = MemoryBlockstore()
    snapshots = []
    for model_id in ("acme/one", "acme/two", "other/three"):
        record, files, _ = synthetic_model(model_id, PARAMS, store)
        snapshots.append(build_snapshot(record, files, PARAMS, store))
    models = [(s.model_id, s.directory) for s in snapshots]
    models.insert(1, models[0])  # the same snapshot again is harmless
    root_store = MemoryBlockstore()
    root = build_crawl_root(models, PARAMS, root_store)
    summary = write_crawl_root_car(tmp_path / "root.car", root, root_store)
    top = listing(root_store, root.cid)
    assert sorted(top) == ["acme", "other"]
    assert listing(root_store, top["acme"]) == {
        "one": snapshots[0].directory.cid,
        "two": snapshots[1].directory.cid,
    }
    with open(tmp_path / "root.car", "rb") as car:
        roots, blocks = read_car(car)
        written = [cid for cid, _ in blocks]
    assert roots == [root.cid] and summary.blocks == len(written) == 3
    assert not {s.directory.cid for s in snapshots} & set(written)


def test_crawl_root_shards_when_large() -> None:
    params = dataclasses.replace(PARAMS, hamt_threshold=2000)
    store = MemoryBlockstore()
    record, files, _ = synthetic_model("acme/base", params, store)
    base = build_snapshot(record, files, params, store)
    models = [(f"author{index:03d}/model", base.directory) for index in range(60)]
    root_store = MemoryBlockstore()
    _, data = decode_node(root_store.get(build_crawl_root(models, params, root_store).cid))
    assert data is not None and data[1] == HAMT_SHARD


@pytest.mark.parametrize("model_id", ["noauthor", "a/b/c", "/x", "x/"])
def test_crawl_root_refuses_odd_model_ids(model_id: str) -> None:
    store = MemoryBlockstore()
    record, files, _ = synthetic_model("acme/base", PARAMS, store)
    snapshot = build_snapshot(record, files, PARAMS, store)
    with pytest.raises(SnapshotError, match="author/name"):
        build_crawl_root([(model_id, snapshot.directory)], PARAMS, MemoryBlockstore())


def test_crawl_root_refuses_two_snapshots_of_a_model_and_unsorted_input() -> None:
    store = MemoryBlockstore()
    record, files, _ = synthetic_model("acme/m", PARAMS, store)
    first = build_snapshot(record, files, PARAMS, store)
    second = build_snapshot({**record, "likes": 99}, files, PARAMS, store)
    models = [("acme/m", first.directory), ("acme/m", second.directory)]
    with pytest.raises(SnapshotError, match="two different snapshots"):
        build_crawl_root(models, PARAMS, MemoryBlockstore())
    unsorted = [("a/x", first.directory), ("b/x", first.directory), ("a/y", first.directory)]
    with pytest.raises(ValueError, match="not sorted"):
        build_crawl_root(unsorted, PARAMS, MemoryBlockstore())

"""Our CIDs and CARs against the real Kubo daemon (tests/fixtures/kubo.py), the oracle.

Kubo gets the flags a user would type (`ipfs add`, `ipfs add --cid-version=1`) or, for
unixfs-v1-2025, its own profile applied to its config: so these tests also check that our
presets mean what Kubo means. Data streams to Kubo while our importer hashes the same
pieces; Kubo works in its own process meanwhile.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from hfspider.ipfs import (
    PRESETS,
    FileBlockstore,
    FileImporter,
    ImportParams,
    Link,
    MemoryBlockstore,
    ModelSnapshot,
    RawLeaves,
    build_crawl_root,
    build_directory,
    build_snapshot,
    cid_bytes,
    cid_str,
    dagcbor,
    export_car,
    import_bytes,
    write_car_file,
    write_crawl_root_car,
)
from hfspider.ipfs.snapshot import DERIVED_FIELDS, METADATA_NAME, metadata_json
from tests.fixtures.ipfs_data import chacha20, hamt_dir_names, synthetic_model, vector
from tests.fixtures.kubo import KuboDaemon

MB = 1_000_000


@contextlib.contextmanager
def kubo_flavour(kubo: KuboDaemon, profile: str) -> Iterator[dict[str, str]]:
    """(add options) for a preset, as Kubo's own CLI and profiles define it."""
    if profile == "unixfs-v1-2025":
        with kubo.import_profile("unixfs-v1-2025"):
            yield {}
    else:
        yield {"cid-version": "1"} if profile == "kubo-v1" else {}


def boundary_sizes(params: ImportParams) -> list[int]:
    chunk, width = params.chunk_size, params.max_links
    sizes = {0, 1, chunk - 1, chunk, chunk + 1, 50 * MB}
    for chunks in (174, width, 1024):
        sizes |= {chunks * chunk - 1, chunks * chunk, chunks * chunk + 1}
    return sorted(sizes)


@pytest.mark.parametrize("profile", ["kubo", "kubo-v1", "unixfs-v1-2025"])
def test_file_cids_at_chunk_and_width_boundaries(kubo: KuboDaemon, profile: str) -> None:
    params = PRESETS[profile]
    mismatches = []
    with kubo_flavour(kubo, profile) as options:
        for size in boundary_sizes(params):
            importer = FileImporter(params)

            def feed(size: int = size, importer: FileImporter = importer) -> Iterator[bytes]:
                for piece in chacha20(f"boundary-{size}", size):
                    importer.update(piece)
                    yield piece

            theirs = kubo.add({"f": feed()}, **{"only-hash": "true", **options})
            ours = importer.finish().cid
            if ours != theirs:
                mismatches.append((size, ours, theirs))
    assert mismatches == []


@pytest.mark.parametrize("profile", ["kubo", "kubo-v1", "unixfs-v1-2025"])
@pytest.mark.parametrize("size", [0, 1 + 1048576, 50 * MB])
def test_dag_import_of_our_car_pins_and_cats(
    kubo: KuboDaemon, tmp_path: Path, profile: str, size: int
) -> None:
    params = PRESETS[profile]
    data = b"".join(chacha20(f"car-{profile}-{size}", size))
    # as the files stage does it: raw leaves are read back from the file when the CAR is made
    (tmp_path / "f.bin").write_bytes(data)
    with FileBlockstore(tmp_path / "spool") as store:
        leaves = RawLeaves(store)
        importer = FileImporter(params, leaves, sha256=True)
        importer.update(data)
        imported = importer.finish()
        store.add_file(tmp_path / "f.bin", leaves.leaves)
        write_car_file(tmp_path / "f.car", [cid_bytes(imported.cid)], store)
    car = (tmp_path / "f.car").read_bytes()
    answer = kubo.rpc("dag/import", body=_one_file(car), content_type=_FORM, stats="true")
    roots = [json.loads(line) for line in answer.splitlines() if b"Root" in line]
    assert roots == [{"Root": {"Cid": {"/": imported.cid}, "PinErrorMsg": ""}}]
    assert hashlib.sha256(kubo.rpc("cat", imported.cid)).hexdigest() == imported.sha256
    # Kubo's own export of the DAG is byte-identical to ours.
    assert kubo.rpc("dag/export", imported.cid) == car


_FORM = "multipart/form-data; boundary=xyz"


def _one_file(data: bytes) -> bytes:
    return (
        b'--xyz\r\nContent-Disposition: form-data; name="file"; filename="x.car"\r\n'
        b"Content-Type: application/octet-stream\r\n\r\n" + data + b"\r\n--xyz--\r\n"
    )


def hamt_cases() -> list[tuple[str, str, int, int, int]]:
    """(profile, seed, files, name_len, last_name_len) below, at and above the threshold."""
    v0 = vector("hamt-v0-at-threshold")["content"]["seed"]
    v1 = vector("hamt-v1-2025-at-threshold")["content"]["seed"]
    return [
        ("kubo", v0, 4095, 30, 30),  # 262080: basic
        ("kubo", v0, 4096, 30, 30),  # 262144 = threshold: basic (Kubo >= 0.40 uses >)
        ("kubo", v0, 4033, 31, 31),  # 262145: HAMT
        ("kubo-v1", v0, 4096, 28, 27),  # links estimate with 36-byte CIDs: 262143
        ("kubo-v1", v0, 4096, 28, 28),  # 262144
        ("kubo-v1", v0, 4096, 28, 29),  # 262145: HAMT
        ("unixfs-v1-2025", v1, 4766, 11, 20),  # block size 262143
        ("unixfs-v1-2025", v1, 4766, 11, 21),  # 262144
        ("unixfs-v1-2025", v1, 4766, 11, 22),  # 262145: HAMT
    ]


@pytest.mark.parametrize(("profile", "seed", "files", "name_len", "last_len"), hamt_cases())
def test_directories_around_the_hamt_threshold(
    kubo: KuboDaemon, profile: str, seed: str, files: int, name_len: int, last_len: int
) -> None:
    params = PRESETS[profile]
    content = {"seed": seed, "files": files, "name_len": name_len, "last_name_len": last_len}
    names = hamt_dir_names(content)
    store = MemoryBlockstore()
    one = import_bytes(b"x", params, store)
    ours = build_directory(
        dict.fromkeys(names, Link(cid_bytes(one.cid), one.tsize, one.size)), params, store
    )
    entries: dict[str, list[bytes] | None] = {"d": None}
    entries.update({f"d/{name}": [b"x"] for name in names})
    # A real add: Kubo 0.43.1's --only-hash ignores the `block` size estimation (it keeps
    # a basic directory one byte over the threshold), its real import does not.
    with kubo_flavour(kubo, profile) as options:
        theirs = kubo.add(entries, pin="false", **options)
    assert cid_str(ours.cid) == theirs


def test_model_snapshot_against_kubo(kubo: KuboDaemon, tmp_path: Path) -> None:
    """The snapshot directory equals `ipfs add -r` of the same tree; the record equals
    `ipfs dag put` of its dag-json; the CAR imports and pins; Kubo exports the same blocks."""
    params = PRESETS["unixfs-v1-2025"]
    store = MemoryBlockstore()
    record, files, contents = synthetic_model("acme/kubo-check", params, store, big=3 << 20)
    snapshot = build_snapshot(record, files, params, store)
    metadata = kubo_snapshot_tree(snapshot, contents)
    with kubo.import_profile("unixfs-v1-2025"):
        assert kubo.add(metadata, pin="false") == snapshot.dir_cid

    as_json = json.dumps(_dag_json(dagcbor.decode(store.get(snapshot.record_cid))))
    put = kubo.rpc_json(
        "dag/put", body=_one_file(as_json.encode()), content_type=_FORM, pin="false"
    )
    assert put["Cid"]["/"] == snapshot.cid

    snapshot.write_car(tmp_path / "m.car", store)
    answer = kubo.rpc(
        "dag/import", body=_one_file((tmp_path / "m.car").read_bytes()), content_type=_FORM
    )
    pinned = {json.loads(line)["Root"]["Cid"]["/"] for line in answer.splitlines()}
    assert pinned == {snapshot.cid, snapshot.dir_cid}
    assert 'PinErrorMsg":""' in answer.decode() and b'PinErrorMsg":"e' not in answer
    out = io.BytesIO()
    export_car(out, [snapshot.directory.cid], store)
    assert kubo.rpc("dag/export", snapshot.dir_cid) == out.getvalue()
    assert (
        kubo.rpc("cat", f"{snapshot.dir_cid}/tokenizer/vocab.txt")
        == contents["tokenizer/vocab.txt"]
    )

    root_store = MemoryBlockstore()
    root = build_crawl_root([(snapshot.model_id, snapshot.directory)], params, root_store)
    write_crawl_root_car(tmp_path / "root.car", root, root_store)
    root_cid = cid_str(root.cid)
    kubo.rpc("dag/import", body=_one_file((tmp_path / "root.car").read_bytes()), content_type=_FORM)
    listed = kubo.rpc("cat", f"{root_cid}/acme/kubo-check/config.json")
    assert listed == contents["config.json"]
    assert kubo.rpc_json("pin/ls", root_cid, type="recursive")["Keys"][root_cid]


def kubo_snapshot_tree(
    snapshot: ModelSnapshot, contents: dict[str, bytes]
) -> dict[str, list[bytes] | None]:
    """The snapshot as a multipart tree for `ipfs add -r`: directory parts, then files."""
    tree: dict[str, list[bytes] | None] = {"m": None}
    for path in sorted(contents):
        parts = path.split("/")
        for depth in range(1, len(parts)):
            tree.setdefault("m/" + "/".join(parts[:depth]), None)
        tree[f"m/{path}"] = [contents[path]]
    record = {k: v for k, v in snapshot.record.items() if k not in DERIVED_FIELDS}
    tree[f"m/{METADATA_NAME}"] = [metadata_json(record)]
    return tree


def _dag_json(value: Any) -> Any:
    if isinstance(value, dagcbor.CidLink):
        return {"/": str(value)}
    if isinstance(value, list):
        return [_dag_json(v) for v in value]
    if isinstance(value, dict):
        return {k: _dag_json(v) for k, v in value.items()}
    return value

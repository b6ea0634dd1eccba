"""The streaming importer: any piece sizes, sha256 in the same pass, every block sunk once,
bounded memory, clear errors. Expected CIDs come from vectors.json. The block stores: spooled
blocks, and raw leaves read back (and re-hashed) from the file they are a slice of."""

from __future__ import annotations

import concurrent.futures
import dataclasses
import hashlib
import io
import os
import tracemalloc
from pathlib import Path

import pytest

from hfspider.ipfs import (
    PRESETS,
    BlockstoreError,
    FileBlockstore,
    FileImporter,
    ImportParams,
    MemoryBlockstore,
    RawLeaves,
    cid_bytes,
    export_car,
    import_stream,
    preset,
    sha256_cid,
    verify_car,
    write_car_file,
)
from hfspider.ipfs.car import read_car
from hfspider.ipfs.cid import verify_block
from hfspider.ipfs.importer import HASH_BATCH, HASH_WORKERS
from hfspider.ipfs.params import params_from_settings
from tests.fixtures.ipfs_data import chacha20, params_of, vector


class CountingStore(MemoryBlockstore):
    def __init__(self) -> None:
        super().__init__()
        self.puts: list[bytes] = []

    def put(self, cid: bytes, block: bytes) -> None:  # type: ignore[override]
        assert verify_block(cid, block)
        self.puts.append(cid)
        super().put(cid, block)


def odd_pieces(data: bytes) -> list[bytes]:
    """Pieces of 1 byte, primes, and more than a chunk: crossing every buffer boundary."""
    sizes = [1, 7, 65521, 262143, 1, 1048577, 3, 524287]
    pieces, pos, index = [], 0, 0
    while pos < len(data):
        size = sizes[index % len(sizes)]
        pieces.append(data[pos : pos + size])
        pos, index = pos + size, index + 1
    return pieces


@pytest.mark.parametrize("vector_id", ["maxlinks-v0-over", "maxlinks-v0-over-v1", "chunk-v1-over"])
def test_piece_sizes_do_not_matter(vector_id: str) -> None:
    spec = vector(vector_id)
    data = b"".join(chacha20(spec["content"]["seed"], spec["content"]["size"]))
    importer = FileImporter(params_of(spec["preset"]), sha256=True)
    for piece in odd_pieces(data):
        importer.update(piece)
    result = importer.finish()
    assert result.cid == spec["cid"]
    assert result.sha256 == hashlib.sha256(data).hexdigest()
    assert result.size == len(data)


def test_import_stream_reads_a_file_object() -> None:
    spec = vector("zeros-45.9MB-v0")
    result = import_stream(io.BytesIO(bytes(spec["content"]["size"])), PRESETS["kubo"])
    assert result.cid == spec["cid"]


@pytest.mark.parametrize("profile", sorted(PRESETS))
def test_every_block_goes_to_the_sink_once(profile: str) -> None:
    params = PRESETS[profile]
    data = b"".join(chacha20("sink-test", 3 * params.chunk_size * 5 + 17))
    store = CountingStore()
    importer = FileImporter(dataclasses.replace(params, max_links=4), store)
    importer.update(data)
    result = importer.finish()
    assert len(store.puts) == len(set(store.puts))
    out = io.BytesIO()
    summary = export_car(out, [cid_bytes(result.cid)], store)
    assert summary.blocks == len(store.puts)  # every block sunk is part of the DAG
    out.seek(0)
    assert verify_car(out).blocks == summary.blocks
    assert result.tsize == len(out.getvalue()) - _car_overhead(out.getvalue())


def _car_overhead(car: bytes) -> int:
    """Header and section prefixes: a CAR minus its blocks' bytes."""
    _, sections = read_car(io.BytesIO(car))
    return len(car) - sum(len(block) for _, block in sections)


def test_memory_stays_bounded() -> None:
    """64 MiB through the importer: peak allocation stays a few batches, not the file size."""
    params = PRESETS["kubo"]
    bound = (HASH_WORKERS + 3) * max(HASH_BATCH, params.chunk_size)
    tracemalloc.start()
    try:
        importer = FileImporter(params, sha256=True)
        for piece in chacha20("memory", 64 << 20, piece=300_000):
            importer.update(piece)
        importer.finish()
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < bound < 64 << 20


def test_file_blockstore_spools_to_disk(tmp_path: Path) -> None:
    spec = vector("chunk-v0-over")
    data = b"".join(chacha20(spec["content"]["seed"], spec["content"]["size"]))
    with FileBlockstore(tmp_path / "spool") as store:
        importer = FileImporter(PRESETS["kubo"], store)
        importer.update(data)
        root = cid_bytes(importer.finish().cid)
        assert len(store) == 3 and root in store
        assert (tmp_path / "spool").stat().st_size > len(data)
        out = io.BytesIO()
        export_car(out, [root], store)
    assert not (tmp_path / "spool").exists()
    out.seek(0)
    assert verify_car(out).blocks == 3


def import_in_place(
    path: Path, params: ImportParams, store: FileBlockstore, pieces: list[bytes]
) -> bytes:
    """Import `pieces` (the bytes of the file at `path`) as the files stage does: raw leaves
    noted, then indexed from the file; the root CID."""
    leaves = RawLeaves(store)
    importer = FileImporter(params, leaves)
    for piece in pieces:
        importer.update(piece)
    root = cid_bytes(importer.finish().cid)
    store.add_file(path, leaves.leaves)
    return root


@pytest.mark.parametrize("profile", ["kubo", "kubo-v1", "unixfs-v1-2025"])
@pytest.mark.parametrize("size", [0, 1000, 1048576, 3 * 1048576 + 12345])
def test_raw_leaves_read_back_from_the_file_give_the_same_car(
    tmp_path: Path, profile: str, size: int
) -> None:
    params = PRESETS[profile]
    data = b"".join(chacha20(f"in-place-{size}", size))
    path = tmp_path / "file.bin"
    path.write_bytes(data)
    memory = MemoryBlockstore()
    reference = cid_bytes(import_stream(io.BytesIO(data), params, memory).cid)
    expected = io.BytesIO()
    export_car(expected, [reference], memory)

    with FileBlockstore(tmp_path / "spool") as store:
        root = import_in_place(path, params, store, odd_pieces(data))
        assert root == reference
        out = io.BytesIO()
        export_car(out, [root], store)
        spooled = (tmp_path / "spool").stat().st_size
    assert out.getvalue() == expected.getvalue()
    if params.raw_leaves:  # only the tree's nodes were spooled: no copy of the bytes
        assert spooled < 4096
    else:  # dag-pb leaves wrap the bytes: they are spooled
        assert spooled > size


@pytest.mark.parametrize(
    "damage", ["flipped byte, same size and mtime", "truncated", "deleted", "replaced"]
)
def test_a_file_changed_after_its_import_is_an_error_never_a_wrong_block(
    tmp_path: Path, damage: str
) -> None:
    params = PRESETS["unixfs-v1-2025"]
    data = b"".join(chacha20("changed", 3 * params.chunk_size))
    path = tmp_path / "model.safetensors"
    path.write_bytes(data)
    with FileBlockstore(tmp_path / "spool") as store:
        root = import_in_place(path, params, store, [data])
        stat = path.stat()
        if damage.startswith("flipped"):
            with open(path, "r+b") as f:
                f.seek(len(data) // 2)
                f.write(bytes([data[len(data) // 2] ^ 1]))
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
        elif damage == "truncated":
            os.truncate(path, len(data) - 10)
        elif damage == "deleted":
            path.unlink()
        else:
            path.with_name("new").write_bytes(data[::-1])
            os.replace(path.with_name("new"), path)
        with pytest.raises(BlockstoreError, match="model.safetensors"):
            write_car_file(tmp_path / "out.car", [root], store)
    assert not (tmp_path / "out.car").exists()
    assert not (tmp_path / "out.car.part").exists()


def test_a_file_is_read_back_with_one_descriptor_and_the_store_is_thread_safe(
    tmp_path: Path,
) -> None:
    params = PRESETS["kubo-v1"]
    data = b"".join(chacha20("threads", 2_000_000))
    path = tmp_path / "f"
    path.write_bytes(data)
    with FileBlockstore(tmp_path / "spool") as store:
        root = import_in_place(path, params, store, [data])
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            outs = list(pool.map(lambda _: export_to_bytes(root, store), range(4)))
        assert len(set(outs)) == 1
        assert verify_car(io.BytesIO(outs[0])).blocks == len(store)


def export_to_bytes(root: bytes, store: FileBlockstore) -> bytes:
    out = io.BytesIO()
    export_car(out, [root], store)
    return out.getvalue()


def test_sha256_cid_is_the_raw_cid_of_a_single_chunk_file() -> None:
    spec = vector("chunk-v1-at")  # 1 MiB = one raw leaf under unixfs-v1-2025
    data = b"".join(chacha20(spec["content"]["seed"], spec["content"]["size"]))
    assert sha256_cid(hashlib.sha256(data).hexdigest()) == spec["cid"]
    with pytest.raises(ValueError, match="sha256"):
        sha256_cid("abcd")


def test_misuse_is_an_error() -> None:
    importer = FileImporter(PRESETS["kubo"])
    importer.update(b"x")
    importer.finish()
    with pytest.raises(RuntimeError):
        importer.update(b"y")
    with pytest.raises(RuntimeError):
        importer.finish()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"cid_version": 2}, "cid_version"),
        ({"hash": "md5"}, "hash"),
        ({"cid_version": 0, "hash": "sha2-512"}, "CIDv0"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"chunk_size": 4 << 20}, "chunk_size"),
        ({"max_links": 1}, "max_links"),
        ({"layout": "flat"}, "layout"),
        ({"hamt_estimation": "guess"}, "hamt_estimation"),
        ({"hamt_compare": "<"}, "hamt_compare"),
        ({"hamt_fanout": 100}, "hamt_fanout"),
    ],
)
def test_bad_parameters_are_refused(changes: dict, message: str) -> None:
    base = {"cid_version": 1, "raw_leaves": True}
    with pytest.raises(ValueError, match=message):
        ImportParams(**{**base, **changes})


def test_profiles_by_name_and_setting() -> None:
    assert preset("kubo-v1") is PRESETS["kubo-v1"]
    assert params_from_settings({}) is PRESETS["unixfs-v1-2025"]
    assert params_from_settings({"IPFS_PROFILE": "kubo"}) is PRESETS["kubo"]
    with pytest.raises(ValueError, match="unknown IPFS profile 'v2'"):
        preset("v2")

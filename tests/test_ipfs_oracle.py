"""Independent checkers beyond Kubo: Helia's importer (npm ipfs-unixfs-importer 17.1.1)
computes the same CIDs, and `ipfs-car blocks` (npm ipfs-car 3.1.0) accepts our CARs.

scripts/setup installs them (`npm ci` in tests/oracles); if they are missing the tests fail.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from hfspider import cli
from hfspider.ipfs import PRESETS, MemoryBlockstore, build_snapshot
from tests.fixtures.ipfs_data import chacha20, synthetic_model

ORACLES = Path(__file__).resolve().parent / "oracles"
IPFS_CAR = ORACLES / "node_modules" / ".bin" / "ipfs-car"


def node_cid(profile: str, path: Path) -> str:
    if not (ORACLES / "node_modules" / "ipfs-unixfs-importer").is_dir():
        pytest.fail("npm oracles missing: run scripts/setup (npm ci in tests/oracles)")
    done = subprocess.run(
        ["node", str(ORACLES / "unixfs-cid.mjs"), profile, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def ours(capsys: pytest.CaptureFixture[str], profile: str, path: Path) -> str:
    assert cli.main(["cid", str(path), "--profile", profile]) == 0
    return capsys.readouterr().out.strip()


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    base = tmp_path_factory.mktemp("oracle")
    paths = []
    for size in (0, 262145, 1048577, 174 * 262144 + 1, 5_000_003):
        path = base / f"f{size}"
        path.write_bytes(b"".join(chacha20(f"oracle-{size}", size)))
        paths.append(path)
    tree = base / "tree"
    (tree / "dir" / "żółw").mkdir(parents=True)
    (tree / "empty").mkdir()
    for index in range(40):
        (tree / "dir" / f"file-{index:02d}.txt").write_text(f"{index}\n" * index)
    (tree / "dir" / "żółw" / "x.bin").write_bytes(b"".join(chacha20("tree", 2_100_000)))
    paths.append(tree)
    return paths


@pytest.mark.parametrize("profile", sorted(PRESETS))
def test_helia_importer_agrees(
    inputs: list[Path], capsys: pytest.CaptureFixture[str], profile: str
) -> None:
    for path in inputs:
        assert ours(capsys, profile, path) == node_cid(profile, path), path.name


def car_blocks(car: Path) -> subprocess.CompletedProcess[str]:
    if not os.access(IPFS_CAR, os.X_OK):
        pytest.fail("npm oracles missing: run scripts/setup (npm ci in tests/oracles)")
    return subprocess.run(
        [str(IPFS_CAR), "blocks", str(car)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_ipfs_car_verifies_our_snapshot_car(tmp_path: Path) -> None:
    params = PRESETS["unixfs-v1-2025"]
    store = MemoryBlockstore()
    record, files, _ = synthetic_model("acme/oracle", params, store, big=3 << 20)
    snapshot = build_snapshot(record, files, params, store)
    summary = snapshot.write_car(tmp_path / "m.car", store)
    done = car_blocks(tmp_path / "m.car")
    assert done.returncode == 0, done.stderr
    assert len(done.stdout.split()) == summary.blocks
    assert snapshot.cid in done.stdout.split() and snapshot.dir_cid in done.stdout.split()

    raw = bytearray((tmp_path / "m.car").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (tmp_path / "bad.car").write_bytes(raw)
    bad = car_blocks(tmp_path / "bad.car")
    assert bad.returncode != 0 and "Mismatch" in bad.stderr + bad.stdout

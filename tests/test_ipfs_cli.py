"""`hfspider cid` and `hfspider car` against the `ipfs` command line reading the same paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hfspider import cli
from hfspider.ipfs import verify_car
from tests.fixtures.ipfs_data import chacha20
from tests.fixtures.kubo import KuboDaemon
from tests.test_ipfs_kubo import kubo_flavour

FLAGS = {"kubo": [], "kubo-v1": ["--cid-version=1"], "unixfs-v1-2025": []}


def make_tree(root: Path) -> Path:
    """Nested dirs, UTF-8 names, an empty dir, a hidden file, a symlink, a multi-chunk file."""
    (root / "tree" / "sub" / "ę").mkdir(parents=True)
    (root / "tree" / "empty").mkdir()
    (root / "tree" / "a.txt").write_text("a\n")
    (root / "tree" / ".hidden").write_text("secret\n")
    (root / "tree" / "sub" / "ę" / "big.bin").write_bytes(b"".join(chacha20("cli", 3_000_000)))
    os.symlink("a.txt", root / "tree" / "link")
    return root / "tree"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert cli.main(list(argv)) == 0
    return capsys.readouterr().out.strip()


@pytest.mark.parametrize("profile", sorted(FLAGS))
def test_cid_matches_ipfs_add_only_hash(
    kubo: KuboDaemon, tmp_path: Path, capsys: pytest.CaptureFixture[str], profile: str
) -> None:
    tree = make_tree(tmp_path)
    big = tree / "sub" / "ę" / "big.bin"
    with kubo_flavour(kubo, profile):
        for path, extra in ((big, []), (tree, ["-r"]), (tree, ["-r", "--hidden"])):
            ours = run(
                capsys, "cid", str(path), "--profile", profile, *(["-H"] if extra[1:] else [])
            )
            theirs = kubo.cli("add", "-Q", "--only-hash", *extra, *FLAGS[profile], str(path))
            assert ours == theirs, (path, extra)


def test_cid_default_profile_is_unixfs_v1_2025(
    kubo: KuboDaemon, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "f").write_bytes(b"".join(chacha20("default", 1048577)))
    with kubo.import_profile("unixfs-v1-2025"):
        assert run(capsys, "cid", str(tmp_path / "f")) == kubo.cli(
            "add", "-Qn", str(tmp_path / "f")
        )


def test_car_imports_into_kubo_and_equals_its_export(
    kubo: KuboDaemon, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    tree = make_tree(tmp_path)
    out = tmp_path / "out" / "tree.car"
    root = run(capsys, "car", str(tree), "-o", str(out), "--profile", "kubo-v1")
    with open(out, "rb") as car:
        assert verify_car(car).blocks > 3
    assert not list(out.parent.glob("*.blocks")) and not list(out.parent.glob("*.part"))
    assert kubo.cli("dag", "import", str(out)).startswith(f"Pinned root\t{root}\tsuccess")
    exported = tmp_path / "exported.car"
    exported.write_bytes(kubo.rpc("dag/export", root))
    assert exported.read_bytes() == out.read_bytes()
    big = tree / "sub" / "ę" / "big.bin"
    assert kubo.rpc("cat", f"{root}/sub/ę/big.bin") == big.read_bytes()


def test_missing_path_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["cid", str(tmp_path / "nope")]) == 1
    assert "No such file" in capsys.readouterr().err
    assert cli.main(["car", str(tmp_path / "nope"), "-o", str(tmp_path / "x.car")]) == 1
    assert not (tmp_path / "x.car").exists()

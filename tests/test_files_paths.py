"""Output layout and hostile paths: refused with a reason, never written outside files/."""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

import pytest

from hfspider.files.paths import (
    UnsafePathError,
    local_path,
    model_dir,
    partial_paths,
    prepare_destination,
    safe_parts,
)
from hfspider.hubsim.repofiles import HOSTILE_FILES

SHA = "a" * 40


@pytest.mark.parametrize(
    ("path", "why"),
    [
        ("", "empty path"),
        ("/etc/passwd", "absolute path"),
        ("../escape.txt", "'..'"),
        ("docs/../../escape.txt", "'..'"),
        ("./README.md", "'.'"),
        ("docs//x.md", "''"),
        ("docs/", "''"),
        ("C:/Windows/x.dll", "drive letter"),
        ("c:x.txt", "drive letter"),
        ("..\\..\\evil.txt", "backslash"),
        ("ctrl\x07bell.txt", "U+0007"),
        ("line\nbreak.txt", "U+000A"),
        ("nul\x00.txt", "U+0000"),
        ("del\x7f.txt", "U+007F"),
        ("c1\x85.txt", "U+0085"),
        ("sep\u2028.txt", "U+2028"),
        ("x" * 256, "longer than 255 bytes"),
        ("\u00e9" * 128, "longer than 255 bytes"),  # 256 bytes of UTF-8 in 128 characters
        ("lone\ud800.txt", "UTF-8"),
    ],
)
def test_unsafe_repo_paths_are_refused_with_a_reason(path: str, why: str) -> None:
    with pytest.raises(UnsafePathError, match=re.escape(why)):
        safe_parts(path)


@pytest.mark.parametrize(
    "path",
    [
        "README.md",
        "onnx/model.onnx",
        "tools/-rf",
        " leading-space.txt",
        "trailing-dot.",
        "%2e%2e%2fescape.txt",
        "...",
        "..hidden",
        "docs/caf\u00e9.md",
        "invoice-\u202etxt.exe",
        "x" * 255,
    ],
)
def test_odd_but_harmless_names_are_kept_as_they_are(path: str) -> None:
    assert "/".join(safe_parts(path)) == path


def test_the_emulators_hostile_names_split_as_documented() -> None:
    refused = {}
    for names in HOSTILE_FILES.values():
        for name in names:
            try:
                safe_parts(name)
            except UnsafePathError as exc:
                refused[name] = str(exc)
    assert set(refused) == {
        "..\\..\\evil.txt",
        "ctrl\x07bell.txt",
        "line\nbreak.txt",
        "x" * 296 + ".txt",
    }


def test_layout_is_files_model_id_sha_repo_path() -> None:
    assert local_path("org/model", SHA, "onnx/model.onnx") == PurePosixPath(
        "files/org/model", SHA, "onnx/model.onnx"
    )
    assert model_dir("gpt2", SHA) == PurePosixPath("files/gpt2", SHA)
    with pytest.raises(ValueError):
        model_dir("org/../x", SHA)
    with pytest.raises(UnsafePathError):
        model_dir("org/model", "../" + SHA[3:])


def test_partial_files_are_named_by_a_hash_not_by_the_repo_path(tmp_path: Path) -> None:
    part, meta = partial_paths(tmp_path, "org/model", SHA, "x.bin")
    other, _ = partial_paths(tmp_path, "org/model", SHA, "x.bin.part")
    assert part.parent == tmp_path / "state" / "partial" and meta.parent == part.parent
    assert part.suffix == ".part" and meta.suffix == ".json" and part.stem == meta.stem
    assert len(part.stem) == 32 and part != other


def test_destination_folders_are_made_one_by_one(tmp_path: Path) -> None:
    relative = local_path("org/model", SHA, "a/b/c.txt")
    dest = prepare_destination(tmp_path, relative)
    assert dest == tmp_path.joinpath(*relative.parts) and dest.parent.is_dir()
    dest.write_text("x")
    assert prepare_destination(tmp_path, relative) == dest  # an existing regular file is fine


def test_a_symlink_planted_in_the_tree_is_refused_and_nothing_goes_through_it(
    tmp_path: Path,
) -> None:
    output, outside = tmp_path / "out", tmp_path / "outside"
    outside.mkdir()
    base = output.joinpath(*model_dir("org/model", SHA).parts)
    base.mkdir(parents=True)
    (base / "docs").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="symlink"):
        prepare_destination(output, local_path("org/model", SHA, "docs/deeper/x.md"))
    (base / "link.txt").symlink_to(outside / "target.txt")
    with pytest.raises(UnsafePathError, match="not a regular file"):
        prepare_destination(output, local_path("org/model", SHA, "link.txt"))
    assert list(outside.iterdir()) == []


def test_a_path_too_long_for_the_file_system_is_refused(tmp_path: Path) -> None:
    deep = "/".join(["d" * 200] * 25) + "/x.txt"
    with pytest.raises(UnsafePathError, match="4096"):
        prepare_destination(tmp_path, local_path("org/model", SHA, deep))
    assert not (tmp_path / "files").exists() or not any(os.scandir(tmp_path / "files"))

"""Where fetched files go, and the refusal of every repo path that could leave that place.

Layout under OUTPUT_DIR: `files/<model id>/<sha>/<repo path>` (the model id is
`author/name`, or `name` for the few legacy ids), plus the working state in `state/`:
`state/partial/<key>.part` (+ `.json`) for unfinished downloads, keyed by a hash of
(model, sha, path) so that no repo name can collide with a partial file or reach it.

A repo path is refused when it is empty, absolute, has a `.`, `..` or empty component, a
backslash, a drive letter (`C:`), a control character, a component over 255 bytes, or is
not valid UTF-8. Names that are odd but harmless on POSIX (leading dash or space, trailing
dot, `%2e%2e`, bidi marks, emoji) are kept as they are. Folders are created one by one and
an existing symlink (or non-folder) on the way is refused, so nothing can be written through
a link planted in the output tree.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import unicodedata
from pathlib import Path, PurePosixPath

from hfspider.hub.endpoints import validate_repo_id

FILES_DIR = "files"
PARTIAL_DIR = PurePosixPath("state", "partial")
NAME_MAX = 255  # bytes per path component (Linux NAME_MAX)
PATH_MAX = 4096  # bytes of a whole path (Linux PATH_MAX)
# Line and paragraph separators break line-based logs and listings like control characters.
LINE_BREAKING = frozenset("\u2028\u2029\u0085")
_DRIVE_RE = re.compile(r"^[A-Za-z]:")
_SHA_RE = re.compile(r"^[0-9a-f]{40}$")


class UnsafePathError(ValueError):
    """A repo path that could escape the model's folder or break the file system."""


def safe_parts(path: str) -> tuple[str, ...]:
    """The `/`-separated components of a repo path, or UnsafePathError saying why not."""
    if not isinstance(path, str) or not path:
        raise UnsafePathError("empty path")
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raise UnsafePathError("not valid UTF-8 (lone surrogate)") from None
    for char in path:
        if unicodedata.category(char) == "Cc" or char in LINE_BREAKING:
            raise UnsafePathError(f"control character U+{ord(char):04X}")
    if "\\" in path:
        raise UnsafePathError("backslash (a Windows path separator)")
    if path.startswith("/"):
        raise UnsafePathError("absolute path")
    parts = tuple(path.split("/"))
    for part in parts:
        if part in ("", ".", ".."):
            raise UnsafePathError(f"path component {part!r}")
        if _DRIVE_RE.match(part):
            raise UnsafePathError(f"drive letter in {part!r}")
        if len(part.encode("utf-8")) > NAME_MAX:
            raise UnsafePathError(f"a name longer than {NAME_MAX} bytes")
    return parts


def model_dir(model_id: str, sha: str) -> PurePosixPath:
    """`files/<model id>/<sha>`, relative to OUTPUT_DIR (the id checked by the Hub's rules)."""
    if not isinstance(sha, str) or not _SHA_RE.fullmatch(sha):
        raise UnsafePathError(f"not a 40-hex commit: {sha!r}")
    return PurePosixPath(FILES_DIR, *validate_repo_id(model_id).split("/"), sha)


def local_path(model_id: str, sha: str, filename: str) -> PurePosixPath:
    """Where a repo file lands, relative to OUTPUT_DIR (the record's `local_path`)."""
    return model_dir(model_id, sha).joinpath(*safe_parts(filename))


def prepare_destination(output: Path, relative: PurePosixPath) -> Path:
    """Create the folders of `relative` below `output/files` one by one and return the file's
    absolute path; UnsafePathError if a folder on the way is a symlink or not a folder, the
    target is anything but a regular file, or the whole path is too long."""
    root = output / FILES_DIR
    parts = relative.parts
    if parts[:1] != (FILES_DIR,) or len(parts) < 2:
        raise UnsafePathError(f"not below {FILES_DIR}/: {relative}")
    target = root.joinpath(*parts[1:])
    if len(os.fsencode(target)) >= PATH_MAX:
        raise UnsafePathError(f"the whole path is longer than {PATH_MAX} bytes")
    root.mkdir(parents=True, exist_ok=True)
    folder = root
    for part in parts[1:-1]:
        folder = folder / part
        try:
            folder.mkdir()
        except FileExistsError:
            if not stat.S_ISDIR(os.lstat(folder).st_mode):
                raise UnsafePathError(f"{folder} is a symlink or a file, not a folder") from None
    try:
        mode = os.lstat(target).st_mode
    except FileNotFoundError:
        return target
    if not stat.S_ISREG(mode):
        raise UnsafePathError(f"{target} exists and is not a regular file")
    return target


def partial_paths(output: Path, model_id: str, sha: str, filename: str) -> tuple[Path, Path]:
    """(`.part`, `.json`) of an unfinished download: named by a hash, never by the repo path."""
    key = hashlib.sha256(f"{model_id}\0{sha}\0{filename}".encode())
    stem = output / PARTIAL_DIR / key.hexdigest()[:32]
    return stem.with_suffix(".part"), stem.with_suffix(".json")

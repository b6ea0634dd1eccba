"""A local file or directory tree into UnixFS, with `ipfs add -r` semantics.

Hidden entries (names starting with a dot) are skipped unless asked for, symbolic links are
stored as links (never followed), empty directories are kept: Kubo's defaults.
"""

from __future__ import annotations

import os
from pathlib import Path

from hfspider.ipfs.blockstore import BlockSink
from hfspider.ipfs.cid import cid_bytes
from hfspider.ipfs.directory import build_directory, symlink
from hfspider.ipfs.importer import import_stream
from hfspider.ipfs.nodes import Link
from hfspider.ipfs.params import ImportParams


def add_path(
    path: str | os.PathLike[str], params: ImportParams, sink: BlockSink, *, hidden: bool = False
) -> Link:
    path = Path(path)
    if path.is_symlink():
        return symlink(os.readlink(path), params, sink)
    if path.is_dir():
        entries = {
            child.name: add_path(child, params, sink, hidden=hidden)
            for child in path.iterdir()
            if hidden or not child.name.startswith(".")
        }
        return build_directory(entries, params, sink)
    with open(path, "rb") as stream:
        imported = import_stream(stream, params, sink)
    return Link(cid_bytes(imported.cid), imported.tsize, imported.size)

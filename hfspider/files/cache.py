"""The local copy of fetched files as a size-capped cache: the least recently used file goes
first, but a file not yet stored in IPFS never goes.

The files are the verified files under OUTPUT_DIR/files/; this index (`state/files.sqlite`)
knows each one's size, when it was last used and whether it is stored. Paths are the records'
`local_path` values (relative to OUTPUT_DIR, `/`-separated). The life of a file:

* `add(path, size)`: it was just downloaded, or reused by a new snapshot record. Either way
  it (re)joins the working set: unstored, most recently used.
* `mark_stored(paths)`: called by the IPFS stage once a model's CAR is written (and pinned,
  when a node is configured). Only now may the files be evicted.
* `make_room(size)`: before a download, stored files are deleted, least recently used first,
  until `size` more bytes fit under the cap. When only unstored files are left the cap is
  exceeded (logged once, counted): losing a file that IPFS does not have yet is worse.

The index is SQLite in WAL mode with one transaction per change, so a `kill -9` leaves it
consistent; a file that landed without its row (killed in between) is simply re-added when a
rerun reuses it.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Iterable
from pathlib import Path, PurePath, PurePosixPath
from typing import Protocol

from hfspider.files.paths import FILES_DIR

logger = logging.getLogger(__name__)

INDEX_FILE = PurePosixPath("state", "files.sqlite")
STATS_PREFIX = "hfspider/files/cache"


class Stats(Protocol):
    def inc_value(self, key: str, count: int = 1, start: int = 0) -> None: ...


class FileCache:
    """Size-capped LRU of verified files that never evicts an unstored one (module doc)."""

    def __init__(self, output: Path, max_bytes: int, stats: Stats | None = None) -> None:
        self.output = output
        self.max_bytes = max_bytes  # 0: no cap
        self.stats = stats
        self._warned = False
        path = output / INDEX_FILE
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute(
            "CREATE TABLE IF NOT EXISTS files (path TEXT PRIMARY KEY, size INTEGER NOT NULL,"
            " used INTEGER NOT NULL, stored INTEGER NOT NULL DEFAULT 0)"
        )
        self.db.execute("CREATE INDEX IF NOT EXISTS files_lru ON files (stored, used)")

    def _count(self, name: str, value: int = 1) -> None:
        if self.stats is not None:
            self.stats.inc_value(f"{STATS_PREFIX}/{name}", value)

    def add(self, path: str | PurePath, size: int) -> None:
        """A verified file landed or was reused: unstored and most recently used."""
        self.db.execute(
            "INSERT INTO files (path, size, used, stored)"
            " VALUES (?, ?, (SELECT COALESCE(MAX(used), 0) + 1 FROM files), 0)"
            " ON CONFLICT (path) DO UPDATE SET size = excluded.size, used = excluded.used,"
            " stored = 0",
            (PurePosixPath(path).as_posix(), size),
        )
        self.make_room(0)

    def forget(self, path: str | PurePath) -> None:
        """The file is gone (it failed verification and was deleted)."""
        self.db.execute("DELETE FROM files WHERE path = ?", (PurePosixPath(path).as_posix(),))

    def mark_stored(self, paths: Iterable[str | PurePath]) -> int:
        """The IPFS stage's call once a model's CAR is written (and pinned, with a node):
        these files may now be evicted. Returns how many indexed files it marked."""
        marked = 0
        with self.db:
            for path in paths:
                cursor = self.db.execute(
                    "UPDATE files SET stored = 1 WHERE path = ?", (PurePosixPath(path).as_posix(),)
                )
                marked += cursor.rowcount
        self.make_room(0)
        return marked

    def total(self) -> int:
        """Bytes of all indexed files."""
        return int(self.db.execute("SELECT COALESCE(SUM(size), 0) FROM files").fetchone()[0])

    def make_room(self, size: int) -> None:
        """Evict stored files, least recently used first, until `size` more bytes fit."""
        if not self.max_bytes:
            return
        excess = self.total() + size - self.max_bytes
        if excess <= 0:
            return
        candidates = self.db.execute(
            "SELECT path, size FROM files WHERE stored = 1 ORDER BY used"
        ).fetchall()
        for path, file_size in candidates:
            if excess <= 0:
                break
            self._evict(path)
            excess -= file_size
            self._count("evicted")
            self._count("evicted_bytes", file_size)
        if excess > 0:
            self._count("over_cap")
            if not self._warned:
                self._warned = True
                logger.warning(
                    "File cache over FILES_CACHE_MAX_SIZE (%d bytes) by %d bytes: the rest is"
                    " not yet stored in IPFS, so it is kept",
                    self.max_bytes,
                    excess,
                )

    def _evict(self, path: str) -> None:
        """Delete one file and the folders it leaves empty (up to files/)."""
        relative = PurePosixPath(path)
        if relative.parts[:1] != (FILES_DIR,) or ".." in relative.parts:
            raise ValueError(f"not a cached file path: {path!r}")
        target = self.output.joinpath(*relative.parts)
        target.unlink(missing_ok=True)
        self.db.execute("DELETE FROM files WHERE path = ?", (path,))
        root = self.output / FILES_DIR
        folder = target.parent
        while folder != root:
            try:
                folder.rmdir()
            except OSError:  # not empty (or already gone): the folders above stay too
                break
            folder = folder.parent

    def close(self) -> None:
        self.db.close()

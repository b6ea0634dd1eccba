"""The models a crawl has listed so far, on disk: a model listed twice in one crawl is crawled
once.

The listing can show a model twice (it moved between pages while they were read), so the
spider drops an identity (the Hub's `_id`) it has seen already. A set of them in memory grew
with the crawl (~0.1 MB per 1,000 models, ~200 MB for the whole Hub's ~2M models); this keeps
them in a small SQLite file of its own instead, with a page cache of bounded size. It is not
the record store (`records.sqlite`), whose connection a group-commit thread writes to: the two
never wait for each other.

Where the file is:

* with JOBDIR, `JOBDIR/seen-ids.sqlite`, kept: a graceful stop saves in `spider.state` how many
  identities it held (`len()`), and the resumed crawl `truncate`s back to that many, so it
  dedupes exactly as the stopped one would have (the ids are numbered in insertion order);
* without JOBDIR, `OUTPUT_DIR/state/seen/<pid>.sqlite`, removed at close (and, after a
  `kill -9`, by the next crawl: `remove_stale`). A crawl that starts over from the store's
  checkpoint (the first run, or after a `kill -9`) starts with no identity seen, as before.

Writes are not synced (`synchronous = OFF`, WAL): a crash of this process loses nothing
committed, and the file is worthless after a crash of the machine anyway (the crawl then
resumes from the store's checkpoint, which `clear`s it).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from pathlib import Path

from hfspider.pidstate import remove_stale

# The file's name in JOBDIR, and the folder of per-process files under OUTPUT_DIR.
JOBDIR_FILE = "seen-ids.sqlite"
TEMP_DIR = Path("state", "seen")
SUFFIXES = ("", "-wal", "-shm", "-journal")  # the database file and SQLite's companions
DDL = "CREATE TABLE IF NOT EXISTS seen (id TEXT NOT NULL UNIQUE)"
INSERT = "INSERT OR IGNORE INTO seen (id) VALUES (?)"


class SeenIds:
    """A set of identities in SQLite, filled in insertion order. Use from one thread."""

    def __init__(self, path: str | os.PathLike[str], temporary: bool = False) -> None:
        self.path = Path(path)
        self.temporary = temporary  # removed at close
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = OFF")
        self._db.execute(DDL)

    @classmethod
    def for_crawl(cls, output_dir: Path, jobdir: str | None) -> SeenIds:
        """The crawl's file: in JOBDIR if there is one, else a temporary one (module doc)."""
        if jobdir:
            return cls(Path(jobdir) / JOBDIR_FILE)
        remove_stale(output_dir / TEMP_DIR)
        return cls(output_dir / TEMP_DIR / f"{os.getpid()}.sqlite", temporary=True)

    def add(self, identities: Sequence[str]) -> list[bool]:
        """Add identities in order, in one transaction; for each, True if it was new (the
        same identity twice in `identities` is new the first time only)."""
        execute = self._db.execute
        execute("BEGIN")
        try:
            new = [execute(INSERT, (identity,)).rowcount == 1 for identity in identities]
        except BaseException:
            execute("ROLLBACK")
            raise
        execute("COMMIT")
        return new

    def __len__(self) -> int:
        """How many identities were added (rows are never deleted but by `truncate`)."""
        return self._db.execute("SELECT coalesce(max(rowid), 0) FROM seen").fetchone()[0]

    def truncate(self, count: int) -> None:
        """Forget every identity added after the first `count` (0: all of them)."""
        self._db.execute("DELETE FROM seen WHERE rowid > ?", (count,))

    def clear(self) -> None:
        """Forget every identity (SQLite empties a table faster without a WHERE)."""
        self._db.execute("DELETE FROM seen")

    def close(self) -> None:
        self._db.close()
        if self.temporary:
            for suffix in SUFFIXES:
                Path(f"{self.path}{suffix}").unlink(missing_ok=True)

    def __enter__(self) -> SeenIds:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

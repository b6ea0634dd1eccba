"""Which CAR file holds which model snapshot, the directory link the crawl root needs, and
the local files the CAR holds (the file cache may evict them once the CAR is stored).

The crawl root links each model's snapshot directory by CID *and* cumulative size (Tsize),
which the record does not carry; this small SQLite table keeps both, per (model_id, sha), so
the root of every current snapshot can be rebuilt at the end of any crawl, including models
stored by earlier crawls and crawls resumed after a crash.
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path
from types import TracebackType

from hfspider.ipfs import Link, cid_bytes, cid_str

SCHEMA = """
CREATE TABLE IF NOT EXISTS snapshots (
    model_id   TEXT NOT NULL,
    sha        TEXT NOT NULL,
    dir_cid    TEXT NOT NULL,
    dir_tsize  INTEGER NOT NULL,
    record_cid TEXT NOT NULL,
    car_path   TEXT NOT NULL,
    files      TEXT NOT NULL,
    PRIMARY KEY (model_id, sha)
);
CREATE INDEX IF NOT EXISTS snapshots_by_car ON snapshots (car_path);
"""
INSERT = "INSERT OR REPLACE INTO snapshots VALUES (?, ?, ?, ?, ?, ?, ?)"
# One row of `snapshots`, as `row()` makes it and `put_many` takes it.
IndexRow = tuple[str, str, str, int, str, str, str]


class CarIndex:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def put(
        self,
        model_id: str,
        sha: str,
        directory: Link,
        record_cid: str,
        car_path: str,
        files: list[str],
    ) -> None:
        """Remember a written CAR and the local files in it (the same snapshot again replaces
        its row)."""
        self.put_many([row(model_id, sha, directory, record_cid, car_path, files)])

    def put_many(self, rows: list[IndexRow]) -> None:
        """Several `put`s in one transaction (one commit, one fsync: the IPFS stage's group
        commit)."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.executemany(INSERT, rows)
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def files(self, car_path: str) -> list[str]:
        """The local files (relative to OUTPUT_DIR) whose bytes the CAR at `car_path` holds."""
        row = self._db.execute(
            "SELECT files FROM snapshots WHERE car_path = ?", (car_path,)
        ).fetchone()
        return [] if row is None else json.loads(row[0])

    def directory(self, model_id: str, sha: str) -> Link | None:
        """The snapshot directory as a parent links it, or None if no CAR was written."""
        row = self._db.execute(
            "SELECT dir_cid, dir_tsize FROM snapshots WHERE model_id = ? AND sha = ?",
            (model_id, sha),
        ).fetchone()
        return None if row is None else Link(cid_bytes(row[0]), row[1], 0)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> CarIndex:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType
    ) -> None:
        self.close()


def row(
    model_id: str, sha: str, directory: Link, record_cid: str, car_path: str, files: list[str]
) -> IndexRow:
    """The index row of a written CAR (see `CarIndex.put`)."""
    cid = cid_str(directory.cid)
    return (model_id, sha, cid, directory.tsize, record_cid, car_path, json.dumps(files))

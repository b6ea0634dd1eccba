"""The record store: one SQLite database (WAL, synchronous=FULL) holding every committed
snapshot and the crawl checkpoints.

Exactly-once output comes from at-least-once processing plus this idempotent sink: a record
is keyed by (model_id, sha), a commit is one transaction, and committing the same key again
replaces the row instead of adding one. A `kill -9` at any moment leaves either the whole
transaction or none of it. `current` maps each model (by the Hub's immutable `_id`, so a
rename does not count twice) to its newest committed snapshot: that is what gets exported.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, NamedTuple

import orjson

SCHEMA_VERSION = 1
# The store's file name inside the output directory.
STORE_FILE = "records.sqlite"
DDL = (
    """CREATE TABLE IF NOT EXISTS records (
    model_id TEXT NOT NULL,
    sha TEXT NOT NULL,
    hub_id TEXT NOT NULL,
    pipeline_tag TEXT,
    crawl_mode TEXT NOT NULL,
    last_updated TEXT,
    record BLOB NOT NULL,
    PRIMARY KEY (model_id, sha)
)""",
    """CREATE TABLE IF NOT EXISTS current (
    hub_id TEXT PRIMARY KEY,
    model_id TEXT NOT NULL,
    sha TEXT NOT NULL,
    pipeline_tag TEXT,
    last_updated TEXT
)""",
    "CREATE INDEX IF NOT EXISTS current_by_tag ON current (pipeline_tag, model_id)",
    """CREATE TABLE IF NOT EXISTS checkpoints (
    crawl_key TEXT PRIMARY KEY,
    cursor_url TEXT NOT NULL,
    position INTEGER NOT NULL
)""",
)
# A lite record never replaces a full one of the same snapshot (it knows less).
UPSERT_RECORD = """
INSERT INTO records (model_id, sha, hub_id, pipeline_tag, crawl_mode, last_updated, record)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (model_id, sha) DO UPDATE SET
    hub_id = excluded.hub_id, pipeline_tag = excluded.pipeline_tag,
    crawl_mode = excluded.crawl_mode, last_updated = excluded.last_updated,
    record = excluded.record
WHERE NOT (records.crawl_mode = 'full' AND excluded.crawl_mode = 'lite')
"""
# An older snapshot committed late (a replay after a crash) does not hide a newer one.
UPSERT_CURRENT = """
INSERT INTO current (hub_id, model_id, sha, pipeline_tag, last_updated) VALUES (?, ?, ?, ?, ?)
ON CONFLICT (hub_id) DO UPDATE SET
    model_id = excluded.model_id, sha = excluded.sha, pipeline_tag = excluded.pipeline_tag,
    last_updated = excluded.last_updated
WHERE current.last_updated IS NULL OR excluded.last_updated >= current.last_updated
"""


class Checkpoint(NamedTuple):
    """Where a crawl resumes: the listing page URL, and how many models the listing had
    yielded before that page (so that a `limit` still counts from the first page)."""

    url: str
    position: int


class RecordStore:
    """Committed records and crawl checkpoints in one SQLite file. Use from one thread."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: every transaction below is explicit (BEGIN ... COMMIT).
        self._db = sqlite3.connect(self.path, isolation_level=None)
        self._db.execute("PRAGMA busy_timeout = 30000")
        mode = self._db.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if mode != "wal":
            raise RuntimeError(f"{self.path}: SQLite refused WAL mode (got {mode!r})")
        self._db.execute("PRAGMA synchronous = FULL")
        version = self._db.execute("PRAGMA user_version").fetchone()[0]
        if version not in (0, SCHEMA_VERSION):
            raise RuntimeError(f"{self.path}: store format {version}, expected {SCHEMA_VERSION}")
        with self._transaction():
            for statement in DDL:
                self._db.execute(statement)
            self._db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK if the block raises."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def commit(self, records: Iterable[Mapping[str, Any]]) -> int:
        """Store validated records in one transaction; returns how many keys were new."""
        rows = [
            (
                record["model_id"],
                record["sha"],
                record["hub_id"],
                record["pipeline_tag"],
                record["crawl_mode"],
                record["last_updated"],
                orjson.dumps(record),
            )
            for record in records
        ]
        new = 0
        with self._transaction():
            for row in rows:
                new += not self._exists(row[0], row[1])
                self._db.execute(UPSERT_RECORD, row)
                self._db.execute(UPSERT_CURRENT, (row[2], row[0], row[1], row[3], row[5]))
        return new

    def _exists(self, model_id: str, sha: str) -> bool:
        query = "SELECT 1 FROM records WHERE model_id = ? AND sha = ?"
        return self._db.execute(query, (model_id, sha)).fetchone() is not None

    def has(self, model_id: str, sha: str, crawl_mode: str = "full") -> bool:
        """True if this snapshot is committed at least as completely as `crawl_mode` asks
        (a `lite` record does not satisfy a `full` crawl)."""
        row = self._db.execute(
            "SELECT crawl_mode FROM records WHERE model_id = ? AND sha = ?", (model_id, sha)
        ).fetchone()
        return row is not None and (crawl_mode == "lite" or row[0] == "full")

    def get(self, model_id: str, sha: str) -> dict[str, Any] | None:
        row = self._db.execute(
            "SELECT record FROM records WHERE model_id = ? AND sha = ?", (model_id, sha)
        ).fetchone()
        return orjson.loads(row[0]) if row else None

    def count(self) -> int:
        """Number of models (current snapshots), i.e. rows of an export."""
        return self._db.execute("SELECT count(*) FROM current").fetchone()[0]

    def iter_current(self) -> Iterator[tuple[str | None, bytes]]:
        """(pipeline_tag, record JSON) of every model's current snapshot, by pipeline_tag then
        model_id. One SELECT, so one consistent snapshot even while a crawl commits."""
        cursor = self._db.execute(
            "SELECT c.pipeline_tag, r.record FROM current AS c"
            " JOIN records AS r ON r.model_id = c.model_id AND r.sha = c.sha"
            " ORDER BY c.pipeline_tag, c.model_id"
        )
        yield from cursor  # row by row: a big batch of 1 MiB cards would not be bounded

    def current_snapshots(self) -> Iterator[tuple[str, str]]:
        """(model_id, sha) of every model's current snapshot, by model_id."""
        yield from self._db.execute("SELECT model_id, sha FROM current ORDER BY model_id")

    def checkpoint(self, crawl_key: str) -> Checkpoint | None:
        """Where a crawl with this configuration resumes, if anywhere."""
        row = self._db.execute(
            "SELECT cursor_url, position FROM checkpoints WHERE crawl_key = ?", (crawl_key,)
        ).fetchone()
        return Checkpoint(*row) if row else None

    def save_checkpoint(self, crawl_key: str, cursor_url: str | None, position: int = 0) -> None:
        """Remember where to resume; None forgets it (the crawl finished: start afresh)."""
        with self._transaction():
            if cursor_url is None:
                self._db.execute("DELETE FROM checkpoints WHERE crawl_key = ?", (crawl_key,))
            else:
                self._db.execute(
                    "INSERT INTO checkpoints (crawl_key, cursor_url, position) VALUES (?, ?, ?)"
                    " ON CONFLICT (crawl_key) DO UPDATE"
                    " SET cursor_url = excluded.cursor_url, position = excluded.position",
                    (crawl_key, cursor_url, position),
                )

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> RecordStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

"""The durable import queue: which CARs still have to reach the node, and what happened.

SQLite in WAL mode, one transaction per change, synchronous=FULL: a `kill -9` (or a power
cut) at any moment leaves every entry either before or after its last change, never lost.
An entry goes `pending -> stored` only when the node has confirmed the pin, and only once;
`pending -> failed` when retrying cannot help (a corrupted CAR, a CID mismatch).
"""

from __future__ import annotations

import json
import os
import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

PENDING, STORED, FAILED = "pending", "stored", "failed"

SCHEMA = """
CREATE TABLE IF NOT EXISTS imports (
    key        TEXT PRIMARY KEY,
    model_id   TEXT NOT NULL,
    car_path   TEXT NOT NULL,
    roots      TEXT NOT NULL,
    state      TEXT NOT NULL,
    attempts   INTEGER NOT NULL DEFAULT 0,
    next_try   REAL NOT NULL,
    last_error TEXT,
    queued_at  REAL NOT NULL,
    stored_at  REAL
);
CREATE INDEX IF NOT EXISTS imports_due ON imports (state, next_try);
"""


class ImportEntry(NamedTuple):
    key: str
    model_id: str
    car_path: str
    roots: list[str]
    state: str
    attempts: int
    next_try: float
    last_error: str | None


class ImportQueue:
    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)

    def close(self) -> None:
        self._db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def put(self, key: str, model_id: str, car_path: str, roots: list[str]) -> bool:
        """Queue a CAR; False when the same CAR and roots are already queued or stored.

        A different CAR or roots under the same key replace the entry and start it over.
        """
        roots_json = json.dumps(roots)
        now = time.time()
        with self._transaction() as db:
            row = db.execute(
                "SELECT car_path, roots, state FROM imports WHERE key = ?", (key,)
            ).fetchone()
            if row is not None and row[:2] == (car_path, roots_json) and row[2] != FAILED:
                return False
            db.execute(
                "INSERT OR REPLACE INTO imports"
                " (key, model_id, car_path, roots, state, next_try, queued_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, model_id, car_path, roots_json, PENDING, now, now),
            )
        return True

    def due(self, now: float | None = None, limit: int = 100) -> list[ImportEntry]:
        """Pending entries whose next try has come, oldest first."""
        rows = self._db.execute(
            f"SELECT {', '.join(ImportEntry._fields)} FROM imports"
            " WHERE state = ? AND next_try <= ? ORDER BY queued_at, rowid LIMIT ?",
            (PENDING, time.time() if now is None else now, limit),
        ).fetchall()
        return [self._entry(row) for row in rows]

    def get(self, key: str) -> ImportEntry | None:
        row = self._db.execute(
            f"SELECT {', '.join(ImportEntry._fields)} FROM imports WHERE key = ?", (key,)
        ).fetchone()
        return None if row is None else self._entry(row)

    def next_try(self) -> float | None:
        """When the earliest pending entry is due (None: nothing pending)."""
        row = self._db.execute(
            "SELECT MIN(next_try) FROM imports WHERE state = ?", (PENDING,)
        ).fetchone()
        return row[0]

    def retry(self, key: str, error: str, delay: float, *, counts: bool = True) -> None:
        """Try again in `delay` seconds; `counts=False` when the node was simply unreachable."""
        with self._transaction() as db:
            db.execute(
                "UPDATE imports SET next_try = ?, last_error = ?, attempts = attempts + ?"
                " WHERE key = ? AND state = ?",
                (time.time() + delay, error, int(counts), key, PENDING),
            )

    def mark_stored(self, key: str) -> bool:
        """pending -> stored; False if it was not pending (so nothing is counted twice)."""
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE imports SET state = ?, stored_at = ?, last_error = NULL, attempts ="
                " attempts + 1 WHERE key = ? AND state = ?",
                (STORED, time.time(), key, PENDING),
            ).rowcount
        return changed == 1

    def mark_failed(self, key: str, error: str) -> bool:
        with self._transaction() as db:
            changed = db.execute(
                "UPDATE imports SET state = ?, last_error = ?, attempts = attempts + 1"
                " WHERE key = ? AND state = ?",
                (FAILED, error, key, PENDING),
            ).rowcount
        return changed == 1

    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys((PENDING, STORED, FAILED), 0)
        for state, count in self._db.execute("SELECT state, COUNT(*) FROM imports GROUP BY state"):
            counts[state] = count
        return counts

    def entries(self, state: str | None = None) -> list[ImportEntry]:
        query = f"SELECT {', '.join(ImportEntry._fields)} FROM imports"
        rows = self._db.execute(
            query + (" WHERE state = ? ORDER BY rowid" if state else " ORDER BY rowid"),
            (state,) if state else (),
        ).fetchall()
        return [self._entry(row) for row in rows]

    @staticmethod
    def _entry(row: tuple) -> ImportEntry:
        values = list(row)
        values[3] = json.loads(values[3])
        return ImportEntry(*values)

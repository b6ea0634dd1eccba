"""Several record stores read as one: the output of a distributed crawl, where each worker
wrote its own OUTPUT_DIR (on any host; copy their records.sqlite files together).

A model may be in more than one store: a worker's lease expired while it was still crawling
the model and another worker crawled it too, or workers of different crawls saw different
snapshots. Like one store's `current` table, the merge keeps one snapshot per model (by the
Hub's immutable `_id`): the newest `last_updated`, and of equal ones a `full` record over a
`lite` one. So each (model_id, sha) is exported once. The picking runs in a temporary SQLite
database on disk, so memory stays bounded however many models there are.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Sequence
from pathlib import Path

from hfspider.store.records import STORE_FILE

PICK = """CREATE TABLE pick (
    hub_id TEXT PRIMARY KEY,
    model_id TEXT NOT NULL,
    sha TEXT NOT NULL,
    pipeline_tag TEXT,
    last_updated TEXT,
    is_full INTEGER NOT NULL,
    source INTEGER NOT NULL
)"""
UPSERT_PICK = """
INSERT INTO pick (hub_id, model_id, sha, pipeline_tag, last_updated, is_full, source)
VALUES (?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (hub_id) DO UPDATE SET
    model_id = excluded.model_id, sha = excluded.sha, pipeline_tag = excluded.pipeline_tag,
    last_updated = excluded.last_updated, is_full = excluded.is_full, source = excluded.source
WHERE pick.last_updated IS NULL
    OR excluded.last_updated > pick.last_updated
    OR (excluded.last_updated = pick.last_updated AND excluded.is_full > pick.is_full)
"""
CURRENT = """
SELECT c.hub_id, c.model_id, c.sha, c.pipeline_tag, c.last_updated, r.crawl_mode = 'full'
FROM current AS c JOIN records AS r ON r.model_id = c.model_id AND r.sha = c.sha
"""
RECORD = "SELECT record FROM records WHERE model_id = ? AND sha = ?"


def store_path(location: str | Path) -> Path:
    """A record store given as its file or as the output directory holding it."""
    location = Path(location)
    return location / STORE_FILE if location.is_dir() else location


class MergedStores:
    """Read-only view of several stores with `iter_current` like `RecordStore`'s."""

    def __init__(self, locations: Sequence[str | Path]) -> None:
        if not locations:
            raise ValueError("no record store to merge")
        self.paths = [store_path(location) for location in locations]
        for path in self.paths:
            if not path.is_file():
                raise FileNotFoundError(f"no record store at {path}")
        self._sources = [
            sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30) for path in self.paths
        ]
        self._pick = sqlite3.connect("")  # a private temporary database, on disk
        self._pick.execute(PICK)
        for index, source in enumerate(self._sources):
            rows = ((*row, index) for row in source.execute(CURRENT))
            with self._pick:
                self._pick.executemany(UPSERT_PICK, rows)

    def count(self) -> int:
        """Number of models, i.e. rows of an export."""
        return self._pick.execute("SELECT count(*) FROM pick").fetchone()[0]

    def iter_current(self) -> Iterator[tuple[str | None, bytes]]:
        """(pipeline_tag, record JSON) of each model's picked snapshot, by pipeline_tag then
        model_id, as `RecordStore.iter_current` gives them."""
        picked = self._pick.execute(
            "SELECT pipeline_tag, model_id, sha, source FROM pick ORDER BY pipeline_tag, model_id"
        )
        for tag, model_id, sha, source in picked:
            query = self._sources[source].execute(RECORD, (model_id, sha))
            yield tag, query.fetchone()[0]

    def close(self) -> None:
        for connection in (*self._sources, self._pick):
            connection.close()

    def __enter__(self) -> MergedStores:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

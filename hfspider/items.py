"""The unit of work that flows through the item pipelines: one model snapshot.

The published part is `record` (a dict valid against hfspider/schema/record.schema.json);
the rest is transient working state that later pipelines need but that is never stored:
`source`, the raw Hub answers (quoted in output/rejected/ if the record is refused) and under
"bodies" the whole files the spider already read (README.md, config.json: the files stage
verifies and reuses them instead of downloading them again), and, once files are fetched,
their import results and the store of their IPFS blocks (for the CAR).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from hfspider.ipfs import FileBlockstore, ImportedFile


@dataclass(repr=False)
class ModelItem:
    record: dict[str, Any]
    source: dict[str, Any]
    fetched: dict[str, ImportedFile] = field(default_factory=dict)
    blocks: FileBlockstore | None = None

    @property
    def key(self) -> tuple[str, str]:
        """(model_id, sha): the snapshot's identity in the store."""
        return self.record["model_id"], self.record["sha"]

    def __repr__(self) -> str:
        # Scrapy logs items it drops or fails on: the id, not megabytes of card and files.
        model_id, sha = self.record.get("model_id"), self.record.get("sha") or ""
        return f"ModelItem({model_id}@{sha[:12]}, {len(self.fetched)} files fetched)"

    def release(self) -> None:
        """Drop the block store (its blocks are in the CAR by now, or no longer wanted)."""
        if self.blocks is not None:
            self.blocks.close()
            self.blocks = None

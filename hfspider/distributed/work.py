"""One model's work as it travels from the lister to a worker: JSON, never pickle.

The payload is the listing item exactly as the Hub sent it (the worker needs nothing else to
do the per-model requests), the crawl mode and the id of the crawl that listed it. Anyone
who can write to the queue can only make workers crawl a Hub model: a payload is data,
checked like any Hub answer (`parse_model_info`), never code.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any

import orjson

from hfspider.hub.api import HubFormatError, ModelInfo, parse_model_info

FORMAT = 1
MODES = ("full", "lite")


def crawl_id(crawl_key: str) -> str:
    """A short stable name for a crawl (its filters and mode): the lister's mark in Redis."""
    return hashlib.sha256(crawl_key.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class Work:
    """A listed model to crawl: `listing` is the raw listing item, `model` its parsed form."""

    crawl: str
    mode: str
    listing: dict[str, Any]
    model: ModelInfo = field(compare=False)

    @classmethod
    def from_listing(cls, crawl: str, mode: str, listing: dict[str, Any]) -> Work:
        """ValueError (HubFormatError) if the listing item lacks what a worker needs."""
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
        model = parse_model_info(listing)
        if model.sha is None:
            raise HubFormatError(f"listing item of {model.id} has no commit sha")
        return cls(crawl, mode, listing, model)

    @property
    def id(self) -> str:
        """The queue's key for this work: one per snapshot and mode, so listing a model twice
        (a lister restarted from its checkpoint) queues it once."""
        return f"{self.model.id}@{self.model.sha}/{self.mode}"

    @property
    def sha(self) -> str:
        assert self.model.sha is not None  # checked in from_listing
        return self.model.sha

    def to_json(self) -> bytes:
        return orjson.dumps(
            {"format": FORMAT, "crawl": self.crawl, "mode": self.mode, "listing": self.listing}
        )

    @classmethod
    def from_json(cls, data: bytes) -> Work:
        """ValueError if `data` is not a work item of this format."""
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError as exc:
            raise ValueError(f"work item is not JSON: {exc}") from None
        if not isinstance(obj, dict) or obj.get("format") != FORMAT:
            raise ValueError(f"work item is not a format {FORMAT} object")
        crawl, listing = obj.get("crawl"), obj.get("listing")
        if not isinstance(crawl, str) or not isinstance(listing, dict):
            raise ValueError("work item lacks `crawl` (a string) or `listing` (an object)")
        return cls.from_listing(crawl, obj.get("mode"), listing)


@dataclass
class WorkItem:
    """The lister's item: `work` goes to the queue (EnqueuePipeline), after which the model
    counts as settled on listing page `page`, and the lister's checkpoint may move past it."""

    page: str
    work: Work

    def __repr__(self) -> str:
        return f"WorkItem({self.work.id})"

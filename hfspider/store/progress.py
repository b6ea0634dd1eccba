"""Which listing page a crawl may resume from after a crash.

Listing pages arrive in order (each names the next in its `Link`), but their models finish in
any order. The checkpoint is the URL of the earliest page that still has a model not settled
(committed, rejected or deliberately skipped); once every page seen so far is settled, it is
the next page's URL. Resuming there redoes at most the unsettled pages, and models already in
the store are skipped by key, so nothing is lost and nothing is stored twice.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass
class _Page:
    pending: set[str]
    next_url: str | None


class ListingProgress:
    """Pending models per listing page, in page order. Pure bookkeeping: the caller saves
    `checkpoint` (with `RecordStore.save_checkpoint`) whenever a call returns True.

    Pages are identified by the URL string that was requested (the start URL or a `Link`
    target as received), not by a re-encoded `response.url`.
    """

    def __init__(self, start_url: str) -> None:
        self._pages: dict[str, _Page] = {}
        self._after: str | None = start_url  # the next page to come once all are settled
        self._seen_last_page = False

    @property
    def expected_page(self) -> str | None:
        """The listing page `add_page` takes next (None once the last page was added)."""
        return next(reversed(self._pages.values())).next_url if self._pages else self._after

    def add_page(self, url: str, keys: Iterable[str], next_url: str | None) -> bool:
        """Register a page's models (call in listing order); True if the checkpoint moved."""
        expected = self.expected_page
        if url != expected:
            raise ValueError(f"listing page {url} is not the expected next page {expected}")
        before = self.checkpoint
        self._pages[url] = _Page(set(keys), next_url)
        self._seen_last_page = next_url is None
        self._drop_settled()
        return self.checkpoint != before

    def settle(self, url: str, key: str) -> bool:
        """Mark one model of page `url` as done; True if the checkpoint moved."""
        page = self._pages.get(url)
        if page is None or key not in page.pending:
            raise KeyError(f"{key!r} is not pending on listing page {url}")
        before = self.checkpoint
        page.pending.discard(key)
        self._drop_settled()
        return self.checkpoint != before

    @property
    def checkpoint(self) -> str | None:
        """Where a restart should begin; None once the whole listing is settled."""
        if self._pages:
            return next(iter(self._pages))
        return self._after

    @property
    def finished(self) -> bool:
        return self._seen_last_page and not self._pages

    def _drop_settled(self) -> None:
        while self._pages:
            url, page = next(iter(self._pages.items()))
            if page.pending:
                return
            del self._pages[url]
            self._after = page.next_url

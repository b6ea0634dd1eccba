"""Getting model CARs into a Kubo node without losing any: queue, retry, confirm the pin.

`submit()` checks a CAR locally (every block hash, the roots the crawl expects) and queues
it durably; `process_due()` imports due entries (`dag/import`, streamed from disk), pins
each root (`pin/add`) and marks the entry stored only when `pin/ls` confirms the pin. A node
that is down or failing just delays entries; a corrupted CAR or a CID mismatch fails the
entry with an error naming the model. Without `IPFS_PUSH`, `from_crawler` raises
NotConfigured and the CAR files under output/car/ are the result.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from scrapy.exceptions import NotConfigured

from hfspider.ipfs.car import CarError, verify_car
from hfspider.ipfs.cid import cid_bytes, cid_str
from hfspider.storage.kubo import KuboClient, KuboError, KuboUnavailableError
from hfspider.storage.queue import ImportEntry, ImportQueue

logger = logging.getLogger(__name__)
STATS_PREFIX = "hfspider/ipfs/"
# Kubo's dag/import message for a block whose bytes do not hash to its CID.
INTEGRITY_ERROR = "mismatch in content integrity"


class StorageError(RuntimeError):
    """A model whose CAR cannot be stored as it is; the message starts with the model id."""

    def __init__(self, model_id: str, problem: str) -> None:
        super().__init__(f"{model_id}: {problem}")
        self.model_id = model_id


class KuboStorage:
    def __init__(
        self,
        client: KuboClient,
        queue: ImportQueue,
        *,
        stats: Any = None,
        retry_delay: float = 1.0,
        max_retry_delay: float = 300.0,
        max_attempts: int = 10,
        on_stored: Callable[[ImportEntry], None] | None = None,
    ) -> None:
        self.client = client
        self.on_stored = on_stored
        self.queue = queue
        self.stats = stats
        self.retry_delay = retry_delay
        self.max_retry_delay = max_retry_delay
        self.max_attempts = max_attempts
        self._node_delay = retry_delay

    @classmethod
    def from_crawler(cls, crawler: Any) -> KuboStorage:
        settings = crawler.settings
        if not settings.getbool("IPFS_PUSH"):
            raise NotConfigured("IPFS_PUSH is off: the CAR files are the IPFS output")
        client = KuboClient(
            settings.get("IPFS_API") or None,
            auth=settings.get("IPFS_API_AUTH") or None,
            timeout=settings.getfloat("IPFS_TIMEOUT"),
            transfer_timeout=settings.getfloat("IPFS_TRANSFER_TIMEOUT"),
        )
        queue = ImportQueue(Path(settings.get("OUTPUT_DIR", "output")) / settings["IPFS_QUEUE"])
        return cls(
            client,
            queue,
            stats=crawler.stats,
            retry_delay=settings.getfloat("IPFS_RETRY_DELAY"),
            max_retry_delay=settings.getfloat("IPFS_RETRY_MAX_DELAY"),
            max_attempts=settings.getint("IPFS_MAX_ATTEMPTS"),
        )

    def _inc(self, name: str, count: int = 1) -> None:
        if self.stats is not None:
            self.stats.inc_value(STATS_PREFIX + name, count)

    def check(self, model_id: str, car_path: str | os.PathLike[str], roots: list[str]) -> None:
        """Re-hash every block of the CAR and compare its roots with `roots` (no queue access,
        so it may run in a worker thread); StorageError when the CAR is corrupted or differs."""
        try:
            with open(car_path, "rb") as car:
                summary = verify_car(car)
        except (OSError, CarError) as exc:
            self._inc("failed")
            raise StorageError(model_id, f"bad CAR {os.fspath(car_path)}: {exc}") from None
        if summary.roots != [cid_bytes(root) for root in roots]:
            self._inc("failed")
            found = [cid_str(root) for root in summary.roots]
            raise StorageError(model_id, f"CID mismatch: CAR roots {found}, expected {roots}")

    def submit(
        self,
        model_id: str,
        car_path: str | os.PathLike[str],
        roots: list[str],
        key: str = "",
        *,
        checked: bool = False,
    ) -> bool:
        """Queue a CAR (key: one per snapshot; default the CAR path), after `check` unless the
        caller already ran it. Returns False when it was already queued or stored. Call from
        the thread that runs `process_due` (the queue's connection is not shared)."""
        if not checked:
            self.check(model_id, car_path, roots)
        car_path = os.fspath(car_path)
        added = self.queue.put(key or car_path, model_id, car_path, roots)
        if added:
            self._inc("queued")
        return added

    async def process_due(self) -> int:
        """One pass over the due entries; returns how many were stored."""
        stored = 0
        for entry in self.queue.due():
            try:
                await self._store(entry)
            except KuboUnavailableError as exc:
                # The node, not the entry: wait for it, and do not count an attempt.
                self._inc("node_unavailable")
                self.queue.retry(entry.key, str(exc), self._node_delay, counts=False)
                self._node_delay = min(self._node_delay * 2, self.max_retry_delay)
                logger.warning(
                    "IPFS node unavailable, retrying in %.0fs: %s", self._node_delay, exc
                )
                break
            except (KuboError, OSError) as exc:
                self._failed_attempt(entry, exc)
                continue
            self._node_delay = self.retry_delay
            if self.queue.mark_stored(entry.key):
                stored += 1
                self._inc("stored")
                if self.on_stored is not None:
                    self.on_stored(entry)
        return stored

    async def _store(self, entry: ImportEntry) -> None:
        await self.client.dag_import(entry.car_path)
        for root in entry.roots:
            await self.client.pin_add(root)
        for root in entry.roots:
            if not await self.client.pin_ls(root):
                raise KuboError("pin/ls", f"{root} is not pinned after pin/add")

    def _failed_attempt(self, entry: ImportEntry, exc: Exception) -> None:
        problem = f"{entry.model_id}: {exc}"
        if isinstance(exc, KuboError) and INTEGRITY_ERROR in exc.message:
            permanent = f"corrupted CAR {entry.car_path}"
        elif isinstance(exc, OSError):
            permanent = f"cannot read CAR {entry.car_path}"
        elif entry.attempts + 1 >= self.max_attempts:
            permanent = f"gave up after {entry.attempts + 1} attempts"
        else:
            self._inc("retries")
            delay = min(self.retry_delay * 2**entry.attempts, self.max_retry_delay)
            self.queue.retry(entry.key, problem, delay)
            logger.warning(
                "IPFS import of %s failed, retry in %.1fs: %s", entry.model_id, delay, exc
            )
            return
        self.queue.mark_failed(entry.key, f"{problem} ({permanent})")
        self._inc("failed")
        logger.error("IPFS import of %s failed for good (%s): %s", entry.model_id, permanent, exc)

    async def drain(self, timeout: float | None = None, poll: float = 0.2) -> dict[str, int]:
        """Process until nothing is pending (or `timeout` seconds pass); returns the counts."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while (next_try := self.queue.next_try()) is not None:
            if deadline is not None and time.monotonic() >= deadline:
                break
            wait = next_try - time.time()
            if wait > 0:
                await asyncio.sleep(min(wait, poll))
                continue
            await self.process_due()
        return self.queue.counts()

    async def close(self) -> None:
        await self.client.close()
        self.queue.close()

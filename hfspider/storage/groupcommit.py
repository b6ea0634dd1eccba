"""Group commit: many concurrent items made durable by one fsync/transaction, each caller
resumed only once its own entry is durable.

A pipeline stage awaits `commit(entry)`; entries collect into a batch that `flush(batch)`
writes in one go (one SQLite transaction, one filesystem sync). Since `process_item` returns
only after that, `item_scraped` (when the spider settles a model and may move its listing
checkpoint) still comes after the model's data is durable: the kill -9 guarantees hold, at
a fraction of the per-model fsyncs.

When to flush: at `max_entries`; once every item inside the stage is waiting for the commit
(`entering()` tracks them: nothing else in the stage could join the batch) and `min_delay`
has passed since the batch began; and at the latest `max_delay` after it began. Batches are
flushed one at a time, in order; a failed flush fails every entry of its batch.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class GroupCommit(Generic[T]):
    def __init__(
        self,
        flush: Callable[[list[T]], None],
        *,
        max_entries: int = 64,
        min_delay: float = 0.005,
        max_delay: float = 0.05,
        in_thread: bool = False,
    ) -> None:
        self._flush = flush
        self.max_entries = max(1, max_entries)
        self.min_delay = min_delay
        self.max_delay = max(min_delay, max_delay)
        self.in_thread = in_thread  # run `flush` on a worker thread (it may block long)
        self._pending: list[tuple[T, asyncio.Future[None]]] = []
        self._began = 0.0
        self._timer: asyncio.TimerHandle | None = None
        self._inside = 0
        self._flushing = 0  # entries of batches handed to a flush that has not returned
        self._lock: asyncio.Lock | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0
        self.entries = 0

    @contextlib.asynccontextmanager
    async def entering(self) -> AsyncIterator[None]:
        """Count an item as inside the stage (preparing its entry, or waiting for it)."""
        self._inside += 1
        try:
            yield
        finally:
            self._inside -= 1
            self._maybe_flush()

    async def commit(self, entry: T) -> None:
        """Return once `entry` is durable (raises what its batch's flush raised)."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[None] = loop.create_future()
        if not self._pending:
            self._began = loop.time()
        self._pending.append((entry, future))
        if len(self._pending) >= self.max_entries or self.max_delay <= 0:
            self._start_flush()
        else:
            self._maybe_flush()
            if self._pending and self._timer is None:
                self._timer = loop.call_at(self._began + self.min_delay, self._on_timer)
        await future

    def _quiet(self) -> bool:
        """Every item inside the stage waits for the commit: no entry can join the batch."""
        return len(self._pending) + self._flushing >= self._inside

    def _maybe_flush(self) -> None:
        if not self._pending:
            return
        now = asyncio.get_running_loop().time()
        if self._quiet() and now >= self._began + self.min_delay:
            self._start_flush()

    def _on_timer(self) -> None:
        self._timer = None
        if not self._pending:
            return
        loop = asyncio.get_running_loop()
        if self._quiet() or loop.time() >= self._began + self.max_delay:
            self._start_flush()
        else:
            self._timer = loop.call_at(self._began + self.max_delay, self._on_timer)

    def _start_flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        batch, self._pending = self._pending, []
        self._flushing += len(batch)
        task = asyncio.ensure_future(self._run(batch))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[tuple[T, asyncio.Future[None]]]) -> None:
        try:
            await self._run_locked(batch)
        finally:
            self._flushing -= len(batch)

    async def _run_locked(self, batch: list[tuple[T, asyncio.Future[None]]]) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:  # one flush at a time, in batch order (the lock is FIFO)
            entries = [entry for entry, _ in batch]
            try:
                if self.in_thread:
                    await asyncio.to_thread(self._flush, entries)
                else:
                    self._flush(entries)
            except BaseException as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                return
            self.batches += 1
            self.entries += len(entries)
            for _, future in batch:
                if not future.done():
                    future.set_result(None)

    async def close(self) -> None:
        """Flush what is pending and wait for every flush under way."""
        if self._pending:
            self._start_flush()
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

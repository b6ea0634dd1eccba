"""The durable import queue: idempotent puts, retries, one-way state changes, reopening."""

from __future__ import annotations

import time
from pathlib import Path

from hfspider.storage.queue import FAILED, PENDING, STORED, ImportQueue

ROOTS = ["bafybeiczsscdsbs7ffqz55asqdf3smv6klcw3gofszvwlyarci47bgf354"]


def test_put_is_idempotent_and_survives_reopening(tmp_path: Path) -> None:
    queue = ImportQueue(tmp_path / "q.sqlite")
    assert queue.put("a@1", "a/m", "car/a.car", ROOTS) is True
    assert queue.put("a@1", "a/m", "car/a.car", ROOTS) is False
    assert queue.put("b@1", "b/m", "car/b.car", ROOTS) is True
    queue.close()
    queue = ImportQueue(tmp_path / "q.sqlite")
    assert [e.key for e in queue.due()] == ["a@1", "b@1"]
    assert queue.get("a@1").roots == ROOTS  # type: ignore[union-attr]
    assert queue.counts() == {PENDING: 2, STORED: 0, FAILED: 0}


def test_retry_delays_and_counts_attempts(tmp_path: Path) -> None:
    queue = ImportQueue(tmp_path / "q.sqlite")
    queue.put("a", "a/m", "a.car", ROOTS)
    queue.retry("a", "node said no", 60)
    assert queue.due() == []
    next_try = queue.next_try()
    assert next_try is not None and next_try > time.time() + 50
    entry = queue.due(now=time.time() + 61)[0]
    assert (entry.attempts, entry.last_error) == (1, "node said no")
    queue.retry("a", "node down", 0, counts=False)
    assert queue.due()[0].attempts == 1


def test_stored_only_once(tmp_path: Path) -> None:
    queue = ImportQueue(tmp_path / "q.sqlite")
    queue.put("a", "a/m", "a.car", ROOTS)
    assert queue.mark_stored("a") is True
    assert queue.mark_stored("a") is False
    assert queue.mark_failed("a", "late error") is False
    assert queue.get("a").state == STORED  # type: ignore[union-attr]
    assert queue.put("a", "a/m", "a.car", ROOTS) is False  # already stored: not again
    assert queue.next_try() is None


def test_failed_entry_can_be_requeued(tmp_path: Path) -> None:
    queue = ImportQueue(tmp_path / "q.sqlite")
    queue.put("a", "a/m", "a.car", ROOTS)
    assert queue.mark_failed("a", "a/m: corrupted CAR")
    assert queue.entries(FAILED)[0].last_error == "a/m: corrupted CAR"
    assert queue.put("a", "a/m", "a.car", ROOTS) is True  # a rewritten CAR gets a new chance
    assert queue.get("a").state == PENDING  # type: ignore[union-attr]


def test_new_roots_replace_the_entry(tmp_path: Path) -> None:
    queue = ImportQueue(tmp_path / "q.sqlite")
    queue.put("a", "a/m", "a.car", ROOTS)
    queue.mark_stored("a")
    other = ["QmUNLLsPACCz1vLxQVkXqqLX5R1X345qqfHbsf67hvA3Nn"]
    assert queue.put("a", "a/m", "a.car", other) is True
    assert queue.get("a").state == PENDING  # type: ignore[union-attr]

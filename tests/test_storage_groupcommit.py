"""Group commit: one flush for concurrent entries, nobody resumed before its batch is
flushed, a failed flush fails its whole batch, and a lone entry is not kept waiting long."""

from __future__ import annotations

import asyncio

import pytest

from hfspider.storage.groupcommit import GroupCommit


class Flushes:
    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[int]] = []
        self.fail = fail

    def __call__(self, batch: list[int]) -> None:
        if self.fail:
            raise OSError("disk full")
        self.batches.append(list(batch))


async def _item(committer: GroupCommit[int], value: int, done: list[int], work: float) -> None:
    async with committer.entering():
        await asyncio.sleep(work)  # preparing the entry (e.g. writing a CAR)
        await committer.commit(value)
        done.append(value)


@pytest.mark.parametrize("in_thread", [False, True])
def test_concurrent_entries_share_a_flush_and_resume_only_after_it(in_thread: bool) -> None:
    flushes = Flushes()
    done: list[int] = []

    async def main() -> None:
        committer = GroupCommit(flushes, min_delay=0.001, max_delay=5, in_thread=in_thread)
        await asyncio.gather(*(_item(committer, n, done, 0.001 * n) for n in range(8)))
        await committer.close()
        assert committer.batches == len(flushes.batches)

    asyncio.run(main())
    assert sorted(done) == list(range(8))
    assert sorted(n for batch in flushes.batches for n in batch) == list(range(8))
    # Everyone waits for the slowest item of the stage, then one flush takes them all.
    assert len(flushes.batches) == 1


def test_max_entries_flushes_without_waiting() -> None:
    flushes = Flushes()

    async def main() -> float:
        committer = GroupCommit(flushes, max_entries=3, min_delay=10, max_delay=10)
        loop = asyncio.get_running_loop()
        began = loop.time()
        await asyncio.gather(*(committer.commit(n) for n in range(6)))
        return loop.time() - began

    assert asyncio.run(main()) < 1
    assert flushes.batches == [[0, 1, 2], [3, 4, 5]]


def test_a_busy_stage_flushes_by_max_delay() -> None:
    flushes = Flushes()

    async def main() -> None:
        committer = GroupCommit(flushes, min_delay=0.001, max_delay=0.05)
        done: list[int] = []
        slow = asyncio.ensure_future(_item(committer, 1, done, 1.0))  # still preparing
        await asyncio.sleep(0.01)
        async with committer.entering():
            await asyncio.wait_for(committer.commit(0), 0.5)  # not held back by `slow`
        assert flushes.batches == [[0]]
        await slow
        await committer.close()

    asyncio.run(main())
    assert flushes.batches == [[0], [1]]


def test_a_failed_flush_fails_every_entry_of_its_batch() -> None:
    async def main() -> list[BaseException | None]:
        committer = GroupCommit(Flushes(fail=True), min_delay=0, max_delay=0.01)
        return await asyncio.gather(
            *(committer.commit(n) for n in range(3)), return_exceptions=True
        )

    results = asyncio.run(main())
    assert all(isinstance(result, OSError) for result in results)

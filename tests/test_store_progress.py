"""Listing checkpoints: the earliest page with an unsettled model, whatever the order."""

import random

import pytest

from hfspider.store.progress import ListingProgress

START = "https://hub/api/models?limit=3"


def page(number: int) -> str:
    return f"{START}&cursor={number}"


def test_checkpoint_stays_on_the_earliest_unsettled_page() -> None:
    progress = ListingProgress(START)
    assert progress.checkpoint == START and not progress.finished
    assert not progress.add_page(START, ["a", "b"], page(1))
    assert not progress.add_page(page(1), ["c", "d"], page(2))
    assert not progress.settle(page(1), "c")  # a later page finishing first changes nothing
    assert not progress.settle(START, "a")
    assert progress.settle(START, "b")  # first page done: resume from the second
    assert progress.checkpoint == page(1)
    assert progress.settle(page(1), "d")  # all seen pages done: resume from the next one
    assert progress.checkpoint == page(2) and not progress.finished
    assert progress.add_page(page(2), ["e"], None) is False
    assert progress.settle(page(2), "e")
    assert progress.checkpoint is None and progress.finished


def test_empty_pages_settle_at_once() -> None:
    progress = ListingProgress(START)
    assert progress.add_page(START, [], page(1))
    assert progress.checkpoint == page(1)
    assert progress.add_page(page(1), [], None)
    assert progress.finished and progress.checkpoint is None


def test_pages_must_follow_the_link_chain_and_keys_must_be_pending() -> None:
    progress = ListingProgress(START)
    assert progress.expected_page == START
    with pytest.raises(ValueError, match="not the expected next page"):
        progress.add_page(page(5), ["a"], None)
    progress.add_page(START, ["a"], page(1))
    assert progress.expected_page == page(1)
    with pytest.raises(ValueError, match="not the expected next page"):
        progress.add_page(page(2), ["b"], None)
    with pytest.raises(KeyError, match="'zz' is not pending"):
        progress.settle(START, "zz")
    progress.settle(START, "a")
    with pytest.raises(KeyError, match="'a' is not pending"):
        progress.settle(START, "a")  # settled twice: a bug in the caller


def test_random_completion_order_never_skips_an_unsettled_page() -> None:
    rng = random.Random(3)
    progress = ListingProgress(START)
    pages = [START] + [page(n) for n in range(1, 20)]
    pending: list[tuple[str, str]] = []
    done: set[tuple[str, str]] = set()
    for number, url in enumerate(pages):
        keys = [f"{number}-{k}" for k in range(rng.randint(0, 4))]
        progress.add_page(url, keys, pages[number + 1] if number + 1 < len(pages) else None)
        pending += [(url, key) for key in keys]
        rng.shuffle(pending)
        for _ in range(rng.randint(0, len(pending))):
            item = pending.pop()
            progress.settle(*item)
            done.add(item)
        checkpoint = progress.checkpoint
        # Everything before the checkpoint is settled; the checkpoint page itself is not
        # (unless the whole listing seen so far is).
        before = pages[: pages.index(checkpoint)] if checkpoint in pages else pages
        assert not [item for item in pending if item[0] in before]
        if pending:
            assert any(url == checkpoint for url, _ in pending)
    for item in pending:
        progress.settle(*item)
    assert progress.finished

"""Resume after anything: `kill -9` at random moments, and a graceful stop with JOBDIR.

Each test runs the same command again and again against one emulator, as a user would after
a crash, and then checks the end result (every listed model exactly once, in the store and in
the Parquet) and the emulator's request log: after the first run, no listing request may go
without a `cursor=` (that would be the listing restarted from its first page).
"""

from __future__ import annotations

import collections
import random
import signal
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.crawl_support import (
    checkpoint_urls,
    finish,
    kill_hard,
    listing_ids,
    parquet_rows,
    run_crawl,
    start_crawl,
    store_count,
    store_keys,
    wait_for,
)
from tests.fixtures.hubsim import UNLIMITED, HubSim

MODELS = 1000
SEED = 5
PAGE = 100
SETTINGS = {"CRAWL_PAGE_SIZE": str(PAGE), "PROGRESS_INTERVAL": "0"}
KILLS = 3
RNG_SEED = 20261130
PROGRESS_TIMEOUT = 120.0
JOBDIR_LIMIT = 400


@pytest.fixture(scope="module")
def sim() -> Iterator[HubSim]:
    emulator = HubSim(*UNLIMITED, models=MODELS, seed=SEED)
    yield emulator
    emulator.stop()


def _listing(entries: list[dict[str, Any]]) -> list[str]:
    return [entry["query"] for entry in entries if entry["path"] == "/api/models"]


def _past_first_page(output: Path) -> bool:
    return any("cursor=" in url for url in checkpoint_urls(output))


def _assert_each_model_once(output: Path, expected: dict[str, str]) -> None:
    """Every expected model (id -> sha) once in the store and in the Parquet, nothing else."""
    stored = [model_id for model_id, _ in store_keys(output)]
    assert len(stored) == len(set(stored)), collections.Counter(stored).most_common(3)
    assert set(stored) == set(expected)
    rows = parquet_rows(output)
    assert sorted(row["model_id"] for row in rows) == sorted(expected)
    assert all(row["sha"] == expected[row["model_id"]] for row in rows)


def test_kill_9_at_three_random_moments_then_rerun_gives_every_model_once(
    sim: HubSim, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    rng = random.Random(RNG_SEED)
    sim.new_log()
    runs: list[list[dict[str, Any]]] = []
    for _ in range(KILLS):
        process = start_crawl(sim, output, settings=SETTINGS)
        target = store_count(output) + rng.randint(20, 250)
        wait_for(
            lambda target=target, process=process: (
                (store_count(output) >= target and _past_first_page(output))
                or process.poll() is not None
            ),
            PROGRESS_TIMEOUT,
            "progress before the kill",
        )
        assert process.poll() is None, "the crawl ended before it could be killed"
        kill_hard(process)
        runs.append(sim.new_log())
    log = finish(start_crawl(sim, output, settings=SETTINGS), output)
    runs.append(sim.new_log())

    assert log.count("Resuming from the checkpoint") == KILLS
    first, *later = [_listing(entries) for entries in runs]
    assert "cursor=" not in first[0]
    restarted = [query for queries in later for query in queries if "cursor=" not in query]
    assert not restarted, f"listing restarted from the first page: {restarted[:2]}"
    listed = sim.truth().listed(None)
    _assert_each_model_once(output, {model.id: model.sha for model in listed})
    # Resuming redoes at most the unsettled pages: models in flight at a kill, not the rest.
    info = [e["path"] for entries in runs for e in entries if "/revision/" in e["path"]]
    assert len(info) - len(set(info)) <= KILLS * 2 * PAGE
    assert len(set(info)) == sum(1 for model in listed if not model.disabled)


def test_a_graceful_stop_with_jobdir_resumes_there_and_finishes_once(
    sim: HubSim, tmp_path: Path
) -> None:
    output = tmp_path / "out"
    settings = {**SETTINGS, "JOBDIR": str(tmp_path / "job")}
    arguments = {"limit": str(JOBDIR_LIMIT)}
    sim.new_log()
    process = start_crawl(sim, output, arguments, settings)
    wait_for(
        lambda: store_count(output) >= PAGE or process.poll() is not None,
        PROGRESS_TIMEOUT,
        "progress before the stop",
    )
    process.send_signal(signal.SIGINT)
    stopped = finish(process, output)
    assert "finish_reason': 'shutdown'" in stopped
    assert store_count(output) < JOBDIR_LIMIT
    first = sim.new_log()
    log = run_crawl(sim, output, arguments, settings)
    second = sim.new_log()

    assert "Resuming from JOBDIR" in log
    assert "cursor=" not in _listing(first)[0]
    assert all("cursor=" in query for query in _listing(second)), _listing(second)[:2]
    newest = listing_ids(sim, [("sort", "createdAt"), ("limit", "1000")])[:JOBDIR_LIMIT]
    truth = sim.truth()
    _assert_each_model_once(output, {model_id: truth.get(model_id).sha for model_id in newest})
    revisions = [e["path"] for e in first + second if "/revision/" in e["path"]]
    assert len(revisions) == len(set(revisions)), "a model was asked for twice"

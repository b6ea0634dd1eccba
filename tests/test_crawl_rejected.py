"""Nothing is dropped silently: a model that cannot be read is a rejection with reasons, and
the next crawl picks it up.

The emulator fails every resolve request (500), so every model whose README.md or config.json
must be read (every hostile kind among them) is given up after its retries; the others are
records. Then the same command against a healthy emulator on the same address completes the
set. The full crawl in test_crawl_records.py shows the other way: hostile repos as records.
"""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path

from hfspider.hubsim.corpus import HOSTILE_KINDS
from hfspider.hubsim.repofiles import snapshot
from tests.crawl_support import CONFIG, README, parquet_rows, rejected_entries, run_crawl
from tests.fixtures.hubsim import UNLIMITED, HubSim

MODELS = 30  # enough for every placed feature, every hostile kind included
SEED = 3
# Retry the 500s quickly, and never open the circuit breaker: the test is about the outcome.
FAST_RETRIES = {
    "RATELIMIT_BACKOFF_BASE": "0.01",
    "RATELIMIT_BACKOFF_MAX": "0.02",
    "RATELIMIT_BREAKER_THRESHOLD": "1000000",
    "PROGRESS_INTERVAL": "0",
}


def _free_port() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return str(probe.getsockname()[1])


def test_unreadable_models_are_rejected_with_reasons_and_crawled_next_time(
    hubsim_factory: Callable[..., HubSim], tmp_path: Path
) -> None:
    port = _free_port()
    flags = ("--port", port, "--samples", "off", *UNLIMITED)
    failing = hubsim_factory(*flags, "--fault", "500=1@resolvers", models=MODELS, seed=SEED)
    truth = failing.truth()
    listed = {model.id: model for model in truth.listed(None)}
    output = tmp_path / "out"
    run_crawl(failing, output, settings=FAST_RETRIES)

    rejected = {entry["model_id"]: entry for entry in rejected_entries(output)}
    recorded = {row["model_id"] for row in parquet_rows(output)}
    must_read = {
        model_id
        for model_id, model in listed.items()
        if not model.disabled and {README, CONFIG} & {f.path for f in snapshot(truth, model).files}
    }
    assert set(rejected) == must_read
    assert recorded == set(listed) - must_read
    for entry in rejected.values():
        assert entry["stage"] == "fetch" and entry["raw"]["id"] == entry["model_id"], entry
        assert any("500" in reason for reason in entry["reasons"]), entry
    hostile = {kind for model_id in rejected for kind in listed[model_id].intent.hostile}
    assert hostile == set(HOSTILE_KINDS)

    failing.stop()
    healthy = hubsim_factory(*flags, models=MODELS, seed=SEED)
    assert healthy.url == failing.url  # the same command resumes the same crawl
    log = run_crawl(healthy, output, settings=FAST_RETRIES)
    assert sorted(row["model_id"] for row in parquet_rows(output)) == sorted(listed)
    assert f"unchanged (skipped, no request): {len(recorded)}" in log

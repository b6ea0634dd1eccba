"""Filter arguments select exactly what the emulator's own listing selects.

Each case crawls into a fresh directory with `-a` arguments and compares the crawled ids with
the emulator's answer to the same question (its listing with the same parameters, every page
followed through `Link`; `min_downloads` and `limit` applied to that answer in listing order).
Every row is also compared with the ground truth for its mode, and the request log is checked:
a lite crawl asks for listing pages only, and stops asking once `limit` or a downloads-sorted
`min_downloads` is reached.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from hfspider.hubsim.corpus import Corpus
from tests.crawl_support import (
    digest_store,
    expected_record,
    listing_items,
    parquet_rows,
    record_problems,
    run_crawl,
)
from tests.fixtures.hubsim import UNLIMITED, HubSim

MODELS = 1000
SEED = 7
DEFAULT_SORT = "createdAt"  # pipelines_config/crawl.toml [crawl] sort
PAGE_SIZE = 100

Arguments = dict[str, str]


def _busiest_author(truth: Corpus) -> str:
    return collections.Counter(m.author for m in truth.listed(None)).most_common(1)[0][0]


# Case id -> the crawl's `-a` arguments, chosen from the corpus so that each selects some.
CASES: dict[str, Callable[[Corpus], Arguments]] = {
    "author": lambda truth: {"author": _busiest_author(truth), "mode": "lite"},
    "search": lambda truth: {"search": "whisper", "mode": "lite"},
    "filter-and": lambda truth: {"filter": "safetensors,en", "mode": "lite"},
    "pipeline_tag-full": lambda truth: {"pipeline_tag": "image-classification"},
    "library": lambda truth: {"library": "diffusers", "mode": "lite"},
    "sort-limit": lambda truth: {"sort": "downloads", "limit": "200", "mode": "lite"},
    "min_downloads": lambda truth: {"sort": "likes", "min_downloads": "100", "mode": "lite"},
    "min_downloads-sorted": lambda truth: {
        "sort": "downloads",
        "min_downloads": "1000",
        "mode": "lite",
    },
    "combined-full": lambda truth: {
        "author": _busiest_author(truth),
        "filter": "safetensors",
        "search": "-",
        "sort": "lastModified",
        "limit": "7",
        "mode": "full",
    },
}


@pytest.fixture(scope="module")
def sim() -> Iterator[HubSim]:
    emulator = HubSim(*UNLIMITED, models=MODELS, seed=SEED)
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def truth(sim: HubSim) -> Corpus:
    return sim.truth()


def emulator_selection(sim: HubSim, arguments: Arguments) -> list[str]:
    """The ids the emulator's listing gives for these arguments, in listing order."""
    params = [(name, arguments[name]) for name in ("author", "search") if name in arguments]
    params += [("filter", tag) for tag in arguments.get("filter", "").split(",") if tag]
    params += [(name, arguments[name]) for name in ("pipeline_tag", "library") if name in arguments]
    params += [("sort", arguments.get("sort", DEFAULT_SORT)), ("limit", "1000")]
    items = listing_items(sim, [*params, ("expand", "downloads")])
    threshold = int(arguments.get("min_downloads", 0))
    ids = [item["id"] for item in items if item.get("downloads", 0) >= threshold]
    return ids[: int(arguments["limit"])] if "limit" in arguments else ids


@pytest.mark.parametrize("case", list(CASES))
def test_filters_select_what_the_emulator_selects(
    sim: HubSim, truth: Corpus, tmp_path: Path, case: str
) -> None:
    arguments = CASES[case](truth)
    wanted = emulator_selection(sim, arguments)
    assert wanted, f"case {case} selects nothing: a useless case"
    sim.new_log()
    output = tmp_path / "out"
    run_crawl(sim, output, arguments, {"CRAWL_PAGE_SIZE": str(PAGE_SIZE)})
    entries = sim.new_log()

    rows = parquet_rows(output)
    assert sorted(row["model_id"] for row in rows) == sorted(wanted)
    mode = arguments.get("mode", "full")
    listed = {model.id: model for model in truth.listed(None)}
    problems = [
        f"{row['model_id']} {problem}"
        for row in rows
        for problem in record_problems(
            row, expected_record(truth, listed[row["model_id"]], digest_store(), mode)
        )
    ]
    assert not problems, "\n".join(problems[:20])

    pages = [entry for entry in entries if entry["path"] == "/api/models"]
    if mode == "lite":
        assert len(pages) == len(entries), "a lite crawl made per-model requests"
    assert len(pages) == _pages_needed(sim, arguments, wanted)


def _pages_needed(sim: HubSim, arguments: Arguments, wanted: list[str]) -> int:
    """Listing pages of PAGE_SIZE a crawl must read: up to the one holding the model that
    reaches `limit`; for a downloads-sorted `min_downloads`, up to the first model under
    it (the crawl must see it to know it can stop); else all of them."""
    server = emulator_selection(
        sim, {k: v for k, v in arguments.items() if k not in ("limit", "min_downloads")}
    )
    if "limit" in arguments and len(wanted) == int(arguments["limit"]):
        last = server.index(wanted[-1])
    elif "min_downloads" in arguments and arguments.get("sort") == "downloads":
        last = min(server.index(wanted[-1]) + 1, len(server) - 1)
    else:
        last = len(server) - 1
    return last // PAGE_SIZE + 1


def test_arguments_are_checked_before_any_request(sim: HubSim, tmp_path: Path) -> None:
    sim.new_log()
    output = tmp_path / "out"
    with pytest.raises(AssertionError, match="mode must be one of full, lite"):
        run_crawl(sim, output, {"mode": "fast"})
    assert sim.new_log() == []

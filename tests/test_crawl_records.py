"""A full crawl of 2,000 synthetic models: every Parquet row equals the emulator's ground truth.

One crawl (module fixture) against its own emulator; the tests compare all of its output
with what the emulator serves: every field of every row, the set of ids, the hostile repos,
the request log (what was asked, pinned to which commit), and a second crawl of the same
unchanged Hub (listing requests only). Expectations come from tests/crawl_support.py, which
reads the emulator's ground truth, never hfspider's normaliser.
"""

from __future__ import annotations

import collections
import datetime as dt
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import duckdb
import jsonschema
import pandas as pd
import pytest

from hfspider.hubsim.corpus import HOSTILE_KINDS, Corpus, Model
from hfspider.hubsim.repofiles import STAND_IN_NOTE, snapshot
from hfspider.schema import record_schema
from tests.crawl_support import (
    CONFIG,
    README,
    digest_store,
    expected_record,
    parquet_rows,
    record_problems,
    rejected_entries,
    run_crawl,
    store_keys,
    stored_records,
)
from tests.fixtures.hubsim import UNLIMITED, HubSim

MODELS = 2000
SEED = 11
RESOLVE_CACHE_RE = re.compile(r"/api/resolve-cache/models/(.+)/([0-9a-f]{40})/(.+)")
RESOLVE_RE = re.compile(r"/(.+)/resolve/([0-9a-f]{40})/(.+)")
INFO_RE = re.compile(r"/api/models/(.+)/revision/([0-9a-f]{40})")
CDN_RE = re.compile(r"/repos/([0-9a-f]{24})/([0-9a-f]{64})")


@dataclass
class Crawl:
    sim: HubSim
    output: Path
    started: str
    ended: str
    entries: list[dict[str, Any]]
    truth: Corpus
    rows: list[dict[str, Any]]

    def listed(self) -> dict[str, Model]:
        return {model.id: model for model in self.truth.listed(None)}


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture(scope="module")
def crawl(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Crawl]:
    sim = HubSim(*UNLIMITED, models=MODELS, seed=SEED)
    try:
        output = tmp_path_factory.mktemp("full") / "out"
        started = _now()
        run_crawl(sim, output)
        ended = _now()
        yield Crawl(sim, output, started, ended, sim.new_log(), sim.truth(), parquet_rows(output))
    finally:
        sim.stop()


def test_ids_are_exactly_what_the_listing_shows_an_anonymous_client(crawl: Crawl) -> None:
    ids = [row["model_id"] for row in crawl.rows]
    assert len(ids) == len(set(ids)), "a model is in the Parquet twice"
    assert set(ids) == set(crawl.listed())
    keys = store_keys(crawl.output)
    assert sorted(keys) == sorted((row["model_id"], row["sha"]) for row in crawl.rows)
    private = {m.id for m in crawl.truth.models.values() if m.private}
    assert private and not private & set(ids)


def test_every_row_equals_the_ground_truth_field_by_field(crawl: Crawl) -> None:
    listed = crawl.listed()
    digests = digest_store()
    properties = set(record_schema()["properties"])
    mismatches: list[str] = []
    synthetic = 0
    for row in crawl.rows:
        assert set(row) == properties, row["model_id"]
        model = listed[row["model_id"]]
        expected = expected_record(crawl.truth, model, digests, "full")
        synthetic += model.intent is not None
        mismatches += [f"{model.id} {problem}" for problem in record_problems(row, expected)]
        assert crawl.started <= row["crawled_at"] <= crawl.ended
    assert synthetic == sum(1 for m in listed.values() if m.intent is not None) >= MODELS * 0.95
    assert not mismatches, f"{len(mismatches)} mismatches:\n" + "\n".join(mismatches[:40])


def test_recorded_repos_keep_their_recorded_card_data_and_stand_in_card(crawl: Crawl) -> None:
    """The real recorded repos (no intent; their wire fields, files and card text are in the
    field-by-field test): card_data is the recorded cardData, the description the stand-in
    README's note."""
    listed = crawl.listed()
    recorded = [row for row in crawl.rows if listed[row["model_id"]].intent is None]
    assert len(recorded) >= 20
    for row in recorded:
        model = listed[row["model_id"]]
        info = model.recording.info(model.sha)
        has_readme = snapshot(crawl.truth, model).get(README) is not None
        if has_readme and not model.gated:
            assert row["card_data"] == (info.get("cardData") or {}), model.id
            assert row["description"] == STAND_IN_NOTE, model.id
        else:
            assert row["card_data"] == info.get("cardData"), model.id
            assert row["description"] is None, model.id
        assert row["pipeline_tag"] == info.get("pipeline_tag"), model.id
        assert row["library_name"] == info.get("library_name"), model.id


def test_warnings_say_what_could_not_be_read_and_nothing_else(crawl: Crawl) -> None:
    listed = crawl.listed()
    wrong = []
    for row in crawl.rows:
        model = listed[row["model_id"]]
        if model.intent is None:
            continue
        files = snapshot(crawl.truth, model)
        reasons = []
        if model.disabled:
            reasons.append("disabled")
        elif model.gated and (files.get(README) or files.get(CONFIG)):
            reasons.append("401")
        elif "huge_card" in model.intent.hostile:
            reasons.append("bytes")
        elif {"yaml_bomb", "malformed_front_matter"} & set(model.intent.hostile):
            reasons.append("front matter")
        text = " | ".join(row["warnings"])
        if any(reason not in text for reason in reasons) or bool(reasons) != bool(text):
            wrong.append(f"{model.id} {model.intent.hostile} gated={model.gated}: {text!r:.300}")
    assert not wrong, f"{len(wrong)} records:\n" + "\n".join(wrong[:20])


def test_every_hostile_model_is_a_valid_record_or_a_rejection_with_reasons(crawl: Crawl) -> None:
    hostile = {m.id: m for m in crawl.listed().values() if m.intent and m.intent.hostile}
    assert {kind for m in hostile.values() for kind in m.intent.hostile} == set(HOSTILE_KINDS)
    rejected = collections.defaultdict(list)
    for entry in rejected_entries(crawl.output):
        assert entry["reasons"] and all(entry["reasons"]), entry
        rejected[entry["model_id"]].append(entry)
    validator = jsonschema.Draft202012Validator(
        record_schema(), format_checker=jsonschema.FormatChecker()
    )
    records = stored_records(crawl.output)
    for model_id in hostile:
        assert (model_id in records) != (model_id in rejected), model_id
        if model_id in records:
            errors = [error.message for error in validator.iter_errors(records[model_id])]
            assert not errors, (model_id, errors[:5])
    assert not set(rejected) - set(crawl.listed()), "a rejection names no listed model"


def test_pandas_and_duckdb_read_the_same_rows_as_pyarrow(crawl: Crawl) -> None:
    frame = pd.read_parquet(crawl.output / "parquet")
    assert sorted(frame["model_id"]) == sorted(row["model_id"] for row in crawl.rows)
    pattern = str(crawl.output / "parquet" / "**" / "*.parquet")
    files = duckdb.sql(
        f"SELECT model_id, f.filename, f.size_bytes FROM read_parquet('{pattern}',"
        " hive_partitioning = true), unnest(files) AS t(f)"
    ).fetchall()
    assert len(files) == sum(len(row["files"]) for row in crawl.rows)
    sizes = {
        (row["model_id"], f["filename"]): f["size_bytes"]
        for row in crawl.rows
        for f in row["files"]
    }
    assert {(m, f): s for m, f, s in files} == sizes


def test_requests_per_model_are_few_and_pinned_to_the_listed_commit(crawl: Crawl) -> None:
    """Per model: one pinned model-info request (with blobs), one resolve-side request for
    README.md and for config.json when the snapshot has them, any other file (a files
    stage) at most once, all pinned to the listed commit; none for a disabled model; no
    HEAD; listing pages only."""
    listed = crawl.listed()
    by_object_id = {model.object_id: model for model in listed.values()}
    asked: dict[str, list[str]] = collections.defaultdict(list)
    pages = 0
    for entry in crawl.entries:
        assert entry["method"] == "GET", entry
        path, query = entry["path"], entry["query"]
        if path == "/api/models":
            pages += 1
        elif match := INFO_RE.fullmatch(path):
            model = listed[unquote(match.group(1))]
            assert (match.group(2), query) == (model.sha, "blobs=true"), entry
            asked[model.id].append("info")
        elif match := RESOLVE_CACHE_RE.fullmatch(path) or RESOLVE_RE.fullmatch(path):
            model = listed[unquote(match.group(1))]
            assert match.group(2) == model.sha, entry
            asked[model.id].append(unquote(match.group(3)))
        elif match := CDN_RE.fullmatch(path):  # an LFS file's second hop
            model = by_object_id[match.group(1)]
            asked[model.id].append(f"cdn:{match.group(2)}")
        else:
            raise AssertionError(f"unexpected request {path}?{query}")
    assert pages == -(-len(listed) // 1000)
    wrong = []
    for model_id, model in listed.items():
        files = snapshot(crawl.truth, model)
        counts = collections.Counter(asked[model_id])
        must = [path for path in (README, CONFIG) if files.get(path)]
        lfs = {f"cdn:{digest_store().digest(f.source).sha256}" for f in files.files if f.lfs}
        if model.disabled:  # the Hub refuses its info and files: the listing says so
            if counts:
                wrong.append(f"{model_id} (disabled): {dict(counts)}")
            continue
        if (
            counts["info"] != 1
            or any(count > 1 for count in counts.values())
            or not set(must) <= set(counts)
            or set(counts) - {"info", *must} - {f.path for f in files.files} - lfs
        ):
            wrong.append(f"{model_id}: {dict(counts)}")
    assert not wrong, f"{len(wrong)} models:\n" + "\n".join(wrong[:20])


def test_a_second_crawl_of_an_unchanged_hub_asks_for_listing_pages_only(crawl: Crawl) -> None:
    log = run_crawl(crawl.sim, crawl.output)
    entries = crawl.sim.new_log()
    assert entries and {entry["path"] for entry in entries} == {"/api/models"}
    assert len(entries) == -(-len(crawl.listed()) // 1000)
    assert f"unchanged (skipped, no request): {len(crawl.listed())}" in log
    assert sorted(row["model_id"] for row in parquet_rows(crawl.output)) == sorted(
        row["model_id"] for row in crawl.rows
    )

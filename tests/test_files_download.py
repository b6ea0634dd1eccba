"""FilesPipeline and its downloader against the real Hub emulator: verified fetches, the
emulator's faults, the token rule, the Hub's refusals, hostile names, lite records, resume
(and servers that ignore Range), reuse of files on disk and of the spider's bodies, and the
IPFS stage writing the CAR from the verified files themselves.

Every expectation comes from the emulator's ground truth (its corpus rebuilt in-process) and
its request log, never from what the pipeline itself reports.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import hashlib
import json
import logging
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from scrapy.crawler import Crawler
from scrapy.exceptions import DropItem
from scrapy.utils.test import get_crawler

from hfspider.config import load_settings
from hfspider.files.download import CHUNK_SIZE
from hfspider.files.paths import partial_paths
from hfspider.hub.api import parse_listing_page, parse_model_info
from hfspider.hub.endpoints import ListingQuery
from hfspider.hub.normalise import normalise
from hfspider.hubsim.corpus import Corpus, Model
from hfspider.hubsim.repofiles import snapshot
from hfspider.ipfs import (
    MemoryBlockstore,
    build_snapshot,
    cid_bytes,
    import_bytes,
    preset,
    sha256_cid,
)
from hfspider.items import ModelItem
from hfspider.pipelines.files import LITE_REASON, FilesPipeline
from hfspider.pipelines.ipfs import IpfsPipeline
from tests.fixtures.hubsim import UNLIMITED, HubSim

TOKEN = "hf_filestest0123456789abcdef"
FLAGS = (*UNLIMITED, "--samples", "off", "--token", f"{TOKEN}:free:alice")
MODELS = 30
SMALL = 16 << 20  # the files these tests fetch are at most this big
PARAMS = preset("unixfs-v1-2025")
WEIGHTS = (".safetensors", ".bin", ".gguf", ".pt", ".pth", ".onnx", ".h5", ".msgpack", ".ckpt")


# -- the emulator's ground truth ---------------------------------------------------------------


def truth_files(corpus: Corpus, model: Model) -> dict[str, bytes]:
    """Every file of the model's head revision up to SMALL bytes, with its true bytes."""
    files = snapshot(corpus, model).files
    return {f.path: b"".join(f.source.chunks(0, f.size)) for f in files if f.size <= SMALL}


def find(corpus: Corpus, wanted: Callable[[Model, dict[str, Any]], bool]) -> Model:
    """The first synthetic model that has what a test needs."""
    for model in corpus.models.values():
        files = {f.path: f for f in snapshot(corpus, model).files}
        if wanted(model, files):
            return model
    raise AssertionError("the emulator's corpus has no such model")


def plain(model: Model, files: dict[str, Any]) -> bool:
    """Public, served, no hostile names, some small LFS files, nothing huge."""
    lfs = [f for f in files.values() if f.lfs]
    return (
        not (model.gated or model.disabled or model.private or model.renamed_from)
        and not model.recipe.hostile
        and len(lfs) >= 2
        and all(f.size <= SMALL for f in files.values())
    )


# -- running the pipeline ----------------------------------------------------------------------


@pytest.fixture
def token_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """No token from the environment or a token file: each test says which one it uses."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))
    yield


def crawler_for(sim: HubSim, output: Path, **settings: Any) -> Crawler:
    base = {
        **load_settings(),
        "HUB_ENDPOINT": sim.url,
        "OUTPUT_DIR": str(output),
        # fast backoff, so that fault tests do not sleep for seconds
        "RATELIMIT_BACKOFF_BASE": 0.01,
        "RATELIMIT_BACKOFF_MAX": 0.05,
        "RATELIMIT_DEFAULT_PAUSE": 0.2,
        "FILES_ALLOW": "*",
        "FILES_MAX_FILE_SIZE": SMALL,
        "FILES_MAX_MODEL_SIZE": 0,
    }
    return get_crawler(settings_dict={**base, **settings})


def full_item(sim: HubSim, model_id: str) -> ModelItem:
    """A full-mode item, as the spider builds it: model info pinned to the head commit."""
    sha = sim.get(f"/api/models/{model_id}").json()["sha"]
    answer = sim.get(f"/api/models/{model_id}/revision/{sha}?blobs=true")
    assert answer.status == 200, answer.body
    info = parse_model_info(answer.body)
    return ModelItem(normalise(info, info, crawled_at=dt.datetime.now(dt.UTC)), {})


def lite_item(sim: HubSim, model_id: str) -> ModelItem:
    """A lite-mode item: the listing's entry only (file names, no sizes or hashes)."""
    url = ListingQuery(search=model_id.split("/")[1]).url(sim.url)
    page = parse_listing_page(sim.get(url).body)
    (listed,) = [m for m in page.models if m.id == model_id]
    return ModelItem(normalise(listed, None, crawled_at=dt.datetime.now(dt.UTC)), {})


def run(crawler: Crawler, *items: ModelItem) -> FilesPipeline:
    async def go() -> FilesPipeline:
        pipeline = FilesPipeline.from_crawler(crawler)
        await pipeline.open_spider()
        try:
            for item in items:
                assert await pipeline.process_item(item) is item
        finally:
            await pipeline.close_spider()
        return pipeline

    return asyncio.run(go())


def stat(crawler: Crawler, name: str) -> Any:
    return crawler.stats.get_value(f"hfspider/files/{name}", 0)


def entries(item: ModelItem) -> dict[str, dict[str, Any]]:
    return {entry["filename"]: entry for entry in item.record["files"]}


def file_log(sim: HubSim, since: int = 0) -> list[dict[str, Any]]:
    """The emulator's log of file requests: resolves, resolve-cache and CDN."""
    return [e for e in sim.log(since) if e["origin"] == "cdn" or e["bucket"] == "resolvers"]


def assert_verified(item: ModelItem, truth: dict[str, bytes], output: Path) -> None:
    """Each fetched entry is exactly the true file: bytes on disk, sha256, CID, sha256_cid,
    and its import result and blocks are there for the IPFS stage."""
    for path, entry in entries(item).items():
        if entry["fetch_status"] != "fetched":
            continue
        data = truth[path]
        sha256 = hashlib.sha256(data).hexdigest()
        assert (output / entry["local_path"]).read_bytes() == data, path
        assert entry["sha256"] == sha256, path
        assert entry["cid"] == import_bytes(data, PARAMS).cid, path
        assert entry["sha256_cid"] == sha256_cid(sha256), path
        assert entry["fetch_reason"] is None
        assert item.fetched[path].cid == entry["cid"]
        assert item.blocks is not None and cid_bytes(entry["cid"]) in item.blocks


def no_token_anywhere(output: Path, caplog: pytest.LogCaptureFixture) -> None:
    for path in output.rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    assert all(TOKEN not in record.getMessage() for record in caplog.records)


# -- the tests ---------------------------------------------------------------------------------


def test_files_are_fetched_verified_recorded_and_reused(
    hubsim_factory: Callable[..., HubSim],
    tmp_path: Path,
    token_env: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    sim = hubsim_factory(*FLAGS, models=MODELS)
    corpus = sim.truth()
    model = find(corpus, plain)
    truth = truth_files(corpus, model)
    output = tmp_path / "out"
    crawler = crawler_for(sim, output)
    item = full_item(sim, model.id)
    with caplog.at_level(logging.DEBUG):
        run(crawler, item)

    files = entries(item)
    assert set(files) == set(truth)
    assert all(entry["fetch_status"] == "fetched" for entry in files.values())
    assert_verified(item, truth, output)
    for path, entry in files.items():
        assert entry["local_path"] == f"files/{model.id}/{model.sha}/{path}"
    # the blocks are all an IPFS snapshot needs: the next stage can build the model's DAG
    build_snapshot(item.record, item.fetched, PARAMS, item.blocks)

    log = file_log(sim)
    hub = [e for e in log if e["origin"] == "api"]
    cdn = [e for e in log if e["origin"] == "cdn"]
    lfs = [path for path, entry in files.items() if entry["lfs"]]
    assert len(cdn) == len(lfs) and all(not e["auth"] for e in cdn)
    assert hub and all(e["auth"] for e in hub)  # the token goes to the Hub, never to the CDN
    # every Hub request of the files went through the crawl's limiter (resolvers bucket)
    assert crawler.stats.get_value("hfspider/ratelimit/resolvers/requests") == len(hub)
    assert stat(crawler, "downloaded_bytes") == sum(len(truth[p]) for p in files)
    no_token_anywhere(output, caplog)
    item.release()

    # a rerun with the files on disk downloads nothing and still yields every block
    again = full_item(sim, model.id)
    seen = sim.log()[-1]["seq"]
    crawler = crawler_for(sim, output)
    run(crawler, again)
    assert file_log(sim, seen) == []
    assert stat(crawler, "reused") == len(truth)
    assert {p: e["cid"] for p, e in entries(again).items()} == {
        p: e["cid"] for p, e in files.items()
    }
    assert_verified(again, truth, output)
    again.release()


def test_selection_defaults_skip_weights_with_a_reason_and_fill_sha256_cids(
    hubsim_factory: Callable[..., HubSim], tmp_path: Path, token_env: None
) -> None:
    sim = hubsim_factory(*FLAGS, models=MODELS)
    corpus = sim.truth()
    model = find(corpus, plain)
    truth = truth_files(corpus, model)
    crawler = get_crawler(
        settings_dict={**load_settings(), "HUB_ENDPOINT": sim.url, "OUTPUT_DIR": str(tmp_path)}
    )
    item = full_item(sim, model.id)
    run(crawler, item)
    files = entries(item)
    weights = [p for p in files if p.endswith(WEIGHTS)]
    assert weights
    for path in weights:  # not fetched, but identified without a download
        entry = files[path]
        assert entry["fetch_status"] == "skipped"
        assert entry["fetch_reason"] == "not selected by FILES_ALLOW"
        assert entry["cid"] is None and entry["local_path"] is None
    for path, entry in files.items():
        if entry["lfs"]:
            assert entry["sha256_cid"] == sha256_cid(hashlib.sha256(truth[path]).hexdigest())
        if path.endswith((".json", ".md", ".txt")):
            assert entry["fetch_status"] == "fetched", path
    fetched_lfs = [e for e in files.values() if e["lfs"] and e["fetch_status"] == "fetched"]
    assert len([e for e in sim.log() if e["origin"] == "cdn"]) == len(fetched_lfs)
    assert_verified(item, truth, tmp_path)


def lfs_target(corpus: Corpus) -> tuple[Model, str, bytes]:
    """A plain model and its biggest LFS file (a few chunks, so faults strike mid-body); the
    file's path doubles as the FILES_ALLOW pattern that selects it alone."""
    model = find(
        corpus,
        lambda m, files: (
            plain(m, files)
            and max(f.size for f in files.values() if f.lfs) > 3 * PARAMS.chunk_size
            and "/" not in max((f for f in files.values() if f.lfs), key=lambda f: f.size).path
        ),
    )
    truth = truth_files(corpus, model)
    lfs = [f for f in snapshot(corpus, model).files if f.lfs]
    path = max(lfs, key=lambda f: f.size).path
    return model, path, truth[path]


@pytest.mark.parametrize(
    ("fault", "stats"),
    [
        ("corrupt=1@cdn:1", {"verify_failed": 1}),
        ("truncate=1@cdn:1", {"resumed": 1, "retries": 1}),
        ("reset=1@cdn:2", {"retries": 2}),
        ("503=1@resolvers:2", {"retries": 2}),
        ("cloudfront-429=1@resolvers:1", {"retry_429": 1}),
    ],
)
def test_faults_are_retried_and_only_the_true_file_is_accepted(
    hubsim_factory: Callable[..., HubSim],
    tmp_path: Path,
    token_env: None,
    fault: str,
    stats: dict[str, int],
) -> None:
    sim = hubsim_factory(*FLAGS, "--fault", fault, models=MODELS)
    model, path, data = lfs_target(sim.truth())
    crawler = crawler_for(sim, tmp_path, FILES_ALLOW=path)
    item = full_item(sim, model.id)
    run(crawler, item)
    entry = entries(item)[path]
    assert entry["fetch_status"] == "fetched", entry["fetch_reason"]
    assert_verified(item, {path: data}, tmp_path)
    for name, value in stats.items():
        assert stat(crawler, name) == value, name
    assert sim.stats()["faults"]  # the fault did fire
    cdn = [e for e in sim.log() if e["origin"] == "cdn"]
    starts = [0 if e["range"] is None else int(e["range"][len("bytes=") : -1]) for e in cdn]
    if fault.startswith(("truncate", "reset")):
        # each retry asks only for what is missing: what came before is never sent again
        for k in range(1, len(cdn)):
            assert starts[k - 1] <= starts[k] <= starts[k - 1] + cdn[k - 1]["bytes"]
            assert cdn[k]["status"] == (206 if starts[k] else 200)
        assert cdn[-1]["bytes"] == len(data) - starts[-1]
    if fault.startswith("truncate"):
        # a clean close: what was sent arrived; aiohttp drops only what it still buffered
        assert cdn[0]["bytes"] - CHUNK_SIZE <= starts[1] <= cdn[0]["bytes"]
    if fault.startswith("corrupt"):
        assert [e["range"] for e in cdn] == [None, None]  # started over from zero
        assert all(e["bytes"] == len(data) for e in cdn)


def test_a_file_corrupted_every_time_fails_and_leaves_nothing(
    hubsim_factory: Callable[..., HubSim], tmp_path: Path, token_env: None
) -> None:
    sim = hubsim_factory(*FLAGS, "--fault", "corrupt=1@cdn", models=MODELS)
    model, path, _ = lfs_target(sim.truth())
    crawler = crawler_for(sim, tmp_path, FILES_ALLOW=f"{path},*.json,*.md,*.txt")
    item = full_item(sim, model.id)
    run(crawler, item)
    files = entries(item)
    entry = files[path]
    assert entry["fetch_status"] == "failed"
    assert entry["fetch_reason"].startswith("verification failed twice: sha256 ")
    assert entry["cid"] is None and entry["local_path"] is None
    assert entry["sha256_cid"] == sha256_cid(entry["sha256"])  # the Hub's, kept
    assert path not in item.fetched
    assert not (tmp_path / f"files/{model.id}/{model.sha}/{path}").exists()
    assert not any((tmp_path / "state" / "partial").iterdir())
    # the model's other files are fetched all the same
    others = [e["fetch_status"] for p, e in files.items() if p != path]
    assert "fetched" in others and "failed" not in others


def test_resets_at_every_attempt_give_up_but_keep_the_partial_file(
    hubsim_factory: Callable[..., HubSim], tmp_path: Path, token_env: None
) -> None:
    sim = hubsim_factory(*FLAGS, "--fault", "reset=1@cdn", models=MODELS)
    model, path, data = lfs_target(sim.truth())
    crawler = crawler_for(sim, tmp_path, FILES_ALLOW=path)
    item = full_item(sim, model.id)
    run(crawler, item)
    entry = entries(item)[path]
    assert entry["fetch_status"] == "failed"
    assert "gave up after 3 attempts without progress" in entry["fetch_reason"]
    assert entry["cid"] is None
    part, _ = partial_paths(tmp_path, model.id, model.sha, path)
    kept = part.read_bytes()
    assert 0 < len(kept) < len(data) and data.startswith(kept)  # a later run resumes here


def test_the_hubs_refusals_fail_the_files_with_its_reason(
    hubsim_factory: Callable[..., HubSim], tmp_path: Path, token_env: None
) -> None:
    sim = hubsim_factory(*FLAGS, models=MODELS)
    corpus = sim.truth()
    gated = find(corpus, lambda m, files: m.gated == "manual" and not m.disabled)
    present = find(corpus, plain)
    items = [full_item(sim, gated.id), full_item(sim, present.id)]
    regular = next(e for e in items[1].record["files"] if e["lfs"] is False)
    missing = dict(regular, filename="not-there.json")
    items[1].record["files"].append(missing)
    crawler = crawler_for(sim, tmp_path)
    run(crawler, *items)

    gated_files = list(entries(items[0]).values())
    assert len(gated_files) > 1
    for entry in gated_files:
        assert entry["fetch_status"] == "failed" and entry["cid"] is None
        assert entry["fetch_reason"] == (
            f"HTTP 401 GatedRepo: Access to model {gated.id} is restricted. You must have "
            "access to it and be authenticated to access it. Please log in."
        )
    asked = [e for e in file_log(sim) if quote(gated.id) in e["path"]]
    assert len(asked) == 1  # the whole repo is refused: one answer is enough
    files = entries(items[1])
    assert files["not-there.json"]["fetch_status"] == "failed"
    assert files["not-there.json"]["fetch_reason"] == "HTTP 404 EntryNotFound: Entry not found"
    others = [e for p, e in files.items() if p != "not-there.json"]
    assert all(e["fetch_status"] == "fetched" for e in others)
    assert stat(crawler, "refused") == 1 + 1


def test_a_token_without_access_gets_the_hubs_403(
    hubsim_factory: Callable[..., HubSim],
    tmp_path: Path,
    token_env: None,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    sim = hubsim_factory(*FLAGS, models=MODELS)
    gated = find(sim.truth(), lambda m, files: m.gated == "manual" and not m.disabled)
    item = full_item(sim, gated.id)
    with caplog.at_level(logging.DEBUG):
        run(crawler_for(sim, tmp_path), item)
    for entry in entries(item).values():
        assert entry["fetch_status"] == "failed"
        assert entry["fetch_reason"].startswith("HTTP 403 GatedRepo: Access to model ")
        assert "not in the authorized list" in entry["fetch_reason"]
    assert all(e["auth"] for e in file_log(sim))
    no_token_anywhere(tmp_path, caplog)


def test_hostile_names_are_refused_and_nothing_is_written_outside(
    hubsim_factory: Callable[..., HubSim], tmp_path: Path, token_env: None
) -> None:
    sim = hubsim_factory(*FLAGS, models=MODELS)
    corpus = sim.truth()
    kinds = ("unsafe_paths", "long_names", "odd_unicode", "deep_folders")
    models = [find(corpus, lambda m, f, k=kind: k in m.recipe.hostile) for kind in kinds]
    output = tmp_path / "out"
    outside = tmp_path / "outside"
    outside.mkdir()
    # a symlink planted where the odd_unicode repo's docs/ folder goes
    odd = models[2]
    base = output / "files" / odd.id / odd.sha
    base.mkdir(parents=True)
    (base / "docs").symlink_to(outside)
    items = [full_item(sim, model.id) for model in models]
    run(crawler_for(sim, output), *items)

    refused = {}
    for model, item in zip(models, items, strict=True):
        truth = truth_files(corpus, model)
        for path, entry in entries(item).items():
            if entry["fetch_status"] == "failed":
                assert entry["fetch_reason"].startswith("unsafe path: "), entry["fetch_reason"]
                assert entry["local_path"] is None and entry["cid"] is None
                refused[path] = entry["fetch_reason"]
            else:
                assert entry["fetch_status"] == "fetched", (path, entry["fetch_reason"])
                dest = (output / entry["local_path"]).resolve()
                assert dest.is_relative_to((output / "files" / model.id / model.sha).resolve())
        assert_verified(item, truth, output)
    assert set(refused) == {
        "..\\..\\evil.txt",
        "ctrl\x07bell.txt",
        "line\nbreak.txt",
        "x" * 296 + ".txt",
        "docs/caf\u00e9.md",
        "docs/cafe\u0301.md",
    }
    assert "symlink" in refused["docs/caf\u00e9.md"]
    assert list(outside.iterdir()) == []
    assert {p.name for p in tmp_path.iterdir()} - {"hf-home"} == {"out", "outside"}
    # refused names never reached the Hub either
    assert not any("evil" in e["path"] or "ctrl" in e["path"] for e in sim.log())


@pytest.mark.parametrize("kind", ["listed", "disabled"])
def test_lite_records_fetch_nothing(
    hubsim_factory: Callable[..., HubSim], tmp_path: Path, token_env: None, kind: str
) -> None:
    """mode=lite is listing fields only: not one request per model, so no file either (a
    disabled model's record is lite too: the Hub refuses its info)."""
    sim = hubsim_factory(*FLAGS, models=MODELS)
    corpus = sim.truth()
    model = find(corpus, plain if kind == "listed" else lambda m, files: m.disabled)
    item = lite_item(sim, model.id)
    assert item.record["crawl_mode"] == "lite" and item.record["files"]
    seen = sim.log()[-1]["seq"]
    crawler = crawler_for(sim, tmp_path)
    run(crawler, item)
    assert sim.log(seen) == []
    for entry in entries(item).values():
        assert entry["fetch_status"] == "skipped"
        assert entry["fetch_reason"] == LITE_REASON
        assert entry["cid"] is None and entry["local_path"] is None
    assert item.fetched == {} and item.blocks is None
    assert stat(crawler, "skipped") == len(item.record["files"])
    assert not (tmp_path / "files").exists()


def plant_partial(
    output: Path, model: Model, path: str, data: bytes, cut: int, **meta: Any
) -> None:
    """A partial download as an earlier (killed) run leaves it: `cut` bytes and a sidecar."""
    sha256 = hashlib.sha256(data).hexdigest()
    part, sidecar = partial_paths(output, model.id, model.sha, path)
    part.parent.mkdir(parents=True, exist_ok=True)
    part.write_bytes(data[:cut])
    sidecar.write_text(
        json.dumps(
            {
                "label": f"{model.id}@{model.sha[:12]}:{path}",
                "validator": f'"{sha256}"',
                "total": len(data),
                "expected": {"size": len(data), "sha256": sha256, "blob_id": None},
                **meta,
            }
        )
    )


@pytest.mark.parametrize(
    ("meta", "fault", "first_status", "restarted"),
    [
        ({}, None, 206, 0),  # the same file: resumed where the earlier run stopped
        ({"validator": '"another-etag"'}, None, 206, 1),  # the file changed: from zero
        ({}, "ignore-range=1@cdn:1", 200, 1),  # a server that ignores Range: from that body
    ],
)
def test_a_partial_file_from_an_earlier_run_is_resumed_or_started_over(
    hubsim_factory: Callable[..., HubSim],
    tmp_path: Path,
    token_env: None,
    meta: dict[str, Any],
    fault: str | None,
    first_status: int,
    restarted: int,
) -> None:
    sim = hubsim_factory(*FLAGS, *(("--fault", fault) if fault else ()), models=MODELS)
    model, path, data = lfs_target(sim.truth())
    cut = len(data) // 2
    plant_partial(tmp_path, model, path, data, cut, **meta)
    crawler = crawler_for(sim, tmp_path, FILES_ALLOW=path)
    item = full_item(sim, model.id)
    run(crawler, item)
    assert entries(item)[path]["fetch_status"] == "fetched"
    assert_verified(item, {path: data}, tmp_path)
    cdn = [e for e in sim.log() if e["origin"] == "cdn"]
    assert cdn[0]["range"] == f"bytes={cut}-" and cdn[0]["status"] == first_status
    assert stat(crawler, "restarted") == restarted
    if first_status == 206 and not restarted:
        assert len(cdn) == 1 and cdn[0]["bytes"] == len(data) - cut
    else:  # one whole body: the Range-less retry, or the 200 that ignored the Range
        assert cdn[-1]["bytes"] == len(data) and cdn[-1]["status"] == 200
        assert len(cdn) == (1 if fault else 2)


def test_a_resume_answered_with_200_starts_over_cleanly_and_verifies(
    hubsim_factory: Callable[..., HubSim], tmp_path: Path, token_env: None
) -> None:
    """A body cut short, then a CDN that ignores the Range of the resume: its 200 is the
    whole file, taken from byte zero."""
    faults = ("--fault", "truncate=1@cdn:1", "--fault", "ignore-range=1@cdn:1")
    sim = hubsim_factory(*FLAGS, *faults, models=MODELS)
    model, path, data = lfs_target(sim.truth())
    crawler = crawler_for(sim, tmp_path, FILES_ALLOW=path)
    item = full_item(sim, model.id)
    run(crawler, item)
    assert entries(item)[path]["fetch_status"] == "fetched", entries(item)[path]
    assert_verified(item, {path: data}, tmp_path)
    cdn = [e for e in sim.log() if e["origin"] == "cdn"]
    assert [(e["status"], e["fault"]) for e in cdn] == [(200, "truncate"), (200, "ignore-range")]
    assert 0 < cdn[0]["bytes"] < len(data)
    assert cdn[1]["range"] is not None and cdn[1]["bytes"] == len(data)  # the whole file again
    assert stat(crawler, "restarted") == 1 and stat(crawler, "resumed") == 0
    assert not any((tmp_path / "state" / "partial").iterdir())


@pytest.mark.parametrize(("fault", "status"), [(None, 206), ("ignore-range=1@resolvers:1", 200)])
def test_a_regular_file_resumes_on_resolve_cache_or_starts_over_on_a_200(
    hubsim_factory: Callable[..., HubSim],
    tmp_path: Path,
    token_env: None,
    fault: str | None,
    status: int,
) -> None:
    sim = hubsim_factory(*FLAGS, *(("--fault", fault) if fault else ()), models=MODELS)
    corpus = sim.truth()
    path = "config.json"
    model = find(corpus, lambda m, files: plain(m, files) and path in files)
    data = truth_files(corpus, model)[path]
    blob_id = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    cut = len(data) // 2
    expected = {"size": len(data), "sha256": None, "blob_id": blob_id}
    plant_partial(tmp_path, model, path, data, cut, validator=f'"{blob_id}"', expected=expected)
    crawler = crawler_for(sim, tmp_path, FILES_ALLOW=path)
    item = full_item(sim, model.id)
    run(crawler, item)
    assert entries(item)[path]["fetch_status"] == "fetched"
    assert_verified(item, {path: data}, tmp_path)
    (asked,) = file_log(sim)  # resolve-cache, straight away
    assert (asked["status"], asked["range"]) == (status, f"bytes={cut}-")
    assert asked["bytes"] == (len(data) if fault else len(data) - cut)
    assert stat(crawler, "restarted") == (1 if fault else 0)
    assert stat(crawler, "resumed") == (0 if fault else 1)


def test_a_record_whose_size_the_server_contradicts_is_refused(
    hubsim_factory: Callable[..., HubSim], tmp_path: Path, token_env: None
) -> None:
    """The record says 200 bytes more than the file: the planted part runs past the end
    (416, from zero), then the server's whole file is shorter than the Hub said: failed."""
    sim = hubsim_factory(*FLAGS, models=MODELS)
    model, path, data = lfs_target(sim.truth())
    item = full_item(sim, model.id)
    entry = entries(item)[path]
    entry["size_bytes"] = len(data) + 200
    sha256 = hashlib.sha256(data).hexdigest()
    plant_partial(
        tmp_path,
        model,
        path,
        data + bytes(200),
        len(data) + 100,
        expected={"size": len(data) + 200, "sha256": sha256, "blob_id": None},
    )
    crawler = crawler_for(sim, tmp_path, FILES_ALLOW=path)
    run(crawler, item)
    assert entry["fetch_status"] == "failed" and entry["cid"] is None
    assert entry["fetch_reason"] == (
        f"verification failed twice: the server sends {len(data)} bytes,"
        f" the Hub says {len(data) + 200}"
    )
    cdn = [e for e in sim.log() if e["origin"] == "cdn"]
    assert (cdn[0]["status"], cdn[0]["range"]) == (416, f"bytes={len(data) + 100}-")
    assert stat(crawler, "restarted") == 1 and stat(crawler, "verify_failed") == 2
    assert not (tmp_path / "files" / model.id / model.sha / path).exists()
    assert not any((tmp_path / "state" / "partial").iterdir())


def test_file_requests_keep_to_the_hubs_quota(
    hubsim_factory: Callable[..., HubSim], tmp_path: Path, token_env: None
) -> None:
    quota, window = 6, 2
    flags = ("--quota", f"anonymous:resolvers={quota}", "--window", str(window))
    sim = hubsim_factory(*flags, "--samples", "off", models=MODELS)
    corpus = sim.truth()
    model = find(corpus, lambda m, files: plain(m, files) and len(files) >= 8)
    item = full_item(sim, model.id)
    crawler = crawler_for(sim, tmp_path, FILES_CONCURRENCY=4)
    run(crawler, item)
    assert all(e["fetch_status"] == "fetched" for e in entries(item).values())
    per_window: dict[int, int] = {}
    for entry in sim.log():
        if entry["bucket"] == "resolvers" and entry["counted"]:
            per_window[entry["window"]] = per_window.get(entry["window"], 0) + 1
    assert max(per_window.values()) <= quota
    assert len(per_window) >= len(item.record["files"]) // quota  # it took several windows
    # every file request went through the crawl's limiter
    resolvers = [e for e in sim.log() if e["bucket"] == "resolvers"]
    assert crawler.stats.get_value("hfspider/ratelimit/resolvers/requests") == len(resolvers)


# -- the spider's bodies, and the IPFS stage reading the files back ----------------------------


def test_bodies_the_spider_read_are_verified_and_used_without_a_request(
    hubsim_factory: Callable[..., HubSim], tmp_path: Path, token_env: None
) -> None:
    sim = hubsim_factory(*FLAGS, models=MODELS)
    corpus = sim.truth()
    wanted = ("README.md", "config.json")
    model = find(corpus, lambda m, files: plain(m, files) and set(wanted) <= set(files))
    truth = truth_files(corpus, model)
    crawler = crawler_for(sim, tmp_path, FILES_ALLOW=",".join(wanted))
    item = full_item(sim, model.id)
    item.source["bodies"] = {path: truth[path] for path in wanted}
    seen = sim.log()[-1]["seq"]
    run(crawler, item)
    assert file_log(sim, seen) == []  # not one request for either file
    assert all(entries(item)[path]["fetch_status"] == "fetched" for path in wanted)
    assert_verified(item, truth, tmp_path)
    assert stat(crawler, "body_reused") == 2 and stat(crawler, "downloaded_bytes") == 0
    assert list((tmp_path / "state" / "partial").iterdir()) == []  # written, then moved


def test_a_body_that_does_not_verify_is_fetched_instead(
    hubsim_factory: Callable[..., HubSim], tmp_path: Path, token_env: None
) -> None:
    sim = hubsim_factory(*FLAGS, models=MODELS)
    corpus = sim.truth()
    wanted = ("README.md", "config.json")
    model = find(corpus, lambda m, files: plain(m, files) and set(wanted) <= set(files))
    truth = truth_files(corpus, model)
    crawler = crawler_for(sim, tmp_path, FILES_ALLOW=",".join(wanted))
    item = full_item(sim, model.id)
    card = truth["README.md"]
    # a card cut by a Range (what the spider must not pass on, but if it did)
    item.source["bodies"] = {
        "README.md": card[: len(card) // 2],
        "config.json": truth["config.json"],
    }
    seen = sim.log()[-1]["seq"]
    run(crawler, item)
    asked = file_log(sim, seen)
    assert len(asked) == 1 and asked[0]["path"].endswith("/README.md")
    assert_verified(item, truth, tmp_path)
    assert stat(crawler, "body_rejected") == 1 and stat(crawler, "body_reused") == 1
    assert stat(crawler, "downloaded_bytes") == len(card)


async def files_then_ipfs(
    crawler: Crawler, item: ModelItem, between: Callable[[ModelItem], None]
) -> None:
    """The files stage, `between(item)`, then the IPFS stage, as the crawl chains them."""
    files = FilesPipeline.from_crawler(crawler)
    ipfs = IpfsPipeline.from_crawler(crawler)
    await files.open_spider()
    ipfs.open_spider()
    try:
        await files.process_item(item)
        between(item)
        await ipfs.process_item(item)
    finally:
        await ipfs.close_spider()
        await files.close_spider()


def test_the_car_is_written_from_the_verified_files_themselves(
    hubsim_factory: Callable[..., HubSim], tmp_path: Path, token_env: None
) -> None:
    sim = hubsim_factory(*FLAGS, models=MODELS)
    corpus = sim.truth()
    model = find(corpus, plain)
    truth = truth_files(corpus, model)
    crawler = crawler_for(sim, tmp_path)
    item = full_item(sim, model.id)
    seen: dict[str, Any] = {}

    def between(item: ModelItem) -> None:
        seen["record"] = copy.deepcopy(item.record)
        seen["spool"] = sum(f.stat().st_size for f in (tmp_path / "state/spool").rglob("*"))

    asyncio.run(files_then_ipfs(crawler, item, between))
    assert item.fetched.keys() == truth.keys()
    # the spool held the trees' nodes, not a second copy of the files' bytes
    assert seen["spool"] < sum(len(data) for data in truth.values()) // 100
    # the CAR is byte for byte the one built from the true bytes in memory
    memory = MemoryBlockstore()
    files = {path: import_bytes(data, PARAMS, memory) for path, data in truth.items()}
    expected = build_snapshot(seen["record"], files, PARAMS, memory)
    expected.write_car(tmp_path / "expected.car", memory)
    car = tmp_path / "car" / model.id / f"{model.sha}.car"
    assert car.read_bytes() == (tmp_path / "expected.car").read_bytes()
    assert item.record["cid"] == expected.cid


def test_a_file_changed_on_disk_before_the_car_rejects_the_snapshot(
    hubsim_factory: Callable[..., HubSim], tmp_path: Path, token_env: None
) -> None:
    sim = hubsim_factory(*FLAGS, models=MODELS)
    model, path, data = lfs_target(sim.truth())
    crawler = crawler_for(sim, tmp_path, FILES_ALLOW=path)
    item = full_item(sim, model.id)
    landed = tmp_path / "files" / model.id / model.sha / path

    def tamper(item: ModelItem) -> None:
        assert entries(item)[path]["fetch_status"] == "fetched"
        before = landed.stat()
        with open(landed, "r+b") as f:  # one byte, same size, same mtime
            f.seek(len(data) - 1)
            f.write(bytes([data[-1] ^ 0x01]))
        os.utime(landed, ns=(before.st_atime_ns, before.st_mtime_ns))

    with pytest.raises(DropItem, match=f"^{model.id}: CAR not written: .*changed on disk"):
        asyncio.run(files_then_ipfs(crawler, item, tamper))
    assert not list((tmp_path / "car").rglob("*.car*"))
    (rejected,) = [
        json.loads(line)
        for file in (tmp_path / "rejected").glob("*.jsonl")
        for line in file.read_text().splitlines()
    ]
    assert rejected["stage"] == "ipfs" and rejected["reasons"][0].startswith(model.id)

"""FilesPipeline and its downloader against the real Hub emulator: verified fetches, the
emulator's faults, the token rule, the Hub's refusals, hostile names, resume and reuse.

Every expectation comes from the emulator's ground truth (its corpus rebuilt in-process) and
its request log, never from what the pipeline itself reports.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import json
import logging
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest
from scrapy.crawler import Crawler
from scrapy.utils.test import get_crawler

from hfspider.config import load_settings
from hfspider.files.download import CHUNK_SIZE
from hfspider.files.paths import partial_paths
from hfspider.hub.api import parse_listing_page, parse_model_info
from hfspider.hub.endpoints import ListingQuery
from hfspider.hub.normalise import normalise
from hfspider.hubsim.corpus import Corpus, Model
from hfspider.hubsim.repofiles import snapshot
from hfspider.ipfs import build_snapshot, cid_bytes, import_bytes, preset, sha256_cid
from hfspider.items import ModelItem
from hfspider.pipelines.files import FilesPipeline
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
    disabled = find(corpus, lambda m, files: m.disabled)
    present = find(corpus, plain)
    items = [full_item(sim, gated.id), lite_item(sim, disabled.id), full_item(sim, present.id)]
    regular = next(e for e in items[2].record["files"] if e["lfs"] is False)
    missing = dict(regular, filename="not-there.json")
    items[2].record["files"].append(missing)
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
    for entry in entries(items[1]).values():
        assert entry["fetch_status"] == "failed"
        assert entry["fetch_reason"] == "HTTP 403 Access to this resource is disabled."
    files = entries(items[2])
    assert files["not-there.json"]["fetch_status"] == "failed"
    assert files["not-there.json"]["fetch_reason"] == "HTTP 404 EntryNotFound: Entry not found"
    others = [e for p, e in files.items() if p != "not-there.json"]
    assert all(e["fetch_status"] == "fetched" for e in others)
    assert stat(crawler, "refused") == 1 + 1 + 1


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


def test_lite_records_are_verified_against_the_resolve_answers(
    hubsim_factory: Callable[..., HubSim], tmp_path: Path, token_env: None
) -> None:
    sim = hubsim_factory(*FLAGS, models=MODELS)
    corpus = sim.truth()
    model = find(corpus, plain)
    truth = truth_files(corpus, model)
    item = lite_item(sim, model.id)
    assert all(entry["lfs"] is None for entry in item.record["files"])
    run(crawler_for(sim, tmp_path), item)
    assert all(e["fetch_status"] == "fetched" for e in entries(item).values())
    assert_verified(item, truth, tmp_path)


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
    ("meta", "lite", "first_status", "restarted"),
    [
        ({}, False, 206, 0),  # the same file: resumed where the earlier run stopped
        ({"validator": '"another-etag"'}, False, 206, 1),  # the file changed: from zero
        ({"total": 10**9}, True, 416, 1),  # a partial longer than the file: from zero
    ],
)
def test_a_partial_file_from_an_earlier_run_is_resumed_or_started_over(
    hubsim_factory: Callable[..., HubSim],
    tmp_path: Path,
    token_env: None,
    meta: dict[str, Any],
    lite: bool,
    first_status: int,
    restarted: int,
) -> None:
    sim = hubsim_factory(*FLAGS, models=MODELS)
    model, path, data = lfs_target(sim.truth())
    cut = len(data) // 2 if first_status != 416 else len(data) + 100
    if lite:
        meta = {**meta, "expected": {"size": None, "sha256": None, "blob_id": None}}
        plant_partial(tmp_path, model, path, data + bytes(200), cut, **meta)
    else:
        plant_partial(tmp_path, model, path, data, cut, **meta)
    crawler = crawler_for(sim, tmp_path, FILES_ALLOW=path)
    item = lite_item(sim, model.id) if lite else full_item(sim, model.id)
    run(crawler, item)
    assert entries(item)[path]["fetch_status"] == "fetched"
    assert_verified(item, {path: data}, tmp_path)
    cdn = [e for e in sim.log() if e["origin"] == "cdn"]
    assert cdn[0]["range"] == f"bytes={cut}-" and cdn[0]["status"] == first_status
    assert stat(crawler, "restarted") == restarted
    if first_status == 206 and not restarted:
        assert len(cdn) == 1 and cdn[0]["bytes"] == len(data) - cut
    else:
        assert cdn[-1]["range"] is None and cdn[-1]["bytes"] == len(data)


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

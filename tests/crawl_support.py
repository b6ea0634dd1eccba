"""Run `scrapy crawl hf_models` as a user does, read what it wrote, and say what it should be.

The crawl runs as a subprocess (`python -m scrapy crawl hf_models ...` in the repo, with
HF_ENDPOINT pointing at an emulator and no Hub token). Its output is read back with pyarrow
(Parquet) and sqlite3 (the record store). `expected_record` derives a record from the
emulator's ground truth (model wire fields, `intent`, `recipe`, the repo files and their
digests), never from hfspider's own normaliser; `listing_ids` asks the emulator's listing
directly, following its Link headers with a parser of its own.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pyarrow.dataset as ds

from hfspider.hubsim.content import DigestStore, default_cache_dir, read_bytes
from hfspider.hubsim.corpus import TASK_NAMES, Corpus, Model
from hfspider.hubsim.families import FAMILY_BY_NAME
from hfspider.hubsim.repofiles import snapshot
from hfspider.hubsim.wire import api_config, model_field
from hfspider.schema import record_schema
from tests.fixtures.hubsim import HubSim

REPO = Path(__file__).resolve().parents[1]
CRAWL_TIMEOUT = 300.0
# The files stage selects nothing: what it fetches is proven by its own tests (test_files_*),
# and the crawl's request budget (README.md and config.json per model) stays measurable.
CRAWL_SETTINGS = {"FILES_ALLOW": ""}
# The record fields `config` always has (record.schema.json), integers first.
CONFIG_INTS = (
    "hidden_size",
    "num_attention_heads",
    "num_hidden_layers",
    "num_key_value_heads",
    "intermediate_size",
    "vocab_size",
    "max_position_embeddings",
    "decoder_layers",
    "image_size",
    "patch_size",
    "num_classes",
    "num_features",
)
CARD_MAX_BYTES = 1 << 20  # pipelines_config/crawl.toml [card] max_bytes
# Key of an expected file entry: sha256 of its content (the truth a files stage must match).
CONTENT_SHA256 = "content_sha256"
CID_RE = re.compile(record_schema()["$defs"]["cid"]["pattern"])
RAW_CODEC, SHA2_256 = 0x55, 0x12
LINK_NEXT_RE = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?')
README, CONFIG = "README.md", "config.json"


# -- running the crawl ----------------------------------------------------------------------


def crawl_command(
    output: Path, arguments: dict[str, str] | None = None, settings: dict[str, str] | None = None
) -> list[str]:
    """`python -m scrapy crawl hf_models -a k=v ... -s OUTPUT_DIR=... -s K=V ...`."""
    command = [sys.executable, "-m", "scrapy", "crawl", "hf_models"]
    for name, value in (arguments or {}).items():
        command += ["-a", f"{name}={value}"]
    for name, value in {"OUTPUT_DIR": str(output), **CRAWL_SETTINGS, **(settings or {})}.items():
        command += ["-s", f"{name}={value}"]
    return command


def crawl_env(sim: HubSim, home: Path) -> dict[str, str]:
    """The user's environment, pointed at the emulator, with no Hub token anywhere."""
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    env.update({"HF_ENDPOINT": sim.url, "HF_HOME": str(home), "HF_TOKEN_PATH": str(home / "t")})
    return env


# Crawls started in the background; `kill_leftover_crawls` (after every test: conftest.py) kills
# those still running, so a failing test leaves none behind (a lister whose Redis is gone waits
# for it, through a first SIGTERM too).
STARTED: list[subprocess.Popen[bytes]] = []


def kill_leftover_crawls() -> None:
    while STARTED:
        process = STARTED.pop()
        if process.poll() is None:
            process.kill()
            process.wait(30)


def start_crawl(
    sim: HubSim,
    output: Path,
    arguments: dict[str, str] | None = None,
    settings: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start a crawl in the background; its log goes to `<output>.log` (appended)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    log = open(f"{output}.log", "ab")  # noqa: SIM115 - handed to the child, closed below
    try:
        process = subprocess.Popen(
            crawl_command(output, arguments, settings),
            cwd=REPO,
            env=crawl_env(sim, output.parent),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    finally:
        log.close()
    STARTED.append(process)
    return process


def finish(process: subprocess.Popen[bytes], output: Path, timeout: float = CRAWL_TIMEOUT) -> str:
    """Wait for a crawl to end; it must exit 0. Returns its log."""
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError(
            f"crawl still running after {timeout} s:\n{crawl_log(output)}"
        ) from None
    log = crawl_log(output)
    assert process.returncode == 0, f"crawl exited {process.returncode}:\n{log[-6000:]}"
    return log


def run_crawl(
    sim: HubSim,
    output: Path,
    arguments: dict[str, str] | None = None,
    settings: dict[str, str] | None = None,
) -> str:
    """One crawl to the end (exit status 0); returns its log."""
    return finish(start_crawl(sim, output, arguments, settings), output)


def crawl_log(output: Path) -> str:
    path = Path(f"{output}.log")
    return path.read_text("utf-8", "replace") if path.exists() else ""


def kill_hard(process: subprocess.Popen[bytes]) -> None:
    """`kill -9`: no handler runs, nothing is flushed."""
    process.send_signal(signal.SIGKILL)
    process.wait()


def wait_for(condition: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.05)


# -- reading what it wrote ------------------------------------------------------------------


def parquet_rows(output: Path) -> list[dict[str, Any]]:
    """Every Parquet row (pyarrow, hive partitions), in the JSON shape of a record:
    timestamps as the Hub's ISO strings, card_data parsed, `pipeline_tag=none` as None."""
    dataset = ds.dataset(output / "parquet", format="parquet", partitioning="hive")
    rows = dataset.to_table().to_pylist()
    for row in rows:
        for name in ("created_at", "last_updated", "crawled_at"):
            if row[name] is not None:
                row[name] = iso(row[name])
        row["card_data"] = json.loads(row["card_data"]) if row["card_data"] is not None else None
        if row["pipeline_tag"] == "none":
            row["pipeline_tag"] = None
    return rows


def iso(moment: dt.datetime) -> str:
    moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def store_keys(output: Path) -> list[tuple[str, str]]:
    """(model_id, sha) of every row of the record store's `records` table."""
    with sqlite3.connect(f"file:{output / 'records.sqlite'}?mode=ro", uri=True) as db:
        return db.execute("SELECT model_id, sha FROM records").fetchall()


def stored_records(output: Path) -> dict[str, dict[str, Any]]:
    """model_id -> record as committed (the newest sha when there are several)."""
    with sqlite3.connect(f"file:{output / 'records.sqlite'}?mode=ro", uri=True) as db:
        rows = db.execute("SELECT model_id, record FROM records ORDER BY last_updated").fetchall()
    return {model_id: json.loads(blob) for model_id, blob in rows}


def store_count(output: Path) -> int:
    """Rows committed so far (0 while the store does not exist yet)."""
    path = output / "records.sqlite"
    if not path.exists():
        return 0
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return db.execute("SELECT count(*) FROM records").fetchone()[0]
    except sqlite3.OperationalError:  # created but no table yet
        return 0


def checkpoint_urls(output: Path) -> list[str]:
    path = output / "records.sqlite"
    if not path.exists():
        return []
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as db:
            return [row[0] for row in db.execute("SELECT cursor_url FROM checkpoints")]
    except sqlite3.OperationalError:
        return []


def rejected_entries(output: Path) -> list[dict[str, Any]]:
    entries = []
    for path in sorted((output / "rejected").glob("*.jsonl")):
        entries += [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    return entries


# -- the emulator's own answers -------------------------------------------------------------


def listing_items(sim: HubSim, params: Iterable[tuple[str, str]]) -> list[dict[str, Any]]:
    """Items of `GET /api/models` with these parameters, every page, following `Link`."""
    url: str | None = f"{sim.url}/api/models?{urlencode(list(params))}"
    items: list[dict[str, Any]] = []
    while url:
        answer = sim.get(url)
        assert answer.status == 200, answer.body[:300]
        items += answer.json()
        match = LINK_NEXT_RE.search(answer.headers.get("Link") or "")
        url = match.group(1) if match else None
    return items


def listing_ids(sim: HubSim, params: Iterable[tuple[str, str]]) -> list[str]:
    return [item["id"] for item in listing_items(sim, params)]


# -- ground truth ---------------------------------------------------------------------------


@functools.cache
def digest_store() -> DigestStore:
    """The emulator's digests (sha256 of big files cached where the emulator keeps them)."""
    return DigestStore(default_cache_dir())


def expected_record(
    corpus: Corpus, model: Model, digests: DigestStore, mode: str
) -> dict[str, Any]:
    """The record a crawl in `mode` must publish for `model` (head of main), from the
    emulator's ground truth and the rules docs/schema.md states. Leaves out `crawled_at`,
    `warnings` and the CIDs, which are checked on their own (see `record_problems`)."""
    head = model.revisions[-1]
    info_read = mode == "full" and not model.disabled  # a disabled repo's info is a 403
    files_readable = info_read and not model.gated  # a gated repo's files need access
    snap = snapshot(corpus, model)
    readme = snap.get(README) if files_readable else None
    card = None
    if readme is not None:
        raw = read_bytes(readme.source)[:CARD_MAX_BYTES]
        card = raw.decode("utf-8", errors="ignore")  # a cut never ends inside a character
    expected: dict[str, Any] = {
        "model_id": model.id,
        "hub_id": model.object_id,
        "sha": model.sha,
        "name": model.name,
        "author": model.author,
        "created_at": model.created_at,
        "last_updated": head.date,
        "downloads": model.downloads,
        "downloads_all_time": model.downloads_all_time,
        "likes": model.likes,
        "tags": list(model.tags),
        "pipeline_tag": model.pipeline_tag,
        "library_name": model.library_name,
        "gated": {False: "no"}.get(model.gated, model.gated),
        "disabled": model.disabled,
        "private": model.private,
        "files": _files(snap, digests, info_read),
        "safetensors": _safetensors(model_field(corpus, model, head, "safetensors", listing=False)),
        "gguf": _gguf(model_field(corpus, model, head, "gguf", listing=False)),
        "card": card,
        "embedding_vector": None,
        "crawl_mode": "full" if info_read else "lite",
    }
    if model.intent is None:
        return expected  # a recorded repo: the caller checks what its recording fixes
    intent = model.intent
    config_file = intent.config if snap.get(CONFIG) is not None and files_readable else None
    config = _config(model, config_file, api_config(model, head))
    gguf = expected["gguf"]
    expected.update(
        {
            "description": intent.description if readme is not None else None,
            "license": intent.license,
            "language": list(intent.languages),
            "task_type": [task for task in intent.tasks if task],
            "config": config,
            "architecture": (
                (config["architectures"] or [config["model_type"]])[0]
                if config
                else (gguf["architecture"] if gguf else None)
            ),
            "performance": [
                {
                    "task": r.task,
                    "task_name": TASK_NAMES.get(r.task, r.task),
                    "dataset": r.dataset,
                    "dataset_name": r.dataset,
                    "dataset_config": r.config,
                    "dataset_split": r.split,
                    "metric": r.metric,
                    "metric_name": r.metric,
                    "value": r.value,
                    "verified": None,
                }
                for r in intent.eval_results
            ],
            "relationships": [
                {"relationship_type": intent.base_model_relation, "target_model_id": base}
                for base in intent.base_models
            ],
            "card_data": intent.card_data,
        }
    )
    return expected


def _files(snap: Any, digests: DigestStore, info_read: bool) -> list[dict[str, Any]]:
    """What the Hub says of each file (`CONTENT_SHA256`: the truth, for the later stages)."""
    files = []
    for repo_file in snap.files:
        digest = digests.digest(repo_file.source)
        entry: dict[str, Any] = {"filename": repo_file.path, CONTENT_SHA256: digest.sha256}
        if info_read:
            entry.update(
                size_bytes=repo_file.size,
                blob_id=digest.blob_id,
                lfs=repo_file.lfs,
                sha256=digest.sha256 if repo_file.lfs else None,
            )
        else:  # the listing names the files, nothing more
            entry.update(size_bytes=None, blob_id=None, lfs=None, sha256=None)
        files.append(entry)
    return files


def raw_sha256_cid(sha256: str) -> str:
    """CIDv1, raw codec, sha2-256 multihash, base32: what `sha256_cid` must be."""
    binary = bytes([1, RAW_CODEC, SHA2_256, 32]) + bytes.fromhex(sha256)
    return "b" + base64.b32encode(binary).decode("ascii").lower().rstrip("=")


def record_problems(row: dict[str, Any], expected: dict[str, Any]) -> list[str]:
    """Every difference between a published row and its expected record.

    Fields that later pipeline stages fill (IPFS CIDs; a fetched file's sha256, local_path,
    fetch status) are checked against the truth where it exists (a fetched file's sha256 and
    its sha256_cid) and for form where it does not (a CID is not recomputed here)."""
    problems = []
    for name, want in expected.items():
        got = row[name]
        if name == "files":
            problems += _file_problems(row, got, want)
        elif got != want:
            problems.append(f"{name}: got {got!r:.300} want {want!r:.300}")
    for name in ("cid", "dir_cid"):
        if row[name] is not None and not CID_RE.fullmatch(row[name]):
            problems.append(f"{name}: {row[name]!r} is not a CID")
    return problems


def _file_problems(row: dict[str, Any], got: list[Any], want: list[Any]) -> list[str]:
    if [f["filename"] for f in got] != [f["filename"] for f in want]:
        return [f"files: got {[f['filename'] for f in got]!r:.400} want {want!r:.400}"]
    problems = []
    for have, truth in zip(got, want, strict=True):
        fetched = have["fetch_status"] == "fetched"
        sha256 = truth["sha256"] or (truth[CONTENT_SHA256] if fetched else None)
        local = f"files/{row['author']}/{row['name']}/{row['sha']}/{have['filename']}"
        checks = {
            **{key: truth[key] for key in ("size_bytes", "blob_id", "lfs")},
            "sha256": sha256,
            "sha256_cid": raw_sha256_cid(sha256) if sha256 and have["sha256_cid"] else None,
            "local_path": local if fetched else None,
        }
        for key, value in checks.items():
            if have[key] != value:
                problems.append(f"files {have['filename']!r} {key}: {have[key]!r} want {value!r}")
        if have["cid"] is not None and not (fetched and CID_RE.fullmatch(have["cid"])):
            problems.append(f"files {have['filename']!r} cid {have['cid']!r} (not fetched?)")
        if have["fetch_status"] not in (None, "fetched", "skipped", "failed"):
            problems.append(f"files {have['filename']!r} fetch_status {have['fetch_status']!r}")
    return problems


def _config(
    model: Model, config_file: dict[str, Any] | None, hub_subset: dict[str, Any] | None
) -> dict[str, Any] | None:
    """config.json when it was read, else the Hub's subset (architectures, model_type; for
    diffusers the pipeline class); None when neither says anything."""
    assert model.intent is not None and model.recipe is not None
    if config_file is not None:
        architectures = config_file.get("architectures") or [config_file["architecture"]]
        values = model.intent.config_values
        summary = {"architectures": architectures}
        summary.update({name: values.get(name) for name in CONFIG_INTS})
        summary.update(
            model_type=config_file.get("model_type"),
            torch_dtype=config_file.get("torch_dtype"),
            quant_method=None,
        )
        return summary
    subset = hub_subset or {}
    architectures = list(subset.get("architectures") or [])
    if FAMILY_BY_NAME[model.recipe.family].layout == "diffusers":
        architectures = [subset["diffusers"]["_class_name"]]
    model_type = subset.get("model_type")
    if not architectures and model_type is None:
        return None
    summary = {"architectures": architectures, **dict.fromkeys(CONFIG_INTS)}
    summary.update(model_type=model_type, torch_dtype=None, quant_method=None)
    return summary


def _safetensors(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    return {
        "total_parameters": value.get("total"),
        "parameters_by_dtype": [
            {"dtype": dtype, "count": count} for dtype, count in value["parameters"].items()
        ],
    }


def _gguf(value: Any) -> dict[str, Any] | None:
    if not isinstance(value, dict):
        return None
    return {
        "total_parameters": value.get("total"),
        "architecture": value.get("architecture"),
        "context_length": value.get("context_length"),
        "total_file_size": value.get("totalFileSize"),
    }

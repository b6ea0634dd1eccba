"""The issue's big proof: `scrapy crawl hf_models` fetching a 4 GB LFS file from the emulator
is killed with SIGKILL in the middle, run again, and the file completes through a 206 with the
right sha256 and CID, the emulator having sent at most the file size plus one chunk in all.

"One chunk" is the downloader's CHUNK_SIZE (1 MiB, also the IPFS chunk of the default
profile): what a kill can cost twice is what the client's TCP stack acknowledged (the
emulator's log counts exactly that) but the crawl had not yet written to its `.part`; the
downloader writes each piece as it comes and bounds its socket receive buffer to keep that
under one chunk (docs/files.md).

Kept cheap on CPU: the emulator's digest cache holds the file's sha256 across runs, the
expected CID is computed once from the emulator's keystream, the IPFS stage is left out (a
4 GB CAR is the same code as the small ones of test_files_download.py, and would cost a
read, a hash and a write of 4 GB more), and the multi-GB files are deleted at the end.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from hfspider.config import load_settings
from hfspider.files.download import CHUNK_SIZE
from hfspider.files.paths import partial_paths
from hfspider.hubsim.content import DigestStore, default_cache_dir
from hfspider.hubsim.repofiles import snapshot
from hfspider.ipfs import FileImporter, preset
from hfspider.store.records import STORE_FILE, RecordStore
from tests.fixtures.hubsim import UNLIMITED, HubSim

TOKEN = "hf_resumetest0123456789abcdef"
FILES_PIPELINE = "hfspider.pipelines.files.FilesPipeline"
IPFS_PIPELINE = "hfspider.pipelines.ipfs.IpfsPipeline"
HUGE_SIZE = 4_000_000_000  # the emulator's huge file: this much keystream, plus a header
KILL_AT = 0.4  # fraction of the file on disk when the crawl is killed
RUN_TIMEOUT = 600.0


def crawl_command(model_id: str, path: str, output: Path, log: Path) -> list[str]:
    """The crawl of exactly this model, fetching exactly this file."""
    author, name = model_id.split("/")
    pipelines = {**load_settings()["ITEM_PIPELINES"], FILES_PIPELINE: 300, IPFS_PIPELINE: None}
    settings = {
        "OUTPUT_DIR": str(output),
        "LOG_FILE": str(log),
        "LOG_LEVEL": "DEBUG",
        "FILES_ALLOW": path,
        "FILES_MAX_FILE_SIZE": "0",
        "FILES_MAX_MODEL_SIZE": "0",
        "ITEM_PIPELINES": json.dumps(pipelines),
    }
    command = [sys.executable, "-m", "scrapy", "crawl", "hf_models"]
    command += ["-a", f"author={author}", "-a", f"search={name}"]
    for key, value in settings.items():
        command += ["-s", f"{key}={value}"]
    return command


def test_a_huge_file_resumes_through_a_206_after_kill_9(
    hubsim_factory: Callable[..., HubSim], tmp_path: Path
) -> None:
    flags = ("--samples", "off", "--token", f"{TOKEN}:free:alice", "--huge-size", str(HUGE_SIZE))
    sim = hubsim_factory(*UNLIMITED, *flags, models=30)
    corpus = sim.truth()
    (model, huge) = next(
        (m, f)
        for m in corpus.models.values()
        for f in snapshot(corpus, m).files
        if f.size >= HUGE_SIZE
    )
    output = tmp_path / "out"
    env = {
        **os.environ,
        "HF_ENDPOINT": sim.url,
        "HF_TOKEN": TOKEN,
        "HF_HOME": str(tmp_path / "hf-home"),
        "SCRAPY_SETTINGS_MODULE": "hfspider.settings",
    }
    part, _ = partial_paths(output, model.id, model.sha, huge.path)
    try:
        first = subprocess.Popen(
            crawl_command(model.id, huge.path, output, tmp_path / "first.log"),
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + RUN_TIMEOUT
        while not (part.exists() and part.stat().st_size >= KILL_AT * huge.size):
            assert first.poll() is None, (tmp_path / "first.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the first crawl did not get far enough"
            time.sleep(0.05)
        first.send_signal(signal.SIGKILL)
        first.wait()
        cut = part.stat().st_size
        assert KILL_AT * huge.size <= cut < huge.size

        second = subprocess.run(
            crawl_command(model.id, huge.path, output, tmp_path / "second.log"),
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.STDOUT,
            timeout=RUN_TIMEOUT,
        )
        second_log = (tmp_path / "second.log").read_text()
        assert second.returncode == 0, second_log[-3000:]

        # the record: fetched, with the sha256 the emulator computed and the CID of the bytes
        # it serves (computed here from its keystream, not from our download)
        with RecordStore(output / STORE_FILE) as store:
            record = store.get(model.id, model.sha)
        assert record is not None
        (entry,) = [e for e in record["files"] if e["filename"] == huge.path]
        truth_sha256 = DigestStore(default_cache_dir()).digest(huge.source).sha256
        importer = FileImporter(preset("unixfs-v1-2025"))
        for piece in huge.source.chunks(0, huge.size):
            importer.update(piece)
        assert entry["fetch_status"] == "fetched", entry["fetch_reason"]
        assert entry["sha256"] == truth_sha256
        assert entry["cid"] == importer.finish().cid
        landed = output / entry["local_path"]
        assert landed.stat().st_size == huge.size
        assert not part.exists()

        # the emulator's log (bytes the client's TCP stack acknowledged): one 200 cut by the
        # kill, at least what reached the part, then one 206 for exactly the rest
        cdn = [e for e in sim.log() if e["origin"] == "cdn" and truth_sha256 in e["path"]]
        assert [(e["status"], e["range"]) for e in cdn] == [(200, None), (206, f"bytes={cut}-")]
        assert cdn[0]["bytes"] >= cut
        assert cdn[1]["bytes"] == huge.size - cut
        total = sum(e["bytes"] for e in cdn)
        print(
            f"transferred {total} bytes = the file + {total - huge.size} (one chunk: {CHUNK_SIZE})"
        )
        assert total <= huge.size + CHUNK_SIZE

        # the token went to the Hub and nowhere else
        files = [e for e in sim.log() if e["bucket"] == "resolvers" or e["origin"] == "cdn"]
        assert all(e["auth"] == (e["origin"] == "api") for e in files)
        for path in [*output.rglob("*"), tmp_path / "first.log", tmp_path / "second.log"]:
            if path.is_file() and path != landed:
                assert TOKEN.encode() not in path.read_bytes(), path
        assert "hfspider/files/resumed': 1" in second_log
        # the killed run's block spool was cleaned up by the second run
        assert list((output / "state" / "spool").iterdir()) == []
    finally:
        shutil.rmtree(output, ignore_errors=True)  # gigabytes: not left to pytest's tmp dirs

"""Downloading a big LFS file from the Hub emulator: hfspider against a plain aiohttp stream.

Contenders, each in its own process (so its peak RSS is its own), the same file from the same
emulator, runs interleaved, best of RUNS by wall time:

* plain: aiohttp GET of the resolve URL (aiohttp follows the redirect to the CDN), the body
  written to disk with os.write, chunk by chunk; nothing else.
* downloader: `hfspider.files.download.Downloader.fetch` alone: redirects by hand with the
  limiter and the token rule, a `.part` file, sha256 + UnixFS CID in the same pass (blocks
  discarded), verification, rename; its session as the crawl opens it (`open_session`).
* pipeline: `FilesPipeline.process_item` as the crawl runs it: the downloader plus the
  item's block store (`FileBlockstore`: the tree's nodes spooled, raw leaves left in the
  file) the IPFS stage writes the CAR from, in a Scrapy process.

Figures, over the transfer alone (imports and set-up are not throughput): wall seconds and
MB/s; CPU seconds of the process (user + sys, all threads) and what hashing + CID add on top of
the plain download; peak RSS; the emulator's own CPU seconds. Goals (issue 5): the pipeline's
peak RSS < 150 MB and >= 0.8x the plain rate.

Links: over loopback (the 4 GB rows) nothing but CPU limits a download, and the 2 cores are
shared by both ends, which no Hub download is. So the same contenders also run against an
emulator whose CDN is capped like a link (`--cdn-rate`, per connection: docs/hubsim.md) at
typical CDN rates, 400 and 100 MB/s, on a 1 GB file (4 GB at 100 MB/s would be 40 s a run).
Figures per GB make the rows comparable. bench/results/download.json keeps the loopback
figures at its top level, as before, and the capped ones under `links`. `--size`,
`--capped-size`, `--runs` and `--links` make a trial run, whose figures are printed but not
saved.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SIZE = 4_000_000_000
CAPPED_SIZE = 1_000_000_000  # 10 s a run at 100 MB/s: 4 GB would take 40 s x 9 runs
LINKS = (0.0, 400.0, 100.0)  # MB/s per connection; 0: unlimited loopback
RUNS = 3
MODELS, SEED = 30, 7
CONTENDERS = ("plain", "downloader", "pipeline")


# -- the contenders (each runs in its own process: `bench_download.py run NAME ...`); each
# imports only what it uses, so that the plain one is not charged for Scrapy's memory. The
# clock runs from the first request of the download to the file in place: imports and
# set-up (Python modules, a Scrapy crawler) are not throughput -------------------------------


class Clock:
    """Wall and CPU seconds (this process, all threads) between start() and stop()."""

    def start(self) -> None:
        self._cpu = self._cpu_now()
        self._wall = time.perf_counter()

    def stop(self) -> None:
        self.seconds = time.perf_counter() - self._wall
        self.cpu_seconds = self._cpu_now() - self._cpu

    @staticmethod
    def _cpu_now() -> float:
        usage = resource.getrusage(resource.RUSAGE_SELF)
        return usage.ru_utime + usage.ru_stime


async def plain(clock: Clock, url: str, out: Path) -> dict[str, Any]:
    import aiohttp

    from hfspider.files.download import CHUNK_SIZE

    written = 0
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        clock.start()
        async with session.get(url, headers={"Accept-Encoding": "identity"}) as answer:
            fd = os.open(out / "plain.bin", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            async for chunk in answer.content.iter_chunked(CHUNK_SIZE):
                view = memoryview(chunk)
                while view:
                    view = view[os.write(fd, view) :]
                written += len(chunk)
            os.close(fd)
        clock.stop()
    return {"bytes": written}


async def downloader(
    clock: Clock, endpoint: str, model_id: str, sha: str, path: str, out: Path
) -> dict[str, Any]:
    from hfspider.budget.limiter import Limiter
    from hfspider.config import load_settings
    from hfspider.files.config import FilesConfig
    from hfspider.files.download import Downloader, Target, open_session
    from hfspider.files.paths import partial_paths
    from hfspider.files.verify import Expected
    from hfspider.hub.endpoints import resolve_url
    from hfspider.ipfs import DiscardSink, preset

    settings = {**load_settings(), "HUB_ENDPOINT": endpoint}
    info = await fetch_json(f"{endpoint}/api/models/{model_id}/revision/{sha}?blobs=true")
    (lfs,) = [s["lfs"] for s in info["siblings"] if s["rfilename"] == path]
    part, meta = partial_paths(out, model_id, sha, path)
    target = Target(
        label=path,
        url=resolve_url(endpoint, model_id, sha, path),
        fallback_url=None,
        expected=Expected(lfs["size"], sha256=lfs["sha256"]),
        dest=out / "downloaded.bin",
        part=part,
        meta=meta,
    )
    receive_buffer = FilesConfig.from_settings(settings).receive_buffer
    async with open_session(60, receive_buffer) as session:
        fetcher = Downloader(
            session,
            Limiter.from_settings(settings),
            preset("unixfs-v1-2025"),
            token=None,
            user_agent="bench",
            retry_times=2,
            retry_429_times=2,
            max_redirects=5,
        )
        clock.start()
        fetched = await fetcher.fetch(target, DiscardSink())
        clock.stop()
    return {"bytes": fetched.computed.size, "cid": fetched.computed.imported.cid}


async def pipeline(
    clock: Clock, endpoint: str, model_id: str, sha: str, path: str, out: Path
) -> dict[str, Any]:
    from scrapy.utils.test import get_crawler

    from hfspider.config import load_settings
    from hfspider.hub.api import parse_model_info
    from hfspider.hub.normalise import normalise
    from hfspider.items import ModelItem
    from hfspider.pipelines.files import FilesPipeline

    settings = {
        **load_settings(),
        "HUB_ENDPOINT": endpoint,
        "OUTPUT_DIR": str(out),
        "FILES_ALLOW": path,
        "FILES_MAX_FILE_SIZE": 0,
        "FILES_MAX_MODEL_SIZE": 0,
        "LOG_LEVEL": "WARNING",
    }
    info = parse_model_info(
        await fetch_json(f"{endpoint}/api/models/{model_id}/revision/{sha}?blobs=true")
    )
    item = ModelItem(normalise(info, info, crawled_at=dt.datetime.now(dt.UTC)), {})
    files = FilesPipeline.from_crawler(get_crawler(settings_dict=settings))
    await files.open_spider()
    clock.start()
    await files.process_item(item)
    clock.stop()
    await files.close_spider()
    (entry,) = [e for e in item.record["files"] if e["filename"] == path]
    assert entry["fetch_status"] == "fetched", entry["fetch_reason"]
    item.release()
    return {"bytes": entry["size_bytes"], "cid": entry["cid"]}


async def fetch_json(url: str) -> Any:
    import aiohttp

    async with aiohttp.ClientSession() as session, session.get(url) as answer:
        return await answer.json()


def run_contender(name: str, endpoint: str, model_id: str, sha: str, path: str, out: str) -> None:
    """One run; prints a JSON line with the transfer's seconds and CPU seconds, and the
    process's peak RSS."""
    from hfspider.hub.endpoints import resolve_url

    clock = Clock()
    if name == "plain":
        work = plain(clock, resolve_url(endpoint, model_id, sha, path), Path(out))
    elif name == "downloader":
        work = downloader(clock, endpoint, model_id, sha, path, Path(out))
    else:
        work = pipeline(clock, endpoint, model_id, sha, path, Path(out))
    result = asyncio.run(work)
    result.update(
        seconds=clock.seconds,
        cpu_seconds=clock.cpu_seconds,
        peak_rss_mb=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    )
    print(json.dumps(result))


# -- the driver --------------------------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_emulator(
    cache: Path, size: int, rate_mb_s: float = 0.0
) -> tuple[subprocess.Popen[bytes], str]:
    command = [sys.executable, "-m", "hfspider.hubsim", "--models", str(MODELS)]
    command += ["--seed", str(SEED), "--samples", "off", "--huge-size", str(size)]
    command += ["--quota", "*:*=100000000", "--cache-dir", str(cache)]
    command += ["--cdn-rate", str(rate_mb_s)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, cwd=ROOT)
    assert process.stdout is not None
    line = process.stdout.readline().decode()
    if not line.startswith("ready "):
        process.kill()
        raise SystemExit(f"the emulator did not start: {line!r}")
    return process, line.split()[1]


def huge_file(size: int) -> tuple[str, str, str, int]:
    from hfspider.hubsim.corpus import build_corpus
    from hfspider.hubsim.repofiles import snapshot

    corpus = build_corpus(MODELS, SEED, samples=None, huge_size=size)
    for model in corpus.models.values():
        for repo_file in snapshot(corpus, model).files:
            if repo_file.size >= size:  # a format header comes on top
                return model.id, model.sha, repo_file.path, repo_file.size
    raise SystemExit("no huge file in the corpus")


def measure(tmp: Path, rate_mb_s: float, size_option: int, runs: int) -> dict[str, Any]:
    """Best of `runs` (interleaved) of each contender against one emulator whose CDN is capped
    at `rate_mb_s` (0: unlimited loopback); the figures of one table block."""
    import urllib.request

    from hfspider.hub.endpoints import resolve_url

    model_id, sha, path, size = huge_file(size_option)
    figures: dict[str, list[dict[str, Any]]] = {name: [] for name in CONTENDERS}
    emulator, endpoint = start_emulator(tmp / "digests", size_option, rate_mb_s)
    try:
        request = urllib.request.Request(resolve_url(endpoint, model_id, sha, path), method="HEAD")
        urllib.request.urlopen(request).close()  # the emulator hashes the file once, now
        for _ in range(runs):
            for name in CONTENDERS:
                out = tmp / name
                out.mkdir()
                before = cpu_seconds(emulator.pid)
                command = [sys.executable, __file__, "run", name, endpoint, model_id, sha, path]
                done = subprocess.run(
                    [*command, str(out)], capture_output=True, text=True, check=True
                )
                result = json.loads(done.stdout.splitlines()[-1])
                result["server_cpu_seconds"] = cpu_seconds(emulator.pid) - before
                assert result["bytes"] == size, result
                figures[name].append(result)
                shutil.rmtree(out)
    finally:
        emulator.terminate()
        emulator.wait()
    best = {name: min(runs, key=lambda r: r["seconds"]) for name, runs in figures.items()}
    cids = {best[name]["cid"] for name in ("downloader", "pipeline")}
    assert len(cids) == 1, cids
    plain_best = best["plain"]
    gb = size / 1e9
    results: dict[str, Any] = {
        "cdn_rate_mb_s": rate_mb_s,
        "size_bytes": size,
        "runs": runs,
        "cid": cids.pop(),
    }
    for name, result in best.items():
        results[name] = {
            "seconds": result["seconds"],
            "mb_s": size / result["seconds"] / 1e6,
            "cpu_seconds": result["cpu_seconds"],
            "cpu_s_per_gb": result["cpu_seconds"] / gb,
            "extra_cpu_s_per_gb": (result["cpu_seconds"] - plain_best["cpu_seconds"]) / gb,
            "peak_rss_mb": result["peak_rss_mb"],
            "server_cpu_seconds": result["server_cpu_seconds"],
            "server_cpu_s_per_gb": result["server_cpu_seconds"] / gb,
            "x_plain_rate": plain_best["seconds"] / result["seconds"],
            "all_seconds": [r["seconds"] for r in figures[name]],
        }
    ours = results["pipeline"]
    results["goals_met"] = ours["peak_rss_mb"] < 150 and ours["x_plain_rate"] >= 0.8
    return results


def table(blocks: list[dict[str, Any]]) -> str:
    lines = [
        "| link (per connection) | file | contender | s | MB/s | x plain rate | CPU s "
        "| CPU s/GB | + CPU s/GB vs plain | peak RSS MB | emulator CPU s/GB |",
        "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for block in blocks:
        rate = block["cdn_rate_mb_s"]
        link = f"{rate:g} MB/s" if rate else "unlimited (loopback)"
        size = f"{block['size_bytes'] / 1e9:g} GB"
        for name in CONTENDERS:
            r = block[name]
            lines.append(
                f"| {link} | {size} | {name} | {r['seconds']:.2f} | {r['mb_s']:.0f} "
                f"| {r['x_plain_rate']:.2f} | {r['cpu_seconds']:.2f} | {r['cpu_s_per_gb']:.2f} "
                f"| {r['extra_cpu_s_per_gb']:.2f} | {r['peak_rss_mb']:.0f} "
                f"| {r['server_cpu_s_per_gb']:.2f} |"
            )
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=SIZE, help="file size, unlimited (a trial)")
    parser.add_argument(
        "--capped-size", type=int, default=CAPPED_SIZE, help="file size, capped links (a trial)"
    )
    parser.add_argument("--runs", type=int, default=RUNS, help="runs per contender")
    parser.add_argument(
        "--links",
        default=",".join(f"{rate:g}" for rate in LINKS),
        help="CDN rates in MB/s per connection, 0 for unlimited loopback (a trial)",
    )
    options = parser.parse_args(argv)
    links = [float(rate) for rate in options.links.split(",")]
    load = os.getloadavg()
    blocks = []
    with tempfile.TemporaryDirectory() as tmp:
        for rate in links:
            size = options.capped_size if rate else options.size
            blocks.append(measure(Path(tmp), rate, size, options.runs))
    unlimited = next((b for b in blocks if not b["cdn_rate_mb_s"]), None)
    results: dict[str, Any] = {
        "load_average_at_start": list(load),
        **(unlimited or {}),  # the unlimited loopback figures at the top, as before
        "links": [b for b in blocks if b["cdn_rate_mb_s"]],
    }
    trial = (options.size, options.capped_size, options.runs, links) != (
        SIZE,
        CAPPED_SIZE,
        RUNS,
        list(LINKS),
    )
    if not trial:  # trial runs leave the published figures alone
        (ROOT / "bench" / "results").mkdir(exist_ok=True)
        path_out = ROOT / "bench" / "results" / "download.json"
        path_out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"load average at the start: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}\n")
    print(table(blocks))
    print("\ngoals (pipeline peak RSS < 150 MB, >= 0.8x plain rate):")
    for block in blocks:
        rate = block["cdn_rate_mb_s"]
        link = f"{rate:g} MB/s per connection" if rate else "unlimited loopback"
        print(f"  {link}: {'met' if block['goals_met'] else 'NOT met'}")
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["run"]:
        run_contender(*sys.argv[2:8])
        sys.exit(0)
    sys.exit(main(sys.argv[1:]))

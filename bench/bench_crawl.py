"""`scrapy crawl hf_models` against the official huggingface_hub client, on the same Hub.

One emulator (10,000 synthetic models plus the recorded samples, unlimited quota) pinned to
CPU 0; each client runs alone, pinned to CPU 1, in its own process, one after the other:

* hfspider, `full` mode (pinned model info with file sizes and hashes, README.md, config.json,
  normalised, validated, CAR written, stored, exported to Parquet) with the files stage
  selecting nothing (`-s FILES_ALLOW=`: the peer's reads), and the same with
  `-a limit=2000` (peak RSS at two sizes);
* hfspider, `lite` mode (listing fields only);
* hfspider, `full` mode with the default files stage (every small file fetched and imported
  for IPFS), on 1,000 models: what a default crawl costs beyond the peer's reads;
* two floors that do nothing with what they read, to show where a model's CPU goes: Scrapy
  alone (a bare spider making exactly the spider's requests with the same concurrency
  settings, callbacks that only find the next URL, no middlewares, pipelines or storage) and
  aiohttp alone (the same requests from 16 asyncio tasks, no framework);
* the peer: huggingface_hub 2.4.0 doing the same reads (`list_models` with the same `expand`
  fields, then per model `model_info(files_metadata=True)` at the listed sha and
  `hf_hub_download` of README.md and config.json when the repo has them), sequentially and
  with 16 threads. It only fetches: no normalisation, validation or storage.

Per run: requests per model by bucket (the emulator's /_hubsim/stats before and after), wall
time, CPU seconds (user + system of the client process, from wait4) per 1,000 models, models
per CPU second, peak RSS (ru_maxrss). wait4's usage includes the client's own waited-for
children: the crawl's Parquet export, which runs in a child process at close, counts with its
CPU, and the peak is the larger of the crawl's and the export's. Before the runs, every
model's info is asked once so the emulator has hashed every file: no client pays for the
emulator's first hashing.

Goals (issue 3): at most half the peer's requests per model; at least 3x the 16-thread peer's
models per CPU second; peak RSS under 300 MB whatever the number of models.

The 16-thread peer runs twice; the goal is checked against its better run (the one most
favourable to the peer).

`python bench/bench_crawl.py [MODELS]`; `--peer THREADS`, `--floor scrapy|aiohttp` are the
contenders themselves (internal).
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from hfspider.hub.endpoints import RECORD_EXPAND

ROOT = Path(__file__).resolve().parents[1]
MODELS = 10_000
SMALL = 2_000
FILES_MODELS = 1_000  # the default files stage fetches ~10 files per model: a smaller run
SEED = 1
THREADS = 16
BUCKETS = ("api", "resolvers", "pages")
LINK_NEXT_RE = re.compile(r'<([^>]*)>\s*;\s*rel="?next"?')
GOAL_REQUEST_RATIO = 0.5
GOAL_CPU_RATIO = 3.0
GOAL_RSS_MB = 300


# -- the peer (runs in its own process) -----------------------------------------------------


def peer(threads: int) -> None:
    """List every model, then read each one as hfspider's full mode does; print a count."""
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError

    api = HfApi()
    models = list(api.list_models(expand=list(RECORD_EXPAND)))  # the spider's fields

    def read(model: Any) -> bool:
        try:
            info = api.model_info(model.id, revision=model.sha, files_metadata=True)
            names = {sibling.rfilename for sibling in info.siblings or ()}
            for name in ("README.md", "config.json"):
                if name in names:
                    hf_hub_download(model.id, name, revision=info.sha)
        except HfHubHTTPError:  # gated files, disabled repos: what the Hub refuses
            return False
        return True

    if threads == 1:
        complete = sum(read(model) for model in models)
    else:
        with concurrent.futures.ThreadPoolExecutor(threads) as pool:
            complete = sum(pool.map(read, models))
    print(json.dumps({"models": len(models), "complete": complete}))


# -- the floors (run in their own process) -------------------------------------------------


def scrapy_floor() -> None:
    """A bare Scrapy spider making the spider's requests (full mode); responses discarded."""
    import scrapy
    from scrapy.crawler import AsyncCrawlerProcess

    from hfspider.hub.endpoints import ListingQuery, model_info_url, next_page_url

    endpoint = os.environ["HF_ENDPOINT"]

    class Floor(scrapy.Spider):
        name = "floor"

        async def start(self) -> Any:
            yield scrapy.Request(ListingQuery().url(endpoint), callback=self.listing)

        def listing(self, response: Any) -> Any:
            for model in json.loads(response.body):
                url = model_info_url(endpoint, model["id"], model["sha"])
                yield scrapy.Request(url, callback=self.info)
            link = next_page_url(response.headers.get("Link", b"").decode(), response.url)
            if link:
                yield scrapy.Request(link, callback=self.listing)

        def info(self, response: Any) -> Any:
            for url in floor_file_urls(endpoint, json.loads(response.body)):
                yield scrapy.Request(url, callback=self.file)

        def file(self, response: Any) -> None:
            pass

    settings = {
        "LOG_LEVEL": "WARNING",
        "TWISTED_REACTOR": "twisted.internet.asyncioreactor.AsyncioSelectorReactor",
        "CONCURRENT_REQUESTS": 16,  # as pipelines_config/scrapy.toml, full mode
        "CONCURRENT_REQUESTS_PER_DOMAIN": 8,
        "CONCURRENT_ITEMS": 1,
        "WARN_ON_GENERATOR_RETURN_VALUE": False,
        "DUPEFILTER_CLASS": "scrapy.dupefilters.BaseDupeFilter",
        "ROBOTSTXT_OBEY": False,
        "COOKIES_ENABLED": False,
        "TELNETCONSOLE_ENABLED": False,
    }
    process = AsyncCrawlerProcess(settings)
    process.crawl(Floor)
    process.start()


def aiohttp_floor() -> None:
    """The same requests from 16 asyncio tasks over one aiohttp session; no framework."""
    import asyncio

    import aiohttp

    from hfspider.hub.endpoints import ListingQuery, model_info_url, next_page_url

    endpoint = os.environ["HF_ENDPOINT"]

    async def run() -> None:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=16)) as session:
            listed_models: list[Any] = []
            url: str | None = ListingQuery().url(endpoint)
            while url:
                async with session.get(url) as response:
                    listed_models += json.loads(await response.read())
                    link = response.headers.get("Link", "")
                url = next_page_url(link, url)
            queue = iter(listed_models)

            async def worker() -> None:
                for model in queue:
                    url = model_info_url(endpoint, model["id"], model["sha"])
                    async with session.get(url) as response:
                        body = await response.read()
                    if response.status != 200:
                        continue
                    for file_url in floor_file_urls(endpoint, json.loads(body)):
                        async with session.get(file_url) as response:
                            await response.read()

            await asyncio.gather(*(worker() for _ in range(THREADS)))

    asyncio.run(run())


def floor_file_urls(endpoint: str, info: dict[str, Any]) -> list[str]:
    """README.md and config.json where the spider asks for them (the resolve cache)."""
    from hfspider.hub.endpoints import resolve_cache_url

    return [
        resolve_cache_url(endpoint, info["id"], info["sha"], entry["rfilename"], entry["blobId"])
        for entry in info.get("siblings") or ()
        if entry["rfilename"] in ("README.md", "config.json") and "lfs" not in entry
    ]


# -- the emulator ---------------------------------------------------------------------------


def start_emulator(models: int) -> tuple[subprocess.Popen[str], str]:
    command = ["taskset", "-c", "0", sys.executable, "-m", "hfspider.hubsim"]
    command += ["--models", str(models), "--seed", str(SEED), "--quota", "*:*=1000000000"]
    command += ["--log-max", "1000"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert process.stdout is not None
    line = process.stdout.readline()
    if not line.startswith("ready "):
        raise SystemExit("the emulator did not start")
    return process, line.split()[1]


def get(url: str) -> tuple[http.client.HTTPResponse, bytes]:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
    try:
        connection.request("GET", f"{parts.path}?{parts.query}" if parts.query else parts.path)
        response = connection.getresponse()
        return response, response.read()
    finally:
        connection.close()


def bucket_requests(base: str) -> dict[str, int]:
    stats = json.loads(get(f"{base}/_hubsim/stats")[1])
    return {b: stats["by_bucket"].get(b, {}).get("requests", 0) for b in BUCKETS} | {
        "cdn": stats["by_origin"].get("cdn", 0)
    }


def listed(base: str) -> list[tuple[str, str]]:
    """(id, sha) of every model an anonymous client sees."""
    url: str | None = f"{base}/api/models?limit=1000&expand=sha"
    models = []
    while url:
        response, body = get(url)
        models += [(item["id"], item["sha"]) for item in json.loads(body)]
        match = LINK_NEXT_RE.search(response.getheader("Link") or "")
        url = match.group(1) if match else None
    return models


def warm_up(base: str, models: list[tuple[str, str]]) -> None:
    """Ask every model's info with blobs once: the emulator hashes its files now."""
    urls = [f"{base}/api/models/{model_id}/revision/{sha}?blobs=true" for model_id, sha in models]
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(get, urls))


# -- one measured run -----------------------------------------------------------------------


def measure(label: str, command: list[str], env: dict[str, str], base: str, models: int) -> dict:
    """Run `command` pinned to CPU 1; its wall time, CPU, peak RSS and requests per model."""
    before = bucket_requests(base)
    with tempfile.TemporaryFile() as log:
        began = time.perf_counter()
        process = subprocess.Popen(
            ["taskset", "-c", "1", *command], cwd=ROOT, env=env, stdout=log, stderr=log
        )
        _, status, usage = os.wait4(process.pid, 0)
        wall = time.perf_counter() - began
        log.seek(0)
        output = log.read().decode("utf-8", "replace")
    if status != 0:
        raise SystemExit(f"{label} failed (status {status}):\n{output[-3000:]}")
    after = bucket_requests(base)
    cpu = usage.ru_utime + usage.ru_stime
    requests = {bucket: (after[bucket] - before[bucket]) / models for bucket in after}
    return {
        "label": label,
        "models": models,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "cpu_s_per_1000": round(cpu / models * 1000, 2),
        "models_per_cpu_s": round(models / cpu, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "requests_per_model": {k: round(v, 3) for k, v in requests.items()},
        "requests_per_model_total": round(sum(requests.values()), 3),
        "output_tail": output[-400:] if label.startswith("huggingface_hub") else "",
    }


def spider_run(
    base: str, workdir: Path, label: str, models: int, *arguments: str, files: bool = False
) -> dict:
    """One crawl; unless `files`, the files stage selects nothing (`-s FILES_ALLOW=`), so the
    crawl reads what the peer reads: model info, README.md and config.json."""
    output = workdir / re.sub(r"\W+", "_", label)
    env = dict(os.environ, HF_ENDPOINT=base, HF_HOME=str(output / "hf"))
    env.pop("HF_TOKEN", None)
    command = [sys.executable, "-m", "scrapy", "crawl", "hf_models", "-s", f"OUTPUT_DIR={output}"]
    if not files:
        command += ["-s", "FILES_ALLOW="]
    for argument in arguments:
        command += ["-a", argument]
    result = measure(label, command, env, base, models)
    rows = json.loads(
        subprocess.run(
            [sys.executable, "-c", COUNT_ROWS, str(output)],
            check=True,
            capture_output=True,
            text=True,
            cwd=ROOT,
        ).stdout
    )
    assert rows == models, f"{label}: {rows} rows for {models} models"
    return result


COUNT_ROWS = "import sys,json,pyarrow.dataset as d;print(d.dataset(sys.argv[1]+'/parquet',"
COUNT_ROWS += "partitioning='hive').count_rows())"


def peer_run(base: str, workdir: Path, threads: int, models: int, again: bool = False) -> dict:
    label = "huggingface_hub, sequential" if threads == 1 else f"huggingface_hub, {threads} threads"
    label += ", second run" if again else ""
    env = dict(os.environ)
    env.update(
        HF_ENDPOINT=base,
        HF_HUB_DISABLE_XET="1",
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_HUB_DISABLE_PROGRESS_BARS="1",
        HF_HOME=str(workdir / re.sub(r"\W+", "_", label)),  # an empty download cache each
    )
    env.pop("HF_TOKEN", None)
    command = [sys.executable, str(Path(__file__).resolve()), "--peer", str(threads)]
    result = measure(label, command, env, base, models)
    counted = json.loads(result["output_tail"].strip().splitlines()[-1])
    assert counted["models"] == models, counted
    result["complete"] = counted["complete"]
    return result


def floor_run(base: str, kind: str, models: int) -> dict:
    env = dict(os.environ, HF_ENDPOINT=base)
    env.pop("HF_TOKEN", None)
    command = [sys.executable, str(Path(__file__).resolve()), "--floor", kind]
    return measure(f"floor: {kind} alone, same requests, nothing kept", command, env, base, models)


# -- the report -----------------------------------------------------------------------------


def table(runs: list[dict]) -> str:
    lines = [
        "| client | models | api/model | resolvers/model | total req/model | wall s"
        " | CPU s per 1k models | models per CPU s | peak RSS MB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        per = run["requests_per_model"]
        lines.append(
            f"| {run['label']} | {run['models']:,} | {per['api']:.2f} | {per['resolvers']:.2f}"
            f" | {run['requests_per_model_total']:.2f} | {run['wall_s']:.0f}"
            f" | {run['cpu_s_per_1000']:.1f} | {run['models_per_cpu_s']:.0f}"
            f" | {run['peak_rss_mb']} |"
        )
    return "\n".join(lines)


def goals(runs: dict[str, dict]) -> dict[str, Any]:
    full, sequential = runs["full"], runs["peer-1"]
    threaded = max(
        (run for key, run in runs.items() if key.startswith("peer-16")),
        key=lambda run: run["models_per_cpu_s"],
    )
    peer_requests = min(
        sequential["requests_per_model_total"], threaded["requests_per_model_total"]
    )
    request_ratio = full["requests_per_model_total"] / peer_requests
    cpu_ratio = full["models_per_cpu_s"] / threaded["models_per_cpu_s"]
    own = [run for key, run in runs.items() if not key.startswith(("peer", "floor"))]
    rss = max(run["peak_rss_mb"] for run in own)
    return {
        "peer_16_models_per_cpu_s": threaded["models_per_cpu_s"],
        "scrapy_floor_cpu_ratio": round(
            runs["floor-scrapy"]["models_per_cpu_s"] / threaded["models_per_cpu_s"], 2
        ),
        "request_ratio": round(request_ratio, 3),
        "request_goal_met": request_ratio <= GOAL_REQUEST_RATIO,
        "cpu_ratio": round(cpu_ratio, 2),
        "cpu_goal_met": cpu_ratio >= GOAL_CPU_RATIO,
        "peak_rss_mb": rss,
        "rss_goal_met": rss < GOAL_RSS_MB,
    }


def main(models: int) -> None:
    load = os.getloadavg()
    process, base = start_emulator(models)
    try:
        everyone = listed(base)
        warm_up(base, everyone)
        count = len(everyone)
        small = min(SMALL, count // 2)
        files_models = min(FILES_MODELS, count // 2)
        with tempfile.TemporaryDirectory() as tmp:
            workdir = Path(tmp)
            runs = {
                "full": spider_run(base, workdir, "hfspider full", count),
                "full-small": spider_run(
                    base, workdir, f"hfspider full, limit={small}", small, f"limit={small}"
                ),
                "lite": spider_run(base, workdir, "hfspider lite", count, "mode=lite"),
                "files": spider_run(
                    base,
                    workdir,
                    f"hfspider full + default files stage, limit={files_models}",
                    files_models,
                    f"limit={files_models}",
                    files=True,
                ),
                "floor-scrapy": floor_run(base, "scrapy", count),
                "floor-aiohttp": floor_run(base, "aiohttp", count),
                "peer-1": peer_run(base, workdir, 1, count),
                "peer-16": peer_run(base, workdir, THREADS, count),
                "peer-16-again": peer_run(base, workdir, THREADS, count, again=True),
            }
    finally:
        process.terminate()
        process.wait(30)
    results = {
        "emulator_models": models,
        "listed_models": count,
        "load_average_before": [round(x, 2) for x in load],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "runs": list(runs.values()),
        "goals": goals(runs),
    }
    for run in results["runs"]:
        run.pop("output_tail")
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "crawl.json").write_text(json.dumps(results, indent=2) + "\n")
    print(table(results["runs"]))
    print()
    print(json.dumps(results["goals"]))
    before, after = results["load_average_before"], results["load_average_after"]
    print(f"load average before {before}, after {after}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--peer"]:
        peer(int(sys.argv[2]))
    elif sys.argv[1:2] == ["--floor"]:
        {"scrapy": scrapy_floor, "aiohttp": aiohttp_floor}[sys.argv[2]]()
    else:
        main(int(sys.argv[1]) if len(sys.argv) > 1 else MODELS)

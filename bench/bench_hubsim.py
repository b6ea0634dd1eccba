"""The Hub emulator under load: JSON answers per second, LFS streaming, start-up time.

The emulator (10,000 synthetic models) runs pinned to CPU 0 and the load generators to CPU 1,
so every figure is what one emulator core delivers:

* JSON: `wrk` (1 thread, 32 connections, 10 s after a 2 s warm-up) rotating over 1,000 model
  ids through a Lua script; model info with `expand=sha` (about 110 bytes) and full model info
  (about 1.5-3 KB). Non-2xx answers are counted and must be zero.
* LFS: `curl` downloading a 2 GB weight file from the CDN origin to /dev/null (best of 3),
  then 4 such downloads at once. Its sha256 is computed (and cached) before timing.
* Start-up: seconds from spawning the emulator to its `ready` line.

Goals (issue 2): >= 2,000 JSON answers/s, >= 300 MB/s LFS streaming, start-up of a few seconds.
"""

from __future__ import annotations

import http.client
import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

from hfspider.hubsim.corpus import build_corpus
from hfspider.hubsim.repofiles import snapshot

ROOT = Path(__file__).resolve().parents[1]
MODELS = 10_000
SEED = 1
HUGE_SIZE = 2_000_000_000
RUNS = 3
WRK_SECONDS = 10
ROTATE_LUA = """
local paths = {}
for line in io.lines("%s") do paths[#paths + 1] = line end
local i = 0
request = function()
  i = i %% #paths + 1
  return wrk.format("GET", paths[i])
end
"""


def start_emulator() -> tuple[subprocess.Popen, str, float]:
    command = ["taskset", "-c", "0", sys.executable, "-m", "hfspider.hubsim"]
    command += ["--models", str(MODELS), "--seed", str(SEED), "--huge-size", str(HUGE_SIZE)]
    command += ["--quota", "*:*=1000000000", "--log-max", "100000"]
    began = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    line = process.stdout.readline()
    seconds = time.perf_counter() - began
    if not line.startswith("ready "):
        raise SystemExit("the emulator did not start")
    return process, line.split()[1], seconds


def get(url: str, method: str = "GET") -> http.client.HTTPResponse:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    connection.request(method, f"{parts.path}?{parts.query}" if parts.query else parts.path)
    response = connection.getresponse()
    response.read()
    return response


def wrk(base: str, paths: list[str]) -> dict[str, float]:
    """Requests per second and latency of wrk rotating over `paths`."""
    with tempfile.TemporaryDirectory() as tmp:
        listing = Path(tmp, "paths.txt")
        listing.write_text("\n".join(paths) + "\n")
        script = Path(tmp, "rotate.lua")
        script.write_text(ROTATE_LUA % listing)
        base_cmd = ["taskset", "-c", "1", "wrk", "-t1", "-c32", "-s", str(script), "--latency"]
        subprocess.run([*base_cmd, "-d2s", base], check=True, capture_output=True)  # warm-up
        out = subprocess.run(
            [*base_cmd, f"-d{WRK_SECONDS}s", base], check=True, capture_output=True, text=True
        ).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    latency = dict(re.findall(r"\s+(50|99)%\s+([\d.]+\w+)", out))
    return {
        "rps": rate,
        "non_2xx": int(errors.group(1)) if errors else 0,
        "p50": latency.get("50"),
        "p99": latency.get("99"),
    }


def curl_streams(url: str, count: int) -> float:
    """Aggregate MB/s of `count` simultaneous full downloads of `url`."""
    command = ["taskset", "-c", "1", "curl", "-s", "-o", "/dev/null", "-w", "%{size_download}"]
    began = time.perf_counter()
    processes = [
        subprocess.Popen([*command, url], stdout=subprocess.PIPE, text=True) for _ in range(count)
    ]
    sizes = [int(p.communicate()[0]) for p in processes]
    seconds = time.perf_counter() - began
    assert len(set(sizes)) == 1, sizes
    return sum(sizes) / seconds / 1e6


def main() -> None:
    corpus = build_corpus(MODELS, SEED, huge_size=HUGE_SIZE)
    public = [m for m in corpus.synthetic() if not (m.private or m.disabled or m.renamed_from)]
    huge = max(public, key=lambda m: max(s for _, s in m.recipe.weights))
    weight = max((f for f in snapshot(corpus, huge).files if f.lfs), key=lambda f: f.size)
    process, base, startup = start_emulator()
    try:
        ids = [m.id for m in public[:1000]]
        small = wrk(base, [f"/api/models/{i}?expand=sha" for i in ids])
        full = wrk(base, [f"/api/models/{i}" for i in ids])
        head = get(f"{base}/{huge.id}/resolve/main/{weight.path}", "HEAD")  # hashes 2 GB once
        cdn_url = head.getheader("Location")
        assert int(head.getheader("X-Linked-Size")) == weight.size
        one = max(curl_streams(cdn_url, 1) for _ in range(RUNS))
        four = curl_streams(cdn_url, 4)
    finally:
        process.terminate()
        process.wait(30)
    results = {
        "models": MODELS,
        "startup_seconds": round(startup, 2),
        "json_expand_sha_rps": round(small["rps"]),
        "json_expand_sha_p50": small["p50"],
        "json_expand_sha_p99": small["p99"],
        "json_model_info_rps": round(full["rps"]),
        "json_model_info_p50": full["p50"],
        "json_model_info_p99": full["p99"],
        "json_non_2xx": small["non_2xx"] + full["non_2xx"],
        "lfs_stream_mb_s": round(one),
        "lfs_4_streams_mb_s": round(four),
        "lfs_file_bytes": weight.size,
    }
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "hubsim.json").write_text(json.dumps(results, indent=2) + "\n")
    print("| measure (emulator on 1 core) | value | goal |")
    print("|---|---:|---:|")
    print(f"| start-up, {MODELS:,} models | {startup:.2f} s | a few s |")
    for name, run in (("model info `expand=sha`", small), ("full model info", full)):
        print(f"| JSON, {name} | {run['rps']:,.0f} req/s (p99 {run['p99']}) | >= 2,000 |")
    print(f"| non-2xx answers during the JSON runs | {results['json_non_2xx']} | 0 |")
    print(f"| LFS stream, 1 download of 2 GB | {one:,.0f} MB/s | >= 300 |")
    print(f"| LFS stream, 4 downloads at once | {four:,.0f} MB/s | - |")


if __name__ == "__main__":
    main()

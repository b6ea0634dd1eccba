"""The crawl's memory over a long run: RSS against models done, sampled while it crawls.

`bench_crawl.py` gives one peak RSS per run, which cannot tell a fixed cost from one that grows
with the number of models (the goal is "peak RSS under 300 MB whatever the number of models";
the real Hub has ~2M). This runs one `scrapy crawl hf_models` (`full` mode, the files stage
selecting nothing, as bench_crawl's "hfspider full") on an emulator of MODELS models, pinned
to CPU 1 with the emulator on CPU 0, and every INTERVAL seconds reads the crawl process's
VmRSS from /proc and the models done from its progress line (`-s PROGRESS_INTERVAL`). The
slope, MB per 1,000 models, is fitted (least squares) over the second half of the crawl,
when start-up allocations are done: what a longer crawl would keep adding.

`python bench/bench_crawl_memory.py [--models N] [--interval S] [--endpoint URL]
[--code DIR] [--label TEXT] [--no-save]`: `--endpoint` uses a running emulator (no warm-up),
`--code` crawls with another checkout's code (e.g. a `git archive` of an older commit) for a
before/after comparison. Writes bench/results/crawl_memory.json unless `--no-save`; prints a
Markdown table.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_crawl import listed, start_emulator, warm_up

ROOT = Path(__file__).resolve().parents[1]
MODELS = 30_000
INTERVAL = 5.0
# Models done at which the table reports the RSS (and the last sample), "-" if not reached.
MARKS = (5_000, 10_000, 20_000, 50_000, 100_000, 150_000)
PROGRESS_RE = re.compile(rb"progress: (\d+) models")
GOAL_RSS_MB = 300
RESULTS = ROOT / "bench" / "results" / "crawl_memory.json"


def rss_mb(pid: int) -> float | None:
    """VmRSS of `pid` in MB, None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    match = re.search(r"^VmRSS:\s+(\d+) kB", status, re.MULTILINE)
    return int(match.group(1)) / 1024 if match else None


def crawl(base: str, code: Path, workdir: Path, interval: float) -> dict[str, Any]:
    """One full crawl of the emulator at `base`, sampled; its samples, CPU and peak RSS."""
    output = workdir / "out"
    env = dict(os.environ, HF_ENDPOINT=base, HF_HOME=str(workdir / "hf"), PYTHONPATH=str(code))
    env.pop("HF_TOKEN", None)
    command = ["taskset", "-c", "1", sys.executable, "-m", "scrapy", "crawl", "hf_models"]
    command += ["-s", f"OUTPUT_DIR={output}", "-s", "FILES_ALLOW=", "-s", "LOG_LEVEL=INFO"]
    command += ["-s", f"PROGRESS_INTERVAL={interval}"]
    log_path = workdir / "crawl.log"
    samples: list[dict[str, float]] = []
    with open(log_path, "wb") as log, open(log_path, "rb") as tail:
        began = time.monotonic()
        process = subprocess.Popen(command, cwd=code, env=env, stdout=log, stderr=log)
        done, usage = 0, None
        while True:
            time.sleep(interval)
            for match in PROGRESS_RE.finditer(tail.read()):
                done = int(match.group(1))
            rss = rss_mb(process.pid)  # before wait4: a reaped process has no /proc entry
            pid, status, usage = os.wait4(process.pid, os.WNOHANG)
            if pid:
                break
            if rss is not None:
                samples.append(
                    {"t": round(time.monotonic() - began, 1), "models": done, "rss_mb": rss}
                )
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"the crawl failed:\n{log_path.read_text()[-3000:]}")
    return {
        "wall_s": round(time.monotonic() - began, 1),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "peak_rss_mb": round(usage.ru_maxrss / 1024),
        "samples": samples,
    }


def at(samples: list[dict[str, float]], models: int) -> dict[str, float] | None:
    """The first sample with at least `models` done."""
    return next((s for s in samples if s["models"] >= models), None)


def slope(samples: list[dict[str, float]]) -> float | None:
    """MB per 1,000 models, least squares over the samples of the second half of the crawl
    (models done at least half the final count, not yet finished listing's tail)."""
    if not samples:
        return None
    last = max(s["models"] for s in samples)
    late = [s for s in samples if last / 2 <= s["models"] < last]
    if len(late) < 3:
        return None
    mean_x = sum(s["models"] for s in late) / len(late)
    mean_y = sum(s["rss_mb"] for s in late) / len(late)
    var = sum((s["models"] - mean_x) ** 2 for s in late)
    cov = sum((s["models"] - mean_x) * (s["rss_mb"] - mean_y) for s in late)
    return round(cov / var * 1000, 3) if var else None


def summary(label: str, run: dict[str, Any]) -> dict[str, Any]:
    samples = run["samples"]
    counted = [s for s in samples if s["models"] > 0]
    marks = {str(m): at(counted, m) for m in MARKS}
    final = max(counted, key=lambda s: s["models"]) if counted else None
    return {
        "label": label,
        "models_done": final["models"] if final else 0,
        "rss_mb_at": {k: round(v["rss_mb"], 1) if v else None for k, v in marks.items()}
        | {"last": round(final["rss_mb"], 1) if final else None},
        "max_sampled_rss_mb": round(max((s["rss_mb"] for s in samples), default=0), 1),
        "slope_mb_per_1000_models": slope(counted),
        # wait4's peak also covers moments between samples and the export child.
        "rss_goal_met": max(
            max((s["rss_mb"] for s in samples), default=0), run.get("peak_rss_mb", 0)
        )
        < GOAL_RSS_MB,
        **{k: v for k, v in run.items() if k != "samples"},
    }


def table(rows: list[dict[str, Any]]) -> str:
    head = " | ".join(f"RSS MB at {int(m):,}" for m in MARKS)
    lines = [
        f"| run | models | {head} | RSS MB at last | slope MB/1k models (2nd half)"
        " | max sampled RSS MB | peak RSS MB (wait4) | CPU s |",
        "|---|---:|" + "---:|" * (len(MARKS) + 5),
    ]
    for row in rows:
        marks = " | ".join(str(row["rss_mb_at"][str(m)] or "-") for m in MARKS)
        lines.append(
            f"| {row['label']} | {row['models_done']:,} | {marks} | {row['rss_mb_at']['last']}"
            f" | {row['slope_mb_per_1000_models']} | {row['max_sampled_rss_mb']}"
            f" | {row.get('peak_rss_mb', '-')} | {row.get('cpu_s', '-')} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", type=int, default=MODELS)
    parser.add_argument("--interval", type=float, default=INTERVAL)
    parser.add_argument("--endpoint", help="a running emulator (not warmed up here)")
    parser.add_argument("--code", type=Path, default=ROOT, help="the checkout to crawl with")
    parser.add_argument("--label", default="hfspider full")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    emulator = None
    if args.endpoint:
        base = args.endpoint
    else:
        emulator, base = start_emulator(args.models)
    try:
        if emulator is not None:
            warm_up(base, listed(base))
        with tempfile.TemporaryDirectory() as tmp:
            run = crawl(base, args.code.resolve(), Path(tmp), args.interval)
    finally:
        if emulator is not None:
            emulator.terminate()
            emulator.wait(30)
    row = summary(args.label, run)
    results = {"emulator_models": args.models, "interval_s": args.interval, **row}
    results["samples"] = run["samples"]
    if not args.no_save:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(table([row]))


if __name__ == "__main__":
    main()

"""`hfspider demo`: the main job offline, against the bundled Hub emulator.

Starts `hfspider hubsim` on free ports, runs `scrapy crawl hf_models` against it (every
argument after `--` goes to `scrapy crawl`), then stops the emulator. The output lands where
a real crawl's would (OUTPUT_DIR, default `output/`).
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys

READY_PREFIX = "ready "
# The Hub's quotas per window, but 10 s windows instead of 300 s: the crawl still paces itself
# by the rate-limit headers, and a demo of a few hundred models takes seconds, not minutes.
DEMO_WINDOW = 10


def start_emulator(models: int, seed: int) -> tuple[subprocess.Popen[str], str]:
    command = [sys.executable, "-m", "hfspider.hubsim", "--port", "0", "--cdn-port", "0"]
    command += ["--models", str(models), "--seed", str(seed), "--huge-files", "0"]
    command += ["--window", str(DEMO_WINDOW)]
    emulator = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert emulator.stdout is not None
    line = emulator.stdout.readline()
    if not line.startswith(READY_PREFIX):
        emulator.kill()
        raise RuntimeError(f"the Hub emulator did not start (it said {line!r})")
    return emulator, line[len(READY_PREFIX) :].strip()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="hfspider demo",
        description="Crawl the bundled Hub emulator (offline). Arguments after -- go to "
        "`scrapy crawl hf_models`, e.g. `hfspider demo -- -a mode=lite -s OUTPUT_DIR=/tmp/o`.",
    )
    parser.add_argument("--models", type=int, default=500, help="synthetic models (%(default)s)")
    parser.add_argument("--seed", type=int, default=7, help="corpus seed (%(default)s)")
    parser.add_argument("crawl_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    crawl_args = args.crawl_args[1:] if args.crawl_args[:1] == ["--"] else args.crawl_args
    emulator, url = start_emulator(args.models, args.seed)
    print(
        f"hfspider demo: Hub emulator at {url} ({args.models} models, seed {args.seed},"
        f" the Hub's quotas per {DEMO_WINDOW} s window)"
    )
    env = {**os.environ, "HF_ENDPOINT": url, "SCRAPY_SETTINGS_MODULE": "hfspider.settings"}
    # A real Hub token has no business with the emulator: no env token, an empty token file.
    env.pop("HF_TOKEN", None)
    env.pop("HUGGING_FACE_HUB_TOKEN", None)
    env["HF_TOKEN_PATH"] = os.devnull
    try:
        crawl = [sys.executable, "-m", "scrapy", "crawl", "hf_models", *crawl_args]
        return subprocess.run(crawl, env=env, check=False).returncode
    finally:
        emulator.send_signal(signal.SIGTERM)
        emulator.wait(timeout=30)

"""`hfspider crawl-distributed`: one lister and N workers on this machine, then one dataset.

Each process is a plain `scrapy crawl hf_models -a role=...` with its own OUTPUT_DIR under
`--output-dir` (`lister/`, `worker-1/`...) and its own log there; workers start first (they
wait for the lister). When all have ended, the workers' stores are merged into one Parquet
dataset in `--output-dir` (as `hfspider export --output-dir DIR DIR/worker-*` does). SIGINT
and SIGTERM are passed on to every process (one: a graceful stop; a second: Scrapy's
unclean one); if the launcher itself dies, even by `kill -9`, each crawl gets a SIGTERM (a
graceful stop: workers hand their leases back), so none runs on unwatched. Across machines,
run the same commands by hand (README.md).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import FrameType

from hfspider.config import load_settings
from hfspider.store.merge import MergedStores

# prctl(2): the signal a child gets when its parent dies.
PR_SET_PDEATHSIG = 1


def _stop_with_launcher() -> None:
    """In each child before it runs the crawl: SIGTERM when the launcher dies (Linux). The
    kernel signals once per launcher thread that dies (a second SIGTERM is Scrapy's unclean
    stop), so the launcher has one thread until its crawls end: pyarrow, which starts its own
    threads when imported, is imported only for the export."""
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def crawl_command(role: str, output: Path, redis_url: str, extra: list[str]) -> list[str]:
    """`python -m scrapy crawl hf_models -a role=ROLE ...` writing into `output`."""
    command = [sys.executable, "-m", "scrapy", "crawl", "hf_models", "-a", f"role={role}"]
    settings = {"OUTPUT_DIR": output, "RATELIMIT_REDIS_URL": redis_url, "LOG_FILE": f"{output}.log"}
    if role == "worker":
        settings["EXPORT_ON_CLOSE"] = "false"  # the merged export at the end replaces it
    for name, value in settings.items():
        command += ["-s", f"{name}={value}"]
    return command + extra


def main(argv: list[str]) -> int:
    settings = load_settings()
    parser = argparse.ArgumentParser(
        prog="hfspider crawl-distributed",
        description="Crawl with one lister and N worker processes sharing a Redis work queue "
        "and quota budget, then export one merged Parquet dataset.",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=settings["DISTRIBUTED_WORKERS"],
        help="worker processes (default: DISTRIBUTED_WORKERS, %(default)s)",
    )
    parser.add_argument(
        "--redis-url",
        default=settings["RATELIMIT_REDIS_URL"],
        help="Redis of the work queue and the shared budget (default: RATELIMIT_REDIS_URL)",
    )
    parser.add_argument(
        "--output-dir",
        type=Path,
        default=Path(settings["OUTPUT_DIR"]),
        help="lister/, worker-N/, their logs and the merged parquet/ (default: %(default)s)",
    )
    parser.add_argument(
        "-a", dest="arguments", action="append", default=[], metavar="NAME=VALUE",
        help="spider argument for the lister (limit, author, filter, mode...)",
    )  # fmt: skip
    parser.add_argument(
        "-s", dest="settings", action="append", default=[], metavar="NAME=VALUE",
        help="Scrapy setting for every process",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.workers < 1:
        parser.error("--workers must be at least 1")
    if not args.redis_url:
        parser.error("a Redis URL is needed: --redis-url or RATELIMIT_REDIS_URL")

    extra = [option for setting in args.settings for option in ("-s", setting)]
    lister_extra = extra + [option for argument in args.arguments for option in ("-a", argument)]
    outputs = [args.output_dir / f"worker-{n}" for n in range(1, args.workers + 1)]
    commands = [crawl_command("worker", output, args.redis_url, extra) for output in outputs]
    lister = args.output_dir / "lister"
    commands.append(crawl_command("lister", lister, args.redis_url, lister_extra))
    args.output_dir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "SCRAPY_SETTINGS_MODULE": "hfspider.settings"}
    # Own sessions: a Ctrl-C reaches them once, forwarded, not also from the terminal.
    processes = [
        subprocess.Popen(command, env=env, start_new_session=True, preexec_fn=_stop_with_launcher)
        for command in commands
    ]

    def forward(signum: int, frame: FrameType | None) -> None:
        for process in processes:
            if process.poll() is None:
                process.send_signal(signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    names = [output.name for output in outputs] + [lister.name]
    print(f"started {', '.join(names)}; logs in {args.output_dir}/<name>.log", flush=True)
    failed = []
    for name, process in zip(names, processes, strict=True):
        if process.wait() != 0:
            failed.append(f"{name} (exit status {process.returncode})")
    if failed:
        print(f"hfspider crawl-distributed: failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    from hfspider.store.parquet import export_parquet  # see _stop_with_launcher

    with MergedStores(outputs) as merged:
        result = export_parquet(merged, args.output_dir, settings["EXPORT_BATCH_ROWS"])
    print(f"exported {result.rows} records from {len(outputs)} workers to {result.path}")
    return 0

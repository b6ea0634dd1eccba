"""`hfspider crawl-distributed` (one lister, N workers, one Redis): throughput and quota keeping.

Two parts, each against its own Hub emulator (`--samples off --huge-files 0`, seed 3, so the
listing holds exactly the models the corpus says) and a fresh redis-server per run (loopback,
`--save "" --appendonly no`):

* **throughput**: 5,000 models, unlimited quota, `crawl-distributed` with 1, 2 and 4 workers,
  every stage on except the files stage (`-s FILES_ALLOW=`: metadata, README.md and
  config.json only). Nothing is pinned: the emulator, Redis, the lister and the workers share
  the machine's cores. Per run: records per second (wall time of the launcher, start-up and
  merged export included), CPU seconds per 1,000 records (user + sys of the lister and the
  workers, each from wait4), the launcher's own CPU (the merged export), and the peak RSS of
  every process (ru_maxrss). Every model's info is asked once before the runs, so no run pays
  for the emulator's first hashing. A plain single-process `scrapy crawl hf_models` (no Redis)
  with the same settings runs first, then the same with its rate-limit budget in Redis (as the
  workers' is): the baselines the distributed runs' overhead shows against. Redis calls per
  record are from its `INFO commandstats`.
* **quota**: ~1,000 models under a real-shaped quota on 5 s windows (the anonymous tier's
  bucket ratios, a fifth of them: api 100, resolvers 600, pages 20 per window), ten windows'
  worth of api requests. hfspider with 4 workers, then (on a fresh emulator with the same
  flags) the huggingface_hub peer of bench_crawl.py with 16 threads: `list_models`, per model
  `model_info(files_metadata=True)` at the listed sha and `hf_hub_download` of README.md and
  config.json, once as is and once with each call refused with 429 repeated after its
  Retry-After (what its user would have to add: huggingface_hub 2.4.0's `model_info` raises on
  a 429, it does not retry). From the emulator's request log: requests and 429s per bucket
  (429s before the first answer of their bucket apart), the most requests counted in one
  window, the span from the first request to the last answer, and the bound the quota sets on
  it, max over buckets of N_b * w / q_b (N_b: requests the emulator counted). Goal (issue 6):
  no 429 once the policy is known (at most one per bucket before), span <= 1.10x the bound.
  With fixed windows the span can be below that bound: the first window is entered part-way
  and the last left early (the strict floor is (ceil(N_b / q_b) - 2) * w).

Every run's dataset is checked: the merged Parquet holds each listed (model, sha) exactly once.
The launcher is `hfspider.distributed.launcher.main`, unchanged, run in a helper process whose
crawl commands are prefixed with this script's `--rusage` wrapper (it runs the crawl, passes
SIGINT/SIGTERM on, and writes the crawl's wait4 rusage next to its log): that is how each
process's CPU and peak RSS are known. Every process started here dies with its parent
(PR_SET_PDEATHSIG) and is stopped in `finally` blocks, SIGKILL after a grace period.

The machine is shared: run it as `flock /tmp/hfspider-bench.lock .venv/bin/python
bench/bench_distributed.py` (`--quick`: 1,000 models and 2 workers at most, results not saved).
"""

from __future__ import annotations

import ctypes
import http.client
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager, suppress
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve()
SEED = 3
EMULATOR_FLAGS = ["--samples", "off", "--huge-files", "0", "--log-max", "2000000"]
UNLIMITED = ["--quota", "*:*=1000000000"]
THROUGHPUT_CORPUS = 5129  # lists 5,000 models with seed 3, no samples, no huge file
QUOTA_CORPUS = 1025  # lists 1,001
WORKER_COUNTS = (1, 2, 4)
QUOTA_WORKERS = 4
PEER_THREADS = 16
PEER_RETRIES = 50
RETRY_LABEL = ", each 429 retried after Retry-After"
WINDOW = 5
QUOTA = {"api": 100, "resolvers": 600, "pages": 20}  # per window: the anonymous tier / 5
BUCKETS = tuple(QUOTA)
GOAL_BOUND_RATIO = 1.10
CRAWL_SETTINGS = ["-s", "FILES_ALLOW="]
RUN_TIMEOUT = 600.0  # a throughput run
QUOTA_TIMEOUT = 300.0  # a quota run (its bound is ~50 s)
STOP_GRACE = 30.0
PR_SET_PDEATHSIG = 1


# -- processes that die with their parent --------------------------------------------------


def die_with_parent() -> None:
    """preexec_fn: SIGTERM this process when the process that started it ends."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def stop(process: subprocess.Popen[Any] | None, grace: float = STOP_GRACE) -> None:
    """SIGTERM, then SIGKILL after `grace` seconds."""
    if process is None or process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(grace)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def kill_pid(pid: int, expect: str) -> None:
    """SIGKILL `pid` if it is still ours (its command line contains `expect`)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return
    if expect in cmdline:
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


def cpu_seconds(pid: int) -> float:
    """User + system seconds of a running process (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_rusage(process: subprocess.Popen[Any], timeout: float) -> tuple[int, Any]:
    """wait4 with a timeout: (exit code, rusage); TimeoutError if it runs longer."""
    deadline = time.monotonic() + timeout
    while True:
        pid, status, usage = os.wait4(process.pid, os.WNOHANG)
        if pid:
            process.returncode = os.waitstatus_to_exitcode(status)
            return process.returncode, usage
        if time.monotonic() > deadline:
            raise TimeoutError(f"{process.args!r} still running after {timeout:.0f} s")
        time.sleep(0.05)


# -- internal modes: the launcher helper and the per-crawl wrapper --------------------------


def rusage_wrapper(out: Path, command: list[str]) -> int:
    """Run `command`, pass SIGINT/SIGTERM on, write its wait4 rusage to `out`."""
    die_with_parent()
    process = subprocess.Popen(command, preexec_fn=die_with_parent)
    Path(f"{out}.pid").write_text(str(process.pid))

    def forward(signum: int, frame: Any) -> None:
        with suppress(ProcessLookupError):
            os.kill(process.pid, signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    _, status, usage = os.wait4(process.pid, 0)
    code = os.waitstatus_to_exitcode(status)
    record = {"status": code, "cpu_s": usage.ru_utime + usage.ru_stime}
    record["peak_rss_mb"] = usage.ru_maxrss / 1024
    out.write_text(json.dumps(record))
    return code


def launch(out: Path, argv: list[str]) -> int:
    """`hfspider crawl-distributed ARGV` with each crawl under `rusage_wrapper`; the launcher's
    own rusage (the merged export) goes to `out`."""
    from hfspider.distributed import launcher

    original = launcher.crawl_command

    def wrapped(role: str, output: Path, redis_url: str, extra: list[str]) -> list[str]:
        command = original(role, output, redis_url, extra)
        return [sys.executable, str(BENCH), "--rusage", f"{output}.rusage.json", "--", *command]

    launcher.crawl_command = wrapped
    code = launcher.main(argv)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    record = {"cpu_s": usage.ru_utime + usage.ru_stime, "peak_rss_mb": usage.ru_maxrss / 1024}
    out.write_text(json.dumps(record))
    return code


def peer(threads: int, retry: bool) -> None:
    """bench_crawl.py's peer, counting what failed and why; prints one JSON line. With `retry`,
    each call refused with 429 is repeated after its Retry-After (what a user would add)."""
    from huggingface_hub import HfApi, hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError

    from hfspider.hub.endpoints import RECORD_EXPAND  # the spider's listing fields

    api = HfApi()

    def patiently(call: Any, *args: Any, **kwargs: Any) -> Any:
        for attempt in range(PEER_RETRIES if retry else 1):
            try:
                return call(*args, **kwargs)
            except HfHubHTTPError as error:
                response = getattr(error, "response", None)
                status = getattr(response, "status_code", None)
                if not retry or status != 429 or attempt == PEER_RETRIES - 1:
                    raise
                time.sleep(max(float(response.headers.get("Retry-After") or 1), 0.1))
        raise AssertionError("unreachable")

    try:
        models = patiently(lambda: list(api.list_models(expand=list(RECORD_EXPAND))))
    except Exception as error:  # noqa: BLE001 - reported, not hidden
        print(json.dumps({"models": 0, "outcomes": {f"listing: {error!r}"[:200]: 1}}))
        return

    def read(model: Any) -> str:
        try:
            info = patiently(api.model_info, model.id, revision=model.sha, files_metadata=True)
            names = {sibling.rfilename for sibling in info.siblings or ()}
            for name in ("README.md", "config.json"):
                if name in names:
                    patiently(hf_hub_download, model.id, name, revision=info.sha)
        except HfHubHTTPError as error:
            response = getattr(error, "response", None)
            return f"HTTP {getattr(response, 'status_code', '?')}"
        except Exception as error:  # noqa: BLE001 - counted by type
            return type(error).__name__
        return "ok"

    with ThreadPoolExecutor(threads) as pool:
        outcomes = Counter(pool.map(read, models))
    print(json.dumps({"models": len(models), "outcomes": dict(outcomes)}))


# -- the emulator and Redis ------------------------------------------------------------------


def get(url: str) -> bytes:
    parts = urlsplit(url)
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=300)
    try:
        connection.request("GET", f"{parts.path}?{parts.query}" if parts.query else parts.path)
        return connection.getresponse().read()
    finally:
        connection.close()


class Emulator:
    """`python -m hfspider.hubsim` with our flags; its log, ground truth and CPU."""

    def __init__(self, models: int, flags: list[str]) -> None:
        self.models = models
        command = [sys.executable, "-m", "hfspider.hubsim", "--models", str(models)]
        command += ["--seed", str(SEED), *EMULATOR_FLAGS, *flags]
        self.process = subprocess.Popen(
            command, cwd=ROOT, stdout=subprocess.PIPE, text=True, preexec_fn=die_with_parent
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line.startswith("ready "):
            stop(self.process)
            raise RuntimeError("the emulator did not start")
        self.url = line.split()[1]

    def info(self) -> dict[str, Any]:
        return json.loads(get(f"{self.url}/_hubsim/info"))

    def listed(self) -> dict[str, str]:
        """{model id: sha} an anonymous listing shows, rebuilt in-process (no request)."""
        from hfspider.hubsim.corpus import build_corpus

        info = self.info()
        corpus = build_corpus(
            self.models,
            SEED,
            samples=info["samples"],
            huge_files=info["huge_files"],
            huge_size=info["huge_size"],
        )
        return {model.id: model.sha for model in corpus.listed(None)}

    def log(self, since: int) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        while True:
            page = json.loads(get(f"{self.url}/_hubsim/log?since={since}"))
            if page.get("dropped"):
                raise RuntimeError(f"the emulator dropped {page['dropped']} log entries")
            entries += page["entries"]
            if not page["entries"]:
                return entries
            since = page["next"]

    def warm_up(self, models: dict[str, str]) -> None:
        """Every model's info with blobs once: the emulator hashes its files now."""
        urls = [f"{self.url}/api/models/{i}/revision/{sha}?blobs=true" for i, sha in models.items()]
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(get, urls))

    def cpu_seconds(self) -> float:
        return cpu_seconds(self.process.pid)

    def close(self) -> None:
        stop(self.process)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_calls(url: str) -> dict[str, int]:
    """Calls per command since the server started (`INFO commandstats`, raw RESP)."""
    parts = urlsplit(url)
    with socket.create_connection((parts.hostname, parts.port), 5) as sock:
        sock.sendall(b"INFO commandstats\r\n")
        data = b""
        while b"\r\n" not in data:
            data += sock.recv(65536)
        header, body = data.split(b"\r\n", 1)
        size = int(header[1:])
        while len(body) < size:
            body += sock.recv(65536)
    calls = {}
    for line in body[:size].decode().splitlines():
        if line.startswith("cmdstat_"):
            name, stats = line[len("cmdstat_") :].split(":", 1)
            calls[name] = int(dict(f.split("=") for f in stats.split(","))["calls"])
    return calls


@contextmanager
def redis_server(directory: Path) -> Iterator[tuple[str, int]]:
    """A throwaway redis-server on a free loopback port: (its URL, its pid)."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed: run scripts/setup")
    directory.mkdir(parents=True, exist_ok=True)
    port = free_port()
    command = [binary, "--bind", "127.0.0.1", "--port", str(port), "--dir", str(directory)]
    command += ["--save", "", "--appendonly", "no", "--logfile", str(directory / "redis.log")]
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, preexec_fn=die_with_parent
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with suppress(OSError), socket.create_connection(("127.0.0.1", port), 1) as sock:
                sock.sendall(b"PING\r\n")
                if sock.recv(16).startswith(b"+PONG"):
                    break
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError("redis-server did not start")
            time.sleep(0.02)
        yield f"redis://127.0.0.1:{port}/0", process.pid
    finally:
        stop(process, 10)


# -- one distributed crawl -----------------------------------------------------------------


def crawl_env(emulator: Emulator, home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN")}
    env.update(
        {"HF_ENDPOINT": emulator.url, "HF_HOME": str(home), "HF_TOKEN_PATH": str(home / "t")}
    )
    return env


def parquet_keys(output: Path) -> Counter[tuple[str, str]]:
    import pyarrow.dataset as ds

    dataset = ds.dataset(output / "parquet", format="parquet", partitioning="hive")
    table = dataset.to_table(columns=["model_id", "sha"])
    return Counter(zip(table["model_id"].to_pylist(), table["sha"].to_pylist(), strict=True))


def check_dataset(output: Path, expected: dict[str, str]) -> int:
    """The merged dataset holds each expected (model, sha) exactly once; its row count."""
    keys = parquet_keys(output)
    rows = sum(keys.values())
    twice = [key for key, count in keys.items() if count > 1]
    missing = set(expected.items()) - set(keys)
    extra = set(keys) - set(expected.items())
    if twice or missing or extra:
        raise AssertionError(
            f"{output}: {rows} rows for {len(expected)} models; {len(twice)} twice "
            f"{twice[:3]}, {len(missing)} missing {sorted(missing)[:3]}, {len(extra)} unexpected"
        )
    return rows


def tail(path: Path, size: int = 3000) -> str:
    return path.read_text("utf-8", "replace")[-size:] if path.exists() else f"({path}: none)"


def crawl_logs(out: Path) -> str:
    """Each log's errors (first lines of each distinct one) and its tail."""
    parts = []
    for path in sorted(out.glob("*.log")):
        lines = path.read_text("utf-8", "replace").splitlines()
        errors = Counter(line[:300] for line in lines if "Error:" in line or " ERROR: " in line)
        found = "".join(f"  {n} x {line}\n" for line, n in errors.most_common(5))
        parts.append(f"== {path.name}\n{found}{tail(path, 800)}")
    return "\n".join(parts)


def distributed_run(
    emulator: Emulator,
    workdir: Path,
    workers: int,
    expected: dict[str, str],
    timeout: float = RUN_TIMEOUT,
) -> dict[str, Any]:
    """`hfspider crawl-distributed --workers N` to the end; its figures, dataset checked."""
    out = workdir / f"workers-{workers}"
    out.mkdir(parents=True)
    with redis_server(workdir / f"redis-{workers}") as (redis_url, redis_pid):
        command = [sys.executable, str(BENCH), "--launch", str(out / "launcher.rusage.json")]
        command += ["--", "--workers", str(workers), "--redis-url", redis_url]
        command += ["--output-dir", str(out), *CRAWL_SETTINGS]
        emulator_cpu = emulator.cpu_seconds()
        log = out / "launcher.log"
        process = None
        try:
            with open(log, "wb") as sink:
                began = time.perf_counter()
                process = subprocess.Popen(
                    command,
                    cwd=ROOT,
                    env=crawl_env(emulator, workdir / "home"),
                    stdout=sink,
                    stderr=subprocess.STDOUT,
                    preexec_fn=die_with_parent,
                )
                try:
                    code, usage = wait_rusage(process, timeout)
                except TimeoutError as error:
                    raise TimeoutError(f"{error}\n{crawl_logs(out)}") from None
                wall = time.perf_counter() - began
            emulator_cpu = emulator.cpu_seconds() - emulator_cpu
            redis_cpu = cpu_seconds(redis_pid)
            calls = redis_calls(redis_url)
        finally:
            stop(process)
            for pidfile in out.glob("*.pid"):  # crawls left behind by a failure
                with suppress(ValueError):
                    kill_pid(int(pidfile.read_text()), "hf_models")
    output = log.read_text("utf-8", "replace")
    if code != 0:
        raise RuntimeError(
            f"crawl-distributed --workers {workers} exited {code}:\n{crawl_logs(out)}"
        )
    if f"exported {len(expected)} records from {workers} workers" not in output:
        raise AssertionError(f"unexpected launcher output:\n{output[-2000:]}")
    rows = check_dataset(out, expected)
    crawls = {
        path.name.removesuffix(".rusage.json"): json.loads(path.read_text())
        for path in sorted(out.glob("*.rusage.json"))
    }
    launcher = crawls.pop("launcher")
    crawl_cpu = sum(crawl["cpu_s"] for crawl in crawls.values())
    return {
        "workers": workers,
        "records": rows,
        "wall_s": round(wall, 2),
        "records_per_s": round(rows / wall, 1),
        "crawl_cpu_s": round(crawl_cpu, 1),
        "cpu_s_per_1000_records": round(crawl_cpu / rows * 1000, 2),
        "launcher_cpu_s": round(launcher["cpu_s"], 2),
        "all_processes_cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "emulator_cpu_s": round(emulator_cpu, 1),
        "redis_cpu_s": round(redis_cpu, 2),
        "redis_calls_per_record": round(sum(calls.values()) / rows, 2),
        "redis_calls": dict(sorted(calls.items(), key=lambda item: -item[1])),
        "cpu_s": {name: round(c["cpu_s"], 1) for name, c in crawls.items()},
        "peak_rss_mb": {name: round(c["peak_rss_mb"]) for name, c in crawls.items()}
        | {"launcher": round(launcher["peak_rss_mb"])},
    }


def single_run(
    emulator: Emulator, workdir: Path, expected: dict[str, str], redis: bool
) -> dict[str, Any]:
    """The baseline: one plain `scrapy crawl hf_models` (no queue), same settings; with
    `redis`, its rate-limit budget in Redis (RATELIMIT_REDIS_URL), as the workers' is."""
    out = workdir / f"single-{'redis' if redis else 'local'}"
    out.parent.mkdir(parents=True, exist_ok=True)
    with ExitStack() as stack:
        if redis:
            redis_url, redis_pid = stack.enter_context(redis_server(workdir / "redis-single"))
            return single_crawl(emulator, out, expected, redis_url, redis_pid)
        return single_crawl(emulator, out, expected, "", 0)


def single_crawl(
    emulator: Emulator, out: Path, expected: dict[str, str], redis_url: str, redis_pid: int
) -> dict[str, Any]:
    command = [sys.executable, "-m", "scrapy", "crawl", "hf_models", "-s", f"OUTPUT_DIR={out}"]
    command += ["-s", f"LOG_FILE={out}.log", "-s", f"RATELIMIT_REDIS_URL={redis_url}"]
    command += CRAWL_SETTINGS
    emulator_cpu = emulator.cpu_seconds()
    process = None
    try:
        with open(f"{out}.out", "wb") as sink:
            began = time.perf_counter()
            process = subprocess.Popen(
                command,
                cwd=ROOT,
                env=crawl_env(emulator, out.parent / "home"),
                stdout=sink,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
            code, usage = wait_rusage(process, RUN_TIMEOUT)
            wall = time.perf_counter() - began
            emulator_cpu = emulator.cpu_seconds() - emulator_cpu
            redis_cpu = cpu_seconds(redis_pid) if redis_pid else 0.0
            calls = redis_calls(redis_url) if redis_url else {}
    finally:
        stop(process)
    if code != 0:
        logs = f"{tail(Path(f'{out}.out'), 1000)}\n{tail(Path(f'{out}.log'))}"
        raise RuntimeError(f"scrapy crawl exited {code}:\n{logs}")
    rows = check_dataset(out, expected)
    cpu = usage.ru_utime + usage.ru_stime
    return {
        "workers": 0,
        "redis": bool(redis_url),
        "records": rows,
        "wall_s": round(wall, 2),
        "records_per_s": round(rows / wall, 1),
        "crawl_cpu_s": round(cpu, 1),
        "cpu_s_per_1000_records": round(cpu / rows * 1000, 2),
        "launcher_cpu_s": 0.0,
        "all_processes_cpu_s": round(cpu, 1),
        "emulator_cpu_s": round(emulator_cpu, 1),
        "redis_cpu_s": round(redis_cpu, 2),
        "redis_calls_per_record": round(sum(calls.values()) / rows, 2),
        "redis_calls": dict(sorted(calls.items(), key=lambda item: -item[1])),
        "cpu_s": {"crawl": round(cpu, 1)},
        "peak_rss_mb": {"crawl": round(usage.ru_maxrss / 1024)},
    }


# -- the quota runs --------------------------------------------------------------------------


def quota_figures(entries: list[dict[str, Any]], window: int) -> dict[str, Any]:
    """What the emulator's log says about one run under QUOTA."""
    buckets: dict[str, Any] = {}
    for bucket, quota in QUOTA.items():
        mine = [entry for entry in entries if entry["bucket"] == bucket]
        refused = [entry for entry in mine if entry["status"] == 429]
        counted = [entry for entry in mine if entry["counted"]]
        first_answer = min((e["time"] + e["duration"] for e in mine), default=0.0)
        per_window = Counter(entry["window"] for entry in counted)
        buckets[bucket] = {
            "requests": len(mine),
            "counted": len(counted),
            "429": len(refused),
            "429_before_first_answer": sum(e["time"] < first_answer for e in refused),
            "max_counted_per_window": max(per_window.values(), default=0),
            "quota": quota,
        }
    span = max(e["time"] + e["duration"] for e in entries) - min(e["time"] for e in entries)
    bound = max(b["counted"] * window / b["quota"] for b in buckets.values())
    return {
        "buckets": buckets,
        "requests": len(entries),
        "429": sum(b["429"] for b in buckets.values()),
        "span_s": round(span, 1),
        "bound_s": round(bound, 1),
        "span_over_bound": round(span / bound, 3),
        "quota_kept": all(
            b["429"] - b["429_before_first_answer"] == 0
            and b["429_before_first_answer"] <= 1
            and b["max_counted_per_window"] <= b["quota"]
            for b in buckets.values()
        ),
    }


def quota_flags() -> list[str]:
    flags = ["--window", str(WINDOW)]
    for bucket, quota in QUOTA.items():
        flags += ["--quota", f"anonymous:{bucket}={quota}"]
    return flags


def quota_hfspider(workdir: Path, corpus: int, workers: int) -> dict[str, Any]:
    emulator = Emulator(corpus, quota_flags())
    try:
        expected = emulator.listed()
        run = distributed_run(emulator, workdir / "quota", workers, expected, QUOTA_TIMEOUT)
        figures = quota_figures(emulator.log(0), WINDOW)
    finally:
        emulator.close()
    return {
        "client": f"hfspider, {workers} workers",
        "models": len(expected),
        "models_done": run["records"],
        "models_failed": {},
        "wall_s": run["wall_s"],
        **figures,
    }


def quota_peer(workdir: Path, corpus: int, threads: int, retry: bool) -> dict[str, Any]:
    emulator = Emulator(corpus, quota_flags())
    process = None
    try:
        expected = emulator.listed()
        env = dict(os.environ)
        env.update(
            HF_ENDPOINT=emulator.url,
            HF_HUB_DISABLE_XET="1",
            HF_HUB_DISABLE_TELEMETRY="1",
            HF_HUB_DISABLE_PROGRESS_BARS="1",
            HF_HOME=str(workdir / f"peer-{retry}"),
        )
        env.pop("HF_TOKEN", None)
        log = workdir / f"peer-{retry}.log"
        with open(log, "wb") as sink:
            began = time.perf_counter()
            process = subprocess.Popen(
                [sys.executable, str(BENCH), "--peer", str(threads), *(["retry"] if retry else [])],
                cwd=ROOT,
                env=env,
                stdout=sink,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,
            )
            code, usage = wait_rusage(process, QUOTA_TIMEOUT)
            wall = time.perf_counter() - began
        output = log.read_text("utf-8", "replace")
        if code != 0:
            raise RuntimeError(f"the peer exited {code}:\n{output[-3000:]}")
        figures = quota_figures(emulator.log(0), WINDOW)
    finally:
        stop(process, 5)
        emulator.close()
    counted = json.loads(output.strip().splitlines()[-1])
    outcomes = counted["outcomes"]
    if counted["models"] != len(expected):
        raise AssertionError(f"the peer listed {counted['models']} models: {outcomes}")
    return {
        "client": f"huggingface_hub, {threads} threads" + (RETRY_LABEL if retry else ""),
        "models": len(expected),
        "models_done": outcomes.get("ok", 0),
        "models_failed": {k: v for k, v in outcomes.items() if k != "ok"},
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
        "output_lines_with_429": sum("429" in line for line in output.splitlines()),
        **figures,
    }


# -- the report ------------------------------------------------------------------------------


def throughput_table(runs: list[dict[str, Any]]) -> str:
    lines = [
        "| processes | records | wall s | records/s | CPU s per 1k records (lister + workers)"
        " | launcher CPU s | emulator CPU s | Redis CPU s | Redis calls per record"
        " | peak RSS MB: lister; workers"
        " | launcher |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for run in runs:
        rss = dict(run["peak_rss_mb"])
        if run["workers"] == 0:
            label = "single `scrapy crawl`, " + ("budget in Redis" if run["redis"] else "no Redis")
            memory = f"{rss['crawl']} | -"
        else:
            label = f"lister + {run['workers']} worker" + ("s" if run["workers"] > 1 else "")
            launcher, lister = rss.pop("launcher"), rss.pop("lister")
            workers = ", ".join(str(rss[name]) for name in sorted(rss, key=lambda n: int(n[7:])))
            memory = f"{lister}; {workers} | {launcher}"
        lines.append(
            f"| {label} | {run['records']:,} | {run['wall_s']:.1f}"
            f" | {run['records_per_s']:.0f} | {run['cpu_s_per_1000_records']:.1f}"
            f" | {run['launcher_cpu_s']:.1f} | {run['emulator_cpu_s']:.1f}"
            f" | {run['redis_cpu_s']:.1f} | {run['redis_calls_per_record']:.1f} | {memory} |"
        )
    return "\n".join(lines)


def quota_table(runs: list[dict[str, Any]]) -> str:
    def per_bucket(run: dict[str, Any], key: str) -> str:
        return " / ".join(str(run["buckets"][bucket][key]) for bucket in BUCKETS)

    quotas = " / ".join(str(QUOTA[bucket]) for bucket in BUCKETS)
    lines = [
        "| client | models done / listed | models failed | requests api / resolvers / pages"
        " | 429s api / resolvers / pages (before 1st answer) | max counted per window"
        f" (quota {quotas}) | span s | bound s | span / bound | wall s |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        if "error" in run:
            reason = run["error"].splitlines()[0][:200]
            lines.append(f"| {run['client']} | failed: {reason} |" + " |" * 8)
            continue
        failed = ", ".join(f"{v:,} {k}" for k, v in run["models_failed"].items()) or "0"
        lines.append(
            f"| {run['client']} | {run['models_done']:,} / {run['models']:,} | {failed}"
            f" | {per_bucket(run, 'requests')}"
            f" | {per_bucket(run, '429')} ({per_bucket(run, '429_before_first_answer')})"
            f" | {per_bucket(run, 'max_counted_per_window')} | {run['span_s']:.1f}"
            f" | {run['bound_s']:.1f} | {run['span_over_bound']:.2f} | {run['wall_s']:.1f} |"
        )
    return "\n".join(lines)


def attempt(client: str, run: Any, workdir: Path, *args: Any) -> dict[str, Any]:
    """One quota run; a failure is a result too (reported, the other runs still run)."""
    try:
        result = run(workdir, QUOTA_CORPUS, *args)
    except Exception as error:  # noqa: BLE001 - reported in the table and the JSON
        result = {"client": client, "error": f"{type(error).__name__}: {error}"[:6000]}
    print(f"quota: {result}", file=sys.stderr, flush=True)
    return result


def main(quick: bool) -> None:
    load_before = [round(x, 2) for x in os.getloadavg()]
    corpus = 1025 if quick else THROUGHPUT_CORPUS
    counts = (1, 2) if quick else WORKER_COUNTS
    with tempfile.TemporaryDirectory(prefix="bench-distributed-") as tmp:
        workdir = Path(tmp)
        emulator = Emulator(corpus, UNLIMITED)
        try:
            expected = emulator.listed()
            emulator.warm_up(expected)
            throughput = []
            for redis in (False, True):
                throughput.append(single_run(emulator, workdir / "throughput", expected, redis))
                print(f"throughput, single: {throughput[-1]}", file=sys.stderr, flush=True)
            for workers in counts:
                run = distributed_run(emulator, workdir / "throughput", workers, expected)
                print(f"throughput, {workers} workers: {run}", file=sys.stderr, flush=True)
                throughput.append(run)
        finally:
            emulator.close()
        load_between = [round(x, 2) for x in os.getloadavg()]
        quota_workers = 2 if quick else QUOTA_WORKERS
        quota = [
            attempt(f"hfspider, {quota_workers} workers", quota_hfspider, workdir, quota_workers),
            *(
                attempt(
                    f"huggingface_hub, {PEER_THREADS} threads" + (RETRY_LABEL if retry else ""),
                    quota_peer,
                    workdir,
                    PEER_THREADS,
                    retry,
                )
                for retry in (False, True)
            ),
        ]
    results = {
        "cpus": os.cpu_count(),
        "load_average_before": load_before,
        "load_average_between": load_between,
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
        "throughput": {"corpus": corpus, "runs": throughput},
        "quota": {
            "corpus": QUOTA_CORPUS,
            "window_s": WINDOW,
            "quota": QUOTA,
            "goal_span_over_bound": GOAL_BOUND_RATIO,
            "runs": quota,
        },
    }
    if not quick:
        (ROOT / "bench" / "results").mkdir(exist_ok=True)
        path = ROOT / "bench" / "results" / "distributed.json"
        path.write_text(json.dumps(results, indent=2) + "\n")
    print(throughput_table(throughput))
    print()
    print(quota_table(quota))
    print()
    print(
        f"load average before {load_before}, between {load_between},"
        f" after {results['load_average_after']}"
    )


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if arguments[:1] == ["--rusage"]:
        sys.exit(rusage_wrapper(Path(arguments[1]), arguments[3:]))
    elif arguments[:1] == ["--launch"]:
        die_with_parent()
        sys.exit(launch(Path(arguments[1]), arguments[3:]))
    elif arguments[:1] == ["--peer"]:
        peer(int(arguments[1]), arguments[2:3] == ["retry"])
    else:
        main(quick="--quick" in arguments)

"""CID computation on a 1 GiB file: hfspider.ipfs vs hashlib sha256 alone vs Kubo.

Each contender runs in its own process (so its peak RSS is its own) on the same file, read
from the page cache, best of three. Goals (issue 4): our rate >= 0.8x single-core sha256,
>= 2x `ipfs add --only-hash`, peak RSS < 64 MB. The CIDs of ours and Kubo must agree.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms

ROOT = Path(__file__).resolve().parents[1]
SIZE = 1 << 30
RUNS = 3
PROFILES = ["unixfs-v1-2025", "kubo"]
KUBO_FLAGS = {
    "unixfs-v1-2025": [
        "--cid-version=1",
        "--raw-leaves",
        "--chunker=size-1048576",
        "--max-file-links=1024",
    ],
    "kubo": [],
}

# Python contenders time their work in-process (interpreter start-up excluded) and print
# "<result> <peak RSS KiB> <seconds>".
SHA256_ONLY = """
import hashlib, resource, sys, time
start = time.perf_counter()
buffer = bytearray(1 << 20); view = memoryview(buffer); digest = hashlib.sha256()
with open(sys.argv[1], "rb", buffering=0) as f:
    while count := f.readinto(buffer):
        digest.update(view[:count])
seconds = time.perf_counter() - start
print(digest.hexdigest(), resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, seconds)
"""

OURS = """
import resource, sys, time
from hfspider.ipfs import import_stream, preset
start = time.perf_counter()
with open(sys.argv[1], "rb", buffering=0) as f:
    result = import_stream(f, preset(sys.argv[2]), sha256=sys.argv[3] == "sha256")
seconds = time.perf_counter() - start
print(result.cid, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, seconds)
"""


def make_file(path: Path) -> None:
    key = hashlib.sha256(b"bench-cid").digest()
    encryptor = Cipher(algorithms.ChaCha20(key, bytes(16)), mode=None).encryptor()
    zeros = bytes(1 << 20)
    with open(path, "wb") as out:
        for _ in range(SIZE >> 20):
            out.write(encryptor.update(zeros))


def timed(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, str, float]:
    """Best of RUNS runs: (seconds, first output word, peak RSS in MB).

    Seconds are the process's own figure when it prints one, else the wall time.
    """
    best, output, rss = float("inf"), "", 0.0
    for _ in range(RUNS):
        start = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, check=True, env=env)
        wall = time.perf_counter() - start
        words = done.stdout.split()
        output = words[0] if words else ""
        best = min(best, float(words[2]) if len(words) > 2 else wall)
        rss = max(rss, int(words[1]) / 1024 if len(words) > 1 else 0.0)
    return best, output, rss


def kubo_binary() -> str:
    path = os.environ.get("HFSPIDER_KUBO_BIN")
    if path:
        return path
    return subprocess.run(
        [str(ROOT / "scripts" / "build-kubo")], capture_output=True, text=True, check=True
    ).stdout.strip()


def kubo_timed(binary: str, repo: Path, flags: list[str], path: Path) -> tuple[float, str]:
    """`ipfs add -Q --only-hash` without a daemon (the CLI imports in-process)."""
    env = {**os.environ, "IPFS_PATH": str(repo)}
    if not repo.exists():
        subprocess.run(
            [binary, "init", "--profile", "test"], env=env, check=True, capture_output=True
        )
    seconds, cid, _ = timed([binary, "add", "-Q", "--only-hash", *flags, str(path)], env)
    return seconds, cid


def main() -> int:
    python = str(ROOT / ".venv" / "bin" / "python")
    results: dict[str, object] = {"size_bytes": SIZE, "runs": RUNS, "profiles": {}}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "1GiB.bin"
        make_file(data)
        subprocess.run(["cat", str(data)], stdout=subprocess.DEVNULL, check=True)  # page cache
        sha_s, _, sha_rss = timed([python, "-c", SHA256_ONLY, str(data)])
        results["sha256"] = {"seconds": sha_s, "mb_s": SIZE / sha_s / 1e6, "peak_rss_mb": sha_rss}
        binary = kubo_binary()
        rows = [("hashlib sha256 alone (floor)", sha_s, sha_rss, "", "")]
        for profile in PROFILES:
            ours_s, ours_cid, ours_rss = timed([python, "-c", OURS, str(data), profile, "-"])
            both_s, both_cid, both_rss = timed([python, "-c", OURS, str(data), profile, "sha256"])
            kubo_s, kubo_cid = kubo_timed(binary, Path(tmp) / "repo", KUBO_FLAGS[profile], data)
            assert ours_cid == both_cid == kubo_cid, (profile, ours_cid, both_cid, kubo_cid)
            results["profiles"][profile] = {  # type: ignore[index]
                "cid": ours_cid,
                "ours": {"seconds": ours_s, "mb_s": SIZE / ours_s / 1e6, "peak_rss_mb": ours_rss},
                "ours_with_sha256": {
                    "seconds": both_s,
                    "mb_s": SIZE / both_s / 1e6,
                    "peak_rss_mb": both_rss,
                },
                "kubo_only_hash": {"seconds": kubo_s, "mb_s": SIZE / kubo_s / 1e6},
                "vs_sha256": sha_s / ours_s,
                "vs_kubo": kubo_s / ours_s,
                "goals_met": sha_s / ours_s >= 0.8 and kubo_s / ours_s >= 2 and ours_rss < 64,
            }
            rows += [
                (f"hfspider CID, {profile}", ours_s, ours_rss, sha_s / ours_s, kubo_s / ours_s),
                (f"hfspider CID + file sha256, {profile}", both_s, both_rss, sha_s / both_s, ""),
                (f"`ipfs add --only-hash`, {profile}", kubo_s, None, sha_s / kubo_s, ""),
            ]
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "cid.json").write_text(json.dumps(results, indent=2) + "\n")
    print("| 1 GiB file | s | MB/s | peak RSS MB | x sha256 rate | x Kubo rate |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, seconds, rss, vs_sha, vs_kubo in rows:
        rss_text = f"{rss:.0f}" if rss else "-"
        cells = [f"{v:.2f}" if isinstance(v, float) else (v or "-") for v in (vs_sha, vs_kubo)]
        rate = f"{SIZE / seconds / 1e6:.0f}"
        print(f"| {name} | {seconds:.2f} | {rate} | {rss_text} | {' | '.join(cells)} |")
    met = all(p["goals_met"] for p in results["profiles"].values())  # type: ignore[union-attr]
    print(f"\ngoals (>= 0.8x sha256, >= 2x Kubo, < 64 MB): {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

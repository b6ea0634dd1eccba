"""`hfspider hubsim` / `python -m hfspider.hubsim`: run the Hub emulator (docs/hubsim.md)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from hfspider.hubsim.content import default_cache_dir
from hfspider.hubsim.faults import FAULTS, parse_fault
from hfspider.hubsim.options import DEFAULT_LOG_MAX, DEFAULT_PAGE_SIZE, Settings, parse_token
from hfspider.hubsim.ratelimit import DEFAULT_WINDOW, parse_quota
from hfspider.hubsim.samples import EPOCHS
from hfspider.hubsim.server import serve


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="hfspider hubsim",
        description="A local Hugging Face Hub: deterministic corpus, real shapes, limits, faults.",
        epilog="Prints one line `ready http://localhost:P` once it accepts connections.",
    )
    p.add_argument("--port", type=int, default=0, help="API port (0: any free port)")
    p.add_argument("--cdn-port", type=int, default=0, help="CDN port (0: any free port)")
    p.add_argument("--bind", default="127.0.0.1", help="address both origins listen on")
    p.add_argument("--models", type=int, default=1000, help="number of synthetic models")
    p.add_argument("--seed", type=int, default=0, help="corpus and fault seed")
    p.add_argument(
        "--samples",
        choices=(*EPOCHS, "off"),
        default="latest",
        help="which recordings of the real sample repos to serve, or none",
    )
    p.add_argument(
        "--window", type=int, default=DEFAULT_WINDOW, help="rate-limit window in seconds"
    )
    p.add_argument(
        "--quota",
        action="append",
        default=[],
        metavar="TIER:BUCKET=N",
        help="requests per window, e.g. anonymous:api=100 or '*:*=1000000' (repeatable)",
    )
    p.add_argument(
        "--token",
        action="append",
        default=[],
        metavar="TOKEN[:TIER[:USER]]",
        help="an accepted token, e.g. hf_abc:pro:alice (tier defaults to free; repeatable)",
    )
    p.add_argument(
        "--gated-access",
        action="append",
        default=[],
        metavar="USER",
        help="a user approved on every manually gated repo (repeatable)",
    )
    p.add_argument(
        "--fault",
        action="append",
        default=[],
        metavar="NAME=RATE[@SCOPE][:LIMIT]",
        help=f"inject a fault ({', '.join(FAULTS)}); repeatable",
    )
    p.add_argument("--slow-seconds", type=float, default=3.0, help="delay of the slow fault")
    p.add_argument(
        "--mutate-every", type=float, default=0.0, help="apply random mutations every S seconds"
    )
    p.add_argument("--mutate-batch", type=int, default=1, help="mutations per scheduled round")
    p.add_argument("--huge-files", type=int, default=1, help="models with one multi-GB file")
    p.add_argument("--huge-size", type=int, default=4_500_000_000, help="bytes of a huge file")
    p.add_argument(
        "--default-limit",
        type=int,
        default=DEFAULT_PAGE_SIZE,
        help="listing page size when the request gives no limit",
    )
    p.add_argument(
        "--cache-dir",
        type=Path,
        default=default_cache_dir(),
        help="where hashes of big files persist between runs",
    )
    p.add_argument("--log-max", type=int, default=DEFAULT_LOG_MAX, help="request log entries kept")
    p.add_argument(
        "--cdn-rate",
        type=float,
        default=0.0,
        metavar="MB_PER_S",
        help="cap each CDN download (one response, one connection) at this many MB/s "
        "(10^6 bytes), like a link; 0 (the default): unlimited",
    )
    return p


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings from parsed flags; ValueError names a bad flag value."""
    settings = Settings(
        port=args.port,
        cdn_port=args.cdn_port,
        bind=args.bind,
        models=args.models,
        seed=args.seed,
        samples=None if args.samples == "off" else args.samples,
        window=args.window,
        gated_access=frozenset(args.gated_access),
        faults=[parse_fault(spec) for spec in args.fault],
        slow_seconds=args.slow_seconds,
        mutate_every=args.mutate_every,
        mutate_batch=args.mutate_batch,
        huge_files=args.huge_files,
        huge_size=args.huge_size,
        default_limit=args.default_limit,
        cache_dir=args.cache_dir,
        log_max=args.log_max,
        cdn_rate=args.cdn_rate * 1e6,
    )
    for spec in args.quota:
        parse_quota(spec, settings.quotas)
    for spec in args.token:
        token, owner = parse_token(spec)
        settings.tokens[token] = owner
    if settings.window < 1 or not 1 <= settings.default_limit <= 1000 or settings.models < 0:
        raise ValueError("--window >= 1, 1 <= --default-limit <= 1000, --models >= 0")
    if not 0 <= settings.cdn_rate < float("inf"):
        raise ValueError("--cdn-rate: MB/s >= 0 (0: unlimited)")
    return settings


def main(argv: list[str] | None = None) -> int:
    p = parser()
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        settings = settings_from(args)
    except ValueError as exc:
        p.error(str(exc))

    def ready(url: str) -> None:
        print(f"ready {url}", flush=True)

    try:
        asyncio.run(serve(settings, ready))
    except OSError as exc:
        print(f"hfspider hubsim: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

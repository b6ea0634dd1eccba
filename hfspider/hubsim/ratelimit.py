"""The Hub's rate limits: fixed windows per identity and bucket, quotas per tier.

Every request on the API origin falls in one bucket: `api` (`/api/...`), `resolvers` (file
resolution, `/{repo}/resolve/...` and the `/api/resolve-cache/...` it redirects to) or `pages`
(everything else: HTML pages). An identity is a token's user, or the client's IP address for
anonymous calls, so workers sharing one token share one budget. A window is fixed: window k
covers [start + k*w, start + (k+1)*w) from the emulator's start. Requests refused with 429 do
not count, so "at most q counted requests per (identity, bucket, window)" is the invariant a
test can check in the request log, where every request records its window and whether it
counted.

Headers (IETF draft 09, as the Hub sends them on every response):
`RateLimit: "api";r=497;t=168` and `RateLimit-Policy: "fixed window";"api";q=500;w=300`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

BUCKETS = ("api", "resolvers", "pages")
# Per 5-minute window, as published for Sept 2025 (../shared/notes/hub-api.md section 7).
TIER_QUOTAS: dict[str, dict[str, int]] = {
    "anonymous": {"api": 500, "resolvers": 3000, "pages": 100},
    "free": {"api": 1000, "resolvers": 5000, "pages": 200},
    "pro": {"api": 2500, "resolvers": 12000, "pages": 400},
    "team": {"api": 3000, "resolvers": 20000, "pages": 400},
    "enterprise": {"api": 6000, "resolvers": 50000, "pages": 600},
    "enterprise-plus": {"api": 10000, "resolvers": 100000, "pages": 1000},
    "academia": {"api": 3000, "resolvers": 20000, "pages": 400},
}
DEFAULT_WINDOW = 300


@dataclass(frozen=True, slots=True)
class Verdict:
    """The limiter's answer for one request."""

    bucket: str
    quota: int
    remaining: int
    reset: int  # whole seconds until the window ends (at least 1)
    window: int  # index of the window the request fell in
    allowed: bool

    def headers(self, window_seconds: int) -> dict[str, str]:
        return {
            "RateLimit": f'"{self.bucket}";r={self.remaining};t={self.reset}',
            "RateLimit-Policy": f'"fixed window";"{self.bucket}";q={self.quota};w={window_seconds}',
        }


class RateLimiter:
    """Counts requests per (identity, bucket) in fixed windows."""

    def __init__(
        self,
        window: int,
        quotas: dict[str, dict[str, int]],
        clock: Callable[[], float] = time.time,
    ) -> None:
        if window < 1:
            raise ValueError("the window is at least one second")
        self.window = window
        self.quotas = quotas
        self.clock = clock
        self.start = clock()
        self._counts: dict[tuple[str, str], list[int]] = {}  # -> [window index, count]

    def take(self, identity: str, tier: str, bucket: str) -> Verdict:
        """Count one request, unless its bucket is empty for this window."""
        now = self.clock()
        index = int((now - self.start) // self.window)
        reset = max(1, math.ceil(self.start + (index + 1) * self.window - now))
        quota = self.quotas[tier][bucket]
        entry = self._counts.get((identity, bucket))
        if entry is None or entry[0] != index:
            entry = self._counts[(identity, bucket)] = [index, 0]
        if entry[1] >= quota:
            return Verdict(bucket, quota, 0, reset, index, allowed=False)
        entry[1] += 1
        return Verdict(bucket, quota, quota - entry[1], reset, index, allowed=True)


def parse_quota(spec: str, quotas: dict[str, dict[str, int]]) -> None:
    """Apply `TIER:BUCKET=N` to `quotas`; `*` matches every tier or bucket."""
    try:
        target, value = spec.split("=", 1)
        tier, bucket = target.split(":", 1)
        number = int(value)
    except ValueError:
        raise ValueError(f"quota {spec!r} is not TIER:BUCKET=N") from None
    tiers = list(quotas) if tier == "*" else [tier]
    buckets = list(BUCKETS) if bucket == "*" else [bucket]
    for name in tiers:
        if name not in quotas:
            raise ValueError(f"unknown tier {name!r}; one of {', '.join(quotas)}")
        for b in buckets:
            if b not in BUCKETS:
                raise ValueError(f"unknown bucket {b!r}; one of {', '.join(BUCKETS)}")
            quotas[name][b] = number

"""The limiter every Hub request goes through, in Scrapy (hfspider.middlewares.ratelimit) or
outside it (file downloads with aiohttp):

    grant = await limiter.acquire(bucket, authorization)   # waits for the budget
    ... send the request ...
    await limiter.observe(grant, status, headers)          # or: await limiter.failed(grant, why)

It joins the budget (local or Redis, shared by every holder of the token) with a breaker
per bucket (this process only), logs every rate-limit event once at INFO with the bucket and
the wait, and counts them in `stats` under `hfspider/ratelimit/<bucket>/...`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from hfspider.budget.backends import Budget, BudgetKey, LocalBudget, RedisBudget
from hfspider.budget.pacing import ROUNDING_MS, Breaker, BreakerState
from hfspider.hub.auth import origin
from hfspider.hub.endpoints import hub_endpoint
from hfspider.hub.ratelimit import (
    BUCKETS,
    POLICY_HEADER,
    RATELIMIT_HEADER,
    RETRY_AFTER_HEADER,
    classify,
    read_feedback,
)

logger = logging.getLogger(__name__)

STATS_PREFIX = "hfspider/ratelimit"
FEEDBACK_HEADERS = (RATELIMIT_HEADER, POLICY_HEADER, RETRY_AFTER_HEADER)


class Stats(Protocol):
    """What the limiter needs of Scrapy's StatsCollector."""

    def inc_value(self, key: str, count: float = 1, start: float = 0) -> None: ...


@dataclass(frozen=True)
class LimiterConfig:
    """The `RATELIMIT_*` settings (defaults in pipelines_config/distributed.toml)."""

    quotas: Mapping[str, int]
    window: float
    reset_margin: float
    max_pause: float
    default_pause: float
    failure_codes: frozenset[int]
    backoff_base: float
    backoff_max: float
    breaker_threshold: int
    breaker_seconds: float
    redis_url: str
    redis_prefix: str

    @classmethod
    def from_settings(cls, settings: Any) -> LimiterConfig:
        """From Scrapy settings or a plain dict (e.g. `hfspider.config.load_settings()`);
        values given on the command line arrive as strings."""

        def get(name: str) -> Any:
            value = settings.get(f"RATELIMIT_{name}")
            if value is None:
                raise KeyError(f"setting RATELIMIT_{name} is missing (see distributed.toml)")
            return value

        codes = get("FAILURE_CODES")
        if isinstance(codes, str):
            codes = codes.split(",")
        return cls(
            quotas={bucket: int(get(f"QUOTA_{bucket.upper()}")) for bucket in BUCKETS},
            window=float(get("WINDOW")),
            reset_margin=float(get("RESET_MARGIN")),
            max_pause=float(get("MAX_PAUSE")),
            default_pause=float(get("DEFAULT_PAUSE")),
            failure_codes=frozenset(int(code) for code in codes),
            backoff_base=float(get("BACKOFF_BASE")),
            backoff_max=float(get("BACKOFF_MAX")),
            breaker_threshold=int(get("BREAKER_THRESHOLD")),
            breaker_seconds=float(get("BREAKER_SECONDS")),
            redis_url=str(get("REDIS_URL")),
            redis_prefix=str(get("REDIS_PREFIX")),
        )


@dataclass(frozen=True)
class Grant:
    """Permission to send one request; hand it back to `observe` or `failed`."""

    bucket: str
    key: str  # the budget's key name (origin, token hash, bucket): no secret in it
    number: int  # the budget's count of requests sent, this one included
    sent: float  # the reserved send time, on the budget's clock
    waited: float  # seconds `acquire` waited

    def to_meta(self) -> dict[str, Any]:
        """Plain values for `Request.meta` (requests may be serialised)."""
        return {"bucket": self.bucket, "key": self.key, "number": self.number, "sent": self.sent}

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> Grant:
        return cls(meta["bucket"], meta["key"], meta["number"], meta["sent"], 0.0)


def token_identity(authorization: str | bytes | None) -> str:
    """A stable name for the token in an Authorization header, never the token itself."""
    if not authorization:
        return "anonymous"
    raw = authorization if isinstance(authorization, bytes) else authorization.encode()
    return "token-" + hashlib.sha256(raw.strip()).hexdigest()[:16]


class Limiter:
    """Paces requests to one Hub endpoint (see the module docstring)."""

    def __init__(
        self,
        config: LimiterConfig,
        endpoint: str,
        budget: Budget,
        *,
        stats: Stats | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.endpoint = endpoint
        self.budget = budget
        self.stats = stats
        self.clock = clock
        self.wall = wall
        self.sleep = sleep
        rng = rng or random.Random()
        self.breakers = {
            bucket: Breaker(
                config.backoff_base,
                config.backoff_max,
                config.breaker_threshold,
                config.breaker_seconds,
                rng,
            )
            for bucket in BUCKETS
        }
        parts = origin(endpoint)
        if parts is None:
            raise ValueError(f"not a Hub endpoint URL: {endpoint!r}")
        self.origin_name = f"{parts[1]}:{parts[2]}"
        self.policies: dict[str, tuple[int, float]] = {}  # last policy logged, per key
        self.problems_logged: set[str] = set()

    @classmethod
    def from_settings(cls, settings: Any, stats: Stats | None = None) -> Limiter:
        """The limiter for the `HUB_ENDPOINT` (or $HF_ENDPOINT) with the configured budget:
        shared through Redis if `RATELIMIT_REDIS_URL` is set, else local to this process."""
        config = LimiterConfig.from_settings(settings)
        budget: Budget
        if config.redis_url:
            budget = RedisBudget(config.redis_url, config.redis_prefix, config.reset_margin)
        else:
            budget = LocalBudget(config.reset_margin)
        return cls(config, hub_endpoint(settings.get("HUB_ENDPOINT")), budget, stats=stats)

    def bucket(self, url: str) -> str | None:
        """The bucket a request to `url` spends; None for URLs off the Hub (e.g. its CDN)."""
        return classify(url, self.endpoint)

    def _key(self, bucket: str, name: str) -> BudgetKey:
        return BudgetKey(name, self.config.quotas[bucket], self.config.window)

    def _count(self, bucket: str, stat: str, value: float = 1) -> None:
        if self.stats is not None:
            self.stats.inc_value(f"{STATS_PREFIX}/{bucket}/{stat}", value)

    async def acquire(self, bucket: str, authorization: str | bytes | None = None) -> Grant:
        """Wait until a request to `bucket` may be sent with this Authorization header."""
        key = self._key(bucket, f"{self.origin_name}:{token_identity(authorization)}:{bucket}")
        breaker = self.breakers[bucket]
        started = self.clock()
        while True:
            hold = self._hold(bucket, breaker)
            if hold > 0:
                await self.sleep(hold)
                continue
            reservation = await self.budget.reserve(key)
            if reservation.wait > 0:
                await self.sleep(reservation.wait)
            if self._hold(bucket, breaker) > 0:
                continue  # a failure meanwhile: back off first
            number = await self.budget.claim(key, reservation)
            if number is None:
                continue  # a 429 paused the bucket (or the window moved) meanwhile
            breaker.sent(self.clock())
            waited = self.clock() - started
            self._count(bucket, "requests")
            self._count(bucket, "wait_seconds", waited)
            return Grant(bucket, key.name, number, reservation.at, waited)

    def _hold(self, bucket: str, breaker: Breaker) -> float:
        before = breaker.state
        hold = breaker.hold(self.clock())
        if before is BreakerState.OPEN and breaker.state is BreakerState.HALF_OPEN:
            logger.info("Hub bucket %s: circuit half-open, one probe request goes", bucket)
        return hold

    async def observe(self, grant: Grant, status: int, headers: Mapping[str, str]) -> None:
        """Feed a response back: its rate-limit headers, a 429 (pauses the bucket for all who
        share the budget), a server failure (backoff, breaker) or a success."""
        picked = {
            name.lower(): value
            for name, value in headers.items()
            if name.lower() in FEEDBACK_HEADERS
        }
        feedback = read_feedback(grant.bucket, picked, self.wall())
        key = self._key(grant.bucket, grant.key)
        for problem in feedback.problems:
            self._count(grant.bucket, "bad_headers")
            if grant.bucket not in self.problems_logged:
                self.problems_logged.add(grant.bucket)
                logger.warning(
                    "Hub bucket %s: ignoring a rate-limit header: %s", grant.bucket, problem
                )
        if feedback.quota is not None and feedback.window is not None:
            policy = (feedback.quota, float(feedback.window))
            if self.policies.get(key.name) != policy:
                self.policies[key.name] = policy
                logger.info(
                    "Hub bucket %s: the Hub allows %d requests per %d s (configured: %d per %g s)",
                    grant.bucket,
                    feedback.quota,
                    feedback.window,
                    key.quota,
                    key.window,
                )
        await self.budget.observe(
            key,
            grant.number,
            grant.sent,
            feedback.remaining,
            feedback.reset,
            feedback.quota,
            feedback.window,
        )
        breaker = self.breakers[grant.bucket]
        if status == 429:
            if feedback.retry_after is not None:
                wait, source = feedback.retry_after, "Retry-After"
            elif feedback.reset is not None:
                wait, source = feedback.reset + ROUNDING_MS / 1000, "RateLimit reset"
            else:
                wait, source = self.config.default_pause, "no Retry-After nor RateLimit"
            wait = min(wait, self.config.max_pause)
            await self.budget.pause(key, wait)
            self._count(grant.bucket, "429")
            self._count(grant.bucket, "pause_seconds", wait)
            logger.info("Hub bucket %s: 429, pausing %.1f s (%s)", grant.bucket, wait, source)
        elif status in self.config.failure_codes:
            self._failure(grant.bucket, f"HTTP {status}")
        else:
            probing = breaker.state is BreakerState.HALF_OPEN
            breaker.success()
            if probing:
                logger.info("Hub bucket %s: probe succeeded, circuit closed", grant.bucket)

    async def failed(self, grant: Grant, reason: str) -> None:
        """A request that got no response (network error, timeout)."""
        self._failure(grant.bucket, reason)

    def _failure(self, bucket: str, reason: str) -> None:
        breaker = self.breakers[bucket]
        pause = breaker.failure(self.clock())
        self._count(bucket, "failures")
        if pause == 0:  # the circuit was already open
            return
        self._count(bucket, "backoff_seconds", pause)
        if breaker.state is BreakerState.OPEN:
            self._count(bucket, "circuit_open")
            logger.info(
                "Hub bucket %s: circuit open, pausing %.1f s after %d failures in a row (%s)",
                bucket,
                pause,
                breaker.failures,
                reason,
            )
        else:
            logger.info(
                "Hub bucket %s: %s, backing off %.1f s (failure %d in a row)",
                bucket,
                reason,
                pause,
                breaker.failures,
            )

    async def close(self) -> None:
        await self.budget.close()

"""The limiter (budget + breaker + logging + stats) with a local budget on an injected clock,
and the Scrapy middleware's plumbing on real Request/Response objects."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Coroutine
from typing import Any, TypeVar

import pytest
from scrapy import Request, Spider
from scrapy.http import Response
from scrapy.utils.test import get_crawler
from twisted.internet.error import TCPTimedOutError

from hfspider.budget.backends import LocalBudget
from hfspider.budget.limiter import Grant, Limiter, LimiterConfig, token_identity
from hfspider.config import load_settings
from hfspider.middlewares.ratelimit import (
    GRANT_META,
    TIMES_429_META,
    HubRateLimitMiddleware,
)

T = TypeVar("T")
HUB = "https://hub.example"
TOKEN = "hf_abcdefghijklmnopqrstuvwxyzABCDEFGH"


class FakeClock:
    """Monotonic and wall time that only `sleep` moves."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)  # let other tasks see the new time


class Stats:
    def __init__(self) -> None:
        self.values: dict[str, float] = {}

    def inc_value(self, key: str, count: float = 1, start: float = 0) -> None:
        self.values[key] = self.values.get(key, start) + count


def config(**overrides: Any) -> LimiterConfig:
    settings = {**load_settings(), **{f"RATELIMIT_{k.upper()}": v for k, v in overrides.items()}}
    return LimiterConfig.from_settings(settings)


def make_limiter(clock: FakeClock, stats: Stats, **overrides: Any) -> Limiter:
    cfg = config(**{"window": 10, "quota_api": 10, "reset_margin": 0.5, **overrides})
    budget = LocalBudget(cfg.reset_margin, clock=clock)
    return Limiter(
        cfg,
        HUB,
        budget,
        stats=stats,
        clock=clock,
        wall=clock,
        sleep=clock.sleep,
        rng=random.Random(1),
    )


def run(coroutine: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coroutine)


def test_settings_come_from_the_toml_and_command_line_strings_are_accepted() -> None:
    cfg = LimiterConfig.from_settings(
        {**load_settings(), "RATELIMIT_QUOTA_API": "1000", "RATELIMIT_FAILURE_CODES": "500,503"}
    )
    assert cfg.quotas == {"api": 1000, "resolvers": 3000, "pages": 100}
    assert cfg.window == 300.0 and cfg.failure_codes == {500, 503}
    with pytest.raises(KeyError, match="RATELIMIT_FAILURE_CODES is missing"):
        LimiterConfig.from_settings({})


def test_acquire_paces_from_the_configured_quota_and_counts() -> None:
    clock, stats = FakeClock(), Stats()
    limiter = make_limiter(clock, stats)
    grants = [run(limiter.acquire("api")) for _ in range(3)]
    assert [grant.waited for grant in grants] == pytest.approx([0.0, 1.0, 1.0])
    assert [grant.number for grant in grants] == [1, 2, 3]
    assert stats.values["hfspider/ratelimit/api/requests"] == 3
    assert stats.values["hfspider/ratelimit/api/wait_seconds"] == pytest.approx(2.0)


def test_buckets_and_tokens_have_separate_budgets_and_keys_hold_no_token() -> None:
    clock, stats = FakeClock(), Stats()
    limiter = make_limiter(clock, stats)
    anonymous = run(limiter.acquire("api"))
    with_token = run(limiter.acquire("api", f"Bearer {TOKEN}".encode()))
    resolver = run(limiter.acquire("resolvers", f"Bearer {TOKEN}"))
    assert anonymous.waited == with_token.waited == resolver.waited == 0.0
    assert anonymous.key == "hub.example:443:anonymous:api"
    assert with_token.key == f"hub.example:443:{token_identity(f'Bearer {TOKEN}')}:api"
    assert TOKEN not in with_token.key and "hf_" not in resolver.key
    assert token_identity(f"Bearer {TOKEN}") == token_identity(f"Bearer {TOKEN}".encode())


def test_a_429_with_retry_after_pauses_the_bucket_and_is_logged_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, stats = FakeClock(), Stats()
    limiter = make_limiter(clock, stats)
    grant = run(limiter.acquire("api"))
    caplog.set_level(logging.INFO, logger="hfspider.budget.limiter")
    headers = {"Retry-After": "7", "RateLimit": '"api";r=0;t=30'}
    run(limiter.observe(grant, 429, headers))
    assert [r.getMessage() for r in caplog.records] == [
        "Hub bucket api: 429, pausing 7.0 s (Retry-After)"
    ]
    after = run(limiter.acquire("api"))
    # Paused 7 s, and r=0 means the window is spent: the next one starts at the latest
    # possible reset, 30 s + 1 s of rounding after the answer.
    assert after.waited == pytest.approx(31.0)
    assert stats.values["hfspider/ratelimit/api/429"] == 1
    assert stats.values["hfspider/ratelimit/api/pause_seconds"] == 7.0
    assert run(limiter.acquire("pages")).waited == 0.0  # other buckets go on


@pytest.mark.parametrize(
    ("headers", "wait", "source"),
    [
        ({"ratelimit": '"api";r=0;t=5'}, 6.0, "RateLimit reset"),
        ({}, 60.0, "no Retry-After nor RateLimit"),
        ({"Retry-After": "100000"}, 900.0, "Retry-After"),  # capped at max_pause
        ({"Retry-After": "soon"}, 60.0, "no Retry-After nor RateLimit"),
    ],
)
def test_the_429_pause_comes_from_the_best_header_available(
    headers: dict[str, str], wait: float, source: str, caplog: pytest.LogCaptureFixture
) -> None:
    clock, stats = FakeClock(), Stats()
    limiter = make_limiter(clock, stats)
    grant = run(limiter.acquire("api"))
    caplog.set_level(logging.INFO, logger="hfspider.budget.limiter")
    run(limiter.observe(grant, 429, headers))
    assert f"Hub bucket api: 429, pausing {wait:.1f} s ({source})" in caplog.messages
    assert stats.values["hfspider/ratelimit/api/pause_seconds"] == wait
    assert run(limiter.acquire("api")).waited >= wait


def test_a_malformed_header_is_counted_and_logged_once_without_breaking_anything(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, stats = FakeClock(), Stats()
    limiter = make_limiter(clock, stats)
    caplog.set_level(logging.INFO, logger="hfspider.budget.limiter")
    for _ in range(2):
        grant = run(limiter.acquire("api"))
        run(limiter.observe(grant, 200, {"RateLimit": '"api";r=many;t=5'}))
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [r.getMessage() for r in warnings] == [
        "Hub bucket api: ignoring a rate-limit header: RateLimit: r='many' is not a "
        "non-negative integer"
    ]
    assert stats.values["hfspider/ratelimit/api/bad_headers"] == 2


def test_the_policy_is_logged_when_learned_and_when_it_changes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, stats = FakeClock(), Stats()
    limiter = make_limiter(clock, stats)
    caplog.set_level(logging.INFO, logger="hfspider.budget.limiter")
    for quota in (50, 50, 20):
        grant = run(limiter.acquire("api"))
        policy = f'"fixed window";"api";q={quota};w=5'
        run(limiter.observe(grant, 200, {"RateLimit-Policy": policy}))
    assert caplog.messages == [
        "Hub bucket api: the Hub allows 50 requests per 5 s (configured: 10 per 10 s)",
        "Hub bucket api: the Hub allows 20 requests per 5 s (configured: 10 per 10 s)",
    ]


def test_server_failures_back_off_then_open_the_circuit_then_one_probe_closes_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock, stats = FakeClock(), Stats()
    limiter = make_limiter(clock, stats, breaker_threshold=3, breaker_seconds=30)
    caplog.set_level(logging.INFO, logger="hfspider.budget.limiter")
    grant = run(limiter.acquire("api"))
    run(limiter.observe(grant, 503, {}))
    run(limiter.failed(grant, "TimeoutError"))
    waited = run(limiter.acquire("api")).waited
    assert 1.0 <= waited <= 2.0  # the second backoff: 2 s with jitter, at least half of it
    run(limiter.observe(grant, 502, {}))
    assert stats.values["hfspider/ratelimit/api/circuit_open"] == 1
    assert run(limiter.acquire("api")).waited == pytest.approx(30.0)  # the probe

    async def while_the_probe_is_out() -> Grant:
        waiting = asyncio.ensure_future(limiter.acquire("api"))
        await asyncio.sleep(0)
        assert not waiting.done()  # held until the probe reports
        await limiter.observe(grant, 200, {})
        return await waiting

    assert run(while_the_probe_is_out()).waited == pytest.approx(1.0)  # one poll
    assert run(limiter.acquire("api")).waited == pytest.approx(1.0, abs=0.001)  # paced (ms)
    assert caplog.messages[-3:] == [
        "Hub bucket api: circuit open, pausing 30.0 s after 3 failures in a row (HTTP 502)",
        "Hub bucket api: circuit half-open, one probe request goes",
        "Hub bucket api: probe succeeded, circuit closed",
    ]
    assert stats.values["hfspider/ratelimit/api/failures"] == 3


# --- the Scrapy middleware ---------------------------------------------------------------


def make_middleware(**settings: Any) -> HubRateLimitMiddleware:
    base = {
        **load_settings(),
        "HUB_ENDPOINT": HUB,
        "RATELIMIT_WINDOW": 1,
        "RATELIMIT_QUOTA_API": 1000,
        "RATELIMIT_BACKOFF_BASE": 0.001,
        "RATELIMIT_BACKOFF_MAX": 0.002,
        "RATELIMIT_RETRY_429_TIMES": 2,
        "RETRY_TIMES": 1,
    }
    crawler = get_crawler(Spider, {**base, **settings})
    crawler.spider = crawler._create_spider("test")
    return HubRateLimitMiddleware.from_crawler(crawler)


def stat(middleware: HubRateLimitMiddleware, name: str) -> Any:
    assert middleware.crawler.stats is not None
    return middleware.crawler.stats.get_value(name)


def test_the_middleware_grants_hub_requests_and_leaves_others_alone() -> None:
    mw = make_middleware()
    hub = Request(f"{HUB}/api/models/org/name", headers={"Authorization": f"Bearer {TOKEN}"})
    cdn = Request("https://cdn.example/file", meta={GRANT_META: {"stale": True}})
    assert run(mw.process_request(hub)) is None
    assert run(mw.process_request(cdn)) is None
    assert hub.meta[GRANT_META]["bucket"] == "api" and TOKEN not in str(hub.meta)
    assert GRANT_META not in cdn.meta
    response = Response(cdn.url, status=503, request=cdn)
    assert run(mw.process_response(cdn, response)) is response  # RetryMiddleware's business
    assert stat(mw, "hfspider/ratelimit/api/requests") == 1


def test_a_429_is_retried_apart_from_retry_times_until_its_own_limit() -> None:
    mw = make_middleware()
    request = Request(f"{HUB}/api/models/org/name", meta={"retry_times": 1})
    for attempt in (1, 2):
        run(mw.process_request(request))
        response = Response(request.url, status=429, headers={"Retry-After": "0"})
        retry = run(mw.process_response(request, response))
        assert isinstance(retry, Request) and retry.dont_filter
        assert (retry.meta[TIMES_429_META], retry.meta["retry_times"]) == (attempt, 1)
        request = retry
    run(mw.process_request(request))
    response = Response(request.url, status=429, headers={"Retry-After": "0"})
    assert run(mw.process_response(request, response)) is response  # on to the spider
    assert request.meta["dont_retry"] is True  # and not retried again by RetryMiddleware
    assert stat(mw, "hfspider/ratelimit/api/retry_429/count") == 2
    assert stat(mw, "hfspider/ratelimit/api/retry_429/max_reached") == 1
    assert stat(mw, "hfspider/ratelimit/api/429") == 3


def test_server_failures_are_retried_up_to_retry_times_with_backoff() -> None:
    mw = make_middleware()
    request = Request(f"{HUB}/api/models/org/name")
    run(mw.process_request(request))
    retry = run(mw.process_response(request, Response(request.url, status=503)))
    assert isinstance(retry, Request) and retry.meta["retry_times"] == 1
    run(mw.process_request(retry))
    final = Response(retry.url, status=503)
    assert run(mw.process_response(retry, final)) is final
    assert stat(mw, "hfspider/ratelimit/api/retry/reason_count/503 Service Unavailable") == 1
    assert stat(mw, "hfspider/ratelimit/api/retry/max_reached") == 1
    assert stat(mw, "hfspider/ratelimit/api/failures") == 2


def test_network_errors_are_retried_then_handed_to_the_errback() -> None:
    mw = make_middleware()
    request = Request(f"{HUB}/owner/name/resolve/main/config.json")
    run(mw.process_request(request))
    assert request.meta[GRANT_META]["bucket"] == "resolvers"
    retry = run(mw.process_exception(request, TCPTimedOutError()))
    assert isinstance(retry, Request)
    run(mw.process_request(retry))
    assert run(mw.process_exception(retry, TCPTimedOutError())) is None
    assert retry.meta["dont_retry"] is True
    assert run(mw.process_exception(request, ValueError("not a network error"))) is None
    assert stat(mw, "hfspider/ratelimit/resolvers/failures") == 2


def test_success_passes_through_and_feeds_the_headers_back() -> None:
    mw = make_middleware()
    request = Request(f"{HUB}/api/models/org/name")
    run(mw.process_request(request))
    headers = {"RateLimit": '"api";r=0;t=3', "RateLimit-Policy": '"fixed window";"api";q=5;w=9'}
    response = Response(request.url, status=200, headers=headers)
    assert run(mw.process_response(request, response)) is response
    budget = mw.limiter.budget
    assert isinstance(budget, LocalBudget)
    state = budget.buckets[request.meta[GRANT_META]["key"]]
    assert (state.quota, state.window, state.left) == (5, 9000, 0)

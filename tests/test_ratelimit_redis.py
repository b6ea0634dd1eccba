"""The shared budget against a real redis-server: the Lua script computes exactly what the
Python core computes, several worker processes together never exceed the quota, a 429 seen
by one pauses all, tokens never reach Redis, and a Redis restart only makes callers wait."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import subprocess
import sys
import time
from typing import Any

import pytest
import redis

from hfspider.budget.backends import BudgetKey, RedisBudget
from hfspider.budget.limiter import Limiter, LimiterConfig
from hfspider.budget.pacing import BucketBudget
from hfspider.config import load_settings
from tests.fixtures.redis import RedisServer
from tests.test_ratelimit_pacing import max_in_any_window

pytestmark = pytest.mark.services

PREFIX = "test:rl"
HUB = "https://hub.example"


def seconds(ms: int) -> float:
    """Milliseconds from Redis as seconds that the Python core floors back to the same ms."""
    return (ms + 0.5) / 1000


def state(client: redis.Redis, key: BudgetKey) -> dict[str, int]:
    raw = client.hgetall(f"{PREFIX}:{key.name}")
    return {"pause": 0, "claimed": 0, **{name.decode(): int(value) for name, value in raw.items()}}


def python_state(budget: BucketBudget) -> dict[str, int]:
    values = {
        "q": budget.quota,
        "w": budget.window,
        "left": budget.left,
        "tat": budget.next_at,
        "pause": budget.paused_until,
        "epoch": budget.epoch,
        "claimed": budget.claimed,
    }
    if budget.reset_lo is not None:
        values.update(lo=budget.reset_lo, hi=budget.reset_hi, spill=budget.spill)
    return values


def test_the_lua_script_computes_what_the_python_core_computes(redis_server: RedisServer) -> None:
    """A random mix of reservations, claims, answers and pauses, replayed into BucketBudget
    at the Redis server's times: same send times, same numbers, same state after each step."""
    rng = random.Random(42)
    key = BudgetKey("hub:443:anonymous:api", 5, 2.0)
    client = redis.Redis.from_url(redis_server.url)
    mirror = BucketBudget(key.quota, key.window, 0.3)
    slots: list[tuple[int, int]] = []  # (epoch, at ms) of reservations not claimed yet
    sent: list[tuple[int, int]] = []  # (number, at ms) of claimed ones
    kinds: set[str] = set()

    async def scenario() -> None:
        budget = RedisBudget(redis_server.url, PREFIX, 0.3)
        try:
            for _ in range(600):
                roll = rng.random()
                if roll < 0.35 or not slots and not sent:
                    wait, epoch, at = await budget._run(key, "reserve", 5, 2000, 300)
                    slot = mirror.reserve(seconds(at - wait))
                    assert (round(slot.at * 1000), slot.epoch) == (at, epoch)
                    slots.append((epoch, at))
                elif roll < 0.6 and slots:
                    epoch, at = slots.pop(rng.randrange(len(slots)))
                    (number,) = await budget._run(key, "claim", epoch, 2000)
                    assert (number or None) == mirror.claim(epoch)
                    kinds.add("claimed" if number else "void")
                    if number:
                        sent.append((number, at))
                elif roll < 0.95 and sent:
                    number, at = rng.choice(sent[-8:])
                    remaining, reset = rng.randint(0, 5), rng.randint(0, 3)
                    policy = rng.choice([("", ""), (5, 2000), (4, 3000)])
                    args = (number, at, remaining, reset * 1000, *policy, 2000)
                    (now,) = await budget._run(key, "observe", *args)
                    quota, window = (None, None) if policy[0] == "" else policy
                    low, span, lo = (
                        at + reset * 1000 - 1000,
                        window or mirror.window,
                        mirror.reset_lo,
                    )
                    kinds.add(
                        "new window" if lo is None or 2 * (low - lo) > span
                        else "same window" if 2 * (lo - low) < span
                        else "earlier window"
                    )  # fmt: skip
                    window = None if window is None else window / 1000
                    mirror.observe(
                        seconds(now), number, seconds(at), remaining, reset, quota, window
                    )
                else:
                    pause = rng.randint(0, 1500)
                    (now,) = await budget._run(key, "pause", pause, 2000)
                    mirror.pause(seconds(now), pause / 1000)
                assert state(client, key) == python_state(mirror)
        finally:
            await budget.close()

    asyncio.run(scenario())
    # Every kind of step was compared.
    assert kinds == {"claimed", "void", "new window", "same window", "earlier window"}


WORKER = """
import asyncio, json, sys, time
from hfspider.budget.limiter import Limiter
from hfspider.config import load_settings

redis_url, tasks, grants = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
settings = {**load_settings(), "HUB_ENDPOINT": "https://hub.example",
            "RATELIMIT_REDIS_URL": redis_url, "RATELIMIT_REDIS_PREFIX": "test:rl",
            "RATELIMIT_WINDOW": 1, "RATELIMIT_QUOTA_API": 20}

async def main():
    limiter = Limiter.from_settings(settings)
    out = []
    async def worker():
        for _ in range(grants):
            grant = await limiter.acquire("api", "Bearer hf_shared_token")
            out.append((grant.number, round(grant.sent * 1000), round(time.time() * 1000)))
    await asyncio.gather(*(worker() for _ in range(tasks)))
    await limiter.close()
    print(json.dumps(out))

asyncio.run(main())
"""


def run_workers(redis_url: str, processes: int, tasks: int, grants: int) -> list[list[int]]:
    """Start `processes` workers at once, each with `tasks` concurrent acquirers."""
    started = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, redis_url, str(tasks), str(grants)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    results = []
    for process in started:
        out, err = process.communicate(timeout=60)
        assert process.returncode == 0, err[-3000:]
        results.extend(json.loads(out))
    return results


def test_worker_processes_sharing_a_token_stay_under_the_quota_together(
    redis_server: RedisServer,
) -> None:
    quota, window_ms = 20, 1000
    grants = run_workers(redis_server.url, processes=4, tasks=3, grants=8)
    assert sorted(number for number, _, _ in grants) == list(range(1, 97))
    sent = [at for _, at, _ in grants]
    assert max_in_any_window([ms / 1000 for ms in sent], window_ms / 1000) == quota
    assert all(proceeded >= at - 2 for _, at, proceeded in grants)  # nobody went early
    assert max(sent) - min(sent) >= (96 - 1) * window_ms // quota  # no earlier than the bound


def test_without_redis_each_worker_spends_the_quota_on_its_own() -> None:
    """The control for the test above: the same check sees four local budgets overrun."""
    grants = run_workers("", processes=4, tasks=3, grants=16)  # 2.4 s each: they overlap
    proceeded = [moment / 1000 for _, _, moment in grants]
    assert max_in_any_window(proceeded, 1.0) > 20


def test_a_429_seen_by_one_worker_pauses_every_worker(redis_server: RedisServer) -> None:
    key = BudgetKey("hub:443:anonymous:api", 100, 10.0)

    async def scenario() -> None:
        first = RedisBudget(redis_server.url, PREFIX, 0.5)
        second = RedisBudget(redis_server.url, PREFIX, 0.5)
        try:
            held = await second.reserve(key)
            await first.pause(key, 2.0)
            assert await second.claim(key, held) is None
            again = await second.reserve(key)
            assert 1.95 <= again.wait <= 2.0
            assert await second.claim(key, again) == 1
        finally:
            await first.close()
            await second.close()

    asyncio.run(scenario())


def test_redis_keys_and_values_never_hold_the_token(redis_server: RedisServer) -> None:
    token = "hf_SecretTokenValue0123456789abcdefgh"
    settings = {**load_settings(), "HUB_ENDPOINT": HUB, "RATELIMIT_REDIS_URL": redis_server.url}

    async def scenario() -> None:
        limiter = Limiter.from_settings(settings)
        grant = await limiter.acquire("api", f"Bearer {token}")
        await limiter.observe(grant, 429, {"Retry-After": "0"})
        await limiter.close()

    asyncio.run(scenario())
    client = redis.Redis.from_url(redis_server.url)
    keys = client.keys("*")
    assert len(keys) == 1 and keys[0].startswith(b"hfspider:ratelimit:hub.example:443:token-")
    dump = repr(keys) + repr(client.hgetall(keys[0]))
    assert token not in dump and "hf_" not in dump


def test_while_redis_is_down_callers_wait_and_carry_on_when_it_is_back(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings: dict[str, Any] = {
        **load_settings(),
        "HUB_ENDPOINT": HUB,
        "RATELIMIT_REDIS_URL": redis_server.url,
        "RATELIMIT_QUOTA_API": 100,
        "RATELIMIT_WINDOW": 1,
    }
    caplog.set_level(logging.INFO, logger="hfspider.budget.backends")

    async def scenario() -> float:
        limiter = Limiter.from_settings(settings, stats=None)
        try:
            grant = await limiter.acquire("api")
            redis_server.stop()
            waiting = asyncio.ensure_future(limiter.acquire("api"))
            observing = asyncio.ensure_future(limiter.observe(grant, 200, {}))
            await asyncio.sleep(2.0)
            assert not waiting.done() and not observing.done()  # waiting, not failing
            redis_server.start()
            started = time.monotonic()
            await asyncio.wait_for(asyncio.gather(waiting, observing), timeout=15)
            return time.monotonic() - started
        finally:
            await limiter.close()

    back_after = asyncio.run(scenario())
    assert back_after <= 15
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and "is unreachable (ConnectionError)" in warnings[0]
    assert any(" is back after " in message for message in caplog.messages)


def test_the_config_reads_the_redis_url_from_the_settings() -> None:
    config = LimiterConfig.from_settings({**load_settings(), "RATELIMIT_REDIS_URL": "redis://x"})
    assert (config.redis_url, config.redis_prefix) == ("redis://x", "hfspider:ratelimit")

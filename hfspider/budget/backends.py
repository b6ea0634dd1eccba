"""Where the budget lives: in this process (`LocalBudget`) or in Redis (`RedisBudget`), shared
by every worker that uses the same token, so N workers together stay under one quota.

Both run the algorithm of `pacing.BucketBudget`; Redis runs it as one Lua script (atomic,
on the Redis server's clock, so workers on different hosts agree). Keys are
`<prefix>:<key>` with the key built by the limiter from the Hub origin, a hash of the token
and the bucket: a token never reaches Redis. While Redis is unreachable every call waits and
retries (`PatientRedis`, which the distributed work queue uses too), so the crawl pauses
instead of failing or running unthrottled.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Protocol, TypeVar
from urllib.parse import urlsplit

import redis.asyncio
import redis.exceptions
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from hfspider.budget.pacing import ROUNDING_MS, BucketBudget

logger = logging.getLogger(__name__)

# While Redis is unreachable: first retry after this many seconds, doubling up to the cap.
REDIS_RETRY_FIRST = 0.25
REDIS_RETRY_MAX = 5.0
REDIS_TIMEOUT = 5.0

T = TypeVar("T")


@dataclass(frozen=True)
class BudgetKey:
    """One budget: `name` is `<origin>:<token hash>:<bucket>`; `quota` per `window` seconds
    apply until the server's policy is observed."""

    name: str
    quota: int
    window: float


@dataclass(frozen=True)
class Reservation:
    """A place in the schedule: `at` on the budget's clock, `wait` seconds from when the
    budget answered; claim it when the wait is over."""

    wait: float
    at: float
    epoch: int


class Budget(Protocol):
    async def reserve(self, key: BudgetKey) -> Reservation:
        """Reserve the next send time and count it against the window."""

    async def claim(self, key: BudgetKey, reservation: Reservation) -> int | None:
        """The request's number, or None if the reservation was voided meanwhile (a pause,
        a newly learned window): then reserve again."""

    async def observe(
        self,
        key: BudgetKey,
        number: int,
        sent: float,
        remaining: int | None,
        reset: float | None,
        quota: int | None,
        window: float | None,
    ) -> None:
        """Feed back what the answer to request `number`, reserved for `sent`, said (see
        BucketBudget.observe)."""

    async def pause(self, key: BudgetKey, seconds: float) -> None:
        """Pause the bucket for everyone sharing this budget."""

    async def close(self) -> None: ...


class LocalBudget:
    """The budget of one process; `clock` is monotonic seconds (injected in tests)."""

    def __init__(self, margin: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.margin = margin
        self.clock = clock
        self.buckets: dict[str, BucketBudget] = {}

    def _budget(self, key: BudgetKey) -> BucketBudget:
        budget = self.buckets.get(key.name)
        if budget is None:
            budget = self.buckets[key.name] = BucketBudget(key.quota, key.window, self.margin)
        return budget

    async def reserve(self, key: BudgetKey) -> Reservation:
        budget = self._budget(key)
        now = self.clock()
        slot = budget.reserve(now)
        return Reservation(max(0.0, slot.at - now), slot.at, slot.epoch)

    async def claim(self, key: BudgetKey, reservation: Reservation) -> int | None:
        return self._budget(key).claim(reservation.epoch)

    async def observe(
        self,
        key: BudgetKey,
        number: int,
        sent: float,
        remaining: int | None,
        reset: float | None,
        quota: int | None,
        window: float | None,
    ) -> None:
        self._budget(key).observe(self.clock(), number, sent, remaining, reset, quota, window)

    async def pause(self, key: BudgetKey, seconds: float) -> None:
        self._budget(key).pause(self.clock(), seconds)

    async def close(self) -> None:
        return None


# BucketBudget in Lua, times in integer milliseconds of the Redis server's clock. One script,
# one hash per key; ARGV[1] names the operation. Answers {wait_ms, epoch, at_ms} to `reserve`,
# {number or 0 if void} to `claim`, {now_ms} to `observe` and `pause`.
SCRIPT = """
local ROUNDING = @ROUNDING_MS@
local key, op = KEYS[1], ARGV[1]
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local s = redis.call('HMGET', key, 'q', 'w', 'lo', 'hi', 'left', 'spill', 'tat', 'pause',
                     'epoch', 'claimed')
local q, w, lo, hi = tonumber(s[1]), tonumber(s[2]), tonumber(s[3]), tonumber(s[4]) or 0
local left, spill, tat = tonumber(s[5]) or 0, tonumber(s[6]) or 0, tonumber(s[7]) or 0
local pause, epoch, claimed = tonumber(s[8]) or 0, tonumber(s[9]) or 0, tonumber(s[10]) or 0
local answer = {now}
if op == 'reserve' then
  q, w = q or tonumber(ARGV[2]), w or tonumber(ARGV[3])
  local at, spacing = math.max(now, tat, pause), 0
  if lo == nil then
    spacing = math.ceil(w / q)
  else
    local margin = math.min(tonumber(ARGV[4]), math.floor(w / 4))
    if at >= lo - margin or left <= 0 then
      local ahead = math.max(1, math.floor((at - lo + margin) / w) + 1)
      at = math.max(at, hi + (ahead - 1) * w)
      lo, hi, left = lo + ahead * w, hi + ahead * w, q
      if ahead == 1 then
        left = q - spill
      end
      spill = 0
    end
    spacing = math.max(0, math.ceil((lo - margin - at) / left))
    left = left - 1
    redis.call('HSET', key, 'lo', lo, 'hi', hi, 'spill', spill)
  end
  tat = at + spacing
  redis.call('HSET', key, 'q', q, 'w', w, 'left', left, 'tat', tat, 'epoch', epoch)
  answer = {at - now, epoch, at}
elseif op == 'claim' then
  w = w or tonumber(ARGV[3])
  if tonumber(ARGV[2]) ~= epoch then
    return {0}
  end
  claimed = claimed + 1
  redis.call('HSET', key, 'claimed', claimed)
  answer = {claimed}
elseif op == 'observe' then
  local nq, nw = tonumber(ARGV[6]), tonumber(ARGV[7])
  if nq and nw then
    q, w = nq, nw
    redis.call('HSET', key, 'q', q, 'w', w)
  end
  w = w or tonumber(ARGV[8])
  local remaining, reset = tonumber(ARGV[4]), tonumber(ARGV[5])
  if remaining and reset then
    local low, high = tonumber(ARGV[3]) + reset - ROUNDING, now + reset + ROUNDING
    local later = math.max(0, claimed - tonumber(ARGV[2]))
    local behind = -1
    if lo ~= nil then
      behind = math.floor((2 * (lo - low) + w) / (2 * w))
    end
    if behind < 0 then
      tat, epoch = now, epoch + 1
      redis.call('HSET', key, 'lo', low, 'hi', high, 'left', remaining - later,
                 'spill', later, 'tat', tat, 'epoch', epoch)
    else
      low, high = low + behind * w, high + behind * w
      local tight_lo, tight_hi = math.max(low, lo), math.min(high, hi)
      if tight_lo > tight_hi then
        tight_lo, tight_hi = low, high
      end
      redis.call('HSET', key, 'lo', tight_lo, 'hi', tight_hi)
      if behind == 0 then
        redis.call('HSET', key, 'left', math.min(left, remaining - later))
      end
    end
  end
elseif op == 'pause' then
  w = w or tonumber(ARGV[3])
  pause, epoch = math.max(pause, now + tonumber(ARGV[2])), epoch + 1
  redis.call('HSET', key, 'pause', pause, 'epoch', epoch)
else
  return redis.error_reply('unknown operation ' .. tostring(op))
end
-- Keep the state while it matters (reservations, a pause, the window) and a window more.
redis.call('PEXPIRE', key, math.max(tat, pause, hi, now) - now + 2 * w)
return answer
""".replace("@ROUNDING_MS@", str(ROUNDING_MS))


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def redis_location(url: str) -> str:
    """host:port/db of a Redis URL, for log lines (never the password)."""
    parts = urlsplit(url)
    return f"{parts.hostname}:{parts.port or 6379}{parts.path or ''}"


class PatientRedis:
    """A redis.asyncio client whose calls wait while Redis is unreachable (refused, timed out,
    still loading its data after a restart) instead of failing: shared by the budget and the
    distributed work queue, so a Redis restart pauses a crawl and never crashes it. An outage
    is logged once when it starts and once when it ends, however many callers wait; `user`
    names who waits in that log line."""

    def __init__(self, url: str, user: str) -> None:
        self.location = redis_location(url)
        self.user = user
        self.client = redis.asyncio.Redis.from_url(
            url,
            socket_timeout=REDIS_TIMEOUT,
            socket_connect_timeout=REDIS_TIMEOUT,
            retry=Retry(NoBackoff(), 0),  # `call` is the one retry loop, and it logs
        )
        self.down_since: float | None = None

    async def call(self, call: Callable[[], Awaitable[T]]) -> T:
        """Await `call()` until Redis answers. Scripts run through here must be safe to run
        twice: a timed-out call may have run before its answer was lost."""
        delay = REDIS_RETRY_FIRST
        while True:
            try:
                result = await call()
            except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
                if self.down_since is None:
                    self.down_since = time.monotonic()
                    logger.warning(
                        "Redis at %s is unreachable (%s): %s waits for it",
                        self.location,
                        type(exc).__name__,
                        self.user,
                    )
                await asyncio.sleep(delay)
                delay = min(2 * delay, REDIS_RETRY_MAX)
                continue
            if self.down_since is not None:
                outage, self.down_since = time.monotonic() - self.down_since, None
                logger.info("Redis at %s is back after %.1f s", self.location, outage)
            return result

    async def close(self) -> None:
        await self.client.aclose()


class RedisBudget:
    """The budget shared through Redis (see the module docstring)."""

    def __init__(self, url: str, prefix: str, margin: float) -> None:
        self.redis = PatientRedis(url, "the rate-limit budget")
        self.prefix = prefix
        self.margin_ms = _ms(margin)
        self.script = self.redis.client.register_script(SCRIPT)

    async def _run(self, key: BudgetKey, *args: str | int) -> list[int]:
        keys = [f"{self.prefix}:{key.name}"]
        answer = await self.redis.call(lambda: self.script(keys=keys, args=list(args)))
        return [int(value) for value in answer]

    async def reserve(self, key: BudgetKey) -> Reservation:
        args = ("reserve", key.quota, _ms(key.window), self.margin_ms)
        wait_ms, epoch, at_ms = await self._run(key, *args)
        return Reservation(wait_ms / 1000, at_ms / 1000, epoch)

    async def claim(self, key: BudgetKey, reservation: Reservation) -> int | None:
        (number,) = await self._run(key, "claim", reservation.epoch, _ms(key.window))
        return number or None

    async def observe(
        self,
        key: BudgetKey,
        number: int,
        sent: float,
        remaining: int | None,
        reset: float | None,
        quota: int | None,
        window: float | None,
    ) -> None:
        def arg(value: int | None) -> str | int:
            return "" if value is None else value

        reset_ms = None if reset is None else _ms(reset)
        window_ms = None if window is None else _ms(window)
        args = (number, _ms(sent), arg(remaining), arg(reset_ms), arg(quota), arg(window_ms))
        await self._run(key, "observe", *args, _ms(key.window))

    async def pause(self, key: BudgetKey, seconds: float) -> None:
        await self._run(key, "pause", _ms(seconds), _ms(key.window))

    async def close(self) -> None:
        await self.redis.close()

"""The pacing core: pure state machines, no I/O; every method takes `now` from the caller.

`BucketBudget` spends one bucket's quota (for one token) evenly over the server's fixed
windows, which follow each other without gaps. Before the first answer it paces from the
configured quota (one request every w/q seconds). Each answer's `RateLimit` (`r` left, the
reset in `t` whole seconds, measured between sending and receiving) bounds the reset: later
than sent + t - 1, earlier than received + t + 1. The budget spends what is left evenly
until a margin (the request's own travel time) before the earliest reset, and starts the
next window's quota at the latest one, so that no request is counted in a window it was not
meant for.

A reservation is only a place in the schedule; the caller claims it when its time has come
and sends the request only if the claim succeeds (a 429, or an answer from a window the
budget had not counted in, voids earlier reservations: their waiters reserve again). Claims
are numbered. The count is ours; an `r` below it means someone else spends from the same
window, and then every request claimed after the answered one is taken as not yet counted by
the server.

The Redis back-end runs the same algorithm as a Lua script (budget/backends.py).

`Breaker` handles server failure (5xx, network errors) for one bucket: exponential backoff
with jitter after each failure, and after `threshold` failures in a row an open circuit
that pauses, then lets one probe through (half-open), then closes on success.
"""

from __future__ import annotations

import enum
import math
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class Slot:
    """A reservation: claim it at `at` (seconds), in the bucket's `epoch`."""

    at: float
    epoch: int


# The Hub's `t` is whole seconds: the true reset may be up to this far on either side.
ROUNDING_MS = 1000


def _ms(seconds: float) -> int:
    return math.floor(seconds * 1000)


class BucketBudget:
    """The pacing state of one bucket for one token identity.

    Methods take seconds; the state is kept in integer milliseconds and rounded like the Lua
    script does, so both back-ends compute the same schedule, without float drift.
    """

    def __init__(self, quota: int, window: float, margin: float) -> None:
        if quota < 1 or window <= 0 or margin < 0:
            raise ValueError(f"bad budget: quota {quota}, window {window}, margin {margin}")
        self.quota = quota
        self.window = _ms(window)
        self.margin = _ms(margin)
        # The server's current window resets between `reset_lo` and `reset_hi`, if known.
        self.reset_lo: int | None = None
        self.reset_hi = 0
        self.left = 0  # requests left in that window
        self.spill = 0  # requests that may be counted in the next window instead
        self.next_at = 0  # the earliest time of the next reservation
        self.paused_until = 0
        self.epoch = 0
        self.claimed = 0  # requests sent so far

    def reserve(self, now: float) -> Slot:
        """Reserve the next send time (>= now) and count it against its window."""
        at = max(_ms(now), self.next_at, self.paused_until)
        if self.reset_lo is None:
            spacing = -(-self.window // self.quota)
        else:
            margin = min(self.margin, self.window // 4)
            if at >= self.reset_lo - margin or self.left <= 0:
                # On to the first later window whose usable part, from the latest possible
                # reset to a margin before the earliest next one, has not passed.
                ahead = max(1, (at - self.reset_lo + margin) // self.window + 1)
                at = max(at, self.reset_hi + (ahead - 1) * self.window)
                self.reset_lo += ahead * self.window
                self.reset_hi += ahead * self.window
                self.left = self.quota - (self.spill if ahead == 1 else 0)
                self.spill = 0
            spacing = max(0, -(-(self.reset_lo - margin - at) // self.left))
            self.left -= 1
        self.next_at = at + spacing
        return Slot(at / 1000, self.epoch)

    def claim(self, epoch: int) -> int | None:
        """Claim a reservation made in `epoch`: its number, or None if it was voided."""
        if epoch != self.epoch:
            return None
        self.claimed += 1
        return self.claimed

    def observe(
        self,
        now: float,
        number: int,
        sent: float,
        remaining: int | None,
        reset: float | None,
        quota: int | None = None,
        window: float | None = None,
    ) -> None:
        """Take the server's word from the answer to claim `number`, reserved for `sent`:
        `remaining` requests until the window resets in `reset` seconds, and the policy
        `quota` per `window` if sent."""
        if quota is not None and window is not None:
            self.quota, self.window = quota, _ms(window)
        if remaining is None or reset is None:
            return
        # The server measured `reset` between sending and now, rounded to a second either way.
        low = _ms(sent) + _ms(reset) - ROUNDING_MS
        high = _ms(now) + _ms(reset) + ROUNDING_MS
        later = max(0, self.claimed - number)  # sent after it: maybe not counted yet
        # How many windows the answered one lies before the one we are spending (< 0: after).
        behind = (
            -1
            if self.reset_lo is None
            else (2 * (self.reset_lo - low) + self.window) // (2 * self.window)
        )
        if behind < 0:
            # A window we have not counted in: reservations made under the old picture are
            # void (their waiters reserve again). Requests sent after the answered one count
            # against it, and against the next one: they may arrive after the reset.
            self.reset_lo, self.reset_hi, self.left = low, high, remaining - later
            self.next_at, self.epoch, self.spill = _ms(now), self.epoch + 1, later
            return
        # Windows follow each other, so every answer bounds the reset of ours: keep the
        # tightest bounds, or the newest if they contradict (`t` was off by over a second).
        low, high = low + behind * self.window, high + behind * self.window
        tight_lo, tight_hi = max(low, self.reset_lo), min(high, self.reset_hi)
        self.reset_lo, self.reset_hi = (tight_lo, tight_hi) if tight_lo <= tight_hi else (low, high)
        if behind == 0:  # a lower `r` than ours: someone else spends from this window too
            self.left = min(self.left, remaining - later)

    def pause(self, now: float, seconds: float) -> float:
        """Send nothing for `seconds` (a 429); reservations made before are void. Returns
        the end of the pause."""
        self.paused_until = max(self.paused_until, _ms(now) + _ms(seconds))
        self.epoch += 1
        return self.paused_until / 1000


class BreakerState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half-open"


class Breaker:
    """Backoff and circuit breaker for one bucket (see the module docstring)."""

    def __init__(
        self,
        backoff_base: float,
        backoff_max: float,
        threshold: int,
        open_seconds: float,
        rng: random.Random,
    ) -> None:
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.threshold = threshold
        self.open_seconds = open_seconds
        self.rng = rng
        self.state = BreakerState.CLOSED
        self.failures = 0  # in a row
        self.until = 0.0  # no request before this time (backoff or open circuit)
        self.probe_sent: float | None = None

    def hold(self, now: float) -> float:
        """Seconds a request must wait before it may be sent (0.0: send now)."""
        if self.until > now:
            return self.until - now
        if self.state is BreakerState.OPEN:
            self.state, self.probe_sent = BreakerState.HALF_OPEN, None
        if self.state is BreakerState.HALF_OPEN and self.probe_sent is not None:
            if now - self.probe_sent < self.open_seconds:
                return min(1.0, self.open_seconds)  # wait for the probe's outcome
            self.probe_sent = None  # the probe never reported back: try another one
        return 0.0

    def sent(self, now: float) -> None:
        """A request passed `hold`; in half-open state it is the one probe."""
        if self.state is BreakerState.HALF_OPEN:
            self.probe_sent = now

    def success(self) -> None:
        """A response that is not a server failure; outcomes of requests sent before the
        circuit opened do not close it."""
        if self.state is not BreakerState.OPEN:
            self.state, self.failures, self.until = BreakerState.CLOSED, 0, 0.0

    def failure(self, now: float) -> float:
        """A server failure; returns the pause it starts (0.0 if the circuit is already open)."""
        if self.state is BreakerState.OPEN:
            return 0.0
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN or self.failures >= self.threshold:
            self.state, self.probe_sent = BreakerState.OPEN, None
            pause = self.open_seconds
        else:
            delay = min(self.backoff_max, self.backoff_base * 2 ** (self.failures - 1))
            pause = delay / 2 + self.rng.uniform(0, delay / 2)  # "equal jitter"
        self.until = max(self.until, now + pause)
        return pause

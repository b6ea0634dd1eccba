"""The pacing core with an injected clock: exact schedules, header feedback, the breaker.

`FixedWindowServer` below is the Hub's counting rule in ten lines (a fixed window of `w`
seconds at some phase, `q` requests each, `RateLimit` r/t rounded to whole seconds); the
simulations drive `BucketBudget` against it with random latencies and concurrent requests.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field

import pytest

from hfspider.budget.pacing import Breaker, BreakerState, BucketBudget


def max_in_any_window(seconds: list[float], window: float) -> int:
    """The largest number of `seconds` inside any half-open interval [a, a + window)."""
    times, window = sorted(round(value * 1000) for value in seconds), round(window * 1000)
    best, start = 0, 0
    for end, value in enumerate(times):
        while value - times[start] >= window:
            start += 1
        best = max(best, end - start + 1)
    return best


def test_config_pacing_spends_the_quota_evenly() -> None:
    budget = BucketBudget(quota=500, window=300.0, margin=1.0)
    times, now = [], 0.0
    for _ in range(1000):
        now = budget.reserve(now).at  # a greedy client asks again the moment it may send
        times.append(now)
    assert times[:3] == pytest.approx([0.0, 0.6, 1.2])
    assert max_in_any_window(times, 300.0) == 500
    assert times[-1] == pytest.approx(999 * 0.6)  # no earlier than the quota allows


def test_reservations_queue_up_in_order_and_claims_are_numbered() -> None:
    budget = BucketBudget(quota=10, window=5.0, margin=1.0)
    slots = [budget.reserve(now=2.0) for _ in range(4)]
    assert [slot.at for slot in slots] == pytest.approx([2.0, 2.5, 3.0, 3.5])
    assert [budget.claim(slot.epoch) for slot in slots] == [1, 2, 3, 4]


def send(budget: BucketBudget, now: float) -> int:
    """Reserve at `now` and claim at once (the slot is due): the request's number."""
    number = budget.claim(budget.reserve(now).epoch)
    assert number is not None
    return number


# Below, state is checked in the milliseconds BucketBudget keeps: `reset_lo`/`reset_hi` bound
# the server's reset, `left` counts what the window still allows.


def test_the_first_answer_places_the_window_and_voids_reservations_made_blind() -> None:
    budget = BucketBudget(quota=10, window=5.0, margin=1.0)
    blind = [budget.reserve(0.0) for _ in range(4)]  # at 0.0, 0.5, 1.0, 1.5 from the config
    first, second = budget.claim(blind[0].epoch), budget.claim(blind[1].epoch)
    assert (first, second) == (1, 2)  # sent at 0.0 and 0.5
    budget.observe(now=0.6, number=1, sent=0.0, remaining=9, reset=5)
    # t=5 was measured between 0.0 and 0.6 and rounded: the reset lies in [4.0, 6.6].
    assert (budget.reset_lo, budget.reset_hi) == (4000, 6600)
    assert budget.left == 8  # 9, minus request 2 that the server may not have counted yet
    assert budget.claim(blind[2].epoch) is None and budget.claim(blind[3].epoch) is None
    # The 8 are spread from now to a margin before the earliest reset ...
    slots = [budget.reserve(0.6).at for _ in range(9)]
    assert slots[:8] == pytest.approx([0.6 + 0.3 * i for i in range(8)])
    assert slots[8] == pytest.approx(6.6)  # ... and the next window starts at the latest one,
    # charged with request 2 too (it may have arrived after the reset) and with the 9th.
    assert (budget.reset_lo, budget.reset_hi, budget.left, budget.spill) == (9000, 11600, 8, 0)


def test_someone_else_spending_shrinks_what_is_left() -> None:
    budget = BucketBudget(quota=10, window=60.0, margin=1.0)
    budget.observe(now=0.0, number=send(budget, 0.0), sent=0.0, remaining=9, reset=60)
    budget.observe(now=1.0, number=send(budget, 0.0), sent=0.0, remaining=3, reset=59)
    assert budget.left == 3  # 6 were spent elsewhere
    third, fourth = send(budget, 1.0), send(budget, 1.0)
    budget.observe(now=2.0, number=third, sent=1.0, remaining=0, reset=58)
    assert budget.left == -1  # the fourth, in flight, will not fit: the window is over
    budget.observe(now=2.0, number=fourth, sent=1.0, remaining=7, reset=58)
    assert budget.left == -1  # never grows back within a window


def test_each_answer_narrows_the_reset() -> None:
    budget = BucketBudget(quota=100, window=60.0, margin=1.0)
    for now, t in [(0.0, 60), (10.4, 50), (20.7, 39)]:
        budget.observe(now=now + 0.1, number=send(budget, now), sent=now, remaining=90, reset=t)
    # [59.0, 61.1] from the first, [59.4, 61.5] from the second, [58.7, 60.8] from the third.
    assert (budget.reset_lo, budget.reset_hi) == (59400, 60800)


def test_an_answer_from_an_earlier_window_still_bounds_the_reset() -> None:
    budget = BucketBudget(quota=10, window=10.0, margin=1.0)
    budget.observe(now=0.0, number=send(budget, 0.0), sent=0.0, remaining=0, reset=2)
    slot = budget.reserve(0.0)
    assert slot.at == pytest.approx(3.0)  # the latest the reset can be
    assert (budget.reset_lo, budget.reset_hi, budget.left) == (11000, 13000, 9)
    # Late, from the window before: [-1.0, 4.1] shifted by a window; no news about `left`.
    budget.observe(now=3.1, number=1, sent=0.0, remaining=0, reset=0)
    assert (budget.reset_lo, budget.reset_hi, budget.left) == (11000, 13000, 9)
    budget.observe(now=3.1, number=1, sent=3.0, remaining=9, reset=7)  # t=7 pins it down
    assert (budget.reset_lo, budget.reset_hi, budget.left) == (11000, 11100, 9)


def test_a_later_server_window_is_adopted() -> None:
    budget = BucketBudget(quota=10, window=10.0, margin=1.0)
    budget.observe(now=0.0, number=send(budget, 0.0), sent=0.0, remaining=9, reset=10)
    number = send(budget, 5.9)
    pending = budget.reserve(5.9)
    budget.observe(now=6.0, number=number, sent=5.9, remaining=9, reset=10)  # started at ~5.9
    assert (budget.reset_lo, budget.reset_hi, budget.left) == (14900, 17000, 9)
    assert budget.claim(pending.epoch) is None


def test_the_policy_header_replaces_the_configured_quota() -> None:
    budget = BucketBudget(quota=500, window=300.0, margin=1.0)
    number = send(budget, 0.0)
    budget.observe(0.0, number, 0.0, remaining=None, reset=None, quota=100, window=10)
    assert (budget.quota, budget.window, budget.reset_lo) == (100, 10000, None)
    assert budget.reserve(0.0).at == pytest.approx(0.6)
    assert budget.reserve(0.0).at == pytest.approx(0.7)  # now 10 s / 100


def test_after_idling_the_next_window_is_found_by_period() -> None:
    budget = BucketBudget(quota=10, window=10.0, margin=1.0)
    budget.observe(now=0.0, number=send(budget, 0.0), sent=0.0, remaining=9, reset=10)
    slot = budget.reserve(35.0)  # resets at ~9, ~19, ~29, ~39: inside the fourth window
    assert slot.at == pytest.approx(35.0)
    assert (budget.reset_lo, budget.left) == (39000, 9)


def test_a_pause_voids_earlier_reservations_and_holds_the_bucket() -> None:
    budget = BucketBudget(quota=100, window=10.0, margin=0.5)
    before = budget.reserve(0.0)
    assert budget.pause(now=1.0, seconds=7.0) == pytest.approx(8.0)
    assert budget.claim(before.epoch) is None
    after = budget.reserve(2.0)
    assert after.at == pytest.approx(8.0) and budget.claim(after.epoch) == 1
    assert budget.pause(now=2.0, seconds=1.0) == pytest.approx(8.0)  # never shortened


@pytest.mark.parametrize("args", [(0, 10.0, 1.0), (10, 0.0, 1.0), (10, 10.0, -1.0)])
def test_a_budget_needs_a_quota_a_window_and_a_margin(args: tuple[int, float, float]) -> None:
    with pytest.raises(ValueError, match="bad budget"):
        BucketBudget(*args)


@dataclass
class FixedWindowServer:
    """The Hub's counting: q requests per window of w seconds. Windows follow the clock
    ([phase + k*w, phase + (k+1)*w)) or, if `phase` is None, start with the first request
    after the previous one ended."""

    quota: int
    window: float
    phase: float | None
    rounding: str  # how t is made whole: "floor" or "ceil"
    counts: dict[float, int] = field(default_factory=dict)  # window start -> requests
    rejected: int = 0

    def answer(self, arrival: float) -> tuple[int, int, int]:
        """(status, r, t) for a request arriving at `arrival`."""
        if self.phase is not None:
            start = self.phase + math.floor((arrival - self.phase) / self.window) * self.window
        elif not self.counts or arrival >= max(self.counts) + self.window:
            start = arrival
        else:
            start = max(self.counts)
        reset = start + self.window - arrival
        seconds = math.floor(reset) if self.rounding == "floor" else math.ceil(reset)
        if self.counts.get(start, 0) >= self.quota:
            self.rejected += 1
            return 429, 0, seconds
        self.counts[start] = self.counts.get(start, 0) + 1
        return 200, self.quota - self.counts[start], seconds


class SharedServer(FixedWindowServer):
    """A server where another client spends one request after every two of ours."""

    def answer(self, arrival: float) -> tuple[int, int, int]:
        status, remaining, reset = super().answer(arrival)
        if status == 200 and remaining % 2 == 0 and remaining > 0:
            start = max(start for start in self.counts if start <= arrival)
            self.counts[start] += 1
            remaining -= 1
        return status, remaining, reset


def crawl(
    budget: BucketBudget,
    server: FixedWindowServer,
    requests: int,
    concurrency: int,
    rng: random.Random,
    margin: float,
) -> float:
    """Send `requests` through `budget` with `concurrency` in flight; returns the time the last
    answer arrived. Each request: reserve, wait, re-check the epoch, travel, get answered."""
    events: list[tuple[float, int, str, tuple[float, ...]]] = []
    order = 0

    def push(time: float, kind: str, *data: float) -> None:
        nonlocal order
        order += 1
        heapq.heappush(events, (time, order, kind, data))

    todo, done, finished = requests, 0, 0.0
    for _ in range(concurrency):
        push(0.0, "ready")
    while events:
        now, _, kind, data = heapq.heappop(events)
        if kind == "ready":
            if todo == 0:
                continue
            todo -= 1
            slot = budget.reserve(now)
            push(slot.at, "wake", slot.epoch)
        elif kind == "wake":
            number = budget.claim(int(data[0]))
            if number is None:  # voided meanwhile: reserve again
                slot = budget.reserve(now)
                push(slot.at, "wake", slot.epoch)
                continue
            arrival = now + rng.uniform(0.002, 0.15)
            status, remaining, reset = server.answer(arrival)
            push(
                arrival + rng.uniform(0.002, 0.15), "answer", number, status, remaining, reset, now
            )
        else:
            number, status, remaining, reset, sent = data
            budget.observe(now, int(number), sent, remaining, reset, server.quota, server.window)
            if status == 429:
                budget.pause(now, reset + margin)
                todo += 1
            else:
                done += 1
                finished = now
            push(now, "ready")
    assert done == requests
    return finished


@pytest.mark.parametrize("concurrency", [8, 16])
@pytest.mark.parametrize("seed", range(20))
def test_header_paced_crawl_never_sees_a_429_and_keeps_up_with_the_quota(
    seed: int, concurrency: int
) -> None:
    rng = random.Random(seed)
    quota, window, margin = 50, 5.0, 1.0
    rounding = ("floor", "ceil")[seed % 2]
    server = FixedWindowServer(quota, window, rng.uniform(0, window), rounding)
    budget = BucketBudget(quota, window, margin)
    requests = 5 * quota
    finished = crawl(budget, server, requests, concurrency, rng, margin)
    assert server.rejected == 0
    assert max(server.counts.values()) == quota
    # N requests at q per w need N*w/q seconds at the sustained rate the quota allows.
    assert finished <= 1.10 * requests * window / quota


@pytest.mark.parametrize("seed", range(10))
def test_windows_that_start_at_the_first_request_cost_at_most_a_429_per_window(seed: int) -> None:
    """The budget assumes windows follow each other on the clock (the Hub's "fixed window",
    and the emulator's). A server that starts a window at the first request after the last
    one ended moves each reset a little later; answers show it, a 429 or so per window slips
    through and pauses the bucket, and the crawl completes."""
    rng = random.Random(seed)
    server = FixedWindowServer(50, 5.0, None, ("floor", "ceil")[seed % 2])
    crawl(BucketBudget(50, 5.0, 1.0), server, 250, 16, rng, margin=1.0)
    assert server.rejected <= len(server.counts) and max(server.counts.values()) == 50


def test_a_too_generous_configured_quota_is_corrected_by_the_first_answer() -> None:
    rng = random.Random(7)
    server = FixedWindowServer(50, 5.0, phase=0.0, rounding="floor")
    budget = BucketBudget(500, 5.0, 1.0)  # configured 500 per 5 s, the server allows 50
    finished = crawl(budget, server, 250, 8, rng, margin=1.0)
    assert server.rejected == 0
    assert finished <= 1.10 * 250 * 5.0 / 50


def test_a_window_mostly_spent_by_someone_else_is_not_overrun() -> None:
    rng = random.Random(3)
    server = FixedWindowServer(50, 5.0, phase=0.0, rounding="floor")
    server.counts[0.0] = 45  # another client spent 45 of the first window before we start
    crawl(BucketBudget(50, 5.0, 1.0), server, 120, 8, rng, margin=1.0)
    assert server.rejected == 0 and max(server.counts.values()) == 50


@pytest.mark.parametrize("seed", range(10))
def test_a_client_spending_alongside_costs_few_429s_and_the_crawl_completes(seed: int) -> None:
    """Someone else spends one request for every two of ours: our count lags behind theirs,
    so a window can be overrun by the requests in flight; each 429 pauses until the reset."""
    rng = random.Random(seed)
    server = SharedServer(50, 5.0, rng.uniform(0, 5.0), "floor")
    crawl(BucketBudget(50, 5.0, 1.0), server, 200, 8, rng, margin=1.0)
    windows = len(server.counts)
    assert server.rejected <= 8 * windows
    assert max(server.counts.values()) == 50


def make_breaker(threshold: int = 3) -> Breaker:
    return Breaker(1.0, 8.0, threshold, open_seconds=30.0, rng=random.Random(0))


def test_backoff_doubles_with_jitter_and_a_success_resets_it() -> None:
    breaker = make_breaker(threshold=10)
    pauses = [breaker.failure(now=0.0) for _ in range(6)]
    for pause, full in zip(pauses, [1, 2, 4, 8, 8, 8], strict=True):
        assert full / 2 <= pause <= full
    assert breaker.hold(0.0) == pytest.approx(max(pauses))
    breaker.success()
    assert breaker.hold(0.0) == 0.0 and breaker.failures == 0


def test_sustained_failure_opens_the_circuit_then_one_probe_closes_it() -> None:
    breaker = make_breaker()
    breaker.failure(0.0)
    breaker.failure(0.0)
    assert breaker.failure(now=0.0) == 30.0
    assert breaker.state is BreakerState.OPEN
    assert breaker.hold(10.0) == pytest.approx(20.0)
    assert breaker.failure(12.0) == 0.0  # late failures of requests sent before opening
    assert breaker.hold(30.0) == 0.0 and breaker.state is BreakerState.HALF_OPEN
    breaker.sent(30.0)  # the probe
    assert breaker.hold(30.5) == 1.0  # everyone else waits for its outcome
    breaker.success()
    assert breaker.state is BreakerState.CLOSED and breaker.hold(31.0) == 0.0


def test_a_failed_probe_reopens_and_a_lost_probe_is_replaced() -> None:
    breaker = make_breaker(threshold=1)
    breaker.failure(0.0)
    assert breaker.hold(30.0) == 0.0
    breaker.sent(30.0)
    assert breaker.failure(31.0) == 30.0 and breaker.state is BreakerState.OPEN
    assert breaker.hold(61.0) == 0.0
    breaker.sent(61.0)
    assert breaker.hold(90.0) == 1.0
    assert breaker.hold(91.0) == 0.0  # no outcome within open_seconds: another probe may go

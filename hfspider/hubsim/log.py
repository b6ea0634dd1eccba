"""The request log and counters behind `GET /_hubsim/log` and `GET /_hubsim/stats`.

Each request the emulator answers (admin requests excepted) becomes one `LogEntry`, numbered
from 1. `bytes` is the body bytes sent: all of a body written to its end; of one cut short
(the client disconnected or was killed, a fault), what the client's TCP stack acknowledged
(responses.py, `AckCounter`), not what was still in the emulator's send buffer. `window` and
`counted` say which rate-limit window the request fell in and whether it consumed quota,
which is what lets a test prove a quota was never exceeded.
Identities are user names or `anon:<ip>`, never tokens. The log keeps the newest entries up
to a bound (`--log-max`); `GET /_hubsim/log?since=N` returns entries after number N.
"""

from __future__ import annotations

from collections import deque
from dataclasses import asdict, dataclass
from itertools import islice
from typing import Any


@dataclass(slots=True)
class LogEntry:
    seq: int
    time: float  # unix time the request arrived
    duration: float  # seconds until the answer was fully written (or failed)
    method: str
    path: str  # raw (percent-encoded) path
    query: str
    origin: str  # api | cdn
    bucket: str | None  # api | resolvers | pages; None on the CDN
    status: int
    bytes: int  # body bytes sent (cut short: those the client's TCP stack acknowledged)
    auth: bool  # whether an Authorization header came with the request
    identity: str | None  # the token's user, anon:<ip>, or None on the CDN
    range: str | None  # the Range header, verbatim
    window: int | None  # rate-limit window index
    counted: bool  # whether the request consumed quota in that window
    fault: str | None  # the injected fault, if any


class RequestLog:
    """The newest `maxlen` entries, numbered, with counters over all entries."""

    def __init__(self, maxlen: int) -> None:
        self.entries: deque[LogEntry] = deque(maxlen=maxlen)
        self.next_seq = 1
        self.stats = Stats()

    def add(self, entry: LogEntry) -> None:
        entry.seq = self.next_seq
        self.next_seq += 1
        self.entries.append(entry)
        self.stats.record(entry)

    def since(self, seq: int, limit: int) -> dict[str, Any]:
        """Entries numbered above `seq` (at most `limit`), and how many were dropped."""
        first = self.entries[0].seq if self.entries else self.next_seq
        start = max(0, seq + 1 - first)
        picked = [asdict(e) for e in islice(self.entries, start, start + limit)]
        return {
            "entries": picked,
            "next": picked[-1]["seq"] if picked else max(seq, first - 1),
            "dropped": max(0, first - seq - 1),
        }


class Stats:
    """Counters per bucket, status, origin and fault."""

    def __init__(self) -> None:
        self.requests = 0
        self.bytes = 0
        self.by_bucket: dict[str, dict[str, int]] = {}
        self.by_status: dict[str, int] = {}
        self.by_origin: dict[str, int] = {}
        self.faults: dict[str, int] = {}

    def record(self, entry: LogEntry) -> None:
        self.requests += 1
        self.bytes += entry.bytes
        bucket = self.by_bucket.setdefault(
            entry.bucket or "cdn", {"requests": 0, "bytes": 0, "rate_limited": 0}
        )
        bucket["requests"] += 1
        bucket["bytes"] += entry.bytes
        if entry.status == 429:
            bucket["rate_limited"] += 1
        status = str(entry.status)
        self.by_status[status] = self.by_status.get(status, 0) + 1
        self.by_origin[entry.origin] = self.by_origin.get(entry.origin, 0) + 1
        if entry.fault:
            self.faults[entry.fault] = self.faults.get(entry.fault, 0) + 1

    def to_json(self) -> dict[str, Any]:
        return {
            "requests": self.requests,
            "bytes": self.bytes,
            "rate_limited": self.by_status.get("429", 0),
            "by_bucket": self.by_bucket,
            "by_status": self.by_status,
            "by_origin": self.by_origin,
            "faults": self.faults,
        }

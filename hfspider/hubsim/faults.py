"""Fault injection, each fault switched on with a rate and reproducible from the seed.

`--fault NAME=RATE[@SCOPE][:LIMIT]`, e.g. `--fault 503=0.05`, `--fault reset=1@cdn:1` (reset
the first CDN body, once). SCOPE limits a fault to one origin or bucket (api, resolvers,
pages, cdn); LIMIT caps how often the rule fires in total. A fault may have one rule per
scope; the first rule that covers a request's scope decides.

Whether a fault fires for a request depends only on the seed, the fault, the request line
(method, path and query) and how many times that request line was seen before: the k-th
identical request gets the same decision in every run, whatever other requests interleave.
A client's retry of the same URL is the next occurrence, so it draws again.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

FAULTS = {
    "500": "answer 500 Internal Server Error instead of the real answer",
    "502": "answer 502 Bad Gateway",
    "503": "answer 503 Service Unavailable",
    "504": "answer 504 Gateway Timeout",
    "cloudfront-429": "answer 429 without RateLimit headers, as CloudFront does",
    "slow": "wait --slow-seconds before answering (slow first byte)",
    "reset": "reset the connection (TCP RST) after part of the body",
    "truncate": "close the connection cleanly after part of the body",
    "corrupt": "flip one byte of a file body (the length stays right)",
    "ignore-range": "answer a file request's Range with 200 and the whole file",
    "malformed-json": "cut a JSON body short, with a Content-Length that matches the cut",
    "flap": "update a model right after a listing page showed it (new sha)",
}
STATUS_FAULTS = ("500", "502", "503", "504", "cloudfront-429")
FILE_BODY_FAULTS = ("reset", "truncate", "corrupt")
JSON_BODY_FAULTS = ("reset", "truncate", "malformed-json")
SCOPES = ("api", "resolvers", "pages", "cdn")


@dataclass(frozen=True, slots=True)
class FaultRule:
    name: str
    rate: float
    scope: str | None
    limit: int | None


def parse_fault(spec: str) -> FaultRule:
    """`NAME=RATE[@SCOPE][:LIMIT]` -> FaultRule."""
    name, sep, rest = spec.partition("=")
    if not sep or name not in FAULTS:
        raise ValueError(f"fault {spec!r}: name must be one of {', '.join(FAULTS)}")
    rest, _, limit = rest.partition(":")
    rate, _, scope = rest.partition("@")
    try:
        rule = FaultRule(name, float(rate), scope or None, int(limit) if limit else None)
    except ValueError:
        raise ValueError(f"fault {spec!r} is not NAME=RATE[@SCOPE][:LIMIT]") from None
    if not 0 <= rule.rate <= 1 or (rule.scope and rule.scope not in SCOPES):
        raise ValueError(f"fault {spec!r}: rate in [0, 1], scope one of {', '.join(SCOPES)}")
    return rule


class Faults:
    """Seeded decisions for the configured fault rules."""

    def __init__(self, rules: list[FaultRule], seed: int) -> None:
        self.rules = rules
        self.seed = seed
        self.fired: dict[FaultRule, int] = {}
        self._seen: dict[tuple[str, str], int] = {}

    def __bool__(self) -> bool:
        return bool(self.rules)

    def fires(self, name: str, key: str, scope: str) -> bool:
        """Whether fault `name` hits this occurrence of request line `key` in `scope` (the
        first rule for that fault and scope decides; each rule has its own limit)."""
        rule = next((r for r in self.rules if r.name == name and r.scope in (None, scope)), None)
        if rule is None:
            return False
        occurrence = self._seen.get((name, key), 0)
        self._seen[(name, key)] = occurrence + 1
        if rule.limit is not None and self.fired.get(rule, 0) >= rule.limit:
            return False
        if self.draw(name, key, occurrence) >= rule.rate:
            return False
        self.fired[rule] = self.fired.get(rule, 0) + 1
        return True

    def draw(self, name: str, key: str, occurrence: int) -> float:
        """A uniform number in [0, 1) fixed by (seed, fault, request line, occurrence)."""
        text = f"{self.seed}\x1f{name}\x1f{key}\x1f{occurrence}".encode()
        return int.from_bytes(hashlib.blake2b(text, digest_size=8).digest(), "big") / 2**64

    def status_fault(self, key: str, scope: str) -> str | None:
        """The first status fault that fires, if any (they replace the real answer)."""
        for name in STATUS_FAULTS:
            if self.fires(name, key, scope):
                return name
        return None

    def body_fault(self, key: str, scope: str, kinds: tuple[str, ...]) -> str | None:
        """The first body fault among `kinds` that fires, if any."""
        for name in kinds:
            if self.fires(name, key, scope):
                return name
        return None

    def cut(self, name: str, key: str, size: int) -> int:
        """Where a body fault strikes: a byte offset between a quarter and three quarters."""
        fraction = 0.25 + self.draw(name + ":at", key, 0) / 2
        return min(size - 1, int(size * fraction)) if size > 0 else 0

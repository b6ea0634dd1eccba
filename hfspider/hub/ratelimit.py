"""The Hub's rate limits: which bucket a URL spends, and what the rate-limit headers say.

The Hub counts requests per fixed window in three buckets (`api`, `resolvers`, `pages`) and
reports on every response (IETF draft-ietf-httpapi-ratelimit-headers-09):

    RateLimit: "api";r=497;t=168                        remaining r, seconds t to the reset
    RateLimit-Policy: "fixed window";"api";q=500;w=300  quota q per window of w seconds

A 429 may add `Retry-After` (delta-seconds or an HTTP-date); CloudFront 429s carry neither
header. Parsers here never raise: a header that is absent gives `Parsed(None, None)`, a
malformed one `Parsed(None, reason)`, so one odd response can never break a crawl.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import UTC
from email.utils import parsedate_to_datetime
from typing import Generic, NamedTuple, TypeVar
from urllib.parse import urlsplit

from hfspider.hub.auth import origin

BUCKETS = ("api", "resolvers", "pages")
RATELIMIT_HEADER = "ratelimit"
POLICY_HEADER = "ratelimit-policy"
RETRY_AFTER_HEADER = "retry-after"
# The longest header value worth parsing; the Hub's are ~50 characters.
MAX_HEADER_LENGTH = 1024

# `/{id}/resolve/...` with optional `datasets/` or `spaces/` prefix and a one- or two-part id.
_RESOLVE_PATH_RE = re.compile(r"^/(?:(?:datasets|spaces)/)?(?:[^/]+/)?[^/]+/resolve/")
_RESOLVE_CACHE_PREFIX = "/api/resolve-cache/"
_TOKEN_RE = re.compile(r"[A-Za-z][A-Za-z0-9_.*-]*")
_DIGITS_RE = re.compile(r"[0-9]{1,15}")

T = TypeVar("T")
Item = TypeVar("Item", "RateLimit", "RateLimitPolicy")


def classify(url: str, endpoint: str) -> str | None:
    """The bucket a request to `url` spends, or None if `url` is not on the Hub's origin
    (the CDN that LFS files redirect to is not rate-limited by the Hub's buckets)."""
    target = origin(url)
    if target is None or target != origin(endpoint):
        return None
    path = urlsplit(url).path or "/"
    if path.startswith(_RESOLVE_CACHE_PREFIX):
        return "resolvers"
    if path.startswith("/api/"):
        return "api"
    if _RESOLVE_PATH_RE.match(path):
        return "resolvers"
    return "pages"


class Parsed(NamedTuple, Generic[T]):
    """A parser's answer: the value, or None and why (`reason` is None if the header was
    simply absent)."""

    value: T | None
    reason: str | None = None


@dataclass(frozen=True)
class RateLimit:
    """One `RateLimit` item: `remaining` requests left, window resets in `reset` seconds."""

    bucket: str
    remaining: int
    reset: int


@dataclass(frozen=True)
class RateLimitPolicy:
    """One `RateLimit-Policy` item: `quota` requests per `window` seconds."""

    bucket: str
    quota: int
    window: int
    kind: str | None = None


def _split(value: str, separator: str) -> list[str] | None:
    """Split on `separator` outside double quotes; None if a quote is left open."""
    parts, current, quoted, escaped = [], [], False, False
    for char in value:
        if escaped:
            escaped = False
        elif quoted and char == "\\":
            escaped = True
        elif char == '"':
            quoted = not quoted
        elif char == separator and not quoted:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    if quoted:
        return None
    parts.append("".join(current).strip())
    return parts


def _items(header: str | None) -> Parsed[list[tuple[list[str], dict[str, int]]]]:
    """Structured-field-like list items: (quoted strings, integer parameters) per item."""
    if header is None:
        return Parsed(None)
    if len(header) > MAX_HEADER_LENGTH:
        return Parsed(None, f"longer than {MAX_HEADER_LENGTH} characters")
    items = _split(header, ",")
    if items is None:
        return Parsed(None, "unbalanced quotes")
    parsed = []
    for item in items:
        members = _split(item, ";")
        assert members is not None  # quotes are balanced within each item of a balanced list
        names: list[str] = []
        params: dict[str, int] = {}
        for member in members:
            if len(member) >= 2 and member[0] == member[-1] == '"':
                names.append(member[1:-1].replace('\\"', '"').replace("\\\\", "\\"))
                continue
            key, equals, number = (part.strip() for part in member.partition("="))
            if not equals or not _TOKEN_RE.fullmatch(key):
                return Parsed(None, f"unexpected member {member[:40]!r}")
            if not _DIGITS_RE.fullmatch(number):
                return Parsed(None, f"{key}={number[:20]!r} is not a non-negative integer")
            if key.lower() in params:
                return Parsed(None, f"{key} given twice")
            params[key.lower()] = int(number)
        parsed.append((names, params))
    return Parsed(parsed)


def parse_ratelimit(header: str | None) -> Parsed[list[RateLimit]]:
    """Parse `RateLimit` into its items (the Hub sends one, the draft allows a list)."""
    items = _items(header)
    if items.value is None:
        return Parsed(None, items.reason)
    limits = []
    for names, params in items.value:
        if len(names) != 1:
            return Parsed(None, f"expected one quoted bucket name per item, got {len(names)}")
        if "r" not in params or "t" not in params:
            return Parsed(None, f"bucket {names[0]!r} lacks r= or t=")
        limits.append(RateLimit(names[0], params["r"], params["t"]))
    return Parsed(limits)


def parse_policy(header: str | None) -> Parsed[list[RateLimitPolicy]]:
    """Parse `RateLimit-Policy`; `"fixed window";"api"` names the kind, then the bucket."""
    items = _items(header)
    if items.value is None:
        return Parsed(None, items.reason)
    policies = []
    for names, params in items.value:
        if len(names) not in (1, 2):
            return Parsed(None, f"expected a bucket name (after a kind), got {len(names)} names")
        if params.get("q", 0) < 1 or params.get("w", 0) < 1:
            return Parsed(None, f"bucket {names[-1]!r} lacks a positive q= or w=")
        kind = names[0] if len(names) == 2 else None
        policies.append(RateLimitPolicy(names[-1], params["q"], params["w"], kind))
    return Parsed(policies)


def parse_retry_after(header: str | None, now: float) -> Parsed[float]:
    """Seconds to wait from `Retry-After` (delta-seconds or HTTP-date); `now` is Unix time.
    A date in the past means no wait (0.0)."""
    if header is None:
        return Parsed(None)
    value = header.strip()
    if _DIGITS_RE.fullmatch(value):
        return Parsed(float(value))
    if len(value) > MAX_HEADER_LENGTH:
        return Parsed(None, f"longer than {MAX_HEADER_LENGTH} characters")
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return Parsed(None, f"neither delta-seconds nor an HTTP-date: {value[:40]!r}")
    if when.tzinfo is None:  # HTTP-dates are always GMT; asctime() dates carry no zone
        when = when.replace(tzinfo=UTC)
    return Parsed(max(0.0, when.timestamp() - now))


@dataclass(frozen=True)
class Feedback:
    """What one response says about its bucket; `problems` lists headers that were ignored."""

    remaining: int | None = None
    reset: int | None = None
    quota: int | None = None
    window: int | None = None
    retry_after: float | None = None
    problems: tuple[str, ...] = field(default=())


def _pick(parsed: Parsed[list[Item]], bucket: str, header: str, problems: list[str]) -> Item | None:
    if parsed.reason:
        problems.append(f"{header}: {parsed.reason}")
    for item in parsed.value or ():
        if item.bucket == bucket:
            return item
    if parsed.value:
        names = ", ".join(item.bucket for item in parsed.value)
        problems.append(f"{header} names {names}, not {bucket}")
    return None


def read_feedback(bucket: str, headers: dict[str, str], now: float) -> Feedback:
    """The feedback for `bucket` from a response's headers (keys lower-case); `now` is Unix
    time, used for an HTTP-date `Retry-After`."""
    problems: list[str] = []
    limit = _pick(parse_ratelimit(headers.get(RATELIMIT_HEADER)), bucket, "RateLimit", problems)
    policy = _pick(parse_policy(headers.get(POLICY_HEADER)), bucket, "RateLimit-Policy", problems)
    retry_after = parse_retry_after(headers.get(RETRY_AFTER_HEADER), now)
    if retry_after.reason:
        problems.append(f"Retry-After: {retry_after.reason}")
    return Feedback(
        remaining=limit.remaining if limit else None,
        reset=limit.reset if limit else None,
        quota=policy.quota if policy else None,
        window=policy.window if policy else None,
        retry_after=retry_after.value,
        problems=tuple(problems),
    )

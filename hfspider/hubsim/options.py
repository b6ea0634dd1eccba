"""The settings of one emulator run: what `hfspider hubsim`'s flags set."""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

from hfspider.hubsim.corpus import HUGE_FILE_SIZE
from hfspider.hubsim.faults import FaultRule
from hfspider.hubsim.ratelimit import DEFAULT_WINDOW, TIER_QUOTAS

DEFAULT_PAGE_SIZE = 1000  # the Hub's page size when `limit` is absent is undocumented
DEFAULT_LOG_MAX = 1_000_000


@dataclass(frozen=True, slots=True)
class Token:
    """A token the emulator accepts: whose it is and which rate-limit tier it has."""

    user: str
    tier: str


def parse_token(spec: str) -> tuple[str, Token]:
    """`TOKEN[:TIER[:USER]]` -> (token, Token); the user defaults to one derived from it."""
    token, _, rest = spec.partition(":")
    tier, _, user = rest.partition(":")
    tier = tier or "free"
    if not token.startswith("hf_") or tier not in TIER_QUOTAS or tier == "anonymous":
        raise ValueError(f"token {spec!r} is not hf_...[:TIER[:USER]] with a known tier")
    return token, Token(user or "user-" + hashlib.sha256(token.encode()).hexdigest()[:8], tier)


@dataclass
class Settings:
    port: int = 0
    cdn_port: int = 0
    bind: str = "127.0.0.1"
    models: int = 1000
    seed: int = 0
    samples: str | None = "latest"
    window: int = DEFAULT_WINDOW
    quotas: dict[str, dict[str, int]] = field(default_factory=lambda: copy.deepcopy(TIER_QUOTAS))
    tokens: dict[str, Token] = field(default_factory=dict)
    gated_access: frozenset[str] = frozenset()
    faults: list[FaultRule] = field(default_factory=list)
    slow_seconds: float = 3.0
    mutate_every: float = 0.0
    mutate_batch: int = 1
    huge_files: int = 1
    huge_size: int = HUGE_FILE_SIZE
    default_limit: int = DEFAULT_PAGE_SIZE
    cache_dir: Path | None = None
    log_max: int = DEFAULT_LOG_MAX
    cdn_rate: float = 0.0  # bytes per second per CDN download; 0: unlimited

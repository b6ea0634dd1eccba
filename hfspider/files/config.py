"""The `[files]` settings (pipelines_config/files.toml), read once into a checked dataclass.

Sizes are bytes, given as an integer or a string with a unit ("64MiB", "1.5GB"); 0 means
no limit. Glob lists come from TOML arrays or, with `-s`, as comma-separated strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

SIZE_UNITS = {
    "": 1,
    "B": 1,
    "KB": 10**3,
    "MB": 10**6,
    "GB": 10**9,
    "TB": 10**12,
    "KIB": 1 << 10,
    "MIB": 1 << 20,
    "GIB": 1 << 30,
    "TIB": 1 << 40,
}
_SIZE_RE = re.compile(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([A-Za-z]*)\s*")


def parse_size(value: Any, name: str) -> int:
    """Bytes from an int or a string like "64MiB"; ValueError naming the setting otherwise."""
    if isinstance(value, bool):
        raise ValueError(f"{name} must be a size in bytes, not {value!r}")
    if isinstance(value, int):
        number: float = value
    else:
        match = _SIZE_RE.fullmatch(str(value))
        unit = match.group(2).upper() if match else None
        if match is None or unit not in SIZE_UNITS:
            raise ValueError(f"{name} must be a size like 1048576 or '64MiB', not {value!r}")
        number = float(match.group(1)) * SIZE_UNITS[unit]
    if number < 0:
        raise ValueError(f"{name} must not be negative, not {value!r}")
    return int(number)


def parse_globs(value: Any, name: str) -> tuple[str, ...]:
    """A list of glob patterns from a TOML array or a comma-separated `-s` string."""
    if isinstance(value, str):
        items = value.split(",")
    elif isinstance(value, list | tuple):
        items = list(value)
    else:
        raise ValueError(f"{name} must be a list of glob patterns, not {value!r}")
    if not all(isinstance(item, str) for item in items):
        raise ValueError(f"{name} must hold strings only, not {value!r}")
    return tuple(item.strip() for item in items if item.strip())


@dataclass(frozen=True)
class FilesConfig:
    """Which files to fetch and how much room they may take (0 = no limit)."""

    allow: tuple[str, ...]
    deny: tuple[str, ...]
    max_file_size: int
    max_model_size: int
    cache_max_size: int
    concurrency: int
    receive_buffer: int

    @classmethod
    def from_settings(cls, settings: Any) -> FilesConfig:
        """From Scrapy settings or a plain dict (`hfspider.config.load_settings()`)."""

        def get(name: str) -> Any:
            value = settings.get(f"FILES_{name}")
            if value is None:
                raise KeyError(f"setting FILES_{name} is missing (see files.toml)")
            return value

        concurrency = int(get("CONCURRENCY"))
        if concurrency < 1:
            raise ValueError(f"FILES_CONCURRENCY must be at least 1, not {concurrency}")
        return cls(
            allow=parse_globs(get("ALLOW"), "FILES_ALLOW"),
            deny=parse_globs(get("DENY"), "FILES_DENY"),
            max_file_size=parse_size(get("MAX_FILE_SIZE"), "FILES_MAX_FILE_SIZE"),
            max_model_size=parse_size(get("MAX_MODEL_SIZE"), "FILES_MAX_MODEL_SIZE"),
            cache_max_size=parse_size(get("CACHE_MAX_SIZE"), "FILES_CACHE_MAX_SIZE"),
            concurrency=concurrency,
            receive_buffer=parse_size(get("RECEIVE_BUFFER"), "FILES_RECEIVE_BUFFER"),
        )

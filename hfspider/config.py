"""Settings from TOML files: `pipelines_config/*.toml` is the one source of setting defaults.

Every table `[section]` with key `name` becomes the Scrapy setting `SECTION_NAME`; the table
`[scrapy]` holds plain Scrapy settings under their own names. The same key in two files is an
error, so no file silently overrides another. Precedence stays Scrapy's: these values have
"project" priority, `-s NAME=value` on the command line wins over them.
"""

from __future__ import annotations

import os
import tomllib
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

CONFIG_DIR_ENV = "HFSPIDER_CONFIG_DIR"
PASS_THROUGH_TABLE = "scrapy"
CHECKOUT_CONFIG_DIR = Path(__file__).resolve().parent.parent / "pipelines_config"


def config_dir() -> Traversable:
    """Where the TOML files are: $HFSPIDER_CONFIG_DIR, the checkout, or the packaged copy."""
    if os.environ.get(CONFIG_DIR_ENV):
        return Path(os.environ[CONFIG_DIR_ENV])
    if CHECKOUT_CONFIG_DIR.is_dir():
        return CHECKOUT_CONFIG_DIR
    return resources.files("hfspider") / "default_config"


def flatten(tables: dict[str, Any], source: str) -> dict[str, Any]:
    """Turn `{section: {key: value}}` into `{SECTION_KEY: value}` (see the module docstring)."""
    settings: dict[str, Any] = {}
    for section, table in tables.items():
        if not isinstance(table, dict):
            raise ValueError(f"{source}: top-level key {section!r} must be a [table]")
        for key, value in table.items():
            name = key if section == PASS_THROUGH_TABLE else f"{section}_{key}".upper()
            settings[name] = value
    return settings


def load_settings(directory: Traversable | None = None) -> dict[str, Any]:
    """Read every `*.toml` in `directory` (sorted by name) into one flat settings dict."""
    directory = directory or config_dir()
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    for entry in sorted(directory.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".toml"):
            continue
        for name, value in flatten(tomllib.loads(entry.read_text("utf-8")), entry.name).items():
            if name in merged:
                raise ValueError(
                    f"setting {name} is defined in both {origin[name]} and {entry.name}"
                )
            merged[name], origin[name] = value, entry.name
    return merged

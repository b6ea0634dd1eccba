"""Where everything that cannot become a valid record goes: output/rejected/<run>.jsonl.

One JSON object per line with the stage that refused it, every reason and the raw input, so
nothing is dropped silently and a rejected model can be replayed. Each line is flushed and
fsynced before `write` returns (rejections are rare; losing one to a crash is not an option).
"""

from __future__ import annotations

import base64
import datetime as dt
import os
from pathlib import Path
from typing import IO, Any

import orjson

from hfspider.hub.api import format_timestamp


def _fallback(value: Any) -> Any:
    """JSON for what orjson cannot write itself (response bodies, sets, odd objects)."""
    if isinstance(value, bytes):
        try:
            return {"utf8": value.decode("utf-8")}
        except UnicodeDecodeError:
            return {"base64": base64.b64encode(value).decode("ascii")}
    if isinstance(value, set | frozenset):
        return sorted(value, key=repr)
    return repr(value)


def run_id(stage: str) -> str:
    """A file name for one component's rejections in one run, e.g. `validate-20261130T...`."""
    return f"{stage}-{dt.datetime.now(dt.UTC).strftime('%Y%m%dT%H%M%S%fZ')}"


class RejectedSink:
    """Append-only JSON Lines file of rejected inputs, created on the first rejection."""

    def __init__(self, directory: str | Path, run_id: str | None = None) -> None:
        now = dt.datetime.now(dt.UTC)
        self.path = Path(directory) / f"{run_id or now.strftime('%Y%m%dT%H%M%SZ')}.jsonl"
        self.count = 0
        self._file: IO[bytes] | None = None

    def write(self, stage: str, reasons: list[str], raw: Any, model_id: str | None = None) -> None:
        """Record one rejection: `stage` (e.g. `listing`, `validate`), why, and the input."""
        entry = {
            "rejected_at": format_timestamp(dt.datetime.now(dt.UTC)),
            "stage": stage,
            "model_id": model_id,
            "reasons": reasons,
            "raw": raw,
        }
        options = orjson.OPT_NON_STR_KEYS
        try:
            line = orjson.dumps(entry, default=_fallback, option=options)
        except orjson.JSONEncodeError as exc:  # e.g. an integer beyond 64 bits, deep nesting
            entry["raw"] = {"repr": repr(raw)}
            entry["reasons"] = [*reasons, f"raw input is not JSON-serialisable: {exc}"]
            line = orjson.dumps(entry, default=_fallback, option=options)
        if self._file is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "ab")  # kept open: one file per run
        self._file.write(line + b"\n")
        self._file.flush()
        os.fsync(self._file.fileno())
        self.count += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

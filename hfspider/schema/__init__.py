"""The published record schema (JSON Schema Draft 2020-12) and the validator every record
passes before it is stored. Human documentation: docs/schema.md.

Every record is checked by jsonschema-rs (compiled, ~1,000x faster than the reference
`jsonschema` package, which would cost ~1.5 ms per record); only a record it refuses is run
through `jsonschema` as well, for its complete, readable list of reasons.
"""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

import jsonschema_rs
from jsonschema import Draft202012Validator

SCHEMA_FILE = "record.schema.json"
# A message quotes the offending value; a hostile value may be megabytes long.
MAX_MESSAGE_CHARS = 300


@functools.cache
def record_schema() -> dict[str, Any]:
    """The record schema as a dict (shipped inside the package)."""
    text = resources.files(__package__).joinpath(SCHEMA_FILE).read_text(encoding="utf-8")
    return json.loads(text)


@functools.cache
def _validator() -> Draft202012Validator:
    schema = record_schema()
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema)


@functools.cache
def _fast_validator() -> jsonschema_rs.Draft202012Validator:
    return jsonschema_rs.Draft202012Validator(record_schema())


def validate_record(record: Any) -> list[str]:
    """Every reason `record` breaks the schema, as `path: message` lines; [] when valid."""
    if _fast_validator().is_valid(record):
        return []
    errors = sorted(_validator().iter_errors(record), key=lambda error: list(error.path))
    found = [("/".join(str(part) for part in e.absolute_path), e.message) for e in errors]
    if not found:  # the two implementations disagree: refusing is the safe side
        found = [
            ("/".join(str(part) for part in e.instance_path), e.message)
            for e in _fast_validator().iter_errors(record)
        ]
    return [_message(path or "(record)", text) for path, text in found]


def _message(path: str, text: str) -> str:
    message = f"{path}: {text}"
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1] + "…"
    return message

"""The published record schema (JSON Schema Draft 2020-12) and the validator every record
passes before it is stored. Human documentation: docs/schema.md."""

from __future__ import annotations

import functools
import json
from importlib import resources
from typing import Any

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


def validate_record(record: Any) -> list[str]:
    """Every reason `record` breaks the schema, as `path: message` lines; [] when valid."""
    errors = sorted(_validator().iter_errors(record), key=lambda error: list(error.path))
    messages = []
    for error in errors:
        path = "/".join(str(part) for part in error.absolute_path) or "(record)"
        message = f"{path}: {error.message}"
        if len(message) > MAX_MESSAGE_CHARS:
            message = message[: MAX_MESSAGE_CHARS - 1] + "…"
        messages.append(message)
    return messages

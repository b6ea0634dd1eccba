"""JSON for scrapy-redis's request queue (`SCHEDULER_SERIALIZER`), instead of its pickle.

A pickled request in Redis runs code on whichever worker reads it, so anyone who can write to
that Redis could take over every worker. This module has the `dumps`/`loads` pair scrapy-redis
asks of a serializer; what it reads back is data only:

* JSON has no bytes and only string keys, so bytes become `{"$b": base64}` and a dict with a
  key that is not a string, or a string starting with `$` (a Hub answer may have any keys),
  becomes `{"$d": [[key, value], ...]}`; nothing else is tagged, so decoding is unambiguous;
* a request names its class (`_class`) only when it is not a plain `scrapy.Request`, and
  Scrapy would import whatever is named there: `loads` refuses it;
* callbacks are looked up by name on the spider: `loads` accepts only the spider's own
  callback names (`parse_*`, `*_failed`).
"""

from __future__ import annotations

import base64
import re
from typing import Any

import orjson

BYTES, DICT = "$b", "$d"
CALLBACK_NAME = re.compile(r"(parse_[a-z_]+|[a-z_]+_failed)")


def _encode(value: Any) -> Any:
    if isinstance(value, bytes):
        return {BYTES: base64.b64encode(value).decode("ascii")}
    if isinstance(value, dict):
        if all(isinstance(key, str) and not key.startswith("$") for key in value):
            return {key: _encode(item) for key, item in value.items()}
        return {DICT: [[_encode(key), _encode(item)] for key, item in value.items()]}
    if isinstance(value, list | tuple):
        return [_encode(item) for item in value]
    return value


def _decode(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 1 and BYTES in value:
            return base64.b64decode(value[BYTES], validate=True)
        if len(value) == 1 and DICT in value:
            return {_decode(key): _decode(item) for key, item in value[DICT]}
        return {key: _decode(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_decode(item) for item in value]
    return value


# orjson would write dataclasses, datetimes and subclasses of str or int as plain JSON, which
# read back as something else: a request carrying one is refused instead (TypeError).
STRICT = orjson.OPT_PASSTHROUGH_DATACLASS | orjson.OPT_PASSTHROUGH_DATETIME
STRICT |= orjson.OPT_PASSTHROUGH_SUBCLASS


def dumps(request: dict[str, Any]) -> bytes:
    """A request dict (`Request.to_dict()`) as JSON; TypeError if it holds anything but JSON
    types and bytes."""
    return orjson.dumps(_encode(request), option=STRICT)


def loads(data: bytes) -> dict[str, Any]:
    """The request dict `dumps` wrote; ValueError for anything else, or anything that would
    make Scrapy import a class or call a method that is not a spider callback."""
    try:
        request = _decode(orjson.loads(data))
    except (orjson.JSONDecodeError, TypeError, ValueError) as exc:
        raise ValueError(f"queued request is not this serializer's JSON: {exc}") from None
    if not isinstance(request, dict) or not isinstance(request.get("url"), str):
        raise ValueError("queued request is not a request dict")
    if "_class" in request:
        raise ValueError(f"queued request names a class ({request['_class']!r}): refused")
    for name in ("callback", "errback"):
        method = request.get(name)
        if method is not None and not (isinstance(method, str) and CALLBACK_NAME.fullmatch(method)):
            raise ValueError(f"queued request's {name} {method!r} is not a spider callback")
    return request

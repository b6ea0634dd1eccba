"""Model cards (README.md): bounded front matter parsing and a plain-text description.

A card is user input from anyone on the Hub, so every step is bounded: the card text kept, the
front matter size, the number of YAML aliases and the size the YAML would expand to (an alias
bomb is refused before anything is expanded), nesting depth, and the text scanned for the
description. Nothing here raises on a bad card: `parse_card` returns what it could read and a
warning for each thing it could not.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import yaml

# Front matter may expand through aliases to at most this multiple of its own size.
EXPANSION_FACTOR = 4
# Deeper than this is not metadata; orjson also refuses to write JSON deeper than 255.
MAX_DEPTH = 64
INT64_MIN, INT64_MAX = -(1 << 63), (1 << 63) - 1
# The description is looked for in this much of the card body.
DESCRIPTION_SCAN_CHARS = 64 << 10
# Paragraphs shorter than this many words are labels, not a description.
MIN_DESCRIPTION_WORDS = 4
# Bounded patterns keep the regexes linear on hostile input (no unbounded backtracking).
_IMAGE_RE = re.compile(r"!\[[^\]\n]{0,500}\](?:\([^)\n]{0,2000}\)|\[[^\]\n]{0,500}\])")
_LINK_RE = re.compile(r"\[([^\]\n]{0,500})\](?:\([^)\n]{0,2000}\)|\[[^\]\n]{0,500}\])")
_AUTOLINK_RE = re.compile(r"<(?:https?|ftp|mailto):[^>\s]{0,2000}>")
_TAG_RE = re.compile(r"</?[A-Za-z][A-Za-z0-9-]{0,40}(?:\s[^<>]{0,2000})?/?>")
_CODE_SPAN_RE = re.compile(r"`{1,3}([^`\n]{0,500})`{1,3}")
_EMPHASIS_RE = re.compile(r"\*{1,3}(?=\S)|(?<=\S)\*{1,3}|_{2,3}|(?<!\w)_(?=\S)|(?<=\S)_(?!\w)|~~")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")
_HEADING_RE = re.compile(r"#{1,6}(?:\s|$)")
_RULE_RE = re.compile(r"(?:-\s*){3,}|(?:\*\s*){3,}|(?:_\s*){3,}")
_SETEXT_RE = re.compile(r"=+|-+")
_TABLE_SEPARATOR_RE = re.compile(r"\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)+\|?")
_REFERENCE_RE = re.compile(r"\[[^\]\n]{1,500}\]:\s*\S")
_LIST_RE = re.compile(r"(?:[-*+]|\d{1,9}[.)])\s+")
_QUOTE_RE = re.compile(r"(?:>\s?)+")
_BRACKET_RE = re.compile(r"[\[\]{}]")
_FENCE_RE = re.compile(r"(`{3,}|~{3,})([^`]*)$")
_SKIPPED_BLOCKS = ("script", "style", "pre", "table", "svg")


class CardError(ValueError):
    """Front matter that cannot be read safely (too large, an alias bomb, not a mapping...)."""


@dataclass(frozen=True)
class CardLimits:
    """How much of a card is read. Defaults match pipelines_config/crawl.toml [card]."""

    max_bytes: int = 1 << 20
    front_matter_max_bytes: int = 256 << 10
    max_aliases: int = 100
    description_max_chars: int = 1000

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> CardLimits:
        """From the `CARD_*` settings (TOML ints, or strings from `-s NAME=value`)."""
        names = {
            "max_bytes": "CARD_MAX_BYTES",
            "front_matter_max_bytes": "CARD_FRONT_MATTER_MAX_BYTES",
            "max_aliases": "CARD_MAX_ALIASES",
            "description_max_chars": "CARD_DESCRIPTION_MAX_CHARS",
        }
        defaults = cls()
        values = {
            field: int(settings.get(name, getattr(defaults, field)))
            for field, name in names.items()
        }
        return cls(**values)


DEFAULT_CARD_LIMITS = CardLimits()


@dataclass(frozen=True)
class ModelCard:
    """A card as the record publishes it."""

    text: str
    data: dict[str, Any] | None
    description: str | None
    warnings: tuple[str, ...]


def parse_card(raw: bytes, limits: CardLimits = DEFAULT_CARD_LIMITS) -> ModelCard:
    """Read README.md bytes: the text (truncated to `max_bytes`), front matter, description."""
    warnings: list[str] = []
    if len(raw) > limits.max_bytes:
        warnings.append(f"card is {len(raw)} bytes; kept the first {limits.max_bytes}")
        raw = _utf8_prefix(raw, limits.max_bytes)
    elif len(raw) == limits.max_bytes:
        # Exactly the limit: likely a card fetched with a Range of max_bytes, which may end
        # inside a character. Its last bytes are not corruption, just cut.
        raw = _without_partial_tail(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        text = raw.decode("utf-8", errors="replace")
        warnings.append("card is not valid UTF-8; undecodable bytes replaced by U+FFFD")
    text = text.removeprefix("\ufeff")
    front_matter, body = split_front_matter(text.replace("\r\n", "\n").replace("\r", "\n"))
    data = None
    if front_matter is not None:
        try:
            data = load_front_matter(front_matter, limits)
        except CardError as exc:
            warnings.append(f"card front matter ignored: {exc}")
    description = describe(body, limits.description_max_chars)
    return ModelCard(text=text, data=data, description=description, warnings=tuple(warnings))


def _utf8_prefix(raw: bytes, size: int) -> bytes:
    """The first `size` bytes or fewer, never ending inside a UTF-8 sequence."""
    end = size
    while end > 0 and end > size - 4 and raw[end] & 0xC0 == 0x80:
        end -= 1
    return raw[:end]


def _without_partial_tail(raw: bytes) -> bytes:
    """`raw` less a UTF-8 sequence cut short at its end (at most 3 bytes), if there is one."""
    for back in range(1, min(4, len(raw)) + 1):
        byte = raw[-back]
        if byte & 0xC0 != 0x80:  # an ASCII byte or the lead byte of the last sequence
            needed = 2 if byte & 0xE0 == 0xC0 else 3 if byte & 0xF0 == 0xE0 else 4
            cut = byte >= 0xC0 and back < needed
            return raw[:-back] if cut else raw
    return raw


def split_front_matter(text: str) -> tuple[str | None, str]:
    """(YAML between the `---` lines at the top, the rest), like the Hub (newlines as `\\n`).

    Without a closing `---` there is no front matter: the opening line is a rule in the body.
    """
    stripped = text.lstrip()
    first, newline, rest = stripped.partition("\n")
    if first.rstrip() != "---" or not newline:
        return None, text
    position = 0
    while True:
        end = rest.find("\n", position)
        line = rest[position:] if end < 0 else rest[position:end]
        if line.rstrip() == "---":
            return rest[:position], "" if end < 0 else rest[end + 1 :]
        if end < 0:
            return None, text
        position = end + 1


def load_front_matter(
    yaml_text: str, limits: CardLimits = DEFAULT_CARD_LIMITS
) -> dict[str, Any] | None:
    """Parse front matter with YAML's safe loader under the limits; None if it is empty."""
    size = len(yaml_text.encode("utf-8"))
    if size > limits.front_matter_max_bytes:
        raise CardError(f"{size} bytes is over the {limits.front_matter_max_bytes}-byte limit")
    if _bracket_depth(yaml_text) > 2 * MAX_DEPTH:
        raise CardError("YAML nested too deeply")
    if _libyaml_agrees(yaml_text) and _block_depth_bound(yaml_text) <= C_LOADER_MAX_DEPTH:
        data = _load_with_libyaml(yaml_text, size, limits)
        if data is _EMPTY:
            return None
        if data is not _FALL_BACK:
            if not isinstance(data, dict):
                raise CardError(f"front matter is a {type(data).__name__}, not a mapping")
            return to_json_compatible(data)
    loader = None
    try:
        loader = _BoundedSafeLoader(yaml_text, max_aliases=limits.max_aliases)
        node = loader.get_single_node()
        if node is None:
            return None
        _check_expansion(node, EXPANSION_FACTOR * max(size, 1024))
        data = loader.construct_document(node)
    except CardError:
        raise
    except yaml.MarkedYAMLError as exc:
        where = f" at line {exc.problem_mark.line + 1}" if exc.problem_mark else ""
        raise CardError(f"invalid YAML: {exc.problem or exc.context}{where}") from None
    except yaml.YAMLError as exc:
        raise CardError(f"invalid YAML: {str(exc)[:200]}") from None
    except RecursionError:
        raise CardError("YAML nested too deeply") from None
    except (ValueError, TypeError, OverflowError) as exc:
        # e.g. `date: 2024-13-45` resolves to a timestamp that datetime refuses
        raise CardError(f"unreadable YAML value: {str(exc)[:200]}") from None
    finally:
        if loader is not None:
            loader.dispose()
    if not isinstance(data, dict):
        raise CardError(f"front matter is a {type(data).__name__}, not a mapping")
    return to_json_compatible(data)


# libyaml composes nodes recursively in C, where Python's recursion limit does not reach:
# only a card whose nesting provably stays under this bound is handed to it.
C_LOADER_MAX_DEPTH = 2 * MAX_DEPTH
_FALL_BACK = object()
_EMPTY = object()


def _libyaml_agrees(text: str) -> bool:
    """Whether libyaml may parse `text`: it accepts tabs where PyYAML's parser refuses them
    (`a:\t1`), so such a card is left to PyYAML, whose answer is the reference."""
    return yaml.__with_libyaml__ and "\t" not in text


def _block_depth_bound(text: str) -> int:
    """An upper bound of the nesting depth of YAML text: every level of a block collection
    is indented deeper than its parent's (twice per column: a sequence may sit at its key's
    indentation) or opened by an indicator on the same line; flow levels are brackets."""
    deepest = 0
    for line in text.splitlines():
        body = line.lstrip(" ")
        indent = len(line) - len(body)
        bound = 2 * (indent + 1) + body.count("-") + body.count("?") + body.count(":")
        deepest = max(deepest, bound)
    return deepest + 2 * _bracket_depth(text)


def _load_with_libyaml(yaml_text: str, size: int, limits: CardLimits) -> Any:
    """What `load_front_matter` loads, parsed by libyaml (~10x faster than PyYAML's Python
    parser); `_EMPTY` for no document. `_FALL_BACK` when libyaml refuses the text: the
    Python parser then decides, so errors read as they always did."""
    loader = yaml.CSafeLoader(yaml_text)
    try:
        try:
            node = loader.get_single_node()
        except yaml.YAMLError:
            return _FALL_BACK
        if node is None:
            return _EMPTY
        if _alias_count(node) > limits.max_aliases:
            raise CardError("too many YAML aliases (possible alias bomb)")
        _check_expansion(node, EXPANSION_FACTOR * max(size, 1024))
        try:
            return loader.construct_document(node)
        except (yaml.YAMLError, RecursionError, ValueError, TypeError, OverflowError):
            return _FALL_BACK
    finally:
        loader.dispose()


def _alias_count(root: yaml.Node) -> int:
    """Alias uses in a composed graph: every reference to a node already reached is one."""
    seen = {id(root)}
    stack = [root]
    aliases = 0
    while stack:
        node = stack.pop()
        if isinstance(node, yaml.ScalarNode):
            continue
        for child in _children(node):
            if id(child) in seen:
                aliases += 1
            else:
                seen.add(id(child))
                stack.append(child)
    return aliases


def _bracket_depth(text: str) -> int:
    """Deepest nesting of `[`/`{` (quotes ignored: an over-estimate). PyYAML's scanner slows
    down quadratically with flow depth, so a deep one is refused before it is scanned."""
    depth = deepest = 0
    for match in _BRACKET_RE.finditer(text):
        depth = max(depth + (1 if match.group() in "[{" else -1), 0)
        deepest = max(deepest, depth)
    return deepest


class _BoundedSafeLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` (what `yaml.safe_load` uses) that stops at `max_aliases` aliases."""

    def __init__(self, stream: str, *, max_aliases: int) -> None:
        super().__init__(stream)
        self.aliases_left = max_aliases

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            self.aliases_left -= 1
            if self.aliases_left < 0:
                raise CardError("too many YAML aliases (possible alias bomb)")
        return super().compose_node(parent, index)


def _check_expansion(root: yaml.Node, budget: int) -> None:
    """Refuse a node graph whose full expansion (aliases copied out, as JSON would write it)
    outweighs `budget` characters, or that refers to itself. Linear in the graph's size."""
    weight: dict[int, int] = {}
    visiting: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        if key in weight:
            continue
        if isinstance(node, yaml.ScalarNode):
            weight[key] = len(node.value) + 1
            continue
        children = _children(node)
        if children_done:
            visiting.discard(key)
            weight[key] = 1 + sum(weight[id(child)] for child in children)
            if weight[key] > budget:
                raise CardError("YAML aliases expand too far (possible alias bomb)")
            continue
        if key in visiting:
            raise CardError("YAML alias refers to itself")
        visiting.add(key)
        stack.append((node, True))
        for child in children:
            if id(child) in visiting:
                raise CardError("YAML alias refers to itself")
            stack.append((child, False))


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [part for pair in node.value for part in pair]
    return list(node.value)


def to_json_compatible(value: Any, depth: int = 0) -> Any:
    """Make YAML data JSON-safe: string keys, dates as ISO 8601, binary as base64, no NaN,
    integers beyond 64 bits as strings (JSON writers and Arrow refuse them)."""
    if depth > MAX_DEPTH:
        raise CardError(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        return {_json_key(k): to_json_compatible(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        items = sorted(value, key=repr) if isinstance(value, set | frozenset) else value
        return [to_json_compatible(item, depth + 1) for item in items]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, bool) or value is None or isinstance(value, str | float):
        return value
    if isinstance(value, int):
        return value if INT64_MIN <= value <= INT64_MAX else str(value)
    raise CardError(f"unsupported value of type {type(value).__name__}")


def _json_key(key: Any) -> str:
    if isinstance(key, str):
        return key
    if key is None or isinstance(key, bool):
        return {None: "null", True: "true", False: "false"}[key]
    if isinstance(key, dt.date):
        return key.isoformat()
    return str(key)


def describe(body: str, max_chars: int) -> str | None:
    """The first prose paragraph of a card body as plain text, at most `max_chars` long.

    Headings, rules, tables, code, HTML comments and blocks, link and image markup, badges,
    list markers and emphasis are dropped; link texts stay. When no paragraph has
    `MIN_DESCRIPTION_WORDS` words outside a list, the first non-empty paragraph is used.
    Only the first `DESCRIPTION_SCAN_CHARS` of the body are read (the cost stays bounded).
    """
    window = 8 * max_chars
    fallback = None
    for paragraph, is_list in _paragraphs(body[:DESCRIPTION_SCAN_CHARS], window):
        text = _plain(paragraph[:window])
        if not text:
            continue
        if not is_list and len(text.split()) >= MIN_DESCRIPTION_WORDS:
            return _shorten(text, max_chars)
        fallback = fallback or text
    return _shorten(fallback, max_chars) if fallback else None


def _shorten(text: str, max_chars: int) -> str:
    if len(text) <= max_chars:
        return text
    cut = text.rfind(" ", 0, max_chars)
    return text[: cut if cut > max_chars // 2 else max_chars - 1].rstrip() + "…"


def _paragraphs(body: str, window: int) -> Iterator[tuple[str, bool]]:
    """Markdown blocks of prose as (raw inline text, is a list), skipping non-prose blocks."""
    lines: list[str] = []
    size = 0
    is_list = False
    fence = ""
    skip_until = ""
    in_comment = False
    for line in body.split("\n"):
        if in_comment:
            end = line.find("-->")
            if end < 0:
                continue
            in_comment, line = False, line[end + 3 :]
        line, in_comment = _drop_comments(line)
        stripped = line.strip()
        if fence:
            if stripped.startswith(fence):
                fence = ""
            continue
        if skip_until:
            if skip_until in stripped.lower():
                skip_until = ""
            continue
        fence_match = _FENCE_RE.match(stripped)
        block_tag = _skipped_block(stripped)
        if fence_match or block_tag:
            if lines:
                yield " ".join(lines), is_list
            lines, size, is_list = [], 0, False
            if fence_match:
                fence = fence_match.group(1)[:3]
            elif f"</{block_tag}" not in stripped.lower():
                skip_until = f"</{block_tag}"
            continue
        if lines and (_SETEXT_RE.fullmatch(stripped) or _TABLE_SEPARATOR_RE.fullmatch(stripped)):
            # Setext heading underline or table header separator: the block was not prose.
            lines, size, is_list = [], 0, False
            continue
        noise = (
            not stripped
            or _HEADING_RE.match(stripped)
            or _RULE_RE.fullmatch(stripped)
            or stripped.startswith("|")
            or _REFERENCE_RE.match(stripped)
            or (not lines and (line.startswith("    ") or line.startswith("\t")))
            or not _TAG_RE.sub("", stripped).strip()
        )
        if noise:
            if lines:
                yield " ".join(lines), is_list
            lines, size, is_list = [], 0, False
            continue
        stripped = _QUOTE_RE.sub("", stripped, count=1) if stripped.startswith(">") else stripped
        marker = _LIST_RE.match(stripped)
        if marker:
            is_list = True
            stripped = stripped[marker.end() :]
        if size < window:
            lines.append(stripped)
            size += len(stripped) + 1
    if lines:
        yield " ".join(lines), is_list


def _drop_comments(line: str) -> tuple[str, bool]:
    """Remove `<!-- ... -->` from a line; True when a comment stays open at its end."""
    parts = []
    position = 0
    while True:
        start = line.find("<!--", position)
        if start < 0:
            parts.append(line[position:])
            return "".join(parts), False
        parts.append(line[position:start])
        end = line.find("-->", start + 4)
        if end < 0:
            return "".join(parts), True
        position = end + 3


def _skipped_block(stripped: str) -> str:
    lowered = stripped[:12].lower()
    for tag in _SKIPPED_BLOCKS:
        if lowered.startswith(f"<{tag}") and lowered[len(tag) + 1 : len(tag) + 2] in {">", " ", ""}:
            return tag
    return ""


def _plain(markdown: str) -> str:
    """Inline markdown and HTML to plain text."""
    text = _IMAGE_RE.sub("", markdown)
    text = _LINK_RE.sub(r"\1", text)
    text = _AUTOLINK_RE.sub("", text)
    text = _TAG_RE.sub(" ", text)
    text = _CODE_SPAN_RE.sub(r"\1", text)
    text = _EMPHASIS_RE.sub("", text)
    text = _CONTROL_RE.sub(" ", html.unescape(text))
    return " ".join(text.split())

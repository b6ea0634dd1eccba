"""Typed Hub API objects and their tolerant parsers.

One `ModelInfo` describes a model in both answers that carry one: a listing item
(`GET /api/models?expand=...`, only the expanded keys) and a model info
(`GET /api/models/{id}/revision/{sha}?blobs=true`, everything plus file sizes). Parsing is
tolerant on purpose: keys the record does not use are ignored, a value of the wrong type is
dropped with a warning kept on the object, and only an answer with no usable model id is an
error (`HubFormatError`), because without an id nothing can be keyed or reported.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from hfspider.hub.endpoints import validate_repo_id

INT64_MAX = (1 << 63) - 1
HEX40_RE = re.compile(r"[0-9a-f]{40}")
HEX64_RE = re.compile(r"[0-9a-f]{64}")
OBJECT_ID_RE = re.compile(r"[0-9a-f]{24}")
GATED_MODES = {False: "no", "auto": "auto", "manual": "manual"}
RELATIONS = ("finetune", "adapter", "merge", "quantized")


class HubFormatError(ValueError):
    """A Hub answer that cannot be read at all (not JSON, wrong shape, no model id)."""


@dataclass(frozen=True)
class LfsInfo:
    """LFS pointer data of a file: sha256 of the content (`lfs.sha256`, `oid` in /tree)."""

    sha256: str
    size: int | None = None
    pointer_size: int | None = None


@dataclass(frozen=True)
class RepoFile:
    """One file of a snapshot: a sibling of a model info or an entry of /tree, /paths-info."""

    path: str
    size: int | None = None
    blob_id: str | None = None
    lfs: LfsInfo | None = None


@dataclass(frozen=True)
class SafetensorsSummary:
    """Parameter counts (not bytes) per dtype, from the Hub's `safetensors` key."""

    parameters: tuple[tuple[str, int], ...]
    total: int | None


@dataclass(frozen=True)
class GgufSummary:
    """The Hub's `gguf` key without the chat template and special tokens."""

    total: int | None
    architecture: str | None
    context_length: int | None
    total_file_size: int | None


@dataclass(frozen=True)
class ModelInfo:
    """A model as the Hub describes it; None means the answer did not say.

    Timestamps are already normalised to ISO 8601 UTC (`format_timestamp`); `gated` is
    "no", "auto" or "manual"; `siblings` is None when the answer had no `siblings` key.
    """

    id: str
    hub_id: str | None = None
    author: str | None = None
    sha: str | None = None
    created_at: str | None = None
    last_modified: str | None = None
    private: bool | None = None
    disabled: bool | None = None
    gated: str | None = None
    downloads: int | None = None
    downloads_all_time: int | None = None
    likes: int | None = None
    tags: tuple[str, ...] = ()
    pipeline_tag: str | None = None
    library_name: str | None = None
    card_data: dict[str, Any] | None = None
    config: dict[str, Any] | None = None
    model_index: Any = None
    base_models: tuple[tuple[str, str], ...] = ()
    safetensors: SafetensorsSummary | None = None
    gguf: GgufSummary | None = None
    siblings: tuple[RepoFile, ...] | None = None
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class RejectedItem:
    """A listing item that could not become a ModelInfo, with why (for output/rejected/)."""

    reason: str
    raw: Any


@dataclass(frozen=True)
class ListingPage:
    """One page of `GET /api/models`: the models, and the items that were unreadable.

    `raw[i]` is the JSON object `models[i]` was read from (kept for output/rejected/ and for
    requests that carry the listing item along)."""

    models: tuple[ModelInfo, ...]
    raw: tuple[Mapping[str, Any], ...]
    rejected: tuple[RejectedItem, ...]


def format_timestamp(moment: dt.datetime) -> str:
    """ISO 8601 in UTC with milliseconds and `Z`, the Hub's own format."""
    if moment.tzinfo is None:
        raise ValueError("timestamp without a time zone")
    moment = moment.astimezone(dt.UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_timestamp(value: str) -> str:
    """Any ISO 8601 date-time with a zone (`Z`, `+02:00`) -> `format_timestamp` form."""
    if not isinstance(value, str) or len(value) > 64:
        raise ValueError("not an ISO 8601 string")
    moment = dt.datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise ValueError("no time zone")
    return format_timestamp(moment)


def load_json(body: bytes | str, what: str) -> Any:
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HubFormatError(f"{what} is not valid JSON: {exc}") from None


def parse_model_info(data: bytes | Mapping[str, Any]) -> ModelInfo:
    """A model info or listing item (JSON bytes or an already decoded object)."""
    obj = load_json(data, "model info") if isinstance(data, bytes) else data
    if not isinstance(obj, Mapping):
        raise HubFormatError(f"model info is a JSON {type(obj).__name__}, not an object")
    model_id = obj.get("id", obj.get("modelId"))
    try:
        validate_repo_id(model_id)
    except ValueError:
        raise HubFormatError(f"model info has no valid `id`: {str(model_id)[:200]!r}") from None
    read = _Reader(obj, model_id)
    return ModelInfo(
        id=model_id,
        hub_id=read.text("_id", OBJECT_ID_RE),
        author=read.text("author"),
        sha=read.text("sha", HEX40_RE),
        created_at=read.timestamp("createdAt"),
        last_modified=read.timestamp("lastModified"),
        private=read.flag("private"),
        disabled=read.flag("disabled"),
        gated=read.gated(),
        downloads=read.count("downloads"),
        downloads_all_time=read.count("downloadsAllTime"),
        likes=read.count("likes"),
        tags=read.texts("tags"),
        pipeline_tag=read.text("pipeline_tag"),
        library_name=read.text("library_name"),
        card_data=read.mapping("cardData"),
        config=read.mapping("config"),
        model_index=obj.get("model-index"),
        base_models=read.base_models(),
        safetensors=read.safetensors(),
        gguf=read.gguf(),
        siblings=read.siblings(),
        warnings=tuple(read.warnings),
    )


def parse_listing_page(body: bytes) -> ListingPage:
    """A listing page; an unreadable item is set aside with its reason, never dropped."""
    items = load_json(body, "listing page")
    if not isinstance(items, list):
        raise HubFormatError(f"listing page is a JSON {type(items).__name__}, not an array")
    models, raw, rejected = [], [], []
    for item in items:
        try:
            models.append(parse_model_info(item))
        except HubFormatError as exc:
            rejected.append(RejectedItem(str(exc), item))
        else:
            raw.append(item)
    return ListingPage(tuple(models), tuple(raw), tuple(rejected))


def parse_tree_entries(body: bytes) -> tuple[tuple[RepoFile, ...], tuple[str, ...]]:
    """Files of a /tree page or a /paths-info answer (directories skipped), and warnings."""
    entries = load_json(body, "tree page")
    if not isinstance(entries, list):
        raise HubFormatError(f"tree page is a JSON {type(entries).__name__}, not an array")
    files, warnings = [], []
    for entry in entries:
        if isinstance(entry, Mapping) and entry.get("type") == "directory":
            continue
        repo_file = _repo_file(entry, "path", "oid", "oid", warnings)
        if repo_file:
            files.append(repo_file)
    return tuple(files), tuple(warnings)


def _repo_file(
    entry: Any, path_key: str, blob_key: str, sha_key: str, warnings: list[str]
) -> RepoFile | None:
    if not isinstance(entry, Mapping) or not isinstance(entry.get(path_key), str):
        warnings.append(f"file entry without a `{path_key}` string skipped")
        return None
    path = entry[path_key]
    read = _Reader(entry, f"file {path[:200]!r}")
    lfs = None
    lfs_obj = read.mapping("lfs")
    if lfs_obj is not None:
        lfs_read = _Reader(lfs_obj, f"file {path[:200]!r} lfs")
        sha256 = lfs_read.text(sha_key, HEX64_RE)
        if sha256:
            lfs = LfsInfo(sha256, lfs_read.count("size"), lfs_read.count("pointerSize"))
        read.warnings += lfs_read.warnings
    size = read.count("size")
    if lfs and lfs.size is not None and size is not None and lfs.size != size:
        read.warnings.append(f"file {path[:200]!r}: size {size} differs from lfs size {lfs.size}")
    warnings += read.warnings
    return RepoFile(path, size, read.text(blob_key, HEX40_RE), lfs)


class _Reader:
    """Typed access to one JSON object; each mismatch becomes a warning, not an exception."""

    def __init__(self, obj: Mapping[str, Any], where: str) -> None:
        self.obj = obj
        self.where = where
        self.warnings: list[str] = []

    def _wrong(self, key: str, expected: str) -> None:
        got = type(self.obj[key]).__name__
        self.warnings.append(f"{self.where}: `{key}` should be {expected}, got {got}; ignored")

    def text(self, key: str, pattern: re.Pattern[str] | None = None) -> str | None:
        value = self.obj.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or (pattern and not pattern.fullmatch(value)):
            expected = f"a string matching {pattern.pattern}" if pattern else "a string"
            self._wrong(key, expected)
            return None
        return value

    def count(self, key: str) -> int | None:
        value = self.obj.get(key)
        if value is None:
            return None
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= INT64_MAX:
            self._wrong(key, "a non-negative 64-bit integer")
            return None
        return value

    def flag(self, key: str) -> bool | None:
        value = self.obj.get(key)
        if value is None or isinstance(value, bool):
            return value
        self._wrong(key, "a boolean")
        return None

    def texts(self, key: str) -> tuple[str, ...]:
        value = self.obj.get(key)
        if value is None:
            return ()
        if not isinstance(value, list):
            self._wrong(key, "a list of strings")
            return ()
        texts = tuple(item for item in value if isinstance(item, str))
        if len(texts) != len(value):
            self.warnings.append(f"{self.where}: non-string items of `{key}` ignored")
        return texts

    def mapping(self, key: str) -> dict[str, Any] | None:
        value = self.obj.get(key)
        if value is None or isinstance(value, dict):
            return value
        self._wrong(key, "an object")
        return None

    def timestamp(self, key: str) -> str | None:
        value = self.obj.get(key)
        if value is None:
            return None
        try:
            return parse_timestamp(value)
        except (TypeError, ValueError):
            self._wrong(key, "an ISO 8601 date-time with a time zone")
            return None

    def gated(self) -> str | None:
        value = self.obj.get("gated")
        if value is None:
            return None
        if isinstance(value, bool | str) and value in GATED_MODES:
            return GATED_MODES[value]
        self._wrong("gated", 'false, "auto" or "manual"')
        return None

    def base_models(self) -> tuple[tuple[str, str], ...]:
        """`baseModels`: `{"relation": r, "models": [{"id": ...}]}` (or a list of those)."""
        value = self.obj.get("baseModels")
        if value is None:
            return ()
        groups = value if isinstance(value, list) else [value]
        found: list[tuple[str, str]] = []
        for group in groups:
            relation = group.get("relation") if isinstance(group, Mapping) else None
            models = group.get("models") if isinstance(group, Mapping) else None
            if relation not in RELATIONS or not isinstance(models, list):
                self.warnings.append(f"{self.where}: unreadable `baseModels` entry ignored")
                continue
            for model in models:
                target = model.get("id") if isinstance(model, Mapping) else None
                if isinstance(target, str) and target:
                    found.append((relation, target))
                else:
                    self.warnings.append(f"{self.where}: `baseModels` model without id ignored")
        return tuple(found)

    def safetensors(self) -> SafetensorsSummary | None:
        value = self.mapping("safetensors")
        if value is None:
            return None
        read = _Reader(value, f"{self.where} safetensors")
        counts = read.mapping("parameters") or {}
        per_dtype = _Reader(counts, f"{self.where} safetensors parameters")
        parameters = tuple(
            (dtype, count) for dtype in counts if (count := per_dtype.count(dtype)) is not None
        )
        summary = SafetensorsSummary(parameters, read.count("total"))
        self.warnings += read.warnings + per_dtype.warnings
        return summary

    def gguf(self) -> GgufSummary | None:
        value = self.mapping("gguf")
        if value is None:
            return None
        read = _Reader(value, f"{self.where} gguf")
        summary = GgufSummary(
            total=read.count("total"),
            architecture=read.text("architecture"),
            context_length=read.count("context_length"),
            total_file_size=read.count("totalFileSize"),
        )
        self.warnings += read.warnings
        return summary

    def siblings(self) -> tuple[RepoFile, ...] | None:
        value = self.obj.get("siblings")
        if value is None:
            return None
        if not isinstance(value, list):
            self._wrong("siblings", "a list")
            return None
        files = [_repo_file(item, "rfilename", "blobId", "sha256", self.warnings) for item in value]
        return tuple(repo_file for repo_file in files if repo_file)

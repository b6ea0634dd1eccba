"""One published record per model snapshot, from what the Hub said about it.

`normalise(listed, info, readme, config_json, crawled_at=...)` is the whole rule: the listing
item is always there, the pinned model info only in `full` mode (it wins where both speak, and
adds file sizes and hashes), README.md and config.json bytes only when they were fetched. The
result follows hfspider/schema/record.schema.json; everything that could not be read is a
string in its `warnings`, so a hostile model still yields a record with what could be read.
"""

from __future__ import annotations

import datetime as dt
import math
import re
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from hfspider.hub.api import RELATIONS, ModelInfo, RepoFile, format_timestamp
from hfspider.hub.card import (
    DEFAULT_CARD_LIMITS,
    CardError,
    CardLimits,
    parse_card,
    to_json_compatible,
)
from hfspider.hub.endpoints import validate_repo_id
from hfspider.hub.vocabulary import ISO_639_1, PIPELINE_TAGS
from hfspider.schema import record_schema

MAX_WARNINGS = 50
MAX_PERFORMANCE_ROWS = 10_000
BASE_MODEL_TAG_RE = re.compile(r"base_model:(finetune|adapter|merge|quantized):(.+)")
# config.json field -> the names model families use for it (transformers' attribute maps,
# Whisper's encoder names, timm's keys).
CONFIG_INTS = {
    "hidden_size": ("hidden_size", "n_embd", "d_model"),
    "num_attention_heads": (
        "num_attention_heads",
        "n_head",
        "num_heads",
        "encoder_attention_heads",
    ),
    "num_hidden_layers": ("num_hidden_layers", "n_layer", "num_layers", "encoder_layers"),
    "num_key_value_heads": ("num_key_value_heads",),
    "intermediate_size": ("intermediate_size", "n_inner", "d_ff"),
    "vocab_size": ("vocab_size",),
    "max_position_embeddings": (
        "max_position_embeddings",
        "n_positions",
        "n_ctx",
        "max_source_positions",
    ),
    "decoder_layers": ("decoder_layers",),
    "image_size": ("image_size",),
    "patch_size": ("patch_size",),
    "num_classes": ("num_classes",),
    "num_features": ("num_features",),
}
CONFIG_TEXTS = {"model_type": ("model_type",), "torch_dtype": ("torch_dtype", "dtype")}
INT64_MAX = (1 << 63) - 1
PIPELINE_TAG_RE = re.compile(record_schema()["properties"]["pipeline_tag"]["pattern"])


def normalise(
    listed: ModelInfo,
    info: ModelInfo | None = None,
    readme: bytes | None = None,
    config_json: bytes | None = None,
    *,
    crawled_at: dt.datetime,
    limits: CardLimits = DEFAULT_CARD_LIMITS,
) -> dict[str, Any]:
    """The record of one snapshot (see the module docstring); never raises on Hub data."""
    warnings: list[str] = [*listed.warnings, *(info.warnings if info else ())]
    model = _merge(listed, info, warnings)
    card = parse_card(readme, limits) if readme is not None else None
    if card:
        warnings += card.warnings
    card_data = card.data if card and card.data is not None else _api_card_data(model, warnings)
    config = config_summary(config_json, model.config, warnings)
    tags = list(model.tags)
    model_index = model.model_index
    if model_index is None and card_data:
        model_index = card_data.get("model-index")
    performance = performance_rows(model_index, warnings)
    pipeline_tag = _pipeline_tag(model.pipeline_tag or _text(card_data, "pipeline_tag"), warnings)
    return {
        "model_id": model.id,
        "hub_id": model.hub_id,
        "sha": model.sha,
        "name": model.id.rsplit("/", 1)[-1],
        "author": model.author or (model.id.split("/")[0] if "/" in model.id else None),
        "description": card.description if card else None,
        "architecture": _architecture(config, model),
        "task_type": _unique(
            [pipeline_tag, _text(card_data, "pipeline_tag")]
            + [tag for tag in tags if tag in PIPELINE_TAGS]
            + [row["task"] for row in performance if row["task"] in PIPELINE_TAGS]
        ),
        "pipeline_tag": pipeline_tag,
        "library_name": model.library_name or _text(card_data, "library_name"),
        "language": _languages(card_data, tags, warnings),
        "license": _license(card_data, tags, warnings),
        "tags": tags,
        "downloads": model.downloads,
        "downloads_all_time": model.downloads_all_time,
        "likes": model.likes,
        "created_at": model.created_at,
        "last_updated": model.last_modified,
        "private": model.private,
        "disabled": model.disabled,
        "gated": model.gated,
        "files": [file_entry(repo_file) for repo_file in model.siblings or ()],
        "config": config,
        "safetensors": _safetensors(model),
        "gguf": _gguf(model),
        "performance": performance,
        "relationships": relationships(model, card_data, warnings),
        "card": card.text if card else None,
        "card_data": card_data,
        "embedding_vector": None,
        "cid": None,
        "dir_cid": None,
        "crawl_mode": "full" if info else "lite",
        "crawled_at": format_timestamp(crawled_at),
        "warnings": _capped(warnings),
    }


def _merge(listed: ModelInfo, info: ModelInfo | None, warnings: list[str]) -> ModelInfo:
    """The model info where it speaks, the listing item elsewhere."""
    if info is None:
        return listed
    if info.id != listed.id:
        warnings.append(f"listed as {listed.id!r}, model info says {info.id!r}; kept the latter")
    if listed.sha and info.sha and info.sha != listed.sha:
        warnings.append(f"listed at sha {listed.sha}, model info is {info.sha}; kept the latter")
    values = {}
    for name in ModelInfo.__dataclass_fields__:
        mine, theirs = getattr(info, name), getattr(listed, name)
        values[name] = mine if mine not in (None, ()) else theirs
    return ModelInfo(**values)


def _pipeline_tag(value: str | None, warnings: list[str]) -> str | None:
    """The tag names a Parquet partition directory: anything else is dropped with a warning."""
    if value is None or PIPELINE_TAG_RE.fullmatch(value):
        return value
    warnings.append(f"pipeline_tag {value[:100]!r} is not a valid tag; ignored")
    return None


def _api_card_data(model: ModelInfo, warnings: list[str]) -> dict[str, Any] | None:
    if model.card_data is None:
        return None
    try:
        return to_json_compatible(model.card_data)
    except CardError as exc:
        warnings.append(f"cardData ignored: {exc}")
        return None


def file_entry(repo_file: RepoFile) -> dict[str, Any]:
    """A `files[]` item; the file and IPFS stages fill cid, sha256_cid, local_path, fetch_*.

    `lfs` is unknown (None) when the answer had no blob data (listing, info without blobs).
    """
    lfs = True if repo_file.lfs else (False if repo_file.blob_id else None)
    return {
        "filename": repo_file.path,
        "size_bytes": repo_file.size,
        "blob_id": repo_file.blob_id,
        "lfs": lfs,
        "sha256": repo_file.lfs.sha256 if repo_file.lfs else None,
        "cid": None,
        "sha256_cid": None,
        "local_path": None,
        "fetch_status": None,
        "fetch_reason": None,
    }


def config_summary(
    config_json: bytes | None, api_config: dict[str, Any] | None, warnings: list[str]
) -> dict[str, Any] | None:
    """Architecture facts from config.json (else the Hub's `config` subset); None if none.

    Multimodal configs keep the language model's sizes in `text_config`: used as a fallback.
    """
    config = api_config
    if config_json is not None:
        try:
            parsed = orjson.loads(config_json)
        except orjson.JSONDecodeError as exc:
            parsed = None
            warnings.append(f"config.json is not valid JSON ({exc}); used the Hub's config")
        if isinstance(parsed, dict):
            config = parsed
        elif parsed is not None:
            warnings.append("config.json is not a JSON object; used the Hub's config")
    if not config:
        return None
    sources = [config]
    if isinstance(config.get("text_config"), dict):
        sources.append(config["text_config"])
    summary: dict[str, Any] = {"architectures": _architectures(config, warnings)}
    for field, names in CONFIG_INTS.items():
        summary[field] = _first(sources, names, _is_count)
    for field, names in CONFIG_TEXTS.items():
        summary[field] = _first(sources, names, lambda value: isinstance(value, str))
    quantization = config.get("quantization_config")
    method = quantization.get("quant_method") if isinstance(quantization, dict) else None
    summary["quant_method"] = method if isinstance(method, str) else None
    facts = [summary[field] for field in (*CONFIG_INTS, *CONFIG_TEXTS, "quant_method")]
    if not summary["architectures"] and all(value is None for value in facts):
        return None
    return summary


def _architectures(config: dict[str, Any], warnings: list[str]) -> list[str]:
    """transformers' `architectures`, else timm's `architecture`, else the pipeline class of a
    diffusers repo (the Hub's config subset holds `diffusers._class_name`)."""
    architectures = config.get("architectures")
    if isinstance(architectures, list):
        return [name for name in architectures if isinstance(name, str)]
    if architectures is not None:
        warnings.append("config `architectures` is not a list; ignored")
    diffusers = config.get("diffusers")
    for name in (
        config.get("architecture"),
        isinstance(diffusers, dict) and diffusers.get("_class_name"),
    ):
        if isinstance(name, str) and name:
            return [name]
    return []


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= INT64_MAX


def _first(
    sources: list[dict[str, Any]], names: Iterable[str], accept: Callable[[Any], bool]
) -> Any:
    for source in sources:
        for name in names:
            if accept(source.get(name)):
                return source[name]
    return None


def _architecture(config: dict[str, Any] | None, model: ModelInfo) -> str | None:
    """The first of the config's architectures (transformers, timm or diffusers), else its
    `model_type`, else the GGUF header's architecture."""
    if config and config["architectures"]:
        return config["architectures"][0]
    if config and config["model_type"]:
        return config["model_type"]
    return model.gguf.architecture if model.gguf else None


def performance_rows(model_index: Any, warnings: list[str]) -> list[dict[str, Any]]:
    """`model-index` (one entry per model, results of task x dataset x metrics) -> one row
    per metric value."""
    if model_index is None:
        return []
    if not isinstance(model_index, list):
        warnings.append("model-index is not a list; ignored")
        return []
    rows: list[dict[str, Any]] = []
    for entry in model_index:
        results = entry.get("results") if isinstance(entry, dict) else None
        if not isinstance(results, list):
            warnings.append("model-index entry without a `results` list ignored")
            continue
        for result in results:
            if not isinstance(result, dict) or not isinstance(result.get("metrics"), list):
                warnings.append("model-index result without a `metrics` list ignored")
                continue
            task = result.get("task") if isinstance(result.get("task"), dict) else {}
            dataset = result.get("dataset") if isinstance(result.get("dataset"), dict) else {}
            for metric in result["metrics"]:
                if not isinstance(metric, dict):
                    warnings.append("model-index metric that is not an object ignored")
                    continue
                if len(rows) == MAX_PERFORMANCE_ROWS:
                    warnings.append(f"model-index has over {MAX_PERFORMANCE_ROWS} rows; cut")
                    return rows
                rows.append(_performance_row(task, dataset, metric, warnings))
    return rows


def _performance_row(
    task: dict[str, Any], dataset: dict[str, Any], metric: dict[str, Any], warnings: list[str]
) -> dict[str, Any]:
    value = metric.get("value")
    number = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            pass
    if number is not None and not math.isfinite(number):
        number = None
    if number is None and value is not None:
        warnings.append(f"model-index value {str(value)[:50]!r} is not a number; kept as null")
    verified = metric.get("verified")
    return {
        "task": _label(task, "type") or _label(task, "name"),
        "task_name": _label(task, "name"),
        "dataset": _label(dataset, "type") or _label(dataset, "name"),
        "dataset_name": _label(dataset, "name"),
        "dataset_config": _label(dataset, "config"),
        "dataset_split": _label(dataset, "split"),
        "metric": _label(metric, "type") or _label(metric, "name"),
        "metric_name": _label(metric, "name"),
        "value": number,
        "verified": verified if isinstance(verified, bool) else None,
    }


def _label(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        return None
    return str(value)


def relationships(
    model: ModelInfo, card_data: dict[str, Any] | None, warnings: list[str]
) -> list[dict[str, str]]:
    """Base models. The Hub's own resolution wins (`baseModels`, else `base_model:<relation>:`
    tags: canonical ids after renames); else the card's `base_model` and
    `base_model_relation`, the relation inferred like the Hub when absent: several bases ->
    merge, an adapter_config.json -> adapter, GGUF -> quantized, else finetune."""
    pairs = list(model.base_models) or [
        (match.group(1), match.group(2))
        for tag in model.tags
        if (match := BASE_MODEL_TAG_RE.fullmatch(tag))
    ]
    if not pairs and card_data:
        pairs = _card_relationships(model, card_data, warnings)
    return [
        {"relationship_type": relation, "target_model_id": target}
        for relation, target in _unique(pairs)
    ]


def _card_relationships(
    model: ModelInfo, card_data: dict[str, Any], warnings: list[str]
) -> list[tuple[str, str]]:
    base = card_data.get("base_model")
    targets = [base] if isinstance(base, str) else base if isinstance(base, list) else []
    if base is not None and not targets:
        warnings.append("card `base_model` is neither a string nor a list; ignored")
    valid = []
    for target in targets:
        try:
            valid.append(validate_repo_id(target))
        except ValueError:
            warnings.append(f"card base_model {str(target)[:100]!r} is not a repo id; ignored")
    if not valid:
        return []
    relation = card_data.get("base_model_relation")
    if relation is not None and relation not in RELATIONS:
        warnings.append(f"card base_model_relation {str(relation)[:50]!r} unknown; inferred")
        relation = None
    if relation is None:
        paths = [repo_file.path for repo_file in model.siblings or ()]
        if len(valid) > 1:
            relation = "merge"
        elif any(path.rsplit("/", 1)[-1] == "adapter_config.json" for path in paths):
            relation = "adapter"
        elif model.gguf or any(path.endswith(".gguf") for path in paths):
            relation = "quantized"
        else:
            relation = "finetune"
    return [(relation, target) for target in valid]


def _languages(card_data: dict[str, Any] | None, tags: list[str], warnings: list[str]) -> list[str]:
    """The card's `language` (or legacy `languages`); else the tags that are ISO 639-1 codes."""
    values: list[str] = []
    for key in ("language", "languages"):
        value = card_data.get(key) if card_data else None
        items = [value] if isinstance(value, str) else value if isinstance(value, list) else []
        if value is not None and not items:
            warnings.append(f"card `{key}` is neither a string nor a list; ignored")
        values += [item.strip() for item in items if isinstance(item, str) and item.strip()]
    return _unique(values) or [tag for tag in tags if tag in ISO_639_1]


def _license(card_data: dict[str, Any] | None, tags: list[str], warnings: list[str]) -> str | None:
    value = card_data.get("license") if card_data else None
    if isinstance(value, list) and value and all(isinstance(item, str) for item in value):
        value = value[0]
    if isinstance(value, str) and value.strip():
        return value.strip()
    if value is not None:
        warnings.append("card `license` is not a string; used the license tag")
    return next((tag.removeprefix("license:") for tag in tags if tag.startswith("license:")), None)


def _safetensors(model: ModelInfo) -> dict[str, Any] | None:
    if model.safetensors is None:
        return None
    return {
        "total_parameters": model.safetensors.total,
        "parameters_by_dtype": [
            {"dtype": dtype, "count": count} for dtype, count in model.safetensors.parameters
        ],
    }


def _gguf(model: ModelInfo) -> dict[str, Any] | None:
    if model.gguf is None:
        return None
    return {
        "total_parameters": model.gguf.total,
        "architecture": model.gguf.architecture,
        "context_length": model.gguf.context_length,
        "total_file_size": model.gguf.total_file_size,
    }


def _text(obj: dict[str, Any] | None, key: str) -> str | None:
    value = obj.get(key) if obj else None
    return value if isinstance(value, str) and value else None


def _unique(values: Iterable[Any]) -> list[Any]:
    """Drop None and repeats, keep the first order."""
    return list(dict.fromkeys(value for value in values if value is not None))


def _capped(warnings: list[str]) -> list[str]:
    unique = _unique(warnings)
    if len(unique) <= MAX_WARNINGS:
        return unique
    return unique[:MAX_WARNINGS] + [f"... and {len(unique) - MAX_WARNINGS} more warnings"]

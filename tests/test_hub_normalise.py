"""Records from real Hub answers, checked field by field against the recorded JSON.

The recorded answers are `GET /api/models/{id}` bodies (huggingface_hub cassettes) and a
transcribed GGUF body; see hfspider/hubsim/samples/README.md.
"""

import datetime as dt
import json
from pathlib import Path
from typing import Any

import orjson
import pytest
import yaml

from hfspider.hub.api import parse_model_info
from hfspider.hub.card import CardLimits
from hfspider.hub.endpoints import RECORD_EXPAND
from hfspider.hub.normalise import normalise
from hfspider.schema import record_schema, validate_record

SAMPLES = Path(__file__).resolve().parent.parent / "hfspider" / "hubsim" / "samples"
GGUF = SAMPLES / "transcribed" / "api_models_ggml-org_gemma-3-1b-it-GGUF__body__2026-08.json"
CRAWLED_AT = dt.datetime(2026, 1, 2, 3, 4, 5, 678000, tzinfo=dt.UTC)


def full_answers() -> list[Path]:
    """Every recorded full model info (expand-only answers have no sha: not snapshots)."""
    paths = []
    for path in sorted(SAMPLES.glob("interactions/api_models_*__200__*.json")):
        if "sha" in json.loads(json.loads(path.read_text())["response"]["body"]):
            paths.append(path)
    return [*paths, GGUF]


def body_of(path: Path) -> bytes:
    if path.parent.name == "transcribed":
        return path.read_bytes()
    return json.loads(path.read_text())["response"]["body"].encode()


def sample(prefix: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """(recorded JSON, its full-mode record) for the newest sample of a model."""
    (path,) = [p for p in full_answers() if p.name.startswith(f"api_models_{prefix}__")][-1:]
    info = parse_model_info(body_of(path))
    return orjson.loads(body_of(path)), normalise(info, info, crawled_at=CRAWLED_AT)


def test_there_are_enough_real_samples() -> None:
    assert len(full_answers()) >= 40


@pytest.mark.parametrize("path", full_answers(), ids=lambda path: path.name[11:60])
def test_every_real_answer_gives_a_valid_record_matching_the_recording(path: Path) -> None:
    recorded = orjson.loads(body_of(path))
    info = parse_model_info(body_of(path))
    record = normalise(info, info, crawled_at=CRAWLED_AT)
    assert validate_record(record) == []
    assert record["warnings"] == []
    assert list(record) == list(record_schema()["properties"])
    card_data = recorded.get("cardData")
    expected = {
        "model_id": recorded["id"],
        "hub_id": recorded["_id"],
        "sha": recorded["sha"],
        "name": recorded["id"].split("/")[-1],
        "author": recorded["author"],
        "tags": recorded["tags"],
        "downloads": recorded["downloads"],
        "likes": recorded["likes"],
        "pipeline_tag": recorded.get("pipeline_tag") or (card_data or {}).get("pipeline_tag"),
        "created_at": recorded["createdAt"],
        "last_updated": recorded["lastModified"],
        "private": recorded["private"],
        "disabled": recorded["disabled"],
        "gated": recorded["gated"] or "no",
        "card_data": card_data,
        "card": None,
        "description": None,
        "crawl_mode": "full",
        "crawled_at": "2026-01-02T03:04:05.678Z",
        "downloads_all_time": None,
        "embedding_vector": None,
        "cid": None,
        "dir_cid": None,
    }
    assert {key: record[key] for key in expected} == expected
    assert [entry["filename"] for entry in record["files"]] == [
        sibling["rfilename"] for sibling in recorded["siblings"]
    ]
    assert all(entry["size_bytes"] is None for entry in record["files"])  # no blobs=true
    safetensors = recorded.get("safetensors")
    assert record["safetensors"] == (
        safetensors
        and {
            "total_parameters": safetensors["total"],
            "parameters_by_dtype": [
                {"dtype": dtype, "count": count}
                for dtype, count in safetensors["parameters"].items()
            ],
        }
    )
    config = recorded.get("config") or {}
    candidates = [
        *(config.get("architectures") or []),
        config.get("model_type"),
        config.get("diffusers", {}).get("_class_name"),  # the Hub's subset for diffusers repos
        (recorded.get("gguf") or {}).get("architecture"),
    ]
    assert record["architecture"] == next(filter(None, candidates), None)
    model_index = recorded.get("model-index") or (card_data or {}).get("model-index") or []
    metrics = [
        metric
        for entry in model_index
        for result in entry["results"]
        for metric in result["metrics"]
    ]
    assert [row["value"] for row in record["performance"]] == [
        float(metric["value"]) for metric in metrics
    ]
    # Every recorded base model is in a `base_model:<relation>:<id>` tag.
    base_tags = [
        tag.split(":", 2)[1:]
        for tag in recorded["tags"]
        if tag.startswith("base_model:") and tag.count(":") == 2
    ]
    pairs = [[rel["relationship_type"], rel["target_model_id"]] for rel in record["relationships"]]
    if base_tags or not card_data or "base_model" not in card_data:
        assert pairs == base_tags
    else:  # older answers: no such tag yet, the card's base_model is used
        bases = card_data["base_model"]
        assert [target for _, target in pairs] == ([bases] if isinstance(bases, str) else bases)
    license_tags = [tag[8:] for tag in recorded["tags"] if tag.startswith("license:")]
    assert record["license"] == ((card_data or {}).get("license") or next(iter(license_tags), None))
    if record["pipeline_tag"]:
        assert record["task_type"][0] == record["pipeline_tag"]


def test_bert_field_by_field() -> None:
    recorded, record = sample("google-bert_bert-base-uncased")
    assert recorded["sha"] == "86b5e0934494bd15c9632b12f734a8a67f723594"
    assert record["model_id"] == "google-bert/bert-base-uncased"
    assert record["name"] == "bert-base-uncased" and record["author"] == "google-bert"
    assert record["architecture"] == "BertForMaskedLM"
    assert record["config"] == {
        "architectures": ["BertForMaskedLM"],
        "hidden_size": None,  # not in the Hub's config subset: config.json gives it
        "num_attention_heads": None,
        "num_hidden_layers": None,
        "num_key_value_heads": None,
        "intermediate_size": None,
        "vocab_size": None,
        "max_position_embeddings": None,
        "decoder_layers": None,
        "image_size": None,
        "patch_size": None,
        "num_classes": None,
        "num_features": None,
        "model_type": "bert",
        "torch_dtype": None,
        "quant_method": None,
    }
    assert record["task_type"] == ["fill-mask"]
    assert record["language"] == ["en"]  # cardData `language: en` (a string)
    assert record["license"] == "apache-2.0"
    assert record["library_name"] == "transformers"
    assert record["gated"] == "no"
    assert record["relationships"] == [] and record["performance"] == []
    assert record["safetensors"] == {
        "total_parameters": 110106428,
        "parameters_by_dtype": [{"dtype": "F32", "count": 110106428}],
    }
    assert len(record["files"]) == 16 and record["files"][3]["filename"] == "config.json"
    assert record["downloads"] == 72376843 and record["likes"] == 2065


def test_gated_llama_field_by_field() -> None:
    recorded, record = sample("meta-llama_Llama-3.1-8B-Instruct")
    assert recorded["gated"] == "manual"
    assert record["gated"] == "manual"
    assert record["sha"] == "0e9e39f249a16976918f6564b8830bc894c89659"
    assert record["architecture"] == "LlamaForCausalLM"
    assert record["language"] == ["en", "de", "fr", "it", "pt", "hi", "es", "th"]
    assert record["license"] == "llama3.1"
    assert record["task_type"] == ["text-generation"]
    # The Hub's resolved relation (canonical id), not the card's pre-rename base_model.
    assert recorded["cardData"]["base_model"] == "meta-llama/Meta-Llama-3.1-8B"
    assert record["relationships"] == [
        {"relationship_type": "finetune", "target_model_id": "meta-llama/Llama-3.1-8B"}
    ]
    assert record["safetensors"]["total_parameters"] == 8030261248
    assert record["card_data"]["extra_gated_prompt"].startswith("### LLAMA 3.1 COMMUNITY")
    assert record["created_at"] == "2024-07-18T08:56:00.000Z"
    assert record["last_updated"] == "2024-09-25T17:00:57.000Z"
    assert [entry["filename"] for entry in record["files"]][-3:] == [
        "special_tokens_map.json",
        "tokenizer.json",
        "tokenizer_config.json",
    ]


def test_gguf_repo_field_by_field() -> None:
    info = parse_model_info(GGUF.read_bytes())
    record = normalise(info, info, crawled_at=CRAWLED_AT)
    assert validate_record(record) == []
    assert record["model_id"] == "ggml-org/gemma-3-1b-it-GGUF"
    assert record["config"] is None  # `config: {}` for GGUF-only repos
    assert record["architecture"] == "gemma3"
    assert record["gguf"] == {
        "total_parameters": 999885952,
        "architecture": "gemma3",
        "context_length": 32768,
        "total_file_size": 2006573568,
    }
    assert record["safetensors"] is None
    assert record["pipeline_tag"] is None and record["task_type"] == []
    assert record["license"] == "gemma"
    assert record["language"] == []
    assert record["relationships"] == [
        {"relationship_type": "quantized", "target_model_id": "google/gemma-3-1b-it"}
    ]
    assert [entry["filename"] for entry in record["files"]] == [
        ".gitattributes",
        "README.md",
        "gemma-3-1b-it-Q4_K_M.gguf",
        "gemma-3-1b-it-Q8_0.gguf",
        "gemma-3-1b-it-f16.gguf",
    ]


def test_zephyr_model_index_becomes_performance_rows() -> None:
    recorded, record = sample("HuggingFaceH4_zephyr-7b-beta")
    first = recorded["model-index"][0]["results"][0]
    assert record["performance"][0] == {
        "task": "text-generation",
        "task_name": "Text Generation",
        "dataset": "ai2_arc",
        "dataset_name": "AI2 Reasoning Challenge (25-Shot)",
        "dataset_config": "ARC-Challenge",
        "dataset_split": "test",
        "metric": "acc_norm",
        "metric_name": "normalized accuracy",
        "value": first["metrics"][0]["value"],
        "verified": False,
    }
    assert record["relationships"] == [
        {"relationship_type": "finetune", "target_model_id": "mistralai/Mistral-7B-v0.1"}
    ]


BERT_README = """---
language: en
tags:
- exbert
license: apache-2.0
datasets:
- bookcorpus
- wikipedia
---

# BERT base model (uncased)

A transformers model pretrained on English text with a [masked language modeling](https://x.org)
objective. ![badge](https://img.shields.io/x.svg)

## Model description
More text.
"""
BERT_CONFIG = {
    "architectures": ["BertForMaskedLM"],
    "hidden_size": 768,
    "intermediate_size": 3072,
    "max_position_embeddings": 512,
    "model_type": "bert",
    "num_attention_heads": 12,
    "num_hidden_layers": 12,
    "vocab_size": 30522,
    "torch_dtype": "float32",
}


def test_card_and_config_json_fill_description_card_and_sizes() -> None:
    recorded, _ = sample("google-bert_bert-base-uncased")
    info = parse_model_info(orjson.dumps(recorded))
    record = normalise(
        info, info, BERT_README.encode(), orjson.dumps(BERT_CONFIG), crawled_at=CRAWLED_AT
    )
    assert validate_record(record) == []
    assert record["card"] == BERT_README
    assert record["card_data"] == recorded["cardData"]  # the README's front matter
    assert record["description"] == (
        "A transformers model pretrained on English text with a masked language modeling objective."
    )
    assert {key: record["config"][key] for key in BERT_CONFIG} == BERT_CONFIG
    assert record["config"]["num_key_value_heads"] is None


def test_gpt2_and_multimodal_config_names() -> None:
    gpt2 = {"architectures": ["GPT2LMHeadModel"], "n_embd": 768, "n_head": 12, "n_layer": 12}
    gpt2 |= {"n_positions": 1024, "n_inner": None, "model_type": "gpt2"}
    llava = {"architectures": ["X"], "text_config": {"hidden_size": 4096, "num_hidden_layers": 32}}
    llava["quantization_config"] = {"quant_method": "awq"}
    info = parse_model_info({"id": "o/m", "_id": "a" * 24, "sha": "b" * 40})
    first = normalise(info, info, config_json=orjson.dumps(gpt2), crawled_at=CRAWLED_AT)["config"]
    assert (first["hidden_size"], first["num_attention_heads"], first["num_hidden_layers"]) == (
        768,
        12,
        12,
    )
    assert (first["max_position_embeddings"], first["intermediate_size"]) == (1024, None)
    second = normalise(info, info, config_json=orjson.dumps(llava), crawled_at=CRAWLED_AT)
    assert (second["config"]["hidden_size"], second["config"]["num_hidden_layers"]) == (4096, 32)
    assert second["config"]["quant_method"] == "awq"
    whisper = {"architectures": ["WhisperForConditionalGeneration"], "d_model": 768}
    whisper |= {"encoder_layers": 12, "decoder_layers": 6, "encoder_attention_heads": 12}
    whisper |= {"max_source_positions": 1500}
    third = normalise(info, info, config_json=orjson.dumps(whisper), crawled_at=CRAWLED_AT)
    facts = ("hidden_size", "num_hidden_layers", "decoder_layers", "num_attention_heads")
    assert [third["config"][name] for name in facts] == [768, 12, 6, 12]
    assert third["config"]["max_position_embeddings"] == 1500
    timm = {"architecture": "resnet50", "num_classes": 1000, "num_features": 2048}
    fourth = normalise(info, info, config_json=orjson.dumps(timm), crawled_at=CRAWLED_AT)
    assert fourth["architecture"] == "resnet50"
    assert (fourth["config"]["num_classes"], fourth["config"]["num_features"]) == (1000, 2048)


def test_blob_data_gives_sizes_blob_ids_lfs_flags_and_sha256() -> None:
    recorded, _ = sample("openai-community_gpt2")
    lfs_sha = "248dfc3911869ec493c76e65bf2fcf7f615828b0254c12b473182f0f81d3a707"
    recorded["siblings"] = [
        {
            "rfilename": "model.safetensors",
            "blobId": "a" * 40,
            "size": 548105171,
            "lfs": {"sha256": lfs_sha, "size": 548105171, "pointerSize": 135},
        },
        {"rfilename": "config.json", "blobId": "b" * 40, "size": 665},
    ]
    info = parse_model_info(orjson.dumps(recorded))
    record = normalise(info, info, crawled_at=CRAWLED_AT)
    assert validate_record(record) == []
    empty = {"cid": None, "sha256_cid": None, "local_path": None}
    empty |= {"fetch_status": None, "fetch_reason": None}
    assert record["files"] == [
        {
            "filename": "model.safetensors",
            "size_bytes": 548105171,
            "blob_id": "a" * 40,
            "lfs": True,
            "sha256": lfs_sha,
            **empty,
        },
        {
            "filename": "config.json",
            "size_bytes": 665,
            "blob_id": "b" * 40,
            "lfs": False,
            "sha256": None,
            **empty,
        },
    ]


def listing_item(recorded: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """What `GET /api/models?expand=...` returns for the model: `_id`, `id`, expanded keys."""
    item = {key: recorded[key] for key in ("_id", "id", *RECORD_EXPAND) if key in recorded}
    item["siblings"] = [{"rfilename": s["rfilename"]} for s in recorded["siblings"]]
    return item | extra


def test_lite_mode_uses_the_listing_item_alone() -> None:
    recorded, full = sample("google-bert_bert-base-uncased")
    listed = parse_model_info(listing_item(recorded, downloadsAllTime=2_000_000_000))
    record = normalise(listed, crawled_at=CRAWLED_AT)
    assert validate_record(record) == []
    assert record["crawl_mode"] == "lite"
    assert record["downloads_all_time"] == 2_000_000_000
    same = set(full) - {"crawl_mode", "downloads_all_time"}
    assert {key: record[key] for key in same} == {key: full[key] for key in same}


def test_full_mode_prefers_the_pinned_info_and_keeps_listing_only_fields() -> None:
    recorded, _ = sample("google-bert_bert-base-uncased")
    listed = parse_model_info(listing_item(recorded, downloads=1, downloadsAllTime=99))
    info = parse_model_info(orjson.dumps(recorded))
    record = normalise(listed, info, crawled_at=CRAWLED_AT)
    assert (record["downloads"], record["downloads_all_time"]) == (72376843, 99)


def test_a_default_listing_item_has_no_sha_and_is_rejected_by_the_schema() -> None:
    path = SAMPLES / "transcribed" / "api_models_list_default_first2items__body__2025-11.json"
    item = json.loads(path.read_text())[0]
    record = normalise(parse_model_info(item), crawled_at=CRAWLED_AT)
    assert validate_record(record) == ["sha: None is not of type 'string'"]
    assert record["license"] == "other" and record["task_type"] == ["text-generation"]


def test_rename_and_sha_mismatch_are_warnings_and_the_info_wins() -> None:
    recorded, _ = sample("google-bert_bert-base-uncased")
    listed = parse_model_info(listing_item(recorded, id="bert-base-uncased", sha="c" * 40))
    info = parse_model_info(orjson.dumps(recorded))
    record = normalise(listed, info, crawled_at=CRAWLED_AT)
    assert (record["model_id"], record["sha"]) == (recorded["id"], recorded["sha"])
    assert record["warnings"] == [
        "listed as 'bert-base-uncased', model info says 'google-bert/bert-base-uncased';"
        " kept the latter",
        f"listed at sha {'c' * 40}, model info is {recorded['sha']}; kept the latter",
    ]


HOSTILE_README = """---
a: &a ["x","x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d,*d]
---
The description survives the bomb.
"""


def test_a_hostile_card_keeps_the_record_and_falls_back_to_the_hubs_card_data() -> None:
    recorded, _ = sample("google-bert_bert-base-uncased")
    info = parse_model_info(orjson.dumps(recorded))
    record = normalise(info, info, HOSTILE_README.encode(), b"[not json", crawled_at=CRAWLED_AT)
    assert validate_record(record) == []
    assert record["card_data"] == recorded["cardData"]
    assert record["description"] == "The description survives the bomb."
    assert record["config"]["architectures"] == ["BertForMaskedLM"]  # the Hub's subset
    assert len(record["warnings"]) == 2
    assert record["warnings"][0] == (
        "card front matter ignored: YAML aliases expand too far (possible alias bomb)"
    )
    assert record["warnings"][1].startswith("config.json is not valid JSON (")
    assert record["warnings"][1].endswith("; used the Hub's config")


def test_hostile_values_everywhere_still_give_a_valid_record() -> None:
    body = {
        "_id": "f" * 24,
        "id": "evil/model",
        "sha": "d" * 40,
        "downloads": -1,
        "tags": "not-a-list",
        "pipeline_tag": "text-generation",
        "cardData": {
            "language": 5,
            "license": {"name": "mit"},
            "base_model": ["../../etc", "good/base", "good/base", 7],
            "base_model_relation": "cousin",
            "model-index": [{"results": [{"metrics": [{"value": "n/a"}, 3], "task": 1}]}, 2],
            "deep": json.loads("[" * 80 + "]" * 80),
        },
        "model-index": None,
        "config": "string",
        "siblings": [{"rfilename": "adapter_config.json"}, {"rfilename": 5}],
    }
    record = normalise(parse_model_info(body), crawled_at=CRAWLED_AT)
    assert validate_record(record) == []
    assert record["card_data"] is None  # nested deeper than 64 levels: refused
    assert record["relationships"] == []
    assert record["performance"] == [] and record["license"] is None
    assert len(record["warnings"]) >= 5
    body["cardData"].pop("deep")
    record = normalise(parse_model_info(body), crawled_at=CRAWLED_AT)
    assert validate_record(record) == []
    assert record["relationships"] == [
        {"relationship_type": "merge", "target_model_id": "good/base"}
    ]
    assert record["performance"] == [
        {
            "task": None,
            "task_name": None,
            "dataset": None,
            "dataset_name": None,
            "dataset_config": None,
            "dataset_split": None,
            "metric": None,
            "metric_name": None,
            "value": None,
            "verified": None,
        }
    ]
    assert "model-index value 'n/a' is not a number; kept as null" in record["warnings"]
    assert "card `language` is neither a string nor a list; ignored" in record["warnings"]


def test_card_relationship_inference_like_the_hub() -> None:
    def relation(card: dict[str, Any], files: list[str], **extra: Any) -> list[dict[str, str]]:
        body = {"id": "o/m", "cardData": card, "siblings": [{"rfilename": f} for f in files]}
        return normalise(parse_model_info(body | extra), crawled_at=CRAWLED_AT)["relationships"]

    base = {"base_model": "a/b"}
    assert relation(base, ["model.safetensors"])[0]["relationship_type"] == "finetune"
    assert relation(base, ["adapter_config.json"])[0]["relationship_type"] == "adapter"
    assert relation(base, ["m.Q4.gguf"])[0]["relationship_type"] == "quantized"
    assert relation({"base_model": ["a/b", "c/d"]}, [])[1] == {
        "relationship_type": "merge",
        "target_model_id": "c/d",
    }
    explicit = base | {"base_model_relation": "quantized"}
    assert relation(explicit, [])[0]["relationship_type"] == "quantized"
    tags = {"tags": ["base_model:adapter:x/y"]}
    assert relation(base, [], **tags) == [
        {"relationship_type": "adapter", "target_model_id": "x/y"}
    ]


def test_card_limits_come_from_settings_and_apply() -> None:
    limits = CardLimits.from_settings({"CARD_DESCRIPTION_MAX_CHARS": "20", "CARD_MAX_BYTES": 100})
    assert (limits.description_max_chars, limits.max_bytes, limits.max_aliases) == (20, 100, 100)
    info = parse_model_info({"id": "o/m", "_id": "a" * 24, "sha": "b" * 40})
    readme = ("Words of a long description " * 10).encode()
    record = normalise(info, info, readme, crawled_at=CRAWLED_AT, limits=limits)
    assert record["description"] == "Words of a long…"
    assert len(record["card"]) == 100


def test_yaml_round_trip_of_every_recorded_card_data() -> None:
    """README front matter written from each recorded cardData parses back to it exactly."""
    for path in full_answers():
        recorded = orjson.loads(body_of(path))
        if not recorded.get("cardData"):
            continue
        front = yaml.safe_dump(recorded["cardData"], allow_unicode=True, sort_keys=False)
        info = parse_model_info(body_of(path))
        readme = f"---\n{front}---\nBody.\n".encode()
        record = normalise(info, info, readme, crawled_at=CRAWLED_AT)
        assert record["card_data"] == recorded["cardData"], path.name
        assert record["warnings"] == [], path.name


def test_a_pipeline_tag_that_cannot_name_a_partition_is_dropped_with_a_warning() -> None:
    for value in ("Text Generation", "../up", "none"):
        body = {"id": "o/m", "_id": "a" * 24, "sha": "b" * 40, "cardData": {"pipeline_tag": value}}
        record = normalise(parse_model_info(body), crawled_at=CRAWLED_AT)
        assert validate_record(record) == []
        assert record["pipeline_tag"] is None and record["task_type"] == [value]
        assert record["warnings"] == [f"pipeline_tag {value!r} is not a valid tag; ignored"]

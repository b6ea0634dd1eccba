"""Parsing the Hub's JSON into typed objects: tolerant of bad values, strict about ids."""

import json
from pathlib import Path

import orjson
import pytest

from hfspider.hub.api import (
    GgufSummary,
    HubFormatError,
    LfsInfo,
    RepoFile,
    SafetensorsSummary,
    format_timestamp,
    parse_listing_page,
    parse_model_info,
    parse_timestamp,
    parse_tree_entries,
)

SAMPLES = Path(__file__).resolve().parent.parent / "hfspider" / "hubsim" / "samples"
SHA = "0123456789abcdef0123456789abcdef01234567"


def sample_body(name: str) -> dict:
    (path,) = SAMPLES.glob(f"interactions/api_models_{name}*.json")
    return json.loads(json.loads(path.read_text())["response"]["body"])


def test_real_bert_answer_parses_into_typed_fields() -> None:
    info = parse_model_info(
        orjson.dumps(sample_body("google-bert_bert-base-uncased__200__2025-04-24"))
    )
    assert info.id == "google-bert/bert-base-uncased"
    assert info.hub_id == "621ffdc036468d709f174338"
    assert info.sha == "86b5e0934494bd15c9632b12f734a8a67f723594"
    assert (info.created_at, info.last_modified) == (
        "2022-03-02T23:29:04.000Z",
        "2024-02-19T11:06:12.000Z",
    )
    assert (info.downloads, info.likes, info.gated, info.private) == (72376843, 2065, "no", False)
    assert info.safetensors == SafetensorsSummary((("F32", 110106428),), 110106428)
    assert info.siblings is not None and len(info.siblings) == 16
    assert info.siblings[0] == RepoFile(".gitattributes")
    assert info.card_data == {
        "language": "en",
        "tags": ["exbert"],
        "license": "apache-2.0",
        "datasets": ["bookcorpus", "wikipedia"],
    }
    assert info.model_index is None and info.warnings == ()


def test_real_gguf_answer() -> None:
    path = SAMPLES / "transcribed" / "api_models_ggml-org_gemma-3-1b-it-GGUF__body__2026-08.json"
    info = parse_model_info(path.read_bytes())
    assert info.gguf == GgufSummary(999885952, "gemma3", 32768, 2006573568)
    assert info.config == {} and info.safetensors is None and info.warnings == ()


def test_blobs_siblings_carry_sizes_blob_ids_and_lfs_sha256() -> None:
    lfs_sha = "248dfc3911869ec493c76e65bf2fcf7f615828b0254c12b473182f0f81d3a707"
    body = {
        "id": "openai-community/gpt2",
        "siblings": [
            {
                "rfilename": "model.safetensors",
                "blobId": "a" * 40,
                "size": 548105171,
                "lfs": {"sha256": lfs_sha, "size": 548105171, "pointerSize": 135},
            },
            {"rfilename": "config.json", "blobId": "b" * 40, "size": 665},
        ],
    }
    info = parse_model_info(body)
    assert info.siblings == (
        RepoFile("model.safetensors", 548105171, "a" * 40, LfsInfo(lfs_sha, 548105171, 135)),
        RepoFile("config.json", 665, "b" * 40, None),
    )


def test_tree_entries_use_oid_and_skip_directories() -> None:
    body = orjson.dumps(
        [
            {"type": "directory", "oid": "c" * 40, "size": 0, "path": "sub"},
            {"type": "file", "oid": "d" * 40, "size": 12, "path": "sub/a.txt"},
            {
                "type": "file",
                "oid": "e" * 40,
                "size": 9,
                "path": "w.bin",
                "lfs": {"oid": "f" * 64, "size": 10, "pointerSize": 134},
            },
            {"type": "file", "size": 1},
        ]
    )
    files, warnings = parse_tree_entries(body)
    assert files == (
        RepoFile("sub/a.txt", 12, "d" * 40),
        RepoFile("w.bin", 9, "e" * 40, LfsInfo("f" * 64, 10, 134)),
    )
    assert warnings == (
        "file 'w.bin': size 9 differs from lfs size 10",
        "file entry without a `path` string skipped",
    )


def test_malformed_values_become_warnings_not_exceptions() -> None:
    body = {
        "_id": "not-an-object-id",
        "id": "org/model",
        "sha": SHA.upper(),
        "downloads": "many",
        "likes": -3,
        "downloadsAllTime": 2**64,
        "private": "no",
        "gated": "sometimes",
        "createdAt": "yesterday",
        "lastModified": "2024-01-01T00:00:00",  # no zone
        "tags": ["ok", 3, None],
        "cardData": ["not", "a", "mapping"],
        "safetensors": {"parameters": {"F16": "x", "BF16": 7}, "total": 7.0},
        "gguf": "none",
        "baseModels": {"relation": "cousin", "models": [{"id": "a/b"}]},
        "siblings": [{"rfilename": "a.bin", "size": 1.5, "blobId": "xyz"}, {"nope": 1}],
        "unknown_future_key": {"ignored": True},
    }
    info = parse_model_info(body)
    assert info.id == "org/model"
    assert (info.hub_id, info.sha, info.downloads, info.likes, info.downloads_all_time) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert (info.private, info.gated, info.created_at, info.last_modified) == (None,) * 4
    assert info.tags == ("ok",) and info.card_data is None and info.gguf is None
    assert info.safetensors == SafetensorsSummary((("BF16", 7),), 7)
    assert info.base_models == ()
    assert info.siblings == (RepoFile("a.bin"),)
    assert len(info.warnings) == 16
    assert all(warning.startswith(("org/model", "file ")) for warning in info.warnings)
    assert "org/model: `downloads` should be a non-negative 64-bit integer, got str; ignored" in (
        info.warnings
    )


def test_base_models_of_the_hub() -> None:
    body = {
        "id": "org/q",
        "baseModels": {"relation": "quantized", "models": [{"_id": "x", "id": "org/base"}]},
    }
    assert parse_model_info(body).base_models == (("quantized", "org/base"),)
    merged = {
        "id": "org/m",
        "baseModels": [{"relation": "merge", "models": [{"id": "a/x"}, {"id": "b/y"}, {}]}],
    }
    info = parse_model_info(merged)
    assert info.base_models == (("merge", "a/x"), ("merge", "b/y"))
    assert info.warnings == ("org/m: `baseModels` model without id ignored",)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"not json", "model info is not valid JSON"),
        (b"[1, 2]", "is a JSON list, not an object"),
        (b'{"private": false}', "no valid `id`"),
        (b'{"id": "../../etc/passwd"}', "no valid `id`"),
        (b'{"id": 42}', "no valid `id`"),
    ],
)
def test_an_answer_without_a_usable_id_is_an_error(body: bytes, message: str) -> None:
    with pytest.raises(HubFormatError, match=message):
        parse_model_info(body)


def test_legacy_model_id_key_is_accepted() -> None:
    assert parse_model_info({"modelId": "gpt2"}).id == "gpt2"


def test_listing_page_sets_bad_items_aside_with_reasons() -> None:
    path = SAMPLES / "transcribed" / "api_models_list_default_first2items__body__2025-11.json"
    items = json.loads(path.read_text())
    body = orjson.dumps([items[0], {"id": "bad id!"}, "junk", items[1]])
    page = parse_listing_page(body)
    assert [model.id for model in page.models] == [
        "moonshotai/Kimi-K2-Thinking",
        "MiniMaxAI/MiniMax-M2",
    ]
    assert page.models[0].created_at == "2025-11-04T08:25:31.000Z"
    assert page.models[1].downloads == 846249 and page.models[1].pipeline_tag == "text-generation"
    assert page.raw == (items[0], items[1])
    assert [(item.reason, item.raw) for item in page.rejected] == [
        ("model info has no valid `id`: 'bad id!'", {"id": "bad id!"}),
        ("model info is a JSON str, not an object", "junk"),
    ]
    with pytest.raises(HubFormatError, match="listing page is a JSON dict"):
        parse_listing_page(b'{"error": "Invalid cursor"}')


def test_timestamps_are_normalised_to_utc_milliseconds() -> None:
    assert parse_timestamp("2024-02-19T11:06:12.000Z") == "2024-02-19T11:06:12.000Z"
    assert parse_timestamp("2024-02-19T13:06:12.123456+02:00") == "2024-02-19T11:06:12.123Z"
    assert parse_timestamp("2024-02-19T11:06:12Z") == "2024-02-19T11:06:12.000Z"
    for bad in ("2024-02-19T11:06:12", "2024-02-30T00:00:00Z", "soon", 5):
        with pytest.raises((TypeError, ValueError)):
            parse_timestamp(bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="time zone"):
        format_timestamp(__import__("datetime").datetime(2024, 1, 1))

"""The published record schema: well-formed, documented, and strict where it must be."""

import copy
import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
from jsonschema import Draft202012Validator

from hfspider.hub.api import parse_model_info
from hfspider.hub.normalise import normalise
from hfspider.schema import record_schema, validate_record

ROOT = Path(__file__).resolve().parent.parent
SAMPLE = ROOT / "hfspider/hubsim/samples/transcribed"
DESIGN_FIELDS = (
    "model_id name description architecture task_type language license downloads last_updated "
    "tags author files config performance relationships embedding_vector cid"
).split()
ISSUE_3_FIELDS = (
    "sha created_at likes library_name pipeline_tag gated card card_data safetensors gguf "
    "crawled_at"
).split()


def valid_record() -> dict[str, Any]:
    path = SAMPLE / "api_models_ggml-org_gemma-3-1b-it-GGUF__body__2026-08.json"
    info = parse_model_info(path.read_bytes())
    crawled_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    record = normalise(info, info, crawled_at=crawled_at)
    record["files"][2] |= {
        "size_bytes": 806058272,
        "blob_id": "e" * 40,
        "lfs": True,
        "sha256": "a" * 64,
        "cid": "bafybeigdyrzt5sfp7udm7hu76uh7y26nf3efuylqabf3oclgtqy55fbzdi",
        "sha256_cid": "bafkreigh2akiscaildcqabsyg3dfr6chu3fgpregiymsck7e7aqa4s52zy",
        "local_path": "files/ggml-org/gemma-3-1b-it-GGUF/f9c2/gemma-3-1b-it-Q4_K_M.gguf",
        "fetch_status": "fetched",
    }
    record["files"][3] |= {"fetch_status": "skipped", "fetch_reason": "over max_file_size"}
    record["cid"] = "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG"
    record["embedding_vector"] = [0.25, -1.0]
    return record


def test_schema_is_draft_2020_12_and_every_field_is_described() -> None:
    schema = record_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)

    def walk(node: Any, path: str) -> None:
        if isinstance(node, dict):
            for name, prop in node.get("properties", {}).items():
                assert prop.get("description"), f"{path}/{name} has no description"
            for key, value in node.items():
                walk(value, f"{path}/{key}")

    walk(schema, "")
    assert sorted(schema["required"]) == sorted(schema["properties"])


def test_schema_keeps_the_design_fields_and_adds_issue_3_4_5_fields() -> None:
    schema = record_schema()
    properties = schema["properties"]
    assert set(DESIGN_FIELDS + ISSUE_3_FIELDS) <= set(properties)
    file_fields = schema["$defs"]["file"]["properties"]
    assert {"filename", "size_bytes", "cid", "sha256", "blob_id", "lfs"} <= set(file_fields)
    assert {"sha256_cid", "local_path", "fetch_status", "fetch_reason"} <= set(file_fields)
    assert "dir_cid" in properties
    config = properties["config"]["properties"]
    assert {"hidden_size", "num_attention_heads", "num_hidden_layers"} <= set(config)
    assert properties["performance"]["type"] == "array"
    assert set(schema["$defs"]["performance"]["properties"]) >= {
        "task",
        "dataset",
        "metric",
        "value",
    }
    assert properties["cid"]["$ref"] == properties["dir_cid"]["$ref"] == "#/$defs/cid"
    assert "null" in schema["$defs"]["cid"]["type"]  # filled later by the IPFS stage


def test_package_copy_is_the_published_file() -> None:
    published = json.loads((ROOT / "hfspider/schema/record.schema.json").read_text())
    assert record_schema() == published


def test_docs_describe_every_field() -> None:
    doc = (ROOT / "docs/schema.md").read_text()
    schema = record_schema()
    groups = [schema["properties"]] + [
        schema["$defs"][name]["properties"] for name in ("file", "performance", "relationship")
    ]
    groups += [schema["properties"][name]["properties"] for name in ("config", "gguf")]
    groups += [schema["properties"]["safetensors"]["properties"]]
    for properties in groups:
        for name in properties:
            assert f"| `{name}` |" in doc, f"docs/schema.md does not describe {name}"


def test_a_complete_record_is_valid() -> None:
    assert validate_record(valid_record()) == []


def broken(path: str, value: Any) -> dict[str, Any]:
    record = copy.deepcopy(valid_record())
    *parents, last = path.split("/")
    target = record
    for part in parents:
        target = target[int(part)] if part.isdigit() else target[part]
    if value is KeyError:
        del target[last]
    else:
        target[int(last) if last.isdigit() else last] = value
    return record


INVALID = [
    ("sha", None, "sha: None is not of type 'string'"),
    ("sha", "F" * 40, "sha: 'FFFF"),
    ("hub_id", KeyError, "(record): 'hub_id' is a required property"),
    ("model_id", "../etc/passwd", "model_id: '../etc/passwd' does not match"),
    ("downloads", -1, "downloads: -1 is less than the minimum of 0"),
    ("downloads", 2**63, "downloads: 9223372036854775808 is greater than the maximum"),
    ("likes", "3", "likes: '3' is not of type 'integer', 'null'"),
    ("gated", False, "gated: False is not of type 'string', 'null'"),
    ("gated", "yes", "gated: 'yes' is not one of ['no', 'auto', 'manual', None]"),
    ("pipeline_tag", "none", "pipeline_tag: 'none' does not match"),
    ("pipeline_tag", "../x", "pipeline_tag: '../x' does not match"),
    ("created_at", "2024-01-01", "created_at: '2024-01-01' does not match"),
    ("crawled_at", "2024-01-01T00:00:00+02:00", "crawled_at: '2024-01-01T00:00:00+02:00'"),
    ("crawl_mode", "fast", "crawl_mode: 'fast' is not one of ['full', 'lite']"),
    ("tags", ["ok", 3], "tags/1: 3 is not of type 'string'"),
    ("files/2/lfs", "yes", "files/2/lfs: 'yes' is not of type 'boolean', 'null'"),
    ("files/2/sha256", "xyz", "files/2/sha256: 'xyz' does not match"),
    ("files/2/cid", "not-a-cid", "files/2/cid: 'not-a-cid' does not match"),
    ("files/2/fetch_status", "done", "files/2/fetch_status: 'done' is not one of"),
    ("files/0/extra", 1, "files/0: Additional properties are not allowed ('extra' was"),
    (
        "relationships",
        [{"relationship_type": "fork", "target_model_id": "a/b"}],
        "relationships/0/relationship_type: 'fork' is not one of",
    ),
    ("config", {"hidden_size": 1}, "config: 'architectures' is a required property"),
    ("card_data", "text", "card_data: 'text' is not of type 'object', 'null'"),
    ("embedding_vector", ["x"], "embedding_vector/0: 'x' is not of type 'number'"),
    ("surprise", 1, "(record): Additional properties are not allowed ('surprise' was"),
]


@pytest.mark.parametrize(("path", "value", "message"), INVALID)
def test_invalid_records_get_clear_messages(path: str, value: Any, message: str) -> None:
    errors = validate_record(broken(path, value))
    assert errors and any(error.startswith(message) for error in errors), errors


def test_all_errors_are_reported_at_once_and_messages_stay_short() -> None:
    record = broken("sha", None)
    record["downloads"] = "x" * 1_000_000
    record["files"][0]["filename"] = ""
    errors = validate_record(record)
    assert len(errors) == 3
    assert all(len(error) <= 300 for error in errors)
    assert [error.split(":")[0] for error in errors] == ["downloads", "files/0/filename", "sha"]
    assert validate_record("not a record") == ["(record): 'not a record' is not of type 'object'"]


def test_the_fast_and_the_reference_validator_agree() -> None:
    """jsonschema-rs decides, jsonschema explains: both must judge every record alike."""
    fast = jsonschema_rs.Draft202012Validator(record_schema())
    reference = Draft202012Validator(record_schema())
    samples = [valid_record(), "not a record", {}]
    samples += [broken(path, value) for path, value, _ in INVALID]
    record = valid_record()
    record["card"] = "\u202e" + "x" * 70_000 + "\ud7ff"  # long and odd text stays valid
    samples.append(record)
    for sample in samples:
        assert fast.is_valid(sample) == reference.is_valid(sample), sample


def test_timestamp_pattern_matches_what_the_normaliser_writes() -> None:
    pattern = re.compile(record_schema()["$defs"]["timestamp"]["pattern"])
    assert pattern.fullmatch(valid_record()["created_at"])
    assert pattern.fullmatch(valid_record()["crawled_at"])

"""[files] settings and file selection (pure): globs, deny over allow, size caps, defaults."""

from __future__ import annotations

import pytest

from hfspider.config import load_settings
from hfspider.files.config import FilesConfig, parse_globs, parse_size
from hfspider.files.select import Selection, matches

# The files of a typical transformers repo, with sizes, as the Hub lists them.
REPO = [
    (".gitattributes", 1519),
    ("README.md", 5_000),
    ("config.json", 700),
    ("generation_config.json", 120),
    ("merges.txt", 456_000),
    ("model-00001-of-00002.safetensors", 4_900_000_000),
    ("model-00002-of-00002.safetensors", 2_100_000_000),
    ("model.safetensors.index.json", 24_000),
    ("onnx/config.json", 700),
    ("onnx/model.onnx", 500_000_000),
    ("pytorch_model.bin", 7_000_000_000),
    ("special_tokens_map.json", 400),
    ("tokenizer.json", 9_000_000),
    ("tokenizer.model", 500_000),
    ("tokenizer_config.json", 50_000),
    ("vocab.json", 800_000),
    ("original/consolidated.00.pth", 16_000_000_000),
]


def chosen(selection: Selection, files: list[tuple[str, int | None]]) -> list[str]:
    picked, used = [], 0
    for path, size in files:
        if selection.skip_reason(path, size, used) is None:
            picked.append(path)
            used += size or 0
    return picked


def test_defaults_fetch_card_configs_and_tokenizer_but_no_weights() -> None:
    selection = Selection.from_config(FilesConfig.from_settings(load_settings()))
    assert chosen(selection, REPO) == [
        "README.md",
        "config.json",
        "generation_config.json",
        "merges.txt",
        "model.safetensors.index.json",
        "onnx/config.json",
        "special_tokens_map.json",
        "tokenizer.json",
        "tokenizer.model",
        "tokenizer_config.json",
        "vocab.json",
    ]


def test_weights_switched_on_from_the_command_line_shape() -> None:
    # `-s FILES_ALLOW='*' -s FILES_MAX_FILE_SIZE=0 -s FILES_MAX_MODEL_SIZE=0` arrive as strings
    settings = {
        **load_settings(),
        "FILES_ALLOW": "*",
        "FILES_MAX_FILE_SIZE": "0",
        "FILES_MAX_MODEL_SIZE": "0",
    }
    selection = Selection.from_config(FilesConfig.from_settings(settings))
    assert chosen(selection, REPO) == [path for path, _ in REPO]


def test_pattern_without_slash_matches_names_in_any_folder_with_slash_the_whole_path() -> None:
    assert matches("onnx/config.json", "*.json")
    assert matches("config.json", "config.json")
    assert matches("onnx/config.json", "config.json")
    assert not matches("onnx/config.json", "/config.json")
    assert matches("onnx/model.onnx", "onnx/*")
    assert not matches("model.onnx", "onnx/*")
    assert not matches("README.MD", "*.md")  # case-sensitive, like the Hub's paths


def test_deny_wins_over_allow_and_reasons_name_the_setting() -> None:
    selection = Selection(allow=("*.json",), deny=("onnx/*",))
    assert (
        selection.skip_reason("onnx/config.json", 10, 0) == "denied by FILES_DENY pattern 'onnx/*'"
    )
    assert selection.skip_reason("model.bin", 10, 0) == "not selected by FILES_ALLOW"
    assert selection.skip_reason("config.json", 10, 0) is None


def test_caps_per_file_and_per_model_in_record_order() -> None:
    selection = Selection(allow=("*",), max_file_size=100, max_model_size=250)
    files: list[tuple[str, int | None]] = [
        ("a", 100),
        ("b", 101),
        ("c", 100),
        ("d", 60),
        ("e", 50),
        ("f", None),
    ]
    assert chosen(selection, files) == ["a", "c", "e", "f"]
    assert selection.skip_reason("b", 101, 0) == "101 bytes, over FILES_MAX_FILE_SIZE (100)"
    assert selection.skip_reason("d", 60, 200) == (
        "60 bytes would pass FILES_MAX_MODEL_SIZE (250; 200 already selected)"
    )
    # "f", of unknown size, passes selection: the download refuses it (nothing to verify)
    assert selection.skip_reason("f", None, 10**9) is None


@pytest.mark.parametrize(
    ("value", "size"),
    [(0, 0), (1048576, 1 << 20), ("64MiB", 64 << 20), ("1.5GB", 1_500_000_000), ("2 kib", 2048)],
)
def test_sizes_with_units(value: object, size: int) -> None:
    assert parse_size(value, "X") == size


@pytest.mark.parametrize("value", ["-1", "12 parsecs", "MiB", True, -5, "1e9"])
def test_bad_sizes_are_refused_with_the_setting_name(value: object) -> None:
    with pytest.raises(ValueError, match="FILES_MAX_FILE_SIZE"):
        parse_size(value, "FILES_MAX_FILE_SIZE")


def test_globs_from_toml_lists_and_command_line_strings() -> None:
    assert parse_globs(["*.json", " *.md "], "X") == ("*.json", "*.md")
    assert parse_globs("*.json, *.md,", "X") == ("*.json", "*.md")
    with pytest.raises(ValueError, match="FILES_DENY"):
        parse_globs(["*.json", 3], "FILES_DENY")


def test_config_requires_every_key_and_a_positive_concurrency() -> None:
    settings = load_settings()
    with pytest.raises(KeyError, match="FILES_ALLOW"):
        FilesConfig.from_settings({k: v for k, v in settings.items() if k != "FILES_ALLOW"})
    with pytest.raises(ValueError, match="FILES_CONCURRENCY"):
        FilesConfig.from_settings({**settings, "FILES_CONCURRENCY": "0"})
    # the download sockets' receive buffer: bounded by default, 0 for the kernel's autotuning
    assert FilesConfig.from_settings(settings).receive_buffer == 192 << 10
    autotuned = FilesConfig.from_settings({**settings, "FILES_RECEIVE_BUFFER": "0"})
    assert autotuned.receive_buffer == 0

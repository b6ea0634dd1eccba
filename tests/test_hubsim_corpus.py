"""The emulator's corpus in-process: deterministic, realistic, and consistent with its bytes."""

from __future__ import annotations

import hashlib
import json
import re
import statistics
import struct
from collections import Counter
from pathlib import Path

import pytest
import yaml

from hfspider.hubsim.content import (
    DigestStore,
    Keystream,
    content_key,
    git_blob_sha1,
    lfs_pointer,
    read_bytes,
)
from hfspider.hubsim.corpus import FEATURES, HOSTILE_KINDS, Mutation, build_corpus
from hfspider.hubsim.repofiles import file_names, snapshot
from hfspider.hubsim.wire import model_field

FEATURE_CORPUS = len(FEATURES) + 40


@pytest.fixture(scope="module")
def corpus():
    return build_corpus(2000, 11, samples=None, huge_size=50_000_000)


def first_paragraph_text(readme: str) -> str:
    """The plain text of a card's first body paragraph (the contract of Intent.description)."""
    body = readme.split("\n---\n", 1)[1]
    for block in re.split(r"\n\s*\n", body):
        block = block.strip()
        if not block or block.startswith(("#", "<!--", "```", "[![", "- ", "|")):
            continue
        block = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", block)
        block = re.sub(r"(\*\*|\*|`)(.+?)\1", r"\2", block)
        return " ".join(block.split())
    raise AssertionError("no paragraph")


def test_same_n_and_seed_give_the_same_corpus() -> None:
    a, b = build_corpus(300, 5), build_corpus(300, 5)
    assert list(a.models) == list(b.models)
    assert [m.sha for m in a.models.values()] == [m.sha for m in b.models.values()]
    assert [m.intent for m in a.synthetic()] == [m.intent for m in b.synthetic()]
    other = build_corpus(300, 6)
    assert set(m.id for m in a.synthetic()) != set(m.id for m in other.synthetic())


def test_ids_and_hashes_have_the_hub_shapes(corpus) -> None:
    models = list(corpus.synthetic())
    assert len(models) == 2000
    assert all(re.fullmatch(r"[0-9a-f]{24}", m.object_id) for m in models)
    assert len({m.object_id for m in models}) == len(models)
    assert len({m.id.lower() for m in models}) == len(models)
    assert all(re.fullmatch(r"[\w.-]+/[\w.-]+", m.id) for m in models)
    shas = [r.sha for m in models for r in m.revisions]
    assert all(re.fullmatch(r"[0-9a-f]{40}", s) for s in shas) and len(set(shas)) == len(shas)
    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"
    assert all(
        re.fullmatch(stamp, m.created_at) and m.created_at <= m.last_modified for m in models
    )
    # _id starts with the creation time, as Mongo ObjectIds do
    sample = models[0]
    assert sample.created_at.startswith("20") and int(sample.object_id[:8], 16) > 1.6e9


def test_every_feature_is_placed_in_a_big_enough_corpus() -> None:
    corpus = build_corpus(FEATURE_CORPUS, 3, samples=None, huge_size=5_000_000_000)
    models = list(corpus.synthetic())
    gated = Counter(m.gated for m in models)
    assert gated["auto"] and gated["manual"]
    assert any(m.disabled for m in models) and any(m.private for m in models)
    olds = [old for m in models for old in m.renamed_from]
    assert any("/" in old for old in olds) and any("/" not in old for old in olds)
    assert any(m.intent.description is None for m in models)  # no README
    assert any(
        m.recipe.family in ("bert", "gpt2", "llama") and m.intent.config is None for m in models
    )
    assert max(s for m in models for _, s in m.recipe.weights) >= 5_000_000_000
    assert any(m.recipe.many_files > 1000 for m in models)
    hostile = {kind for m in models for kind in m.intent.hostile}
    assert hostile == set(HOSTILE_KINDS)
    families = {m.recipe.family for m in models}
    assert {"gguf", "peft", "diffusers"} <= families
    assert {"merge", "adapter", "quantized", "finetune"} <= {
        m.intent.base_model_relation for m in models
    }


def test_spread_looks_like_the_hub(corpus) -> None:
    models = list(corpus.synthetic())
    assert len({m.recipe.family for m in models}) == 14
    authors = Counter(m.author for m in models)
    assert len(authors) > 300 and authors.most_common(1)[0][1] > 20  # big orgs, a long tail
    downloads = sorted(m.downloads for m in models)
    assert downloads[0] == 0 and downloads[-1] > 1000 * max(1, statistics.median(downloads))
    assert len({m.intent.license for m in models}) >= 10
    assert len({lang for m in models for lang in m.intent.languages}) >= 10
    assert len({m.pipeline_tag for m in models}) >= 10
    assert len({m.library_name for m in models}) >= 5
    assert 0.01 < sum(bool(m.gated) for m in models) / len(models) < 0.15
    assert sum(len(m.revisions) > 1 for m in models) > 100


def test_cards_and_configs_say_what_the_intent_says(corpus) -> None:
    checked = 0
    for model in list(corpus.synthetic())[:400]:
        intent = model.intent
        files = {f.path: f for f in snapshot(corpus, model).files}
        if "README.md" not in files:
            assert intent.description is None and intent.card_data is None
            continue
        readme = read_bytes(files["README.md"].source).decode("utf-8")
        assert first_paragraph_text(readme) == intent.description
        front = readme.split("---\n", 2)[1]
        if intent.card_data is None:
            assert set(intent.hostile) & {"yaml_bomb", "malformed_front_matter"}
        else:
            assert yaml.safe_load(front) == intent.card_data
            assert intent.card_data.get("license") == intent.license
            results = intent.card_data.get("model-index", [{"results": []}])[0]["results"]
            assert [r["metrics"][0]["value"] for r in results] == [
                r.value for r in intent.eval_results
            ]
        if intent.config is not None:
            assert json.loads(read_bytes(files["config.json"].source)) == intent.config
            values = intent.config_values  # common names whatever the family calls them
            if model.recipe.family != "timm":
                assert values["hidden_size"] % values["num_attention_heads"] == 0
                assert values["num_hidden_layers"] > 0
        else:
            assert "config.json" not in files
        checked += 1
    assert checked > 300


def test_hostile_cards_are_hostile() -> None:
    corpus = build_corpus(FEATURE_CORPUS, 3, samples=None)
    by_kind = {k: m for m in corpus.synthetic() for k in m.intent.hostile}
    card = read_bytes(snapshot(corpus, by_kind["huge_card"]).get("README.md").source)
    assert len(card) > 3_000_000
    bomb = read_bytes(snapshot(corpus, by_kind["yaml_bomb"]).get("README.md").source).decode()
    assert bomb.count("*h") == 9 and "&i" in bomb
    bad = read_bytes(snapshot(corpus, by_kind["malformed_front_matter"]).get("README.md").source)
    with pytest.raises(yaml.YAMLError):
        yaml.safe_load(bad.decode().split("---\n", 2)[1])
    long_names = [f.path for f in snapshot(corpus, by_kind["long_names"]).files]
    assert max(len(p.encode()) for p in long_names) > 255
    deep = [f.path for f in snapshot(corpus, by_kind["deep_folders"]).files]
    assert max(p.count("/") for p in deep) >= 40
    unsafe = [f.path for f in snapshot(corpus, by_kind["unsafe_paths"]).files]
    assert any("\\" in p for p in unsafe) and any("\n" in p for p in unsafe)
    odd = by_kind["odd_unicode"]
    assert "\u202e" in odd.intent.description


def test_file_hashes_match_the_bytes(corpus, tmp_path: Path) -> None:
    store = DigestStore(tmp_path)
    for model in list(corpus.synthetic())[:60]:
        for f in snapshot(corpus, model).files:
            data = read_bytes(f.source)
            digest = store.digest(f.source)
            assert digest.size == len(data) == f.size
            assert digest.sha256 == hashlib.sha256(data).hexdigest()
            stored = lfs_pointer(digest.sha256, len(data)) if f.lfs else data
            assert digest.blob_id == git_blob_sha1(stored)


def test_weight_headers_agree_with_the_api(corpus) -> None:
    for model in list(corpus.synthetic())[:300]:
        snap = snapshot(corpus, model)
        parameters = 0
        for f in snap.files:
            if f.path.endswith(".safetensors"):
                head = read_bytes(f.source, 0, 8)
                (length,) = struct.unpack("<Q", head)
                header = json.loads(read_bytes(f.source, 8, 8 + length))
                end = max(t["data_offsets"][1] for k, t in header.items() if k != "__metadata__")
                assert 8 + length + end == f.size
                parameters += end // 2
            if f.path.endswith(".gguf"):
                assert read_bytes(f.source, 0, 4) == b"GGUF"
        api = model_field(corpus, model, snap.revision, "safetensors", listing=False)
        if parameters:
            assert api == {"parameters": {"BF16": parameters}, "total": parameters}


def test_keystreams_seek_anywhere() -> None:
    source = Keystream(content_key("test"), 1_000_003, header=b"HEADER")
    whole = read_bytes(source)
    assert whole.startswith(b"HEADER") and len(whole) == 1_000_003
    for start, end in ((0, 3), (5, 70), (63, 65), (64, 128), (999_000, 1_000_003), (4097, 700_001)):
        assert read_bytes(source, start, end) == whole[start:end]
    sizes = [len(c) for c in source.chunks(0, 1_000_000, 400_000)]
    assert max(sizes) == 400_000 and sum(sizes) == 1_000_000


def test_big_file_digests_are_cached_on_disk(tmp_path: Path) -> None:
    source = Keystream(content_key("cache-test"), 3 << 20)
    first = DigestStore(tmp_path).digest(source)
    assert (tmp_path / "digests-v1.jsonl").read_text().count("\n") == 1
    again = DigestStore(tmp_path)
    again._compute = None  # a second store must not hash again
    assert again.digest(source) == first


def test_replaying_mutations_gives_the_same_state() -> None:
    live = build_corpus(120, 9, samples=None)
    ids = sorted(m.id for m in live.synthetic())
    for mutation in (
        Mutation("add", 1_750_000_000.0),
        Mutation("update", 1_750_000_100.5, model_id=ids[0]),
        Mutation("rename", 1_750_000_200.0, model_id=ids[1]),
        Mutation("gate", 1_750_000_300.0, model_id=ids[2], gated="manual"),
        Mutation("delete", 1_750_000_400.0, model_id=ids[3]),
    ):
        live.apply(mutation)
    replayed = build_corpus(120, 9, samples=None)
    for record in live.mutations:
        replayed.apply(Mutation(**record.to_json()))
    assert replayed.models == live.models and replayed.aliases == live.aliases
    assert live.get(ids[0]).last_modified == "2025-06-15T15:08:20.500Z"
    assert live.lookup(ids[1]) == (live.get(live.mutations[2].new_id), True)
    assert live.get(ids[3]) is None and len(list(live.synthetic())) == 120
    with pytest.raises(KeyError):
        live.apply(Mutation("update", 1.0, model_id=ids[3]))


def test_cached_digests_belong_to_the_exact_bytes_not_just_the_key(tmp_path: Path) -> None:
    """An emulator run with another --huge-size must not advertise a stale sha256."""
    key = content_key("seed", "repo", "weights.bin")
    small, large = Keystream(key, 5 << 20), Keystream(key, 6 << 20)
    first = DigestStore(tmp_path).digest(small)
    second = DigestStore(tmp_path).digest(large)  # a new run, same cache dir
    assert first.sha256 == hashlib.sha256(read_bytes(small)).hexdigest()
    assert second.sha256 == hashlib.sha256(read_bytes(large)).hexdigest()
    assert DigestStore(tmp_path).digest(small).sha256 == first.sha256


def test_snapshots_of_corpora_of_other_sizes_are_not_mixed_up() -> None:
    """The same model id and sha in corpora of other sizes may carry other features."""
    small, large = build_corpus(len(FEATURES) + 10, 7), build_corpus(60, 7)
    pairs = [(m, large.get(m.id)) for m in small.synthetic() if large.get(m.id) is not None]
    differing = [(a, b) for a, b in pairs if a.sha == b.sha and a.recipe != b.recipe]
    assert differing, "no model with the same id and sha but another recipe: test is moot"
    for a, b in differing:
        assert [f.path for f in snapshot(large, b).files] == file_names(large, b)
        assert [f.path for f in snapshot(small, a).files] == file_names(small, a)

"""What is in a repo revision: its file list, and each file's bytes.

`snapshot(corpus, model, revision)` lays out the files of one commit of one repo: the model
card (YAML front matter + markdown body), config.json matching the architecture, tokenizer
files, family-specific files (diffusers components, sentence-transformers modules, PEFT
adapters), LFS weights (safetensors and GGUF with valid headers, pytorch .bin) and, for
hostile repos, the files that make naive mirrors fail. Text files are rendered on first use;
weights are keystreams (hfspider.hubsim.content), sized by the corpus recipe.

What changes between revisions of a synthetic repo: the card (its "Revision" line) and the
first weight file (a new keystream); everything else keeps its bytes, and files that are the
same in every repo of a family (tokenizers, .gitattributes) are byte-identical across repos.
Nothing here depends on the repo id, so a rename never changes a commit's files.

Real recorded repos get stand-ins: their recorded sibling names with a card built from the
recorded cardData, the recorded config, and keystreams of modest size for weight files.
"""

from __future__ import annotations

import fnmatch
import functools
import hashlib
import json
import struct
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import yaml

from hfspider.hubsim.content import Blob, ByteSource, Keystream, content_key
from hfspider.hubsim.corpus import Corpus, Model, Recipe, Revision, describe
from hfspider.hubsim.families import CHAT_FAMILIES, FAMILY_BY_NAME, Family

LFS_PATTERNS = (
    "*.7z *.arrow *.bin *.bz2 *.ckpt *.ftz *.gguf *.gz *.h5 *.joblib *.lfs.* *.mlmodel *.model "
    "*.msgpack *.npy *.npz *.onnx *.ot *.parquet *.pb *.pickle *.pkl *.pt *.pth *.rar "
    "*.safetensors *.tar *.tflite *.tgz *.wasm *.xz *.zip *.zst *tfevents*"
).split()
GITATTRIBUTES = "".join(f"{p} filter=lfs diff=lfs merge=lfs -text\n" for p in LFS_PATTERNS)
SNAPSHOT_CACHE_SIZE = 2048
HUGE_CARD_SIZE = 3 << 20
TOKENIZER_MODEL_SIZE = 240_000  # a sentencepiece model, shared by every repo of a family
STAND_IN_NOTE = (
    "Stand-in file served by the hfspider Hub emulator for a recorded repo: the recorded "
    "metadata is real, these bytes are not."
)
HOSTILE_FILES = {
    "odd_unicode": (
        "docs/caf\u00e9.md",
        "docs/cafe\u0301.md",
        "emoji-\U0001f917.txt",
        "invoice-\u202etxt.exe",
        "\u4e2d\u6587/\u8bf4\u660e.md",
    ),
    "long_names": ("long-" + "n" * 246 + ".txt", "x" * 296 + ".txt"),
    "deep_folders": ("/".join(f"d{k:02d}" for k in range(40)) + "/deep.txt",),
    "unsafe_paths": (
        "..\\..\\evil.txt",
        "tools/-rf",
        "ctrl\x07bell.txt",
        "line\nbreak.txt",
        "%2e%2e%2fescape.txt",
        " leading-space.txt",
        "trailing-dot.",
    ),
}
YAML_BOMB = (
    'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n'
    + "".join(
        f"{c}: &{c} [{','.join([f'*{p}'] * 9)}]\n"
        for p, c in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + "license: mit\n"
)
MALFORMED_FRONT_MATTER = "license: [mit\nlanguage:\n\t- en\n: : :\n"
SPECIAL_TOKENS = {
    "wordpiece": {
        "unk_token": "[UNK]",
        "sep_token": "[SEP]",
        "pad_token": "[PAD]",
        "cls_token": "[CLS]",
        "mask_token": "[MASK]",
    },
    "bpe": {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"},
    "sentencepiece": {"bos_token": "<s>", "eos_token": "</s>", "unk_token": "<unk>"},
}
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|' + message['role'] + '|>\\n' + message['content'] }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\\n' }}{% endif %}"
)
GGUF_STRING, GGUF_UINT32 = 8, 4


@dataclass(frozen=True, slots=True)
class RepoFile:
    """One file of a revision: path and bytes. LFS iff its bytes are a keystream."""

    path: str
    source: ByteSource

    @property
    def size(self) -> int:
        return self.source.size

    @property
    def lfs(self) -> bool:
        return isinstance(self.source, Keystream)


class Snapshot:
    """The files of one commit of one repo, rendered once, sorted by path like the Hub."""

    def __init__(self, revision: Revision, files: list[RepoFile]) -> None:
        self.revision = revision
        self.files = tuple(sorted(files, key=lambda f: f.path))
        self._by_path = {f.path: f for f in self.files}
        parents = {
            f.path.rsplit("/", k)[0] for f in self.files for k in range(1, f.path.count("/") + 1)
        }
        self.directories = tuple(sorted(parents))

    def get(self, path: str) -> RepoFile | None:
        return self._by_path.get(path)


def is_lfs_path(path: str) -> bool:
    name = path.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in LFS_PATTERNS)


def file_names(corpus: Corpus, model: Model, revision: Revision | None = None) -> list[str]:
    """The sorted paths of a revision, without rendering anything (listing `siblings`)."""
    revision = revision or model.revisions[-1]
    return sorted(path for path, _ in _layout(corpus.seed, model, revision))


def snapshot(corpus: Corpus, model: Model, revision: Revision | None = None) -> Snapshot:
    """The files of `revision` (default: head of main) of `model`, from a small LRU cache."""
    revision = revision or model.revisions[-1]
    # The recipe too: corpora of another size place features (hostile files...) differently.
    key = (corpus.seed, model.object_id, revision.sha, model.recipe)
    cached = _SNAPSHOTS.get(key)
    if cached is not None:
        _SNAPSHOTS.move_to_end(key)
        return cached
    files = [RepoFile(path, render()) for path, render in _layout(corpus.seed, model, revision)]
    _SNAPSHOTS[key] = cached = Snapshot(revision, files)
    if len(_SNAPSHOTS) > SNAPSHOT_CACHE_SIZE:
        _SNAPSHOTS.popitem(last=False)
    return cached


_SNAPSHOTS: OrderedDict[tuple[int, str, str, Recipe | None], Snapshot] = OrderedDict()


# -- layout ---------------------------------------------------------------------------------

Render = Callable[[], ByteSource]


def _text(data: str | bytes) -> Render:
    encoded = data.encode("utf-8") if isinstance(data, str) else data
    return lambda: Blob(encoded)


def _json(obj: Any, *, sort_keys: bool = False) -> Render:
    return lambda: Blob(
        (json.dumps(obj, indent=2, sort_keys=sort_keys, ensure_ascii=False) + "\n").encode()
    )


def _layout(seed: int, model: Model, revision: Revision) -> list[tuple[str, Render]]:
    if model.recipe is None:
        return _stand_in_layout(model, revision)
    recipe, intent = model.recipe, model.intent
    assert intent is not None
    family = FAMILY_BY_NAME[recipe.family]
    files: list[tuple[str, Render]] = [(".gitattributes", _text(GITATTRIBUTES))]
    if recipe.has_readme:
        files.append(("README.md", lambda: Blob(readme(model, revision).encode("utf-8"))))
    if intent.config is not None:
        files.append(("config.json", _json(intent.config, sort_keys=True)))
    files += _family_files(family, model)
    files += _tokenizer_files(family, intent.title)
    for k, (path, size) in enumerate(recipe.weights):
        generation = revision.number if k == 0 else 0
        key = content_key("hubsim-weights-v1", seed, model.object_id, path, generation)
        files.append((path, functools.partial(weight_source, path, key, size, family)))
    if sum(p.endswith(".safetensors") for p, _ in recipe.weights) > 1:
        files.append(("model.safetensors.index.json", _json(_shard_index(recipe.weights))))
    for kind in recipe.hostile:
        for path in HOSTILE_FILES.get(kind, ()):
            files.append((path, _text(f"hostile file ({kind}): {path!r}\n")))
    for k in range(recipe.many_files):
        files.append((f"data/shard-{k:04d}.json", _text(f'{{"shard": {k}}}\n')))
    return files


def _family_files(family: Family, model: Model) -> list[tuple[str, Render]]:
    recipe, intent = model.recipe, model.intent
    assert recipe is not None and intent is not None
    files: list[tuple[str, Render]] = []
    if family.name in CHAT_FAMILIES:
        files.append(
            (
                "generation_config.json",
                _json(
                    {"bos_token_id": 1, "eos_token_id": 2, "do_sample": True, "temperature": 0.6}
                ),
            )
        )
    if family.name in ("vit", "whisper"):
        files.append(("preprocessor_config.json", _json(_preprocessor(family))))
    if family.layout == "sentence-transformers":
        files += [
            (
                "modules.json",
                _json(
                    [
                        {
                            "idx": 0,
                            "name": "0",
                            "path": "",
                            "type": "sentence_transformers.models.Transformer",
                        },
                        {
                            "idx": 1,
                            "name": "1",
                            "path": "1_Pooling",
                            "type": "sentence_transformers.models.Pooling",
                        },
                    ]
                ),
            ),
            ("sentence_bert_config.json", _json({"max_seq_length": 256, "do_lower_case": False})),
            (
                "1_Pooling/config.json",
                _json({"word_embedding_dimension": 384, "pooling_mode_mean_tokens": True}),
            ),
        ]
    if family.layout == "diffusers":
        files += [
            ("model_index.json", _json(_model_index(recipe.architecture))),
            (
                "scheduler/scheduler_config.json",
                _json({"_class_name": "PNDMScheduler", "num_train_timesteps": 1000}),
            ),
            (
                "text_encoder/config.json",
                _json({"architectures": ["CLIPTextModel"], "hidden_size": 768}),
            ),
            (
                "unet/config.json",
                _json({"_class_name": "UNet2DConditionModel", **family.variants[0]}),
            ),
            ("vae/config.json", _json({"_class_name": "AutoencoderKL", "latent_channels": 4})),
        ]
    if family.layout == "peft":
        files.append(("adapter_config.json", _json(_adapter_config(family, model))))
    return files


def _tokenizer_files(family: Family, title: str) -> list[tuple[str, Render]]:
    kind = family.tokenizer
    if kind == "none":
        return []
    prefix = "tokenizer/" if family.layout == "diffusers" else ""
    files: list[tuple[str, Render]] = []
    if kind == "wordpiece":
        files.append((prefix + "vocab.txt", _text("".join(f"{t}\n" for t in _vocab(kind)))))
    if kind == "bpe":
        vocab = _vocab(kind)
        files.append((prefix + "vocab.json", _json({t: i for i, t in enumerate(vocab)})))
        files.append(
            (prefix + "merges.txt", _text("#version: 0.2\n" + "".join(f"{m}\n" for m in _merges())))
        )
    if kind == "sentencepiece":
        name = "spiece.model" if family.name == "t5" else "tokenizer.model"
        key = content_key("hubsim-tokenizer-v1", family.name)
        files.append((prefix + name, lambda: Keystream(key, TOKENIZER_MODEL_SIZE)))
    if family.layout != "diffusers":
        files += [
            (prefix + "tokenizer.json", lambda: Blob(_tokenizer_json(kind))),
            (prefix + "tokenizer_config.json", _json(tokenizer_config(family, title))),
            (prefix + "special_tokens_map.json", _json(SPECIAL_TOKENS[kind])),
        ]
    return files


def tokenizer_config(family: Family, title: str) -> dict[str, Any]:
    """tokenizer_config.json; the API repeats a subset of it in `config.tokenizer_config`."""
    config: dict[str, Any] = {"tokenizer_class": _TOKENIZER_CLASSES[family.tokenizer]}
    config.update(SPECIAL_TOKENS[family.tokenizer])
    config["model_max_length"] = 512 if family.tokenizer == "wordpiece" else 131072
    if family.name in CHAT_FAMILIES and ("Instruct" in title or "chat" in title):
        config["chat_template"] = CHAT_TEMPLATE
    return config


_TOKENIZER_CLASSES = {
    "wordpiece": "BertTokenizer",
    "bpe": "PreTrainedTokenizerFast",
    "sentencepiece": "LlamaTokenizer",
}


@functools.cache
def _vocab(kind: str) -> tuple[str, ...]:
    specials = tuple(SPECIAL_TOKENS[kind].values())
    syllables = [a + b for a in "bcdfghklmnprstvz" for b in "aeiou"]
    pieces = syllables + [f"##{s}" for s in syllables] if kind == "wordpiece" else syllables
    return specials + tuple(pieces)


@functools.cache
def _merges() -> tuple[str, ...]:
    return tuple(f"{a} {b}" for a in "bcdfg" for b in "aeiou")


@functools.cache
def _tokenizer_json(kind: str) -> bytes:
    vocab = _vocab(kind)
    specials = set(SPECIAL_TOKENS[kind].values())
    model: dict[str, Any]
    if kind == "wordpiece":
        model = {
            "type": "WordPiece",
            "unk_token": "[UNK]",
            "vocab": {t: i for i, t in enumerate(vocab)},
        }
    elif kind == "bpe":
        model = {
            "type": "BPE",
            "vocab": {t: i for i, t in enumerate(vocab)},
            "merges": list(_merges()),
        }
    else:
        model = {"type": "Unigram", "vocab": [[t, -float(i)] for i, t in enumerate(vocab)]}
    document = {
        "version": "1.0",
        "truncation": None,
        "padding": None,
        "added_tokens": [
            {"id": i, "content": t, "special": True} for i, t in enumerate(vocab) if t in specials
        ],
        "model": model,
    }
    return json.dumps(document, ensure_ascii=False).encode("utf-8")


def _preprocessor(family: Family) -> dict[str, Any]:
    if family.name == "vit":
        return {
            "do_resize": True,
            "size": {"height": 224, "width": 224},
            "image_processor_type": "ViTImageProcessor",
        }
    return {
        "feature_size": 80,
        "sampling_rate": 16000,
        "feature_extractor_type": "WhisperFeatureExtractor",
    }


def _model_index(architecture: str) -> dict[str, Any]:
    return {
        "_class_name": architecture,
        "_diffusers_version": "0.31.0",
        "scheduler": ["diffusers", "PNDMScheduler"],
        "text_encoder": ["transformers", "CLIPTextModel"],
        "tokenizer": ["transformers", "CLIPTokenizer"],
        "unet": ["diffusers", "UNet2DConditionModel"],
        "vae": ["diffusers", "AutoencoderKL"],
    }


def _adapter_config(family: Family, model: Model) -> dict[str, Any]:
    assert model.intent is not None
    base = model.intent.base_models[0] if model.intent.base_models else None
    return {
        "base_model_name_or_path": base,
        "peft_type": "LORA",
        "task_type": "CAUSAL_LM",
        **family.variants[0],
        "target_modules": ["q_proj", "v_proj"],
    }


def _shard_index(weights: tuple[tuple[str, int], ...]) -> dict[str, Any]:
    shards = [(p, s) for p, s in weights if p.endswith(".safetensors")]
    total = sum(2 * safetensors_parameters(s) for _, s in shards)
    return {
        "metadata": {"total_size": total},
        "weight_map": {f"model.shard{k}.weight": path for k, (path, _) in enumerate(shards)},
    }


# -- weights --------------------------------------------------------------------------------


def safetensors_parameters(approximate_size: int) -> int:
    """Parameters (BF16) of a safetensors file the recipe sized at about this many bytes."""
    return max(1, approximate_size // 2)


def weight_source(path: str, key: bytes, approximate_size: int, family: Family | None) -> Keystream:
    """A weight file: a valid format header where the format has one, then the keystream."""
    if path.endswith(".safetensors"):
        return Keystream(key, *_safetensors(safetensors_parameters(approximate_size)))
    if path.endswith(".gguf"):
        header = _gguf_header(path, family)
        return Keystream(key, max(approximate_size, len(header)), header)
    return Keystream(key, approximate_size)


def _safetensors(parameters: int) -> tuple[int, bytes]:
    """(file size, header) of a safetensors file holding `parameters` BF16 values."""
    cols = 128
    tensors: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    if parameters >= cols:
        rows = parameters // cols
        tensors["model.embed.weight"] = {
            "dtype": "BF16",
            "shape": [rows, cols],
            "data_offsets": [0, 2 * rows * cols],
        }
        offset = 2 * rows * cols
    if parameters % cols:
        rest = parameters % cols
        tensors["model.norm.weight"] = {
            "dtype": "BF16",
            "shape": [rest],
            "data_offsets": [offset, offset + 2 * rest],
        }
    header = json.dumps(tensors, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)
    prefix = struct.pack("<Q", len(header)) + header
    return len(prefix) + 2 * parameters, prefix


def gguf_metadata(family: Family | None) -> dict[str, Any]:
    """What a GGUF file's header says; the API's `gguf` field repeats it."""
    context = family.variants[0]["context_length"] if family and family.layout == "gguf" else 4096
    return {"architecture": "llama", "context_length": context, "chat_template": CHAT_TEMPLATE}


def _gguf_header(path: str, family: Family | None) -> bytes:
    """A GGUF v3 header with no tensors and a few metadata keys."""
    meta = gguf_metadata(family)

    def string(text: str) -> bytes:
        data = text.encode("utf-8")
        return struct.pack("<Q", len(data)) + data

    kv = [
        string("general.architecture")
        + struct.pack("<I", GGUF_STRING)
        + string(meta["architecture"]),
        string("general.name") + struct.pack("<I", GGUF_STRING) + string(path.rsplit("/", 1)[-1]),
        string("llama.context_length")
        + struct.pack("<I", GGUF_UINT32)
        + struct.pack("<I", meta["context_length"]),
        string("tokenizer.chat_template")
        + struct.pack("<I", GGUF_STRING)
        + string(meta["chat_template"]),
    ]
    return b"GGUF" + struct.pack("<IQQ", 3, 0, len(kv)) + b"".join(kv)


# -- the model card -------------------------------------------------------------------------


def readme(model: Model, revision: Revision) -> str:
    """README.md of a synthetic repo at a revision: front matter, then a markdown body."""
    recipe, intent = model.recipe, model.intent
    assert recipe is not None and intent is not None
    if "yaml_bomb" in recipe.hostile:
        front = YAML_BOMB
    elif "malformed_front_matter" in recipe.hostile:
        front = MALFORMED_FRONT_MATTER
    else:
        front = yaml.dump(
            intent.card_data, Dumper=yaml.CSafeDumper, sort_keys=False, allow_unicode=True
        )
    paragraph = describe(
        intent.title,
        recipe.family,
        recipe.pipeline_tag,
        intent.base_models,
        intent.datasets,
        "odd_unicode" in recipe.hostile,
        markdown=True,
    )
    noise = int(hashlib.sha1(model.object_id.encode()).hexdigest(), 16)
    lines = ["---", front.rstrip("\n"), "---", ""]
    if noise % 3 == 0:
        lines += ["<!-- This model card was generated by hubsim. -->", ""]
    lines += [f"# {intent.title}", ""]
    if noise % 2 == 0 and intent.license:
        badge = f"https://img.shields.io/badge/license-{intent.license.replace('-', '--')}-blue"
        lines += [f"[![License]({badge})](LICENSE)", ""]
    lines += [paragraph, "", "## Model details", ""]
    lines += [f"- **Family:** {recipe.family}", f"- **Architecture:** `{recipe.architecture}`"]
    lines += [f"- **Revision:** {revision.number}", "", "## How to use", "", "```python"]
    lines += ["from transformers import AutoModel", "", 'model = AutoModel.from_pretrained(".")']
    lines += ["```", "", "## Training data", ""]
    lines += [f"- {d}" for d in intent.datasets] or ["Not documented."]
    if intent.eval_results:
        lines += [
            "",
            "## Evaluation",
            "",
            "| Task | Dataset | Metric | Value |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {r.task} | {r.dataset} | {r.metric} | {r.value} |" for r in intent.eval_results
        ]
    text = "\n".join(lines) + "\n"
    if "huge_card" in recipe.hostile:
        row = "| {k} | a long appendix row that makes this card several megabytes | {k} |\n"
        appendix = ["\n## Appendix\n\n| Row | Text | Again |\n|---|---|---|\n"]
        size = len(text)
        k = 0
        while size < HUGE_CARD_SIZE:
            appendix.append(row.format(k=k))
            size += len(appendix[-1])
            k += 1
        text += "".join(appendix)
    return text


# -- stand-ins for recorded repos -------------------------------------------------------------


def _stand_in_layout(model: Model, revision: Revision) -> list[tuple[str, Render]]:
    info = model.recording.info(revision.sha)
    files: list[tuple[str, Render]] = []
    for sibling in info.get("siblings") or ():
        path = sibling["rfilename"]
        if is_lfs_path(path):
            digest = hashlib.sha256(f"{model.object_id}\x1f{path}".encode()).digest()
            size = 16_384 + int.from_bytes(digest[:4], "big") % (4 << 20)
            key = content_key("hubsim-sample-v1", model.object_id, path)
            files.append((path, functools.partial(weight_source, path, key, size, None)))
        elif path == "README.md":
            front = yaml.dump(
                info.get("cardData") or {},
                Dumper=yaml.CSafeDumper,
                sort_keys=False,
                allow_unicode=True,
            )
            files.append((path, _text(f"---\n{front}---\n\n# {model.id}\n\n{STAND_IN_NOTE}\n")))
        elif path == "config.json" and info.get("config"):
            files.append((path, _json(info["config"], sort_keys=True)))
        elif path == ".gitattributes":
            files.append((path, _text(GITATTRIBUTES)))
        else:
            files.append((path, _text(f"{STAND_IN_NOTE}\n{path}\n")))
    return files

"""Who is on the emulated Hub: a deterministic corpus of models, and its ground truth.

`build_corpus(n, seed)` is a pure function: the same (n, seed) gives the same models, ids,
shas and file bytes in any process, so a test can rebuild in-process exactly what a running
emulator serves and compare a crawl against it without re-parsing what was served::

    corpus = build_corpus(2000, seed=7)
    model = corpus.get("some-org/swift-otter-7B")
    model.sha, model.intent.license, model.intent.description
    for f in snapshot(corpus, model).files: ...   # hfspider.hubsim.repofiles

Each synthetic `Model` carries wire fields (id, _id, sha, author, timestamps, counters, tags,
pipeline_tag, library_name, gated, disabled, private, renamed-from ids, revisions) and an
`Intent`: what its card and config say as the generator meant it (license, languages,
datasets, tasks, base models and relation, model-index results, architecture, model_type,
config values, the plain text of the card's first paragraph, hostile kinds). The `Recipe`
says how its files are made (family, weight files and sizes). Real recorded repos from
`samples/` join the corpus with `intent=None` (see hfspider.hubsim.samples).

Spread: users and organisations with a long tail, 14 architecture families, licenses,
languages, datasets, downloads and likes with a heavy tail, gated "auto"/"manual", disabled,
private (visible to their author's token only), renamed (old ids answer 307), repos without
README or config, multi-GB weights, and hostile repos (`HOSTILE_KINDS`). Every feature in
`FEATURES` is placed at least once when n >= len(FEATURES); the rest is drawn at random.

The corpus changes through `Corpus.apply(Mutation)`, deterministically: replaying the
emulator's mutation log (`GET /_hubsim/mutations`) on a fresh corpus gives its current state.
"""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from hfspider.hubsim.families import (
    FAMILIES,
    FAMILY_BY_NAME,
    Family,
    config_json,
    normalized_config,
)

if TYPE_CHECKING:
    from hfspider.hubsim.samples import Recording

HOSTILE_KINDS = (
    "huge_card",  # a model card of several MB
    "yaml_bomb",  # front matter with a billion-laughs alias bomb
    "malformed_front_matter",  # front matter that is not YAML
    "odd_unicode",  # bidi overrides, zero-width and combining characters, emoji, NFD names
    "long_names",  # file names of 255 and 300 bytes
    "deep_folders",  # a file 40 folders deep
    "unsafe_paths",  # backslashes, control characters, leading dashes, encoded dots
)
FEATURES = (
    "gated_auto",
    "gated_manual",
    "disabled",
    "private",
    "renamed",
    "renamed_legacy",
    "no_readme",
    "no_config",
    "huge_file",
    "many_files",
    *HOSTILE_KINDS,
    "family:gguf",
    "family:peft",
    "family:diffusers",
    "merge",
)
HUGE_FILE_SIZE = 4_500_000_000  # above 4 GiB, so 32-bit sizes overflow
MANY_FILES = 1_200  # more than one tree page of 1000 entries
SENTINEL_CREATED = 1646263744  # 2022-03-02T23:29:04Z, createdAt of the Hub's oldest repos
EPOCH_START = 1609459200  # 2021-01-01
EPOCH_END = 1759276800  # 2025-10-01

LICENSES = (
    ("apache-2.0", 30),
    ("mit", 16),
    ("cc-by-4.0", 6),
    ("cc-by-nc-4.0", 5),
    ("openrail", 4),
    ("llama3.1", 4),
    ("gemma", 3),
    ("bsd-3-clause", 2),
    ("gpl-3.0", 2),
    ("cc-by-sa-4.0", 2),
    ("other", 6),
    (None, 20),
)
LANGUAGES = ("en", "fr", "de", "es", "zh", "ja", "ru", "ar", "pt", "it", "ko", "hi", "nl", "sw")
TEXT_DATASETS = (
    "wikipedia",
    "bookcorpus",
    "c4",
    "allenai/c4",
    "HuggingFaceFW/fineweb",
    "HuggingFaceH4/ultrachat_200k",
    "tatsu-lab/alpaca",
    "openwebtext",
    "squad",
    "glue",
    "imdb",
    "conll2003",
    "cnn_dailymail",
    "wmt16",
)
VISION_DATASETS = ("imagenet-1k", "cifar10", "laion/laion2B-en", "coco")
AUDIO_DATASETS = ("librispeech_asr", "mozilla-foundation/common_voice_11_0")
DATASET_POOLS = {
    "vit": VISION_DATASETS,
    "timm": VISION_DATASETS,
    "diffusers": VISION_DATASETS,
    "whisper": AUDIO_DATASETS,
}
CARD_TAGS = (
    "text-generation-inference",
    "conversational",
    "chat",
    "code",
    "biology",
    "finance",
    "legal",
    "medical",
    "merge",
    "trl",
    "sft",
    "unsloth",
    "mlx",
)
EXTERNAL_BASES = {
    "bert": ("google-bert/bert-base-uncased", "google-bert/bert-base-cased"),
    "roberta": ("FacebookAI/roberta-base",),
    "gpt2": ("openai-community/gpt2",),
    "llama": ("meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.2-1B"),
    "mistral": ("mistralai/Mistral-7B-v0.1",),
    "qwen2": ("Qwen/Qwen2.5-7B", "Qwen/Qwen2.5-0.5B"),
    "t5": ("google-t5/t5-small", "google/flan-t5-base"),
    "vit": ("google/vit-base-patch16-224",),
    "whisper": ("openai/whisper-small",),
    "sentence-transformers": ("sentence-transformers/all-MiniLM-L6-v2",),
    "diffusers": ("stabilityai/stable-diffusion-2-1",),
    "gguf": ("meta-llama/Llama-3.2-3B-Instruct", "mistralai/Mistral-7B-Instruct-v0.3"),
    "peft": ("meta-llama/Llama-3.1-8B", "Qwen/Qwen2.5-7B"),
    "timm": ("timm/resnet50.a1_in1k",),
}
EVAL_SETUPS = {
    "text-classification": (("glue", "sst2", "accuracy"), ("imdb", None, "f1")),
    "token-classification": (("conll2003", None, "f1"), ("conll2003", None, "precision")),
    "question-answering": (("squad", None, "exact_match"), ("squad_v2", None, "f1")),
    "text-generation": (("hellaswag", None, "acc_norm"), ("cais/mmlu", "all", "accuracy")),
    "automatic-speech-recognition": (("librispeech_asr", "clean", "wer"),),
    "image-classification": (("imagenet-1k", None, "accuracy"),),
    "summarization": (("cnn_dailymail", "3.0.0", "rouge1"),),
    "translation": (("wmt16", "de-en", "bleu"),),
}
TASK_NAMES = {
    "fill-mask": "Fill Mask",
    "text-classification": "Text Classification",
    "token-classification": "Token Classification",
    "question-answering": "Question Answering",
    "text-generation": "Text Generation",
    "text2text-generation": "Text2Text Generation",
    "translation": "Translation",
    "summarization": "Summarization",
    "image-classification": "Image Classification",
    "automatic-speech-recognition": "Automatic Speech Recognition",
    "sentence-similarity": "Sentence Similarity",
    "feature-extraction": "Feature Extraction",
    "text-to-image": "Text-to-Image",
}
ORG_WORDS = (
    "acme northwind polaris lumen quanta helix cobalt aurora vertex nimbus ember tidal "
    "granite meridian sable orchid zenith cinder harbor kestrel"
).split()
ORG_SUFFIXES = ("-ai", "-labs", "-research", "", "-ml", "AI")
SYLLABLES = "ka lo mi ne ru sa to vi ze ba de fi go hu ja ki li mo nu pe ri su ta wo".split()
ADJECTIVES = (
    "tiny swift bright calm bold quiet rapid lucid nimble vivid silent clever brave keen "
    "gentle fierce steady agile witty sunny"
).split()
NOUNS = (
    "otter falcon lynx heron badger marten osprey gecko ibis puffin koala wombat raven "
    "bison tapir quokka serval okapi"
).split()
NAME_SUFFIXES = ("", "", "-Instruct", "-chat", "-v2", "-finetuned", "-uncased", "-ner", "-sst2")
ODD_UNICODE = "\u202eevil\u202c \u200dzero\u200b width, cafe\u0301, emoji \U0001f917, \u4e2d\u6587"


@dataclass(frozen=True, slots=True)
class EvalResult:
    """One model-index result row: a metric of the model on a dataset for a task."""

    task: str
    dataset: str
    config: str | None
    split: str
    metric: str
    value: float


@dataclass(frozen=True, slots=True)
class Intent:
    """What a synthetic repo's card and config say, as the generator meant it (ground truth).

    `card_data` is the front matter as the API reports it in `cardData` (None when the repo has
    no README or the front matter does not parse); `description` is the plain text of the card
    body's first paragraph (inline markdown removed; headings, badges, comments and code
    blocks are never that paragraph). `config` is config.json as served, `config_values` its
    numbers under common names (hidden_size, num_attention_heads, num_hidden_layers, ...).
    """

    title: str
    description: str | None
    license: str | None
    languages: tuple[str, ...]
    datasets: tuple[str, ...]
    tasks: tuple[str, ...]
    card_tags: tuple[str, ...]
    base_models: tuple[str, ...]
    base_model_relation: str | None
    eval_results: tuple[EvalResult, ...]
    architecture: str | None
    model_type: str | None
    config: dict[str, Any] | None
    config_values: dict[str, int]
    card_data: dict[str, Any] | None
    hostile: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Recipe:
    """How a synthetic repo's files are made (see hfspider.hubsim.repofiles)."""

    family: str
    variant: int
    architecture: str
    pipeline_tag: str | None
    weights: tuple[tuple[str, int], ...]  # (path, approximate size) of each weight file
    has_readme: bool
    has_config: bool
    hostile: tuple[str, ...]
    many_files: int


@dataclass(frozen=True, slots=True)
class Revision:
    """One commit of a repo; `number` 0 is the first. File bytes depend on it."""

    number: int
    sha: str
    date: str
    title: str


@dataclass(frozen=True, slots=True)
class Model:
    """One model repo as the Hub knows it. `revisions[-1]` is the head of `main`."""

    id: str
    object_id: str
    author: str
    created_at: str
    downloads: int
    downloads_all_time: int
    likes: int
    trending_score: int
    pipeline_tag: str | None
    library_name: str | None
    tags: tuple[str, ...]
    gated: bool | str
    disabled: bool
    private: bool
    renamed_from: tuple[str, ...]
    revisions: tuple[Revision, ...]
    spaces: tuple[str, ...]
    inference: str | None
    intent: Intent | None  # None for real recorded samples
    recipe: Recipe | None  # None for real recorded samples
    index: int  # position in the synthetic sequence; -1 for samples
    listed: bool = True  # False: served by id only (an edited duplicate of a recorded repo)
    recording: Recording | None = field(default=None, compare=False)  # real repos only

    @property
    def sha(self) -> str:
        return self.revisions[-1].sha

    @property
    def last_modified(self) -> str:
        return self.revisions[-1].date

    @property
    def name(self) -> str:
        return self.id.rsplit("/", 1)[-1]

    def visible_to(self, user: str | None) -> bool:
        """Private repos exist only for their author's token."""
        return not self.private or user == self.author


@dataclass(frozen=True, slots=True)
class Mutation:
    """One change of the Hub. `at` (unix seconds) becomes lastModified or createdAt."""

    op: str  # add | update | delete | rename | gate
    at: float
    model_id: str | None = None
    new_id: str | None = None
    gated: bool | str | None = None
    index: int | None = None
    cause: str = "admin"  # admin | schedule | fault

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


MUTATION_OPS = ("add", "update", "delete", "rename", "gate")


@dataclass(frozen=True, slots=True)
class Dataset:
    """A dataset repo: every dataset a synthetic card names exists (listing and info only)."""

    id: str
    object_id: str
    author: str
    created_at: str
    last_modified: str
    sha: str
    downloads: int
    likes: int
    trending_score: int
    tags: tuple[str, ...]
    gated: bool = False
    private: bool = False
    disabled: bool = False


def make_dataset(dataset_id: str) -> Dataset:
    """The dataset repo for an id; depends on the id only, so it is the same in every corpus."""
    digest = hashlib.sha256(f"hubsim-dataset\x1f{dataset_id}".encode()).digest()
    number = int.from_bytes(digest[:8], "big")
    created = EPOCH_START + number % (EPOCH_END - EPOCH_START)
    modified = created + (number >> 32) % (EPOCH_END - created)
    downloads = (number >> 16) % 500_000
    return Dataset(
        id=dataset_id,
        object_id=f"{created:08x}{digest[8:16].hex()}",
        author=dataset_id.split("/")[0] if "/" in dataset_id else "",
        created_at=iso(created),
        last_modified=iso(modified),
        sha=digest[16:36].hex(),
        downloads=downloads,
        likes=downloads % 997,
        trending_score=downloads % 13,
        tags=("region:us",),
    )


def iso(ts: float) -> str:
    """The Hub's timestamp format: 2024-02-19T11:06:12.000Z."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{int(ts * 1000) % 1000:03d}Z"
    )


def commit_sha(seed: int, object_id: str, number: int) -> str:
    return hashlib.sha1(f"hubsim-commit\x1f{seed}\x1f{object_id}\x1f{number}".encode()).hexdigest()


class Corpus:
    """The emulated Hub's models, current state; changes only through `apply`."""

    def __init__(self, n: int, seed: int, *, huge_files: int, huge_size: int) -> None:
        self.n = n
        self.seed = seed
        self.huge_files = huge_files
        self.huge_size = huge_size
        self.models: dict[str, Model] = {}
        self.aliases: dict[str, str] = {}  # old id -> current id
        self.mutations: list[Mutation] = []
        self.version = 0  # bumped on every change, for caches
        self.next_index = 0
        self._taken: set[str] = set()
        self._by_family: dict[str, list[str]] = {}
        self._datasets: tuple[int, list[Dataset]] = (-1, [])
        self._children: tuple[int, dict[str, int]] = (-1, {})
        self._forced = _place_features(n, seed, huge_files)
        self._orgs = _orgs(seed)

    # -- lookups --------------------------------------------------------------------------

    def get(self, model_id: str) -> Model | None:
        return self.models.get(model_id)

    def lookup(self, model_id: str) -> tuple[Model | None, bool]:
        """(model, renamed): follows old ids to the current model."""
        model = self.models.get(model_id)
        if model is not None:
            return model, False
        current = self.aliases.get(model_id)
        return (self.models.get(current), True) if current else (None, False)

    def datasets(self) -> list[Dataset]:
        """Every dataset the synthetic cards name (training and evaluation)."""
        if self._datasets[0] != self.version:
            names = {
                name
                for model in self.synthetic()
                for name in (
                    *model.intent.datasets,
                    *(r.dataset for r in model.intent.eval_results),
                )
            }
            self._datasets = (self.version, [make_dataset(name) for name in sorted(names)])
        return self._datasets[1]

    def children(self) -> dict[str, int]:
        """How many synthetic models name each model as a base (childrenModelCount)."""
        if self._children[0] != self.version:
            counts: dict[str, int] = {}
            for model in self.synthetic():
                for base in model.intent.base_models:
                    counts[base] = counts.get(base, 0) + 1
            self._children = (self.version, counts)
        return self._children[1]

    def synthetic(self) -> Iterator[Model]:
        return (m for m in self.models.values() if m.intent is not None)

    def listed(self, user: str | None = None) -> list[Model]:
        """Models a listing shows to `user` (None: anonymous), in corpus order."""
        return [m for m in self.models.values() if m.listed and m.visible_to(user)]

    # -- building and changing ------------------------------------------------------------

    def add_model(self, model: Model) -> None:
        self.models[model.id] = model
        self._taken.add(model.id.lower())
        for old in model.renamed_from:
            self.aliases[old] = model.id
            self._taken.add(old.lower())
        if model.recipe is not None:
            self._by_family.setdefault(model.recipe.family, []).append(model.id)
        self.version += 1

    def apply(self, mutation: Mutation) -> Model | None:
        """Apply one change; returns the model after it (None after a delete).

        The mutation is recorded in `mutations` completed (the index of an added model, the
        id a rename chose), so replaying the records reproduces this state. Raises KeyError
        for an unknown model and ValueError for an invalid change.
        """
        if mutation.op == "add":
            if mutation.index is None:
                mutation = replace(mutation, index=self.next_index)
            index = mutation.index
            if index < self.next_index:
                raise ValueError(f"index {index} is taken")
            model = synthesize(self, index, created=mutation.at)
            self.next_index = index + 1
            self.add_model(model)
        else:
            model = self._target(mutation)
            if mutation.op == "update":
                model = self._updated(model, mutation.at)
            elif mutation.op == "delete":
                self._delete(model)
                model = None
            elif mutation.op == "rename":
                model = self._renamed(model, mutation.new_id)
                mutation = replace(mutation, new_id=model.id)
            elif mutation.op == "gate":
                if mutation.gated not in (False, "auto", "manual"):
                    raise ValueError('gated must be false, "auto" or "manual"')
                model = replace(model, gated=mutation.gated)
                self.models[model.id] = model
            else:
                raise ValueError(f"unknown op {mutation.op!r}; one of {', '.join(MUTATION_OPS)}")
        self.mutations.append(mutation)
        self.version += 1
        return model

    def _target(self, mutation: Mutation) -> Model:
        model = self.models.get(mutation.model_id or "")
        if model is None:
            raise KeyError(f"no model {mutation.model_id!r}")
        return model

    def _updated(self, model: Model, at: float) -> Model:
        number = len(model.revisions)
        revision = Revision(
            number, commit_sha(self.seed, model.object_id, number), iso(at), f"Update {number}"
        )
        model = replace(model, revisions=model.revisions + (revision,))
        self.models[model.id] = model
        return model

    def _delete(self, model: Model) -> None:
        del self.models[model.id]
        self.aliases = {old: new for old, new in self.aliases.items() if new != model.id}

    def _renamed(self, model: Model, new_id: str | None) -> Model:
        if new_id is None:
            k = 2
            while f"{model.id}-v{k}".lower() in self._taken:
                k += 1
            new_id = f"{model.id}-v{k}"
        if new_id.lower() in self._taken or new_id.count("/") != 1:
            raise ValueError(f"cannot rename to {new_id!r}")
        del self.models[model.id]
        renamed = replace(
            model,
            id=new_id,
            author=new_id.split("/")[0],
            renamed_from=model.renamed_from + (model.id,),
        )
        self.aliases = {
            old: (new_id if new == model.id else new) for old, new in self.aliases.items()
        }
        self.aliases[model.id] = new_id
        self._taken.add(new_id.lower())
        self.models[new_id] = renamed
        return renamed


def build_corpus(
    n: int,
    seed: int,
    *,
    samples: str | None = "latest",
    huge_files: int = 1,
    huge_size: int = HUGE_FILE_SIZE,
) -> Corpus:
    """The corpus an emulator started with `--models n --seed seed` serves (pure).

    `samples` picks which recordings of the real repos are served ("latest", "earliest"),
    or leaves the real repos out (None).
    """
    corpus = Corpus(n, seed, huge_files=huge_files, huge_size=huge_size)
    if samples:
        # samples builds on this module's dataclasses, hence the import here
        from hfspider.hubsim.samples import sample_models

        for model in sample_models(samples):
            corpus.add_model(model)
    for index in range(n):
        corpus.add_model(synthesize(corpus, index))
    corpus.next_index = n
    corpus.mutations.clear()
    return corpus


# -- synthesis ------------------------------------------------------------------------------


def _place_features(n: int, seed: int, huge_files: int) -> dict[int, str]:
    """Indices that must carry each feature of FEATURES (those that fit in n models)."""
    features = [g for f in FEATURES for g in ([f] * huge_files if f == "huge_file" else [f])]
    features = features[:n]
    positions = random.Random(f"hubsim-features:{seed}").sample(range(n), len(features))
    return dict(zip(positions, features, strict=True))


def _orgs(seed: int) -> list[str]:
    rng = random.Random(f"hubsim-orgs:{seed}")
    orgs: list[str] = []
    while len(orgs) < 24:
        org = rng.choice(ORG_WORDS) + rng.choice(ORG_SUFFIXES)
        if org not in orgs:
            orgs.append(org)
    return orgs


def _user(seed: int, number: int) -> str:
    rng = random.Random(f"hubsim-user:{seed}:{number}")
    return "".join(rng.choice(SYLLABLES) for _ in range(rng.randint(2, 3))) + str(
        rng.randint(1, 999)
    )


def _weighted(rng: random.Random, pairs: tuple[tuple[Any, float], ...]) -> Any:
    values, weights = zip(*pairs, strict=True)
    return rng.choices(values, weights)[0]


def _log_uniform(rng: random.Random, low: float, high: float) -> int:
    return int(math.exp(rng.uniform(math.log(low), math.log(high))))


def _lfs_size(rng: random.Random) -> int:
    """Weight sizes with a long tail but a small mean, so full crawls hash little."""
    r = rng.random()
    if r < 0.9:
        return _log_uniform(rng, 4 << 10, 1 << 20)
    if r < 0.99:
        return _log_uniform(rng, 1 << 20, 8 << 20)
    return _log_uniform(rng, 8 << 20, 64 << 20)


def _pick_family(rng: random.Random, forced: str | None) -> Family:
    if forced and forced.startswith("family:"):
        return FAMILY_BY_NAME[forced.split(":", 1)[1]]
    if forced == "merge":
        return FAMILY_BY_NAME[rng.choice(("llama", "mistral", "qwen2"))]
    if forced == "no_config":  # a family that normally has a config.json
        return FAMILY_BY_NAME[rng.choice(("bert", "gpt2", "llama"))]
    return rng.choices(FAMILIES, [f.weight for f in FAMILIES])[0]


def _weights(rng: random.Random, family: Family, name: str, huge: int | None) -> tuple:
    """The weight files of a repo: (path, approximate size)."""
    size = huge or _lfs_size(rng)
    if family.layout == "gguf":
        quants = rng.sample(("Q4_K_M", "Q5_K_M", "Q8_0", "F16", "IQ2_XS"), rng.randint(1, 3))
        return tuple(
            (f"{name}-{q}.gguf", size if i == 0 else _lfs_size(rng)) for i, q in enumerate(quants)
        )
    if family.layout == "peft":
        return (("adapter_model.safetensors", size),)
    if family.layout == "diffusers":
        return (
            ("text_encoder/model.safetensors", _lfs_size(rng)),
            ("unet/diffusion_pytorch_model.safetensors", size),
            ("vae/diffusion_pytorch_model.safetensors", _lfs_size(rng)),
        )
    style = rng.random()
    if family.layout == "timm" or huge or style < 0.55:
        return (("model.safetensors", size),)
    if style < 0.75:
        return (("model.safetensors", size), ("pytorch_model.bin", _lfs_size(rng)))
    if style < 0.85:
        return (("pytorch_model.bin", size),)
    shards = rng.randint(2, 4)
    return tuple(
        (f"model-{k:05d}-of-{shards:05d}.safetensors", size if k == 1 else _lfs_size(rng))
        for k in range(1, shards + 1)
    )


def _name(rng: random.Random, family: Family) -> str:
    stem = rng.choice(family.name_parts)
    style = rng.random()
    if style < 0.4:
        name = f"{stem}-{rng.choice(ADJECTIVES)}-{rng.choice(NOUNS)}"
    elif style < 0.7:
        name = f"{rng.choice(ADJECTIVES)}-{rng.choice(NOUNS)}-{stem}"
    else:
        name = f"{stem}-{rng.choice(NOUNS)}{rng.randint(1, 99)}"
    name += rng.choice(NAME_SUFFIXES)
    if family.layout == "gguf":
        name += "-GGUF"
    return name


def _unique_id(rng: random.Random, corpus: Corpus, author: str, name: str) -> str:
    model_id = f"{author}/{name}"
    while model_id.lower() in corpus._taken:
        model_id = f"{author}/{name}-{rng.randint(2, 9999)}"
    return model_id


def _bases(
    rng: random.Random, corpus: Corpus, family: Family, forced: str | None
) -> tuple[tuple[str, ...], str | None]:
    """(base models, relation) the card declares."""
    siblings = corpus._by_family.get(family.name, [])
    if family.layout == "gguf":
        relation, count = "quantized", 1
    elif family.layout == "peft":
        relation, count = "adapter", 1
    elif forced == "merge" or rng.random() < 0.04:
        relation, count = "merge", rng.randint(2, 3)
    elif rng.random() < 0.35:
        relation, count = "finetune", 1
    else:
        return (), None
    pool = list(EXTERNAL_BASES[family.name])
    if relation in ("finetune", "merge") and siblings:
        pool += [rng.choice(siblings) for _ in range(4)]
    bases: list[str] = []
    while len(bases) < min(count, len(set(pool))):
        base = rng.choice(pool)
        if base not in bases:
            bases.append(base)
    return tuple(bases), relation


def _eval_results(rng: random.Random, pipeline_tag: str | None) -> tuple[EvalResult, ...]:
    setups = EVAL_SETUPS.get(pipeline_tag or "")
    if not setups or rng.random() > 0.3:
        return ()
    chosen = rng.sample(setups, rng.randint(1, len(setups)))
    return tuple(
        EvalResult(
            task=pipeline_tag or "",
            dataset=dataset,
            config=config,
            split="test",
            metric=metric,
            value=round(rng.uniform(5, 95), 2) if metric != "wer" else round(rng.uniform(2, 30), 2),
        )
        for dataset, config, metric in chosen
    )


def describe(
    title: str,
    family: str,
    pipeline_tag: str | None,
    bases: tuple[str, ...],
    datasets: tuple[str, ...],
    odd: bool,
    *,
    markdown: bool = False,
) -> str:
    """The card's first paragraph: plain text (the intent), or as the README writes it."""

    def wrap(text: str, mark: str) -> str:
        return f"{mark}{text}{mark}" if markdown else text

    task = TASK_NAMES.get(pipeline_tag or "", "general use").lower()
    text = f"{wrap(title, '**')} is a {wrap(family, '`')} model for {task}"
    if bases:
        text += ", built from " + (
            f"[{bases[0]}](https://huggingface.co/{bases[0]})" if markdown else bases[0]
        )
    if datasets:
        text += f" and trained on {wrap(datasets[0], '*')}"
    text += ". It is part of a synthetic corpus served by the hfspider Hub emulator."
    if odd:
        text += f" Odd text: {ODD_UNICODE}."
    return text


def _card_data(
    rng: random.Random, intent: Intent, pipeline_tag: str | None, library: str | None
) -> dict[str, Any]:
    """Front matter as a card author writes it (some use a bare string for one value)."""
    data: dict[str, Any] = {}
    if intent.license:
        data["license"] = intent.license
        if intent.license == "other":
            data["license_name"] = "hubsim-research-license"
    languages = intent.languages
    if languages:
        single = len(languages) == 1 and rng.random() < 0.4
        data["language"] = languages[0] if single else list(languages)
    if intent.datasets:
        data["datasets"] = list(intent.datasets)
    if intent.card_tags:
        data["tags"] = list(intent.card_tags)
    bases = intent.base_models
    if bases:
        data["base_model"] = bases[0] if len(bases) == 1 and rng.random() < 0.6 else list(bases)
        data["base_model_relation"] = intent.base_model_relation
    if pipeline_tag:
        data["pipeline_tag"] = pipeline_tag
    if library:
        data["library_name"] = library
    if intent.eval_results:
        data["model-index"] = [
            {
                "name": intent.title,
                "results": [
                    {
                        "task": {"type": r.task, "name": TASK_NAMES.get(r.task, r.task)},
                        "dataset": {
                            "name": r.dataset,
                            "type": r.dataset,
                            **({"config": r.config} if r.config else {}),
                            "split": r.split,
                        },
                        "metrics": [{"type": r.metric, "value": r.value, "name": r.metric}],
                    }
                    for r in intent.eval_results
                ],
            }
        ]
    return data


def _tags(
    family: Family,
    weights: tuple,
    pipeline_tag: str | None,
    intent: Intent,
    arxiv: tuple[str, ...],
) -> tuple[str, ...]:
    """The tags the Hub computes: library, formats, type, task, card facts, region."""
    tags: list[str] = []
    if family.library:
        tags.append(family.library)
    paths = [p for p, _ in weights]
    if any(p.endswith(".safetensors") for p in paths):
        tags.append("safetensors")
    if any(p.endswith(".bin") for p in paths):
        tags.append("pytorch")
    if any(p.endswith(".gguf") for p in paths):
        tags.append("gguf")
    if family.model_type and family.library == "transformers":
        tags.append(family.model_type)
    if pipeline_tag:
        tags.append(pipeline_tag)
    if intent.card_data is not None:
        tags += [t for t in intent.card_tags if t not in tags]
        tags += intent.languages
        tags += [f"dataset:{d}" for d in intent.datasets]
    tags += [f"arxiv:{a}" for a in arxiv]
    if intent.card_data is not None:
        for base in intent.base_models:
            tags += [f"base_model:{base}", f"base_model:{intent.base_model_relation}:{base}"]
        if intent.license:
            tags.append(f"license:{intent.license}")
    if family.library == "transformers":
        tags.append("endpoints_compatible")
    tags.append("region:us")
    return tuple(dict.fromkeys(tags))


def _intent(
    rng: random.Random,
    corpus: Corpus,
    family: Family,
    forced: str | None,
    recipe: Recipe,
    title: str,
) -> Intent:
    """What the card and config of a new synthetic repo say."""
    hostile, pipeline_tag = recipe.hostile, recipe.pipeline_tag
    license_ = _weighted(rng, LICENSES)
    languages: tuple[str, ...] = ()
    if family.text:
        languages = tuple(rng.sample(LANGUAGES, rng.choices((0, 1, 2, 3), (15, 70, 10, 5))[0]))
    pool = DATASET_POOLS.get(family.name, TEXT_DATASETS)
    datasets = tuple(rng.sample(pool, rng.choices((0, 1, 2), (50, 35, 15))[0]))
    card_tags = tuple(rng.sample(CARD_TAGS, rng.choices((0, 1, 2, 3), (40, 30, 20, 10))[0]))
    bases, relation = _bases(rng, corpus, family, forced)
    results = _eval_results(rng, pipeline_tag)
    readable = recipe.has_readme and not set(hostile) & {"yaml_bomb", "malformed_front_matter"}
    if not readable:  # a card that cannot be read declares nothing
        license_, languages, datasets, card_tags, bases, relation = None, (), (), (), (), None
        results = ()
    if "odd_unicode" in hostile:
        card_tags += ("\u00e9t\u00e9-\U0001f917",)
    config = None
    if recipe.has_config:
        variant = family.variants[recipe.variant]
        config = config_json(family, variant, recipe.architecture, pipeline_tag or "")
    description = None
    if recipe.has_readme:
        odd = "odd_unicode" in hostile
        description = describe(title, family.name, pipeline_tag, bases, datasets, odd)
    intent = Intent(
        title=title,
        description=description,
        license=license_,
        languages=languages,
        datasets=datasets,
        tasks=tuple(dict.fromkeys([pipeline_tag, *(r.task for r in results)])),
        card_tags=card_tags,
        base_models=bases,
        base_model_relation=relation,
        eval_results=results,
        architecture=recipe.architecture if family.layout != "peft" else None,
        model_type=family.model_type,
        config=config,
        config_values=normalized_config(family, config),
        card_data=None,
        hostile=hostile,
    )
    if readable:
        intent = replace(intent, card_data=_card_data(rng, intent, pipeline_tag, family.library))
    return intent


def _history(
    rng: random.Random, seed: int, object_id: str, created: float, modified: float
) -> tuple[Revision, ...]:
    """1-3 commits between creation and last modification."""
    count = rng.choices((1, 2, 3), (70, 20, 10))[0] if modified > created else 1
    dates = [created + (modified - created) * k // max(1, count - 1) for k in range(count)]
    dates[-1] = modified
    return tuple(
        Revision(
            k,
            commit_sha(seed, object_id, k),
            iso(ts),
            "Initial commit" if k == 0 else f"Update {k}",
        )
        for k, ts in enumerate(dates)
    )


def synthesize(corpus: Corpus, index: int, *, created: float | None = None) -> Model:
    """Synthetic model number `index` of `corpus` (deterministic for its seed and state)."""
    seed = corpus.seed
    rng = random.Random(f"hubsim-model:{seed}:{index}")
    forced = corpus._forced.get(index) if index < corpus.n else None
    family = _pick_family(rng, forced)
    architecture, pipeline_tag = rng.choice(family.heads)
    if rng.random() < 0.45:
        author = rng.choices(corpus._orgs, [1 / (k + 1) for k in range(len(corpus._orgs))])[0]
    else:
        author = _user(seed, rng.randrange(max(8, corpus.n // 4)))
    title = _name(rng, family)
    model_id = _unique_id(rng, corpus, author, title)

    if created is None:
        created = SENTINEL_CREATED if rng.random() < 0.04 else rng.randint(EPOCH_START, EPOCH_END)
        modified = rng.randint(created, EPOCH_END)
    else:
        modified = created
    digest = hashlib.blake2b(f"hubsim-oid:{seed}:{index}".encode(), digest_size=8).hexdigest()
    object_id = f"{int(created):08x}{digest}"

    # a placed feature comes alone: no random restriction or omission on top of it
    chance = 0.0 if forced else 1.0
    hostile = (forced,) if forced in HOSTILE_KINDS else ()
    if not forced and rng.random() < 0.015:
        hostile = (rng.choice(HOSTILE_KINDS),)
    has_config = family.layout in ("transformers", "sentence-transformers", "timm")
    weights = _weights(rng, family, title, corpus.huge_size if forced == "huge_file" else None)
    recipe = Recipe(
        family=family.name,
        variant=rng.randrange(len(family.variants)),
        architecture=architecture,
        pipeline_tag=pipeline_tag,
        weights=weights,
        has_readme=forced != "no_readme" and rng.random() >= 0.02 * chance,
        has_config=has_config and forced != "no_config" and rng.random() >= 0.02 * chance,
        hostile=hostile,
        many_files=MANY_FILES if forced == "many_files" else 0,
    )
    intent = _intent(rng, corpus, family, forced, recipe, title)
    arxiv = tuple(
        f"{rng.randint(1810, 2509)}.{rng.randint(1, 19999):05d}"
        for _ in range(rng.choices((0, 1, 2), (70, 20, 10))[0])
    )

    downloads = 0 if rng.random() < 0.2 else int((rng.paretovariate(0.6) - 1) * 40)
    downloads = min(downloads, 90_000_000)
    likes = int(math.sqrt(downloads) * rng.random() * 0.4) + (rng.random() < 0.15)
    gated: bool | str = False
    if forced in ("gated_auto", "gated_manual"):
        gated = forced.split("_")[1]
    elif rng.random() < 0.04 * chance:
        gated = rng.choice(("auto", "manual"))
    renamed_from: tuple[str, ...] = ()
    if forced in ("renamed", "renamed_legacy") or rng.random() < 0.02 * chance:
        old = (
            f"{title}-legacy"
            if forced == "renamed_legacy"
            else f"{rng.choice(corpus._orgs)}/{title}-old"
        )
        if old.lower() not in corpus._taken and old.lower() != model_id.lower():
            renamed_from = (old,)
    spaces = tuple(
        f"{_user(seed, rng.randrange(1000))}/{rng.choice(NOUNS)}-demo"
        for _ in range(rng.choices((0, 1, 3), (85, 10, 5))[0])
    )
    return Model(
        id=model_id,
        object_id=object_id,
        author=author,
        created_at=iso(created),
        downloads=downloads,
        downloads_all_time=downloads + int(downloads * rng.uniform(0, 20)),
        likes=likes,
        trending_score=int(likes * rng.random() * 0.05),
        pipeline_tag=pipeline_tag,
        library_name=family.library,
        tags=_tags(family, weights, pipeline_tag, intent, arxiv),
        gated=gated,
        disabled=forced == "disabled" or rng.random() < 0.005 * chance,
        private=forced == "private" or rng.random() < 0.02 * chance,
        renamed_from=renamed_from,
        revisions=_history(rng, seed, object_id, created, modified),
        spaces=spaces,
        inference="warm" if rng.random() < 0.05 else None,
        intent=intent,
        recipe=recipe,
        index=index,
    )

"""The Hub's JSON shapes and error answers: the one place that knows what each endpoint returns.

Key order follows the real answers (`_id, id, private, pipeline_tag, ...` for model info;
`_id, id, likes, trendingScore, ...` for listing items); keys without a value are left out,
as the Hub does. `expand=` answers hold only `_id`, `id` and the requested keys. Real recorded
repos answer from their recorded fields (hfspider.hubsim.samples).

Errors are `HubError`s carrying the Hub's status, `X-Error-Code` and message; the server turns
them into `{"error": message}` bodies (or the plain text the resolve endpoints use).
"""

from __future__ import annotations

import base64
import hashlib
import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from hfspider.hubsim.content import Digest, Keystream
from hfspider.hubsim.corpus import Corpus, Dataset, Model, Revision
from hfspider.hubsim.families import FAMILY_BY_NAME, MASK_TOKENS
from hfspider.hubsim.repofiles import (
    Snapshot,
    file_names,
    gguf_metadata,
    safetensors_parameters,
    snapshot,
    tokenizer_config,
)

JSON_TYPE = "application/json; charset=utf-8"
TEXT_TYPE = "text/plain; charset=utf-8"
HEX40 = re.compile(r"[0-9a-f]{40}")
HEX_PREFIX = re.compile(r"[0-9a-f]{7,39}")
AUTO_MODELS = {
    "fill-mask": "AutoModelForMaskedLM",
    "text-classification": "AutoModelForSequenceClassification",
    "token-classification": "AutoModelForTokenClassification",
    "question-answering": "AutoModelForQuestionAnswering",
    "text-generation": "AutoModelForCausalLM",
    "text2text-generation": "AutoModelForSeq2SeqLM",
    "translation": "AutoModelForSeq2SeqLM",
    "summarization": "AutoModelForSeq2SeqLM",
    "image-classification": "AutoModelForImageClassification",
    "automatic-speech-recognition": "AutoModelForSpeechSeq2Seq",
}
WIDGET_TEXT = {
    "fill-mask": "Paris is the [MASK] of France.",
    "text-generation": "My name is Julien and I like to",
    "text-classification": "I like you. I love you",
}
TOKENIZER_CONFIG_KEYS = ("bos_token", "eos_token", "pad_token", "unk_token", "chat_template")

# The Hub's error texts (hfspider/hubsim/samples and ../shared/notes/hub-api.md section 6).
REPO_NOT_FOUND = "Repository not found"
INVALID_USER = "Invalid username or password."
INVALID_CREDENTIALS = "Invalid credentials in Authorization header"
DISABLED = "Access to this resource is disabled."
GATED_ANONYMOUS = (
    "Access to model {id} is restricted. You must have access to it and be authenticated to "
    "access it. Please log in."
)
GATED_DENIED = (
    "Access to model {id} is restricted and you are not in the authorized list. "
    "Visit https://huggingface.co/{id} to ask for access."
)


@dataclass
class HubError(Exception):
    """An error answer: status, message, X-Error-Code, extra headers, plain-text body or not."""

    status: int
    message: str
    code: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    text: bool = False


def repo_not_found(authenticated: bool) -> HubError:
    """Missing or private repo. Anonymous callers get 401 (with the code, see the notes)."""
    if authenticated:
        return HubError(404, REPO_NOT_FOUND, "RepoNotFound")
    headers = {"WWW-Authenticate": 'Bearer realm="Authentication required", charset="UTF-8"'}
    return HubError(401, INVALID_USER, "RepoNotFound", headers)


def revision_not_found(rev: str) -> HubError:
    return HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")


def entry_not_found(path: str, rev: str) -> HubError:
    return HubError(404, f'{path} does not exist on "{rev}"', "EntryNotFound")


def file_not_found(commit: str) -> HubError:
    return HubError(404, "Entry not found", "EntryNotFound", {"X-Repo-Commit": commit}, text=True)


def gated(model: Model, authenticated: bool) -> HubError:
    if authenticated:
        return HubError(403, GATED_DENIED.format(id=model.id), "GatedRepo")
    return HubError(401, GATED_ANONYMOUS.format(id=model.id), "GatedRepo")


def disabled() -> HubError:
    return HubError(403, DISABLED)


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj)


def json_etag(body: bytes) -> str:
    """The Hub's weak JSON ETag: hex length and the start of base64(sha1(body))."""
    digest = base64.b64encode(hashlib.sha1(body).digest()).decode()[:27]
    return f'W/"{len(body):x}-{digest}"'


def find_revision(model: Model, rev: str) -> Revision | None:
    """A revision by name: main, refs/heads/main, a full sha or an unambiguous prefix."""
    if rev in ("main", "refs/heads/main"):
        return model.revisions[-1]
    if HEX40.fullmatch(rev):
        return next((r for r in model.revisions if r.sha == rev), None)
    if HEX_PREFIX.fullmatch(rev):
        found = [r for r in model.revisions if r.sha.startswith(rev)]
        return found[0] if len(found) == 1 else None
    return None


# -- model fields ---------------------------------------------------------------------------

_MISSING = object()


def api_config(model: Model, revision: Revision) -> dict[str, Any] | None:
    """The `config` the API shows: a subset of config.json (None: no such key)."""
    if model.recording is not None:
        return model.recording.info(revision.sha).get("config")
    recipe, intent = model.recipe, model.intent
    assert recipe is not None and intent is not None
    family = FAMILY_BY_NAME[recipe.family]
    if family.layout == "gguf":
        return {}
    if family.layout == "diffusers":
        return {"diffusers": {"_class_name": recipe.architecture}}
    if family.layout == "peft":
        base = intent.base_models[0] if intent.base_models else None
        return {"peft": {"base_model_name_or_path": base, "task_type": "CAUSAL_LM"}}
    if intent.config is None:
        return None
    config = {k: intent.config[k] for k in ("architectures", "model_type") if k in intent.config}
    if family.tokenizer != "none":
        tokenizer = tokenizer_config(family, intent.title)
        config["tokenizer_config"] = {
            k: tokenizer[k] for k in TOKENIZER_CONFIG_KEYS if k in tokenizer
        }
    return config


def used_storage(corpus: Corpus, model: Model) -> int:
    """Bytes of all distinct files over all revisions."""
    seen: set[tuple[str, object]] = set()
    total = 0
    for revision in model.revisions:
        for f in snapshot(corpus, model, revision).files:
            key = (f.path, f.source.key if isinstance(f.source, Keystream) else f.source.data)
            if key not in seen:
                seen.add(key)
                total += f.size
    return total


def _synthetic_field(
    corpus: Corpus, model: Model, revision: Revision, key: str, listing: bool
) -> Any:
    recipe, intent = model.recipe, model.intent
    assert recipe is not None and intent is not None
    family = FAMILY_BY_NAME[recipe.family]
    if key == "cardData":
        return intent.card_data if intent.card_data is not None else _MISSING
    if key == "config":
        config = api_config(model, revision)
        return config if config is not None else _MISSING
    if key == "model-index":
        return (intent.card_data or {}).get("model-index")
    if key == "baseModels":
        if not intent.base_models:
            return _MISSING
        return {
            "relation": intent.base_model_relation,
            "models": [{"id": b} for b in intent.base_models],
        }
    if key == "mask_token":
        token = MASK_TOKENS.get(family.model_type or "")
        return token if token and recipe.pipeline_tag == "fill-mask" else _MISSING
    if key == "widgetData":
        text = WIDGET_TEXT.get(recipe.pipeline_tag or "")
        if text is None:
            return _MISSING
        return [
            {"text": text.replace("[MASK]", MASK_TOKENS.get(family.model_type or "", "[MASK]"))}
        ]
    if key == "transformersInfo":
        if family.library != "transformers" or intent.config is None:
            return _MISSING
        processor = "AutoTokenizer" if family.tokenizer != "none" else "AutoImageProcessor"
        return {
            "auto_model": AUTO_MODELS.get(recipe.pipeline_tag or "", "AutoModel"),
            "pipeline_tag": recipe.pipeline_tag,
            "processor": processor,
        }
    if key == "safetensors":
        params = sum(
            safetensors_parameters(s) for p, s in recipe.weights if p.endswith(".safetensors")
        )
        return {"parameters": {"BF16": params}, "total": params} if params else _MISSING
    if key == "gguf":
        ggufs = [s for p, s in recipe.weights if p.endswith(".gguf")]
        if not ggufs:
            return _MISSING
        meta = gguf_metadata(family)
        return {"total": ggufs[0] * 2, **meta, "bos_token": "<s>", "eos_token": "</s>"}
    if key == "usedStorage":
        return used_storage(corpus, model)
    if key == "childrenModelCount":
        return corpus.children().get(model.id, 0)
    if key == "evalResults" or key == "resourceGroup":
        return _MISSING
    return _common_field(corpus, model, revision, key, listing)


def _common_field(corpus: Corpus, model: Model, revision: Revision, key: str, listing: bool) -> Any:
    simple = {
        "author": model.author,
        "createdAt": model.created_at,
        "disabled": model.disabled,
        "downloads": model.downloads,
        "downloadsAllTime": model.downloads_all_time,
        "gated": model.gated,
        "lastModified": revision.date,
        "likes": model.likes,
        "private": model.private,
        "sha": revision.sha,
        "spaces": list(model.spaces),
        "tags": list(model.tags),
        "trendingScore": model.trending_score,
        "xetEnabled": False,
    }
    if key in simple:
        return simple[key]
    if key in ("pipeline_tag", "library_name", "inference"):
        value = {"pipeline_tag": model.pipeline_tag, "library_name": model.library_name}.get(
            key, model.inference
        )
        return value if value is not None else _MISSING
    if key == "siblings":
        return [{"rfilename": name} for name in file_names(corpus, model, revision)]
    if key == "inferenceProviderMapping":
        return [] if listing else {}
    return _MISSING


def model_field(
    corpus: Corpus, model: Model, revision: Revision, key: str, *, listing: bool
) -> Any:
    """One field of a model at a revision, or _MISSING when the Hub would leave it out."""
    if model.recording is not None:
        info = model.recording.info(revision.sha)
        if key in info:
            return info[key]
        return _common_field(corpus, model, revision, key, listing)
    return _synthetic_field(corpus, model, revision, key, listing)


def _fields(
    corpus: Corpus, model: Model, revision: Revision, keys: tuple[str, ...], listing: bool
) -> dict:
    out: dict[str, Any] = {}
    for key in keys:
        if key == "modelId":
            out[key] = model.id
            continue
        value = model_field(corpus, model, revision, key, listing=listing)
        if value is not _MISSING:
            out[key] = value
    return out


LISTING_KEYS = (
    "likes",
    "trendingScore",
    "private",
    "downloads",
    "tags",
    "pipeline_tag",
    "library_name",
    "createdAt",
    "modelId",
)
FULL_LISTING_KEYS = (
    "author",
    "gated",
    "lastModified",
    "likes",
    "trendingScore",
    "private",
    "sha",
    "downloads",
    "tags",
    "pipeline_tag",
    "library_name",
    "createdAt",
    "modelId",
)
INFO_KEYS = (
    "private",
    "pipeline_tag",
    "library_name",
    "tags",
    "downloads",
    "likes",
    "modelId",
    "author",
    "sha",
    "lastModified",
    "gated",
    "inference",
    "disabled",
    "mask_token",
    "widgetData",
    "model-index",
    "config",
    "cardData",
    "transformersInfo",
    "siblings",
    "spaces",
    "createdAt",
    "safetensors",
    "gguf",
    "usedStorage",
)


def listing_item(
    corpus: Corpus,
    model: Model,
    *,
    full: bool,
    config: bool,
    card_data: bool,
    expand: tuple[str, ...] | None,
) -> dict[str, Any]:
    """One `GET /api/models` item, in the shape the query asks for."""
    head = model.revisions[-1]
    item: dict[str, Any] = {"_id": model.object_id, "id": model.id}
    if expand is not None:
        item.update(_fields(corpus, model, head, expand, listing=True))
        return item
    keys = FULL_LISTING_KEYS if full else LISTING_KEYS
    extra = (
        (("disabled",) if full else ())
        + (("config",) if config else ())
        + (("cardData",) if card_data else ())
    )
    item.update(_fields(corpus, model, head, keys + extra, listing=True))
    if full:
        item["siblings"] = [{"rfilename": name} for name in file_names(corpus, model, head)]
    return item


def model_info(
    corpus: Corpus,
    model: Model,
    revision: Revision,
    *,
    digests: dict[str, Digest] | None,
    security: bool,
) -> dict[str, Any]:
    """`GET /api/models/{id}[/revision/{rev}]`; with `digests`, siblings carry blob fields."""
    if model.recording is not None:
        info = dict(model.recording.info(revision.sha))
    else:
        info = {"_id": model.object_id, "id": model.id}
        info.update(_fields(corpus, model, revision, INFO_KEYS, listing=False))
    if digests is not None:
        info["siblings"] = [
            sibling(s["rfilename"], digests[s["rfilename"]])
            for s in info.get("siblings") or ()
            if s["rfilename"] in digests
        ]
    if security:
        info["securityRepoStatus"] = {"scansDone": True, "filesWithIssues": []}
    return info


def model_expanded(
    corpus: Corpus, model: Model, revision: Revision, keys: tuple[str, ...]
) -> dict[str, Any]:
    """`GET /api/models/{id}?expand=...`: `_id`, `id` and the requested keys only."""
    item: dict[str, Any] = {"_id": model.object_id, "id": model.id}
    item.update(_fields(corpus, model, revision, keys, listing=False))
    return item


def sibling(path: str, digest: Digest) -> dict[str, Any]:
    entry: dict[str, Any] = {"rfilename": path, "blobId": digest.blob_id, "size": digest.size}
    if digest.lfs:
        entry["lfs"] = {
            "sha256": digest.sha256,
            "size": digest.size,
            "pointerSize": digest.pointer_size,
        }
    return entry


# -- tree, refs, commits ----------------------------------------------------------------------


def tree_file(path: str, digest: Digest, last_commit: Revision | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "type": "file",
        "oid": digest.blob_id,
        "size": digest.size,
        "path": path,
    }
    if digest.lfs:
        entry["lfs"] = {
            "oid": digest.sha256,
            "size": digest.size,
            "pointerSize": digest.pointer_size,
        }
    if last_commit is not None:
        entry["lastCommit"] = _commit_ref(last_commit)
        entry["securityFileStatus"] = {"status": "safe"}
    return entry


def tree_directory(path: str, oid: str, last_commit: Revision | None) -> dict[str, Any]:
    entry: dict[str, Any] = {"type": "directory", "oid": oid, "size": 0, "path": path}
    if last_commit is not None:
        entry["lastCommit"] = _commit_ref(last_commit)
    return entry


def _commit_ref(revision: Revision) -> dict[str, Any]:
    return {"id": revision.sha, "title": revision.title, "date": revision.date}


def last_commit_of(model: Model, snap: Snapshot, path: str) -> Revision:
    """The commit that last changed a path: cards and the first weight change every commit."""
    recipe = model.recipe
    if recipe is None:
        return snap.revision
    changing = {"README.md", recipe.weights[0][0]} if recipe.weights else {"README.md"}
    if any(p == path or p.startswith(path + "/") for p in changing):
        return snap.revision
    return model.revisions[0]


def tree_oid(snap: Snapshot, directory: str, digests: dict[str, Digest]) -> str:
    """The git tree id of a directory ("" for the root) from its files' blob ids."""
    prefix = f"{directory}/" if directory else ""
    children: dict[str, tuple[bytes, bytes]] = {}
    for f in snap.files:
        if not f.path.startswith(prefix):
            continue
        name, _, rest = f.path[len(prefix) :].partition("/")
        if rest:
            if name not in children:
                oid = tree_oid(snap, prefix + name, digests)
                children[name] = (b"40000", bytes.fromhex(oid))
        else:
            children[name] = (b"100644", bytes.fromhex(digests[f.path].blob_id))

    def git_order(name: str) -> bytes:
        return name.encode() + (b"/" if children[name][0] == b"40000" else b"")

    body = b"".join(
        mode + b" " + name.encode() + b"\0" + oid
        for name in sorted(children, key=git_order)
        for mode, oid in [children[name]]
    )
    return hashlib.sha1(b"tree %d\0" % len(body) + body).hexdigest()


def refs(model: Model, include_prs: bool) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "branches": [{"name": "main", "ref": "refs/heads/main", "targetCommit": model.sha}],
        "converts": [],
        "tags": [],
    }
    if include_prs:
        answer["pullRequests"] = []
    return answer


def commits(model: Model, revision: Revision) -> list[dict[str, Any]]:
    """The history up to `revision`, newest first."""
    return [
        {
            "id": r.sha,
            "title": r.title,
            "message": "",
            "authors": [{"user": model.author}],
            "date": r.date,
        }
        for r in reversed(model.revisions[: revision.number + 1])
    ]


# -- datasets, users --------------------------------------------------------------------------


def dataset_item(dataset: Dataset, expand: tuple[str, ...] | None) -> dict[str, Any]:
    fields = {
        "author": dataset.author,
        "disabled": dataset.disabled,
        "gated": dataset.gated,
        "lastModified": dataset.last_modified,
        "likes": dataset.likes,
        "trendingScore": dataset.trending_score,
        "private": dataset.private,
        "sha": dataset.sha,
        "downloads": dataset.downloads,
        "tags": list(dataset.tags),
        "createdAt": dataset.created_at,
    }
    item: dict[str, Any] = {"_id": dataset.object_id, "id": dataset.id}
    keys = expand if expand is not None else tuple(fields)
    item.update({k: fields[k] for k in keys if k in fields})
    return item


def whoami(user: str, tier: str) -> dict[str, Any]:
    return {
        "type": "user",
        "name": user,
        "fullname": user,
        "isPro": tier not in ("anonymous", "free"),
        "orgs": [],
        "auth": {"type": "access_token", "accessToken": {"displayName": "hubsim", "role": "read"}},
    }

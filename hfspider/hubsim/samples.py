"""Real recorded Hub answers (samples/, see its README): served byte for byte for their repos.

Every `GET /api/models/...` interaction in `samples/interactions/` and the transcribed GGUF
model info become repos of the corpus. A recorded request is answered with the recorded body,
so the bytes equal the recording wherever the recording itself is byte-exact (the samples
README flags the hand-edited ones). A recorded 307 makes the old id an alias of the new one.

Several URLs were recorded twice, on different days. `--samples latest` (the default) serves
the newest recording per URL and keeps an older body whose commit differs as that commit's
`/revision/{sha}` answer; `--samples earliest` serves the oldest one, so that every recording
can be checked against a running emulator. Requests nobody recorded (`blobs=true`, other
`expand` values, tree, resolve) are answered from the recorded fields; file bytes of real
repos are stand-ins of modest size (see hfspider.hubsim.repofiles), the recorded metadata is
kept as is. Repos recorded only through `expand=...` get the few missing essentials (sha,
dates, a README) synthesized.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, replace
from email.utils import parsedate_to_datetime
from importlib import resources
from typing import Any
from urllib.parse import urlsplit

from hfspider.hubsim.corpus import Model, Revision, iso

EPOCHS = ("latest", "earliest")
MODELS_PREFIX = "/api/models/"
TRANSCRIBED_INFO = "transcribed/api_models_ggml-org_gemma-3-1b-it-GGUF__body__2026-08.json"


@dataclass(frozen=True, slots=True)
class Recorded:
    """One recorded answer: its request, status, body bytes and recording time."""

    file: str  # path under samples/
    repo_id: str
    query: str  # raw query string of the recorded request ("" when none)
    status: int
    body: bytes
    location: str | None
    recorded_at: float  # the response's Date header (0 when unknown)


@dataclass(frozen=True, slots=True)
class Recording:
    """What is served for one real repo: recorded bodies by query and by commit."""

    info_by_sha: dict[str, dict[str, Any]]  # every known commit -> model info fields
    bodies: dict[str, bytes]  # query of a recorded request at the head -> exact body
    commit_bodies: dict[str, bytes]  # older commit sha -> exact body of its model info
    synthesized: bool  # True when no full model info was recorded

    def info(self, sha: str) -> dict[str, Any]:
        return self.info_by_sha[sha]


def _samples_dir() -> Any:
    return resources.files("hfspider.hubsim") / "samples"


def recorded_answers() -> list[Recorded]:
    """Every recorded model-info answer among the samples, in file name order."""
    root = _samples_dir()
    answers: list[Recorded] = []
    for entry in sorted((root / "interactions").iterdir(), key=lambda e: e.name):
        data = json.loads(entry.read_text("utf-8"))
        request, response = data["request"], data["response"]
        url = urlsplit(request["uri"])
        if request["method"] != "GET" or not url.path.startswith(MODELS_PREFIX):
            continue
        headers = response["headers"]
        date = headers.get("Date", [""])[0]
        answers.append(
            Recorded(
                file=f"interactions/{entry.name}",
                repo_id=url.path[len(MODELS_PREFIX) :],
                query=url.query,
                status=response["status"]["code"],
                body=response["body"].encode("utf-8"),
                location=headers.get("Location", [None])[0],
                recorded_at=parsedate_to_datetime(date).timestamp() if date else 0.0,
            )
        )
    body = (root / TRANSCRIBED_INFO).read_bytes().rstrip(b"\n")
    answers.append(Recorded(TRANSCRIBED_INFO, json.loads(body)["id"], "", 200, body, None, 0.0))
    return answers


@functools.cache
def sample_models(epoch: str = "latest") -> tuple[Model, ...]:
    """The real repos, as corpus models (`recording` set, `intent` None)."""
    if epoch not in EPOCHS:
        raise ValueError(f"samples epoch must be one of {EPOCHS}")
    answers = recorded_answers()
    chosen: dict[tuple[str, str], Recorded] = {}
    by_url: dict[tuple[str, str], list[Recorded]] = {}
    for answer in answers:
        by_url.setdefault((answer.repo_id, answer.query), []).append(answer)
    for url, group in by_url.items():
        group.sort(key=lambda a: a.recorded_at)
        chosen[url] = group[-1] if epoch == "latest" else group[0]

    aliases: dict[str, list[str]] = {}
    repos: dict[str, dict[str, Recorded]] = {}
    for (repo_id, query), answer in chosen.items():
        if answer.status == 307 and answer.location:
            target = urlsplit(answer.location).path[len(MODELS_PREFIX) :]
            aliases.setdefault(target, [])
            if repo_id not in aliases[target]:
                aliases[target].append(repo_id)
        elif answer.status == 200:
            repos.setdefault(repo_id, {})[query] = answer

    seen_ids: set[str] = set()
    models = []
    for repo_id in sorted(repos, key=lambda r: ("/" not in r, r)):
        older = [
            a
            for a in by_url.get((repo_id, ""), [])
            if epoch == "latest" and a is not repos[repo_id].get("")
        ]
        model = _model(repo_id, repos[repo_id], older, tuple(aliases.get(repo_id, ())))
        if model.object_id in seen_ids:
            model = replace(model, listed=False)  # an edited copy of a listed repo
        seen_ids.add(model.object_id)
        models.append(model)
    return tuple(models)


def _model(
    repo_id: str, recorded: dict[str, Recorded], older: list[Recorded], renamed_from: tuple
) -> Model:
    head = recorded.get("")
    info = json.loads(head.body) if head else _synthesized_info(repo_id, recorded)
    info_by_sha = {info["sha"]: info}
    commit_bodies: dict[str, bytes] = {}
    revisions: list[Revision] = []
    for answer in older:
        old = json.loads(answer.body)
        if old.get("sha") and old["sha"] != info["sha"] and old["sha"] not in info_by_sha:
            info_by_sha[old["sha"]] = old
            commit_bodies[old["sha"]] = answer.body
            revisions.append(Revision(0, old["sha"], old["lastModified"], "Recorded commit"))
    revisions.append(Revision(0, info["sha"], info["lastModified"], "Recorded commit"))
    revisions = [Revision(k, r.sha, r.date, r.title) for k, r in enumerate(revisions)]
    recording = Recording(
        info_by_sha=info_by_sha,
        bodies={query: answer.body for query, answer in recorded.items()},
        commit_bodies=commit_bodies,
        synthesized=head is None,
    )
    return Model(
        id=repo_id,
        object_id=info["_id"],
        author=info.get("author") or repo_id.split("/")[0],
        created_at=info.get("createdAt") or iso(int(info["_id"][:8], 16)),
        downloads=info.get("downloads", 0),
        downloads_all_time=info.get("downloadsAllTime", info.get("downloads", 0)),
        likes=info.get("likes", 0),
        trending_score=info.get("trendingScore", 0),
        pipeline_tag=info.get("pipeline_tag"),
        library_name=info.get("library_name"),
        tags=tuple(info.get("tags", ())),
        gated=info.get("gated", False),
        disabled=info.get("disabled", False),
        private=info.get("private", False),
        renamed_from=renamed_from,
        revisions=tuple(revisions),
        spaces=tuple(info.get("spaces", ())),
        inference=info.get("inference"),
        intent=None,
        recipe=None,
        index=-1,
        recording=recording,
    )


def _synthesized_info(repo_id: str, recorded: dict[str, Recorded]) -> dict[str, Any]:
    """Model info for a repo recorded only through `expand=`: the recorded `_id` plus essentials."""
    answer = max(recorded.values(), key=lambda a: a.recorded_at)
    object_id = json.loads(answer.body)["_id"]
    sha = hashlib.sha1(f"hubsim-sample\x1f{repo_id}".encode()).hexdigest()
    return {
        "_id": object_id,
        "id": repo_id,
        "private": False,
        "tags": [],
        "downloads": 0,
        "likes": 0,
        "modelId": repo_id,
        "author": repo_id.split("/")[0],
        "sha": sha,
        "lastModified": iso(answer.recorded_at),
        "gated": False,
        "disabled": False,
        "siblings": [{"rfilename": ".gitattributes"}, {"rfilename": "README.md"}],
        "createdAt": iso(int(object_id[:8], 16)),
    }

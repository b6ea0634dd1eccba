"""Every real recorded Hub answer in hfspider/hubsim/samples is served as it was recorded."""

from __future__ import annotations

import json
from importlib import resources

import pytest
import yaml

from hfspider.hubsim.samples import recorded_answers
from tests.fixtures.hubsim import UNLIMITED, HubSim


def recorded_etag(file: str) -> tuple[str | None, int | None]:
    """(ETag, Content-Length) of a recorded interaction, from its headers."""
    if not file.startswith("interactions/"):
        return None, None
    data = json.loads((resources.files("hfspider.hubsim") / "samples" / file).read_text("utf-8"))
    headers = data["response"]["headers"]
    length = headers.get("Content-Length", [None])[0]
    return headers.get("ETag", [None])[0], int(length) if length else None


@pytest.fixture(scope="module")
def emulators(hubsim, request):
    """The session emulator serves the latest recordings; a second one the earliest."""
    earliest = HubSim(*UNLIMITED, "--samples", "earliest", models=10)
    request.addfinalizer(earliest.stop)
    return {"latest": hubsim, "earliest": earliest}


def test_every_recorded_model_answer_is_served_byte_for_byte(emulators) -> None:
    answers = recorded_answers()
    assert len(answers) >= 60
    exact = 0
    for answer in answers:
        url = f"/api/models/{answer.repo_id}" + (f"?{answer.query}" if answer.query else "")
        served = []
        for sim in emulators.values():
            got = sim.get(url)
            served.append(got)
            sha = json.loads(answer.body).get("sha") if answer.status == 200 else None
            if sha and not answer.query:  # an older commit is served at its revision
                served.append(sim.get(f"/api/models/{answer.repo_id}/revision/{sha}"))
        matching = [g for g in served if g.status == answer.status and g.body == answer.body]
        assert matching, f"{answer.file} is not served as recorded"
        if answer.status == 307:
            assert matching[0].headers["Location"] == answer.location
            continue
        etag, length = recorded_etag(answer.file)
        if length == len(answer.body):  # byte-exact recording: the Hub's own ETag too
            assert matching[0].headers["ETag"] == etag, answer.file
            exact += 1
    assert exact >= 55


def test_hand_edited_recordings_are_the_ones_flagged_upstream() -> None:
    edited = []
    for answer in recorded_answers():
        _, length = recorded_etag(answer.file)
        if length is not None and length != len(answer.body):
            edited.append(answer.repo_id)
    assert edited == ["gpt2"]  # the samples README: id shortened to `gpt2`


def test_raw_cassettes_hold_nothing_the_interactions_miss() -> None:
    bodies = {a.body for a in recorded_answers()}
    root = resources.files("hfspider.hubsim") / "samples" / "cassettes_raw"
    checked = 0
    for cassette in root.iterdir():
        for interaction in yaml.safe_load(cassette.read_text("utf-8"))["interactions"]:
            request, response = interaction["request"], interaction["response"]
            if request["method"] == "GET" and "/api/models/" in request["uri"]:
                assert response["body"]["string"].encode() in bodies
                checked += 1
    assert checked >= 4


def test_sample_repos_answer_what_nobody_recorded(hubsim) -> None:
    info = hubsim.get("/api/models/google-bert/bert-base-uncased?blobs=true").json()
    recorded = json.loads(hubsim.get("/api/models/google-bert/bert-base-uncased").body)
    assert info["sha"] == recorded["sha"] and info["downloads"] == recorded["downloads"]
    assert [s["rfilename"] for s in info["siblings"]] == [
        s["rfilename"] for s in recorded["siblings"]
    ]
    sizes = {s["rfilename"]: s for s in info["siblings"]}
    assert "lfs" in sizes["model.safetensors"] and "lfs" not in sizes["config.json"]
    tree = hubsim.get(
        f"/api/models/google-bert/bert-base-uncased/tree/{info['sha']}?recursive=true"
    )
    files = {e["path"]: e for e in tree.json() if e["type"] == "file"}
    assert {p: (e["oid"], e["size"]) for p, e in files.items()} == {
        p: (s["blobId"], s["size"]) for p, s in sizes.items()
    }
    gated = hubsim.get("/meta-llama/Llama-3.1-8B-Instruct/resolve/main/config.json")
    assert (gated.status, gated.headers["X-Error-Code"]) == (401, "GatedRepo")
    # recorded only through expand=: the recorded _id, with synthesized essentials
    flux = next(a for a in recorded_answers() if a.repo_id == "black-forest-labs/FLUX.1-dev")
    synthesized = hubsim.get("/api/models/black-forest-labs/FLUX.1-dev").json()
    assert synthesized["_id"] == json.loads(flux.body)["_id"] and len(synthesized["sha"]) == 40

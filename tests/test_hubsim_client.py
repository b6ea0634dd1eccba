"""The official client, huggingface_hub 2.4.0, pointed at the emulator through HF_ENDPOINT.

huggingface_hub reads HF_ENDPOINT when it is imported, so every client run is a fresh Python
process (`run_client`) with the emulator's environment; the script prints one JSON line.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

from hfspider.hubsim.content import DigestStore, read_bytes
from hfspider.hubsim.repofiles import snapshot
from tests.fixtures.hubsim import UNLIMITED, HubSim, client_env

TOKENS = ("--token", "hf_alice:pro:alice", "--token", "hf_bob:free:bob")


def run_client(sim: HubSim, tmp_path: Path, script: str, token: str | None = None) -> Any:
    env = client_env(sim, str(tmp_path / "hf-home"))
    if token:
        env["HF_TOKEN"] = token
    code = "import json\nfrom huggingface_hub import HfApi\napi = HfApi()\n" + textwrap.dedent(
        script
    )
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-5000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def public(truth, **want):
    want = {"private": False, "disabled": False, "gated": False, "renamed_from": (), **want}
    return [m for m in truth.synthetic() if all(getattr(m, k) == v for k, v in want.items())]


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def test_list_models_across_pages_with_filters_sorts_and_expand(hubsim_factory, tmp_path) -> None:
    sim = hubsim_factory(*UNLIMITED, "--default-limit", "50", models=400)
    truth = sim.truth()
    listed = truth.listed()
    got = run_client(
        sim,
        tmp_path,
        """
        r = {"all": [m.id for m in api.list_models()]}
        r["expand"] = [[m.id, m.sha, m.gated] for m in api.list_models(expand=["sha", "gated"])]
        r["and"] = [m.id for m in api.list_models(filter=["text-generation", "safetensors"])]
        r["likes"] = [m.id for m in api.list_models(sort="likes")]
        r["created"] = [m.id for m in api.list_models(sort="created_at", search="bert")]
        r["full"] = {m.id: [s.rfilename for s in m.siblings] for m in api.list_models(full=True)}
        r["cards"] = {m.id: m.card_data.to_dict() if m.card_data else None
                      for m in api.list_models(cardData=True, author="acme-ai")}
        print(json.dumps(r))
        """,
    )
    assert sorted(got["all"]) == sorted(m.id for m in listed) and len(got["all"]) > 400
    assert got["expand"] == [[m.id, m.sha, m.gated] for m in (truth.get(i) for i in got["all"])]
    both = {m.id for m in listed if {"text-generation", "safetensors"} <= set(m.tags)}
    assert set(got["and"]) == both and len(got["and"]) == len(both)
    assert got["likes"] == [m.id for m in sorted(listed, key=lambda m: (-m.likes, m.object_id))]
    bert = [m for m in listed if "bert" in m.id.lower()]
    assert got["created"] == [m.id for m in sorted(bert, key=lambda m: m.object_id, reverse=True)]
    some = next(m for m in listed if m.intent is not None)
    assert got["full"][some.id] == [f.path for f in snapshot(truth, some).files]
    for model_id, card in got["cards"].items():
        assert card == (truth.get(model_id).intent.card_data or None)
    listings = [e for e in sim.log() if e["path"] == "/api/models"]
    assert len(listings) >= 4 * (len(listed) // 50 + 1)  # four listings of every model


def test_model_info_tree_paths_info_and_refs(hubsim, tmp_path) -> None:
    truth = hubsim.truth()
    model = public(truth, library_name="diffusers")[0]
    many = next(m for m in truth.synthetic() if m.recipe.many_files)
    got = run_client(
        hubsim,
        tmp_path,
        f"""
        r = {{}}
        for repo in ("{model.id}", "google-bert/bert-base-uncased"):
            info = api.model_info(repo, files_metadata=True)
            r[repo] = {{"sha": info.sha, "downloads": info.downloads, "files": {{
                s.rfilename: [s.size, s.blob_id, s.lfs.sha256 if s.lfs else None]
                for s in info.siblings}}}}
        tree = list(api.list_repo_tree("{many.id}", recursive=True))
        r["tree"] = [[t.path, type(t).__name__] for t in tree]
        r["paths"] = [[p.path, type(p).__name__]
                      for p in api.get_paths_info("{model.id}", ["unet/config.json", "vae", "x"])]
        refs = api.list_repo_refs("{model.id}")
        r["refs"] = [[b.name, b.target_commit] for b in refs.branches]
        print(json.dumps(r))
        """,
    )
    store = DigestStore(None)
    for repo in (model.id, "google-bert/bert-base-uncased"):
        truth_model = truth.get(repo)
        assert got[repo]["sha"] == truth_model.sha
        assert got[repo]["downloads"] == truth_model.downloads
        expected = {}
        for f in snapshot(truth, truth_model).files:
            d = store.digest(f.source)
            expected[f.path] = [d.size, d.blob_id, d.sha256 if d.lfs else None]
        assert got[repo]["files"] == expected
    assert len(got["tree"]) == len(snapshot(truth, many).files) + 1  # files and the data/ folder
    assert ["data", "RepoFolder"] in got["tree"]
    assert got["paths"] == [["unet/config.json", "RepoFile"], ["vae", "RepoFolder"]]
    assert got["refs"] == [["main", model.sha]]


def test_hf_hub_download_regular_and_lfs_files(hubsim_factory, tmp_path) -> None:
    sim = hubsim_factory(*UNLIMITED, *TOKENS, models=200)
    truth = sim.truth()
    model = next(m for m in public(truth, library_name="transformers") if m.intent.config)
    weight = next(f for f in snapshot(truth, model).files if f.lfs)
    got = run_client(
        sim,
        tmp_path,
        f"""
        import hashlib
        from huggingface_hub import hf_hub_download, get_hf_file_metadata, hf_hub_url
        r = {{}}
        for name in ("config.json", "{weight.path}"):
            path = hf_hub_download("{model.id}", name)
            meta = get_hf_file_metadata(hf_hub_url("{model.id}", name))
            data = open(path, "rb").read()
            r[name] = {{"etag": meta.etag, "commit": meta.commit_hash, "size": meta.size,
                       "git": hashlib.sha1(b"blob %d\\0" % len(data) + data).hexdigest(),
                       "sha256": hashlib.sha256(data).hexdigest(), "len": len(data)}}
        print(json.dumps(r))
        """,
        token="hf_alice",
    )
    regular, lfs = got["config.json"], got[weight.path]
    assert regular["etag"] == regular["git"] and regular["commit"] == model.sha
    assert lfs["etag"] == lfs["sha256"] == hashlib.sha256(read_bytes(weight.source)).hexdigest()
    assert lfs["size"] == lfs["len"] == weight.size
    log = sim.log()
    cdn = [e for e in log if e["origin"] == "cdn"]
    assert cdn and not any(e["auth"] for e in cdn)  # the token never reaches the CDN host
    assert all(e["auth"] and e["identity"] == "alice" for e in log if e["origin"] == "api")


def test_interrupted_download_resumes_with_a_range_request(hubsim_factory, tmp_path) -> None:
    sim = hubsim_factory(*UNLIMITED, "--fault", "truncate=1@cdn:1", "--huge-size", "24000000")
    truth = sim.truth()
    model = max(truth.synthetic(), key=lambda m: max(s for _, s in m.recipe.weights))
    weight = max((f for f in snapshot(truth, model).files if f.lfs), key=lambda f: f.size)
    got = run_client(
        sim,
        tmp_path,
        f"""
        import hashlib
        from huggingface_hub import hf_hub_download
        data = open(hf_hub_download("{model.id}", "{weight.path}"), "rb").read()
        print(json.dumps(hashlib.sha256(data).hexdigest()))
        """,
    )
    assert got == hashlib.sha256(read_bytes(weight.source)).hexdigest()
    gets = [e for e in sim.log() if e["origin"] == "cdn" and e["method"] == "GET"]
    assert [(e["status"], e["fault"]) for e in gets] == [(200, "truncate"), (206, None)]
    first, resumed = gets
    assert 0 < first["bytes"] < weight.size
    # the client resumes from what it wrote: it drops a partly received 10 MiB read chunk
    start = int(resumed["range"].removeprefix("bytes=").removesuffix("-"))
    assert first["bytes"] - 10 * 2**20 < start <= first["bytes"]
    assert resumed["bytes"] == weight.size - start


def test_snapshot_download_with_allow_patterns(hubsim, tmp_path) -> None:
    truth = hubsim.truth()
    model = public(truth, library_name="diffusers")[1]
    since = hubsim.log()[-1]["seq"] if hubsim.log() else 0
    got = run_client(
        hubsim,
        tmp_path,
        f"""
        import os
        from huggingface_hub import snapshot_download
        root = snapshot_download("{model.id}", allow_patterns=["*.json", "README.md"])
        files = {{}}
        for base, _, names in os.walk(root):
            for name in names:
                path = os.path.join(base, name)
                files[os.path.relpath(path, root)] = open(path, "rb").read().decode()
        print(json.dumps(files))
        """,
    )
    wanted = {f.path: f for f in snapshot(truth, model).files if f.path.endswith(".json")}
    wanted["README.md"] = snapshot(truth, model).get("README.md")
    assert {p: read_bytes(f.source).decode() for p, f in wanted.items()} == got
    resolved = {e["path"] for e in hubsim.log(since) if e["bucket"] == "resolvers"}
    assert not any(p.endswith(".safetensors") for p in resolved) and len(resolved) >= len(wanted)


def test_renamed_missing_gated_and_disabled_repos(hubsim_factory, tmp_path) -> None:
    sim = hubsim_factory(*UNLIMITED, *TOKENS, models=200)
    truth = sim.truth()
    renamed = next(m for m in truth.synthetic() if m.renamed_from and m.intent.config)
    plain = next(m for m in public(truth) if m.intent.config)

    def one(kind: str) -> str:
        """A repo whose only restriction is `kind` (private, disabled or manually gated)."""
        want = {"private": False, "disabled": False, "gated": False}
        want[kind] = "manual" if kind == "gated" else True
        return public(truth, **want)[0].id

    got = run_client(
        sim,
        tmp_path,
        f"""
        from huggingface_hub import hf_hub_download
        old = "{renamed.renamed_from[0]}"
        r = {{"renamed": api.model_info(old).id,
              "renamed_file": open(hf_hub_download(old, "config.json")).read()}}
        calls = {{
            "missing": lambda: api.model_info("nobody/nothing"),
            "missing_token": lambda: HfApi(token="hf_bob").model_info("nobody/nothing"),
            "private": lambda: api.model_info("{one("private")}"),
            "revision": lambda: api.model_info("{plain.id}", revision="v9"),
            "entry": lambda: hf_hub_download("{plain.id}", "nope.txt"),
            "gated": lambda: hf_hub_download("{one("gated")}", "README.md"),
            "gated_token": lambda: hf_hub_download("{one("gated")}", "README.md", token="hf_bob"),
            "disabled": lambda: api.model_info("{one("disabled")}"),
            "bad_token": lambda: HfApi(token="hf_forged").model_info("{plain.id}"),
        }}
        for name, call in calls.items():
            try:
                call()
                r[name] = None
            except Exception as exc:
                r[name] = [type(exc).__name__, getattr(exc.response, "status_code", None)]
        print(json.dumps(r))
        """,
    )
    assert got.pop("renamed") == renamed.id
    config = snapshot(truth, renamed).get("config.json")
    assert got.pop("renamed_file").encode() == read_bytes(config.source)
    assert got == {
        "missing": ["RepositoryNotFoundError", 401],
        "missing_token": ["RepositoryNotFoundError", 404],
        "private": ["RepositoryNotFoundError", 401],
        "revision": ["RevisionNotFoundError", 404],
        "entry": ["RemoteEntryNotFoundError", 404],
        "gated": ["GatedRepoError", 401],
        "gated_token": ["GatedRepoError", 403],
        "disabled": ["DisabledRepoError", 403],
        "bad_token": ["HfHubHTTPError", 401],
    }


def test_client_waits_and_succeeds_after_429(hubsim_factory, tmp_path) -> None:
    sim = hubsim_factory(
        "--window", "2", "--quota", "anonymous:api=6", "--default-limit", "30", models=150
    )
    truth = sim.truth()
    got = run_client(sim, tmp_path, "print(json.dumps([m.id for m in api.list_models()]))")
    assert sorted(got) == sorted(m.id for m in truth.listed())
    log = [e for e in sim.log() if e["bucket"] == "api"]
    assert any(e["status"] == 429 for e in log)
    per_window = Counter(e["window"] for e in log if e["counted"])
    assert max(per_window.values()) <= 6 and len(per_window) >= 2

"""The emulator's endpoints over raw HTTP: shapes, pagination, errors, redirects, files."""

from __future__ import annotations

import hashlib
import json
import subprocess
from datetime import datetime
from pathlib import Path
from urllib.parse import parse_qsl, quote, urlsplit

import pytest

from hfspider.hubsim.content import DigestStore, lfs_pointer, read_bytes
from hfspider.hubsim.corpus import FEATURES, HOSTILE_KINDS
from hfspider.hubsim.listing import SORTS
from hfspider.hubsim.repofiles import snapshot
from tests.fixtures.hubsim import UNLIMITED

LISTING_KEYS = [
    "_id",
    "id",
    "likes",
    "trendingScore",
    "private",
    "downloads",
    "tags",
    "pipeline_tag",
    "library_name",
    "createdAt",
    "modelId",
]
# The Hub's order: sort key descending, ties by _id ascending; createdAt is _id descending.
ORDER = {
    "trendingScore": lambda m: (-m.trending_score, m.object_id),
    "downloads": lambda m: (-m.downloads, m.object_id),
    "likes": lambda m: (-m.likes, m.object_id),
    "lastModified": lambda m: (-datetime.fromisoformat(m.last_modified).timestamp(), m.object_id),
    "createdAt": lambda m: -int(m.object_id, 16),
}
TOKENS = ("--token", "hf_alice:pro:alice", "--token", "hf_bob:free:bob", "--gated-access", "alice")


@pytest.fixture(scope="module")
def truth(hubsim):
    return hubsim.truth()


def plain(truth, **want):
    """A synthetic model of the session corpus with the given attributes (public by default)."""
    want = {"private": False, "disabled": False, "gated": False, "renamed_from": (), **want}
    return next(m for m in truth.synthetic() if all(getattr(m, k) == v for k, v in want.items()))


def walk(sim, url, headers=None):
    """Every item of a listing, following Link headers; also the pages' URLs."""
    items, urls = [], []
    while url:
        urls.append(url)
        answer = sim.get(url, headers)
        assert answer.status == 200, answer.body
        items += answer.json()
        link = answer.headers.get("Link")
        url = link[1 : link.index(">")] if link else None
    return items, urls


def test_listing_pages_cover_the_corpus_in_order_for_every_sort(hubsim, truth) -> None:
    listed = truth.listed()
    for sort in SORTS:
        items, urls = walk(hubsim, f"/api/models?limit=300&sort={sort}")
        assert len(urls) == len(listed) // 300 + 1
        assert all(u.startswith(hubsim.url + "/api/models?limit=300&sort=") for u in urls[1:])
        expected = [m.id for m in sorted(listed, key=ORDER[sort])]
        assert [i["id"] for i in items] == expected
    created = [truth.get(i["id"]).created_at for i in walk(hubsim, "/api/models?sort=createdAt")[0]]
    assert created == sorted(created, reverse=True)
    first = hubsim.get("/api/models")
    assert list(first.json()[0]) == LISTING_KEYS
    link = first.headers["Link"]  # no sort given: the default is added, absolutely
    assert link.startswith(f"<{hubsim.url}/api/models?sort=trendingScore&cursor=")
    assert link.endswith('>; rel="next"')


def test_listing_filters_match_the_corpus(hubsim, truth) -> None:
    listed = truth.listed()
    author = max({m.author for m in listed}, key=lambda a: sum(m.author == a for m in listed))
    cases = {
        "filter=text-generation&filter=safetensors": lambda m: (
            {
                "text-generation",
                "safetensors",
            }
            <= set(m.tags)
        ),
        "search=BERT": lambda m: "bert" in m.id.lower(),
        f"author={author}": lambda m: m.author == author,
        "pipeline_tag=fill-mask": lambda m: m.pipeline_tag == "fill-mask",
        "library=diffusers": lambda m: "diffusers" in m.tags,
        "language=fr": lambda m: "fr" in m.tags,
        "gated=true": lambda m: bool(m.gated),
        "filter=license:mit&gated=False": lambda m: "license:mit" in m.tags and not m.gated,
    }
    for query, keep in cases.items():
        items, _ = walk(hubsim, f"/api/models?{query}&limit=200")
        expected = {m.id for m in listed if keep(m)}
        assert expected and {i["id"] for i in items} == expected, query
        assert len(items) == len(expected)


def test_listing_shapes_full_config_carddata_and_expand(hubsim, truth) -> None:
    item = hubsim.get("/api/models?limit=1&full=true&config=True&cardData=true").json()[0]
    model = truth.get(item["id"])
    assert item["sha"] == model.sha and item["lastModified"] == model.last_modified
    assert {"author", "gated", "disabled", "siblings"} <= set(item)
    assert [s["rfilename"] for s in item["siblings"]] == [
        f.path for f in snapshot(truth, model).files
    ]
    expanded = hubsim.get("/api/models?limit=5&expand=sha&expand=gated&expand[]=cardData").json()
    for got in expanded:
        model = truth.get(got["id"])
        assert set(got) <= {"_id", "id", "sha", "gated", "cardData"}
        assert got["sha"] == model.sha
        if model.intent is not None:
            assert got.get("cardData") == model.intent.card_data
        else:
            assert got.get("cardData") == model.recording.info(model.sha).get("cardData")


@pytest.mark.parametrize(
    "url",
    [
        "/api/models?cursor=not-a-cursor",
        "/api/models?cursor=eyJmb28iOjF9",
        "/api/models?limit=0",
        "/api/models?limit=5000",
        "/api/models?limit=ten",
        "/api/models?expand=nonsense",
        "/api/models?sort=random",
        "/api/datasets?limit=1001",
    ],
)
def test_bad_listing_requests_get_400(hubsim, url) -> None:
    answer = hubsim.get(url)
    assert answer.status == 400 and set(answer.json()) == {"error"}
    assert answer.headers["X-Error-Message"] == answer.json()["error"]


def test_model_info_revisions_and_expand(hubsim, truth) -> None:
    model = next(m for m in truth.synthetic() if len(m.revisions) > 1 and not m.private)
    model = plain(truth, id=model.id, gated=model.gated)
    info = hubsim.get(f"/api/models/{model.id}").json()
    assert list(info)[:4] == ["_id", "id", "private", "pipeline_tag"]
    assert (info["sha"], info["lastModified"], info["createdAt"]) == (
        model.sha,
        model.last_modified,
        model.created_at,
    )
    assert info["cardData"] == model.intent.card_data
    old = model.revisions[0]
    for rev in (old.sha, old.sha[:10]):
        pinned = hubsim.get(f"/api/models/{model.id}/revision/{rev}").json()
        assert (pinned["sha"], pinned["lastModified"]) == (old.sha, old.date)
    assert (
        hubsim.get(f"/api/models/{model.id}/revision/refs%2Fheads%2Fmain").json()["sha"]
        == model.sha
    )
    missing = hubsim.get(f"/api/models/{model.id}/revision/v9.9")
    assert (missing.status, missing.headers["X-Error-Code"]) == (404, "RevisionNotFound")
    assert missing.json() == {"error": "Invalid rev id: v9.9"}
    expanded = hubsim.get(f"/api/models/{model.id}?expand=sha&expand=downloadsAllTime").json()
    assert expanded == {
        "_id": model.object_id,
        "id": model.id,
        "sha": model.sha,
        "downloadsAllTime": model.downloads_all_time,
    }
    assert hubsim.get(f"/api/models/{model.id}?expand=bogus").status == 400
    secured = hubsim.get(f"/api/models/{model.id}?securityStatus=true").json()
    assert secured["securityRepoStatus"]["scansDone"] is True


def test_blobs_tree_and_paths_info_agree_with_the_bytes(hubsim, truth) -> None:
    model = plain(truth, library_name="diffusers")
    snap = snapshot(truth, model)
    store = DigestStore(None)
    digests = {f.path: store.digest(f.source) for f in snap.files}
    siblings = hubsim.get(f"/api/models/{model.id}?blobs=true").json()["siblings"]
    for s in siblings:
        d = digests[s["rfilename"]]
        assert (s["blobId"], s["size"]) == (d.blob_id, d.size)
        assert s.get("lfs") == (
            {"sha256": d.sha256, "size": d.size, "pointerSize": d.pointer_size} if d.lfs else None
        )
    top = hubsim.get(f"/api/models/{model.id}/tree/main").json()
    assert {e["path"] for e in top} == {p for p in snap.directories if "/" not in p} | {
        f.path for f in snap.files if "/" not in f.path
    }
    deep = hubsim.get(f"/api/models/{model.id}/tree/{model.sha}?recursive=true&expand=true").json()
    files = {e["path"]: e for e in deep if e["type"] == "file"}
    assert set(files) == set(digests)
    for path, entry in files.items():
        assert entry["oid"] == digests[path].blob_id and entry["lastCommit"]["id"] in {
            r.sha for r in model.revisions
        }
        if digests[path].lfs:
            assert entry["lfs"]["oid"] == digests[path].sha256
    sub = hubsim.get(f"/api/models/{model.id}/tree/main/unet").json()
    assert {e["path"] for e in sub} == {
        "unet/config.json",
        "unet/diffusion_pytorch_model.safetensors",
    }
    form = "paths=unet%2Fconfig.json&paths=nope.txt&paths=vae&expand=false"
    by_form = hubsim.request(
        "POST",
        f"/api/models/{model.id}/paths-info/main",
        {"Content-Type": "application/x-www-form-urlencoded"},
        form.encode(),
    ).json()
    by_json = hubsim.request(
        "POST",
        f"/api/models/{model.id}/paths-info/main",
        {"Content-Type": "application/json"},
        json.dumps({"paths": ["unet/config.json", "nope.txt", "vae"], "expand": False}).encode(),
    ).json()
    assert by_form == by_json and [e["path"] for e in by_form] == ["unet/config.json", "vae"]
    assert by_form[1]["oid"] == next(e for e in top if e["path"] == "vae")["oid"]
    missing = hubsim.get(f"/api/models/{model.id}/tree/main/nope")
    assert missing.status == 404 and missing.json() == {"error": 'nope does not exist on "main"'}


def test_directory_oids_are_real_git_tree_ids(hubsim, truth, tmp_path: Path) -> None:
    model = plain(truth, library_name="diffusers")
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    store = DigestStore(None)
    for f in snapshot(truth, model).files:
        target = repo / f.path
        target.parent.mkdir(parents=True, exist_ok=True)
        data = read_bytes(f.source)
        target.write_bytes(
            lfs_pointer(hashlib.sha256(data).hexdigest(), len(data)) if f.lfs else data
        )
        assert store.digest(f.source).size == len(data)
    git = ["git", "-C", str(repo)]
    subprocess.run([*git, "add", "-A"], check=True)
    root = subprocess.run([*git, "write-tree"], check=True, capture_output=True, text=True).stdout
    listing = subprocess.run(
        [*git, "ls-tree", root.strip()], check=True, capture_output=True, text=True
    )
    git_dirs = {
        line.split("\t")[1]: line.split()[2]
        for line in listing.stdout.splitlines()
        if " tree " in line
    }
    served = {e["path"]: e["oid"] for e in hubsim.get(f"/api/models/{model.id}/tree/main").json()}
    assert git_dirs and all(served[path] == oid for path, oid in git_dirs.items())


def test_tree_pages_beyond_1000_entries(hubsim, truth) -> None:
    model = next(m for m in truth.synthetic() if m.recipe.many_files)
    entries, urls = walk(hubsim, f"/api/models/{model.id}/tree/main?recursive=true&expand=false")
    assert len(urls) == 2 and len(entries) == len({e["path"] for e in entries}) > 1200
    assert dict(parse_qsl(urlsplit(urls[1]).query))["recursive"] == "true"
    expanded, pages = walk(hubsim, f"/api/models/{model.id}/tree/main/data?expand=true")
    assert len(expanded) == 1200 and len(pages) == 24
    assert hubsim.get(f"/api/models/{model.id}/tree/main?cursor=zzz").status == 400


def test_refs_and_commits(hubsim, truth) -> None:
    model = next(
        m
        for m in truth.synthetic()
        if len(m.revisions) == 3 and not m.private and not m.disabled and not m.renamed_from
    )
    refs = hubsim.get(f"/api/models/{model.id}/refs?include_prs=1").json()
    assert refs == {
        "branches": [{"name": "main", "ref": "refs/heads/main", "targetCommit": model.sha}],
        "converts": [],
        "tags": [],
        "pullRequests": [],
    }
    history = hubsim.get(f"/api/models/{model.id}/commits/main")
    assert [c["id"] for c in history.json()] == [r.sha for r in reversed(model.revisions)]
    assert history.headers["X-Total-Count"] == "3"


def test_resolve_regular_file_via_resolve_cache(hubsim, truth) -> None:
    model = next(
        m
        for m in truth.synthetic()
        if m.intent.config and not (m.private or m.gated or m.disabled or m.renamed_from)
    )
    config = snapshot(truth, model).get("config.json")
    data = read_bytes(config.source)
    blob = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    head = hubsim.request("HEAD", f"/{model.id}/resolve/main/config.json")
    assert head.status == 307 and head.headers["X-Repo-Commit"] == model.sha
    location = head.headers["Location"]
    assert location.startswith(f"/api/resolve-cache/models/{model.id}/{model.sha}/config.json?")
    assert location.endswith(f"&etag=%22{blob}%22")
    got = hubsim.get(location)
    assert got.status == 200 and got.body == data
    assert (got.headers["ETag"], got.headers["X-Repo-Commit"]) == (f'"{blob}"', model.sha)
    assert int(got.headers["Content-Length"]) == len(data)
    assert hubsim.get(location, {"If-None-Match": f'"{blob}"'}).status == 304
    part = hubsim.get(location, {"Range": "bytes=10-19"})
    assert (part.status, part.body) == (206, data[10:20])
    assert part.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    beyond = hubsim.get(location, {"Range": f"bytes={len(data)}-"})
    assert beyond.status == 416 and beyond.headers["Content-Range"] == f"bytes */{len(data)}"
    missing = hubsim.get(f"/{model.id}/resolve/main/nope.bin")
    assert (missing.status, missing.body) == (404, b"Entry not found")
    assert missing.headers["X-Error-Code"] == "EntryNotFound"
    assert missing.headers["X-Repo-Commit"] == model.sha


def test_resolve_lfs_file_redirects_to_the_cdn_host(hubsim, truth) -> None:
    model = plain(truth, library_name="transformers")
    weight = next(f for f in snapshot(truth, model).files if f.lfs)
    data = read_bytes(weight.source)
    sha256 = hashlib.sha256(data).hexdigest()
    head = hubsim.request("HEAD", f"/{model.id}/resolve/{model.sha}/{quote(weight.path)}")
    assert head.status == 302
    assert (head.headers["X-Linked-Size"], head.headers["X-Linked-Etag"]) == (
        str(len(data)),
        f'"{sha256}"',
    )
    cdn = urlsplit(head.headers["Location"])
    assert f"{cdn.scheme}://{cdn.netloc}" == hubsim.cdn_url
    assert cdn.hostname == "127.0.0.1" != urlsplit(hubsim.url).hostname
    whole = hubsim.get(head.headers["Location"])
    assert whole.status == 200 and hashlib.sha256(whole.body).hexdigest() == sha256
    assert whole.headers["Content-Type"] == "application/octet-stream"
    tail = hubsim.get(head.headers["Location"], {"Range": "bytes=-100"})
    assert (tail.status, tail.body) == (206, data[-100:])
    assert hubsim.get(head.headers["Location"], {"Range": f"bytes={len(data)}-"}).status == 416
    forged = head.headers["Location"].replace("Signature=", "Signature=0")
    assert hubsim.get(forged).status == 403


def test_no_xet_anywhere(hubsim, truth) -> None:
    model = plain(truth, library_name="transformers")
    weight = next(f for f in snapshot(truth, model).files if f.lfs)
    answers = [
        hubsim.request("HEAD", f"/{model.id}/resolve/main/{weight.path}"),
        hubsim.get(f"/api/models/{model.id}?blobs=true"),
        hubsim.get(f"/api/models/{model.id}/tree/main?recursive=true"),
    ]
    answers.append(hubsim.get(answers[0].headers["Location"], {"Range": "bytes=0-0"}))
    for answer in answers:
        assert not [h for h in answer.headers if h.lower().startswith("x-xet")]
        assert "xet" not in answer.headers.get("Link", "") and b"xetHash" not in answer.body


@pytest.mark.parametrize(
    "path",
    [
        "/{id}/resolve/main/..%2F..%2F..%2Fetc%2Fpasswd",
        "/{id}/resolve/main/../../../etc/passwd",
        "/{id}/resolve/main/%2Fetc%2Fpasswd",
        "/{id}/resolve/main/config.json%00.txt",
        "/api/models/{id}/tree/main/..%2F..",
        "/api/resolve-cache/models/{id}/{sha}/..%2F..%2Fsecret",
        "/api/models/{id}/revision/%2E%2E",
        "/api/models/%2E%2E/%2E%2E",
        "/%2E%2E/resolve/main/x",
    ],
)
def test_path_traversal_is_not_found_never_a_crash(hubsim, truth, path) -> None:
    model = plain(truth)
    answer = hubsim.get(path.format(id=model.id, sha=model.sha))
    assert answer.status in (400, 401, 404), (answer.status, answer.body)
    assert answer.headers.get("X-Error-Code") in (
        "EntryNotFound",
        "RevisionNotFound",
        "RepoNotFound",
        None,
    )


def test_access_rules(hubsim_factory) -> None:
    sim = hubsim_factory(*UNLIMITED, *TOKENS, models=200)
    truth = sim.truth()
    alice, bob = {"Authorization": "Bearer hf_alice"}, {"Authorization": "Bearer hf_bob"}
    anonymous = sim.get("/api/models/nobody/nothing")
    assert (anonymous.status, anonymous.headers["X-Error-Code"]) == (401, "RepoNotFound")
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    with_token = sim.get("/api/models/nobody/nothing", bob)
    assert (with_token.status, with_token.json()) == (404, {"error": "Repository not found"})
    invalid = sim.get("/api/models", {"Authorization": "Bearer hf_stolen"})
    assert invalid.status == 401
    assert invalid.json() == {"error": "Invalid credentials in Authorization header"}

    private = next(m for m in truth.synthetic() if m.private and not m.disabled)
    assert sim.get(f"/api/models/{private.id}").status == 401
    assert sim.get(f"/api/models/{private.id}", bob).status == 404
    sim_owner = {"Authorization": "Bearer hf_owner"}
    owner = hubsim_factory(*UNLIMITED, "--token", f"hf_owner:free:{private.author}", models=200)
    assert owner.get(f"/api/models/{private.id}", sim_owner).json()["private"] is True
    listed = {i["id"] for i in walk(owner, "/api/models?limit=1000", sim_owner)[0]}
    assert private.id not in {i["id"] for i in walk(sim, "/api/models?limit=1000")[0]}
    assert private.id in listed

    disabled = next(m for m in truth.synthetic() if m.disabled and not m.private)
    refused = sim.get(f"/api/models/{disabled.id}")
    assert refused.status == 403 and refused.json() == {
        "error": "Access to this resource is disabled."
    }

    for kind, token, status in (
        ("auto", None, 401),
        ("auto", bob, 307),
        ("manual", bob, 403),
        ("manual", alice, 307),
    ):
        model = next(
            m
            for m in truth.synthetic()
            if m.gated == kind
            and not m.private
            and not m.disabled
            and m.intent.config
            and not m.renamed_from
        )
        assert sim.get(f"/api/models/{model.id}").json()["gated"] == kind  # metadata is public
        answer = sim.get(f"/{model.id}/resolve/main/config.json", token)
        assert answer.status == status, (kind, answer.body)
        if status != 307:
            assert answer.headers["X-Error-Code"] == "GatedRepo"
    assert sim.get("/api/whoami-v2", alice).json()["name"] == "alice"
    assert sim.get("/api/whoami-v2").status == 401


def test_renamed_repos_answer_relative_307_keeping_the_query(hubsim, truth) -> None:
    model = next(
        m
        for m in truth.synthetic()
        if m.renamed_from and not (m.private or m.disabled or m.gated) and m.intent.config
    )
    old = model.renamed_from[0]
    for path, target in (
        (f"/api/models/{old}?expand=sha", f"/api/models/{model.id}?expand=sha"),
        (
            f"/api/models/{old}/tree/main?recursive=true",
            f"/api/models/{model.id}/tree/main?recursive=true",
        ),
        (f"/{old}/resolve/main/config.json", f"/{model.id}/resolve/main/config.json"),
    ):
        answer = hubsim.get(path)
        assert answer.status == 307 and answer.headers["Location"] == target
        assert answer.body == f"Temporary Redirect. Redirecting to {target}".encode()
        assert hubsim.get(target).status in (200, 307)


def test_every_api_answer_carries_rate_limit_headers(hubsim, truth) -> None:
    model = plain(truth)
    for path, bucket in (
        ("/api/models?limit=1", "api"),
        ("/api/models/nobody/nothing", "api"),
        ("/api/models?limit=0", "api"),
        (f"/{model.id}/resolve/main/README.md", "resolvers"),
        (f"/{model.id}/resolve/main/missing", "resolvers"),
        (f"/{model.id}", "pages"),
        ("/no/such/page/here", "pages"),
    ):
        headers = hubsim.get(path).headers
        assert headers["RateLimit"].startswith(f'"{bucket}";r=')
        assert headers["RateLimit-Policy"] == f'"fixed window";"{bucket}";q=100000000;w=300'


def test_datasets_basics(hubsim, truth) -> None:
    items, _ = walk(hubsim, "/api/datasets?limit=7")
    assert {i["id"] for i in items} == {d.id for d in truth.datasets()}
    one = truth.datasets()[0]
    assert hubsim.get(f"/api/datasets/{one.id}").json()["sha"] == one.sha
    assert hubsim.get("/api/datasets?expand=sha&limit=3").json()[0].keys() == {"_id", "id", "sha"}


def test_html_pages(hubsim, truth) -> None:
    model = plain(truth)
    page = hubsim.get(f"/{model.id}")
    assert page.status == 200 and page.headers["Content-Type"].startswith("text/html")
    assert model.id.encode() in page.body
    assert hubsim.get("/robots.txt").status == 404


def test_hostile_repos_are_served_whole(hubsim_factory) -> None:
    sim = hubsim_factory(*UNLIMITED, "--samples", "off", models=len(FEATURES) + 10)
    truth = sim.truth()
    hostile = [m for m in truth.synthetic() if m.intent.hostile]
    assert {k for m in hostile for k in m.intent.hostile} == set(HOSTILE_KINDS)
    for model in hostile:
        snap = snapshot(truth, model)
        tree = sim.get(f"/api/models/{model.id}/tree/main?recursive=true").json()
        assert {e["path"] for e in tree if e["type"] == "file"} == {f.path for f in snap.files}
        asked = json.dumps({"paths": [f.path for f in snap.files]}).encode()
        info = sim.request(
            "POST",
            f"/api/models/{model.id}/paths-info/main",
            {"Content-Type": "application/json"},
            asked,
        )
        assert [e["path"] for e in info.json()] == [f.path for f in snap.files]
        for f in snap.files:
            if f.lfs:
                continue
            head = sim.request("HEAD", f"/{model.id}/resolve/main/{quote(f.path)}")
            assert head.status == 307, (model.id, f.path)
            assert sim.get(head.headers["Location"]).body == read_bytes(f.source)
        card = sim.get(f"/api/models/{model.id}").json().get("cardData")
        assert card == model.intent.card_data


def test_odd_requests_never_get_a_500(hubsim_factory) -> None:
    sim = hubsim_factory(*UNLIMITED, models=30)
    model = plain(sim.truth())
    paths = [
        "//",
        "/api/",
        "/api/models/",
        "/api/models/a/b/c/d",
        f"/api/models/{model.id}/tree",
        f"/api/models/{model.id}/revision/%ZZ",
        f"/api/models/{model.id}/revision/%FF%FE",
        f"/{model.id}/resolve/%FF/x",
        f"/{model.id}/resolve/main/",
        "/api/resolve-cache/models/a/b/" + "0" * 40 + "/x",
        "/api/datasets/a/b/c",
        "/" + "a" * 5000,
        f"/api/models/{model.id}?blobs=true&expand=sha",
        f"/api/models/{model.id}/commits/zzz",
        "/api/models?cursor=",
        f"/api/models/{model.id}/tree/main?limit=0",
        "/_hubsim/log?since=x",
    ]
    for path in paths:
        for method in ("GET", "HEAD", "DELETE", "PUT"):
            answer = sim.request(method, path)
            assert answer.status < 500, (method, path, answer.body)
    for body, kind in (
        (b"{", "application/json"),
        (b'{"paths": "x"}', "application/json"),
        (b"\x00\x01", "multipart/form-data"),
        (b"paths=%FF", "application/x-www-form-urlencoded"),
    ):
        answer = sim.request(
            "POST", f"/api/models/{model.id}/paths-info/main", {"Content-Type": kind}, body
        )
        assert answer.status in (200, 400), (kind, answer.body)
    assert not [s for s in sim.stats()["by_status"] if s.startswith("5")]

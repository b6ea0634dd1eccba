"""URL builders and the Link parser: the Hub's exact encoding rules, refusal of bad input."""

from urllib.parse import parse_qsl, urlsplit

import pytest

from hfspider.hub.endpoints import (
    DEFAULT_ENDPOINT,
    RECORD_EXPAND,
    ListingQuery,
    hub_endpoint,
    model_info_url,
    next_page_url,
    paths_info_form,
    paths_info_url,
    resolve_cache_url,
    resolve_url,
    tree_url,
    validate_repo_id,
)

HUB = "https://huggingface.co"


def test_listing_url_has_every_filter_page_size_and_repeated_params() -> None:
    query = ListingQuery(
        search="llama 3",
        author="meta-llama",
        filters=("license:mit", "en"),
        pipeline_tag="text-generation",
        library="transformers",
        gated=False,
        sort="downloads",
        expand=("sha", "cardData"),
    )
    url = query.url(HUB)
    parts = urlsplit(url)
    assert (parts.scheme, parts.netloc, parts.path) == ("https", "huggingface.co", "/api/models")
    assert parse_qsl(parts.query) == [
        ("search", "llama 3"),
        ("author", "meta-llama"),
        ("filter", "license:mit"),
        ("filter", "en"),
        ("filter", "transformers"),  # library is a tag filter on the Hub
        ("pipeline_tag", "text-generation"),
        ("gated", "false"),
        ("sort", "downloads"),
        ("limit", "1000"),
        ("expand", "sha"),
        ("expand", "cardData"),
    ]
    assert "llama%203" in url and "license%3Amit" in url


def test_default_listing_asks_for_every_record_field_by_creation_date() -> None:
    params = parse_qsl(urlsplit(ListingQuery().url(HUB)).query)
    assert [value for name, value in params if name == "expand"] == list(RECORD_EXPAND)
    assert ("sort", "createdAt") in params and ("limit", "1000") in params
    assert {"sha", "siblings", "cardData", "baseModels", "gguf"} <= set(RECORD_EXPAND)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sort": "random"}, "sort must be one of"),
        ({"expand": ("sha", "nope")}, "unknown expand properties"),
        ({"limit": 1001}, "limit must be within"),
        ({"limit": 0}, "limit must be within"),
    ],
)
def test_listing_query_refuses_what_the_hub_would_refuse(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ListingQuery(**kwargs)


def test_model_info_is_pinned_and_encodes_the_revision_without_safe_characters() -> None:
    sha = "86b5e0934494bd15c9632b12f734a8a67f723594"
    assert model_info_url(HUB, "google-bert/bert-base-uncased", sha) == (
        f"{HUB}/api/models/google-bert/bert-base-uncased/revision/{sha}?blobs=true"
    )
    assert model_info_url(HUB, "gpt2", "refs/pr/1", blobs=False) == (
        f"{HUB}/api/models/gpt2/revision/refs%2Fpr%2F1"
    )
    assert model_info_url(HUB, "gpt2", None) == f"{HUB}/api/models/gpt2?blobs=true"


def test_resolve_cache_url_is_where_the_hub_redirects_a_pinned_regular_file() -> None:
    # The Location of a real 307 (observed_http_exchanges.md B), asked for at the commit.
    commit, blob = (
        "607a30d783dfa663caf39e06633721c8d4cfcd7e",
        "10c66461e4c109db5a2196bff4bb59be30396ed8",
    )
    assert resolve_cache_url(HUB, "openai-community/gpt2", commit, "config.json", blob) == (
        f"{HUB}/api/resolve-cache/models/openai-community/gpt2/{commit}/config.json"
        f"?%2Fopenai-community%2Fgpt2%2Fresolve%2F{commit}%2Fconfig.json=&etag=%22{blob}%22"
    )
    with pytest.raises(ValueError, match="40-hex"):
        resolve_cache_url(HUB, "gpt2", "main", "config.json", blob)


def test_resolve_url_keeps_path_slashes_and_encodes_everything_else() -> None:
    url = resolve_url(HUB, "org/model", "refs/pr/1", "sub dir/ü#1?.json")
    assert url == f"{HUB}/org/model/resolve/refs%2Fpr%2F1/sub%20dir/%C3%BC%231%3F.json"
    assert resolve_url(HUB, "org/model", "main", "README.md") == (
        f"{HUB}/org/model/resolve/main/README.md"
    )


def test_tree_url_encodes_the_path_as_one_segment_and_sends_both_flags() -> None:
    assert tree_url(HUB, "org/model", "main") == (
        f"{HUB}/api/models/org/model/tree/main?recursive=true&expand=false"
    )
    assert tree_url(HUB, "org/model", "v1.0", "a/b c", recursive=False, expand=True) == (
        f"{HUB}/api/models/org/model/tree/v1.0/a%2Fb%20c?recursive=false&expand=true"
    )


def test_paths_info_url_and_form() -> None:
    assert paths_info_url(HUB, "org/model", "refs/pr/2") == (
        f"{HUB}/api/models/org/model/paths-info/refs%2Fpr%2F2"
    )
    assert paths_info_form(["a.json", "b/c.bin"]) == [
        ("paths", "a.json"),
        ("paths", "b/c.bin"),
        ("expand", "false"),
    ]
    with pytest.raises(ValueError, match="1..2000 paths"):
        paths_info_form([])
    with pytest.raises(ValueError, match="1..2000 paths"):
        paths_info_form(str(index) for index in range(2001))


@pytest.mark.parametrize(
    "repo_id", ["gpt2", "google-bert/bert-base-uncased", "black-forest-labs/FLUX.1-dev", "a/b_c"]
)
def test_valid_repo_ids(repo_id: str) -> None:
    assert validate_repo_id(repo_id) == repo_id
    assert repo_id in model_info_url(HUB, repo_id, "main")


@pytest.mark.parametrize(
    "repo_id",
    [
        "",
        "../etc",
        "org/..",
        "org/a..b",
        "a--b/c",
        "org/model.git",
        "a/b/c",
        "org/model?x=1",
        "org/mo del",
        "org/modèle",
        "/org/model",
        "org/-model",
        "x" * 97,
        None,
    ],
)
def test_hostile_repo_ids_never_reach_a_url(repo_id: object) -> None:
    with pytest.raises(ValueError, match="not a valid Hub repo id"):
        validate_repo_id(repo_id)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        resolve_url(HUB, repo_id, "main", "README.md")  # type: ignore[arg-type]


def test_empty_revision_and_path_are_refused() -> None:
    with pytest.raises(ValueError, match="revision"):
        model_info_url(HUB, "gpt2", "")
    with pytest.raises(ValueError, match="file path"):
        resolve_url(HUB, "gpt2", "main", "")


def test_next_link_absolute_relative_and_absent() -> None:
    page = f"{HUB}/api/models?limit=1000"
    header = f'<{HUB}/api/models?limit=1000&sort=createdAt&cursor=eyJ9%3D>; rel="next"'
    assert (
        next_page_url(header, page) == f"{HUB}/api/models?limit=1000&sort=createdAt&cursor=eyJ9%3D"
    )
    assert next_page_url('</api/models?cursor=abc>; rel="next"', page) == (
        f"{HUB}/api/models?cursor=abc"
    )
    assert next_page_url(None, page) is None
    assert next_page_url("", page) is None
    assert next_page_url(f'<{HUB}/api/models?cursor=1>; rel="prev"', page) is None


def test_next_link_among_several_links_and_relation_types() -> None:
    header = (
        f'<{HUB}/a>; rel="xet-auth", <{HUB}/b>; title="x, y"; rel="prefetch next", '
        f"<{HUB}/c>; rel=last"
    )
    assert next_page_url(header, HUB) == f"{HUB}/b"
    assert next_page_url(f"<{HUB}/d>; REL=Next", HUB) == f"{HUB}/d"


def test_endpoint_setting_then_environment_then_default() -> None:
    assert hub_endpoint("", {}) == DEFAULT_ENDPOINT
    assert hub_endpoint(None, {"HF_ENDPOINT": "http://localhost:8080/"}) == "http://localhost:8080"
    assert hub_endpoint("http://127.0.0.1:9", {"HF_ENDPOINT": "http://x"}) == "http://127.0.0.1:9"
    for bad in ("ftp://hub", "localhost:8080", "https://user:pw@hub", "https://hub/?q=1"):
        with pytest.raises(ValueError, match="Hub endpoint"):
            hub_endpoint(bad, {})


@pytest.mark.parametrize(
    "header", ["<" * 100_000, "<a>" + "; x" * 50_000, '<a>; rel="' * 30_000, "<a>;" + " " * 100_000]
)
def test_hostile_link_headers_are_parsed_in_linear_time(header: str) -> None:
    import time

    started = time.perf_counter()
    assert next_page_url(header, HUB) is None
    assert time.perf_counter() - started < 0.5

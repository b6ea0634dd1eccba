"""Hub rate-limit knowledge: bucket of a URL, RateLimit / RateLimit-Policy / Retry-After."""

from __future__ import annotations

import pytest

from hfspider.hub.ratelimit import (
    Feedback,
    Parsed,
    RateLimit,
    RateLimitPolicy,
    classify,
    parse_policy,
    parse_ratelimit,
    parse_retry_after,
    read_feedback,
)

HUB = "https://huggingface.co"


@pytest.mark.parametrize(
    ("url", "bucket"),
    [
        ("https://huggingface.co/api/models?limit=1000", "api"),
        ("https://huggingface.co/api/models/gpt2/revision/main", "api"),
        ("https://HuggingFace.co:443/api/whoami-v2", "api"),
        ("https://huggingface.co/gpt2/resolve/main/config.json", "resolvers"),
        ("https://huggingface.co/org/name/resolve/refs%2Fpr%2F1/a/b.bin", "resolvers"),
        ("https://huggingface.co/datasets/org/name/resolve/main/x.csv", "resolvers"),
        ("https://huggingface.co/spaces/org/app/resolve/main/app.py", "resolvers"),
        ("https://huggingface.co/api/resolve-cache/models/org/name/abc/config.json", "resolvers"),
        ("https://huggingface.co/org/name", "pages"),
        ("https://huggingface.co/org/name/raw/main/config.json", "pages"),
        ("https://huggingface.co/org/name/blob/main/resolve/x", "pages"),
        ("https://huggingface.co/", "pages"),
        ("https://huggingface.co", "pages"),
        ("https://us.aws.cdn.hf.co/xet-bridge-us/abc/def", None),
        ("http://huggingface.co/api/models", None),  # another origin: scheme
        ("https://huggingface.co:8443/api/models", None),  # another origin: port
        ("https://evil\\@huggingface.co/api/models", None),
    ],
)
def test_classify(url: str, bucket: str | None) -> None:
    assert classify(url, HUB) == bucket


def test_classify_against_an_emulator_on_loopback() -> None:
    assert classify("http://localhost:8123/api/models", "http://localhost:8123") == "api"
    assert classify("http://127.0.0.1:8124/cdn/blob", "http://localhost:8123") is None


def test_parse_ratelimit() -> None:
    assert parse_ratelimit('"api";r=497;t=168') == Parsed([RateLimit("api", 497, 168)])
    assert parse_ratelimit(' "resolvers" ; r = 0 ; t = 5 , "api";r=1;t=2;x=9') == Parsed(
        [RateLimit("resolvers", 0, 5), RateLimit("api", 1, 2)]
    )
    assert parse_ratelimit(None) == Parsed(None, None)


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        ('"api";r=497', "bucket 'api' lacks r= or t="),
        ('"api";r=-1;t=5', "r='-1' is not a non-negative integer"),
        ('"api";r=1.5;t=5', "r='1.5' is not a non-negative integer"),
        ('"api";r=1;t=5;r=2', "r given twice"),
        ('"api;r=1;t=5', "unbalanced quotes"),
        ("api;r=1;t=5", "unexpected member 'api'"),
        ("r=1;t=5", "expected one quoted bucket name per item, got 0"),
        ('"a";"b";r=1;t=5', "expected one quoted bucket name per item, got 2"),
        ("", "unexpected member ''"),
        ('"api";r=1;t=' + "9" * 2000, "longer than 1024 characters"),
        ('"api";r=1;t=' + "9" * 16, f"t='{'9' * 16}' is not a non-negative integer"),
    ],
)
def test_parse_ratelimit_rejects_malformed_headers(header: str, reason: str) -> None:
    assert parse_ratelimit(header) == Parsed(None, reason)


def test_parse_policy() -> None:
    assert parse_policy('"fixed window";"api";q=500;w=300') == Parsed(
        [RateLimitPolicy("api", 500, 300, "fixed window")]
    )
    assert parse_policy('"pages";q=100;w=300') == Parsed([RateLimitPolicy("pages", 100, 300)])
    assert parse_policy('"fixed window";"api";q=0;w=300') == Parsed(
        None, "bucket 'api' lacks a positive q= or w="
    )
    assert parse_policy('"a";"b";"c";q=1;w=1') == Parsed(
        None, "expected a bucket name (after a kind), got 3 names"
    )
    assert parse_policy('"fixed \\"window\\"";"api";q=5;w=1') == Parsed(
        [RateLimitPolicy("api", 5, 1, 'fixed "window"')]
    )


NOW = 1445412470.0  # Wed, 21 Oct 2015 07:27:50 GMT


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("120", Parsed(120.0)),
        (" 0 ", Parsed(0.0)),
        ("Wed, 21 Oct 2015 07:28:00 GMT", Parsed(10.0)),
        ("Wednesday, 21-Oct-15 07:28:00 GMT", Parsed(10.0)),  # RFC 850
        ("Wed Oct 21 07:28:00 2015", Parsed(10.0)),  # asctime, no zone: GMT
        ("Wed, 21 Oct 2015 07:00:00 GMT", Parsed(0.0)),  # in the past: no wait
        ("-5", Parsed(None, "neither delta-seconds nor an HTTP-date: '-5'")),
        ("soon", Parsed(None, "neither delta-seconds nor an HTTP-date: 'soon'")),
        ("1.5", Parsed(None, "neither delta-seconds nor an HTTP-date: '1.5'")),
        (None, Parsed(None, None)),
    ],
)
def test_parse_retry_after(header: str | None, expected: Parsed[float]) -> None:
    assert parse_retry_after(header, NOW) == expected


def test_read_feedback_picks_the_bucket_and_lists_problems() -> None:
    headers = {
        "ratelimit": '"api";r=3;t=60',
        "ratelimit-policy": '"fixed window";"api";q=500;w=300',
        "retry-after": "7",
    }
    assert read_feedback("api", headers, NOW) == Feedback(3, 60, 500, 300, 7.0)
    assert read_feedback("pages", headers, NOW) == Feedback(
        retry_after=7.0,
        problems=("RateLimit names api, not pages", "RateLimit-Policy names api, not pages"),
    )
    broken = {"ratelimit": '"api";r=x;t=1', "retry-after": "later"}
    assert read_feedback("api", broken, NOW).problems == (
        "RateLimit: r='x' is not a non-negative integer",
        "Retry-After: neither delta-seconds nor an HTTP-date: 'later'",
    )
    assert read_feedback("api", {}, NOW) == Feedback()

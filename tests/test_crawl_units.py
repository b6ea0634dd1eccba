"""Parts of the crawl plumbing tested alone: argument checking, the progress report, the token
rule, what a callback's error does to its model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scrapy import Request, signals
from scrapy.crawler import Crawler
from scrapy.http import Response
from scrapy.settings import Settings
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.misc import load_object
from twisted.python.failure import Failure

from hfspider import settings as settings_module
from hfspider.extensions.progress import format_duration, progress_line, summary_lines
from hfspider.middlewares.auth import HubAuthMiddleware
from hfspider.spiders.hf_models import CrawlOptions, HfModelsSpider

HUB = "http://localhost:8000"


def options(**arguments: str) -> CrawlOptions:
    return CrawlOptions.from_arguments(Settings({"CRAWL_MODE": "full"}), **arguments)


def test_arguments_become_one_listing_query() -> None:
    opts = options(
        author="google",
        search="bert",
        filter="en, pytorch ,",
        pipeline_tag="fill-mask",
        library="transformers",
        sort="downloads",
        limit="50",
        min_downloads="0",
        mode="lite",
    )
    assert (opts.mode, opts.limit, opts.min_downloads) == ("lite", 50, 0)
    assert opts.query.filters == ("en", "pytorch")
    url = opts.query.url(HUB)
    assert url.startswith(f"{HUB}/api/models?search=bert&author=google&filter=en&filter=pytorch")
    assert "&filter=transformers&pipeline_tag=fill-mask&sort=downloads&limit=1000" in url


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ({"mode": "fast"}, "mode must be one of full, lite"),
        ({"sort": "name"}, "sort must be one of"),
        ({"limit": "ten"}, "limit must be an integer"),
        ({"limit": "0"}, "limit must be at least 1"),
        ({"min_downloads": "-1"}, "min_downloads must be at least 0"),
        ({"colour": "red"}, "unknown arguments \\['colour'\\]"),
    ],
)
def test_bad_arguments_are_refused_with_a_clear_message(
    arguments: dict[str, str], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        options(**arguments)


def test_checkpoint_key_separates_crawls_that_must_not_resume_each_other() -> None:
    first = options().query.url(HUB)
    keys = {
        options().key(first),
        options(mode="lite").key(first),
        options(limit="10").key(first),
        options(min_downloads="5").key(first),
        options().key(options(author="x").query.url(HUB)),
    }
    assert len(keys) == 5
    assert json.loads(options(limit="10").key(first))["limit"] == 10


def test_progress_line_has_outcomes_rate_and_eta_when_a_limit_is_known() -> None:
    stats = {"hfspider/records/stored": 90, "hfspider/models/unchanged": 10}
    line = progress_line(stats, elapsed=10.0, limit=1000)
    assert line == ("100 models (90 stored, 10 unchanged, 0 rejected, 0 failed), 10.0/s, ETA 1m30s")
    assert "ETA" not in progress_line(stats, elapsed=10.0, limit=None)
    assert format_duration(3725) == "1h02m05s"


def test_summary_reports_requests_per_bucket_429s_and_outputs() -> None:
    stats = {
        "hfspider/records/stored": 5,
        "hfspider/records/new": 4,
        "hfspider/models/rejected": 1,
        "retry/count": 3,
        "downloader/response_status_count/429": 2,
        "hfspider/ratelimit/api/requests": 7,
        "hfspider/ratelimit/resolvers/requests": 9,
        "hfspider/export/path": "out/parquet",
        "hfspider/export/rows": 5,
        "hfspider/rejected_dir": "out/rejected",
    }
    text = "\n".join(summary_lines(stats, elapsed=61))
    assert "models written: 5 (4 new snapshots)" in text
    assert "rejected: 1, failed: 0 (reasons in out/rejected)" in text
    assert "retried requests: 3, 429 answers: 2" in text
    assert "requests per bucket: api 7, resolvers 9" in text
    assert "parquet: out/parquet (5 rows)" in text
    assert "elapsed: 1m01s" in text


def test_token_goes_to_the_hub_origin_only() -> None:
    middleware = HubAuthMiddleware(HUB, "hf_secret")
    on_hub = Request(f"{HUB}/api/models/a/b")
    middleware.process_request(on_hub)
    assert on_hub.headers[b"Authorization"] == b"Bearer hf_secret"
    for url in (
        "http://127.0.0.1:8000/api/models",  # same port, other host name
        "http://localhost:9000/x",  # other port (the CDN)
        "https://localhost:8000/x",  # other scheme
    ):
        elsewhere = Request(url, headers={"Authorization": "Bearer hf_secret"})
        middleware.process_request(elsewhere)
        assert b"Authorization" not in elsewhere.headers, url
    assert "hf_secret" not in repr(middleware)


def test_a_callback_error_gives_the_model_up_with_its_reason(tmp_path: Path) -> None:
    settings = Settings()
    settings.setmodule(settings_module, priority="project")
    settings.set("OUTPUT_DIR", str(tmp_path))
    crawler = Crawler(HfModelsSpider, settings)
    crawler.stats = MemoryStatsCollector(crawler)
    spider = HfModelsSpider.from_crawler(crawler)
    settled: list[tuple[str, str]] = []
    spider._settle = lambda page, key: settled.append((page, key))  # type: ignore[method-assign]
    context = {"page": "p1", "key": "org/m", "listing": {"id": "org/m"}}
    request = Request(f"{HUB}/org/m/README.md", cb_kwargs={"context": context})
    response = Response(request.url, request=request)
    failure = Failure(AttributeError("'dict' object has no attribute 'siblings'"))
    crawler.signals.send_catch_log(
        signals.spider_error, failure=failure, response=response, spider=spider
    )
    spider.rejected.close()
    assert settled == [("p1", "org/m")]  # not left to hold its page or lease for ever
    [line] = spider.rejected.path.read_text().splitlines()
    entry = json.loads(line)
    assert entry["model_id"] == "org/m"
    assert entry["reasons"] == [
        f"crawl error at {HUB}/org/m/README.md: AttributeError: "
        "'dict' object has no attribute 'siblings'"
    ]
    assert crawler.stats.get_value("hfspider/models/failed") == 1


def test_the_crawl_remembers_no_request_fingerprints() -> None:
    # Scrapy's default filter keeps one fingerprint per request for the whole crawl: memory
    # growing with the number of models. The spider drops twice-listed models itself.
    settings = Settings()
    settings.setmodule(settings_module, priority="project")
    dupefilter = load_object(settings["DUPEFILTER_CLASS"])()
    request = Request(f"{HUB}/api/models/org/model/revision/{'0' * 40}")
    assert not dupefilter.request_seen(request)
    assert not dupefilter.request_seen(request)
    assert not hasattr(dupefilter, "fingerprints")

"""Quota-aware pacing of Hub requests, as a downloader middleware.

Every request to the Hub's origin waits in `process_request` for its bucket's budget (see
hfspider.budget); every response feeds its rate-limit headers back. For Hub requests this
middleware also does what RetryMiddleware would do, the Hub's way: a 429 pauses the bucket
until Retry-After (or the window reset) and is retried apart from RETRY_TIMES, up to
RATELIMIT_RETRY_429_TIMES; server failures (RATELIMIT_FAILURE_CODES, RETRY_EXCEPTIONS) back
the bucket off and are retried up to RETRY_TIMES. A request that runs out of retries is
logged by `get_retry_request` (RETRY_GIVE_UP_LOG_LEVEL, stat `.../max_reached`) and its
response or error goes on to the spider, never dropped.

Priority 650: above RedirectMiddleware (600), so its `process_response` sees 3xx answers
(they are counted requests with headers too), and thus before RetryMiddleware (550). Requests
off the Hub's origin (its CDN) are left to Scrapy's own middlewares.

`limiter_for(crawler)` gives the same limiter to code outside Scrapy's downloader (the file
downloader), so both spend one budget.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING
from weakref import WeakKeyDictionary

from scrapy import signals
from scrapy.downloadermiddlewares.retry import get_retry_request
from scrapy.utils.misc import load_object
from scrapy.utils.python import global_object_name
from scrapy.utils.response import response_status_message

from hfspider.budget.limiter import FEEDBACK_HEADERS, STATS_PREFIX, Grant, Limiter

if TYPE_CHECKING:
    from typing import Self

    from scrapy import Request
    from scrapy.crawler import Crawler
    from scrapy.http import Response

logger = logging.getLogger(__name__)

# Request.meta keys: the grant of the attempt in flight, and the 429s a request has met.
GRANT_META = "hfspider_ratelimit_grant"
TIMES_429_META = "hfspider_ratelimit_429_times"

_LIMITERS: WeakKeyDictionary[Crawler, Limiter] = WeakKeyDictionary()


def limiter_for(crawler: Crawler) -> Limiter:
    """The crawler's one limiter (created on first use, closed when the engine stops)."""
    limiter = _LIMITERS.get(crawler)
    if limiter is None:
        limiter = _LIMITERS[crawler] = Limiter.from_settings(crawler.settings, crawler.stats)
        crawler.signals.connect(limiter.close, signal=signals.engine_stopped)
    return limiter


class HubRateLimitMiddleware:
    """Paces Hub requests and retries them the Hub's way (see the module docstring)."""

    def __init__(self, crawler: Crawler) -> None:
        self.crawler = crawler
        self.limiter = limiter_for(crawler)
        settings = crawler.settings
        self.retry_429_times = settings.getint("RATELIMIT_RETRY_429_TIMES")
        self.retry_exceptions = tuple(
            load_object(path) if isinstance(path, str) else path
            for path in settings.getlist("RETRY_EXCEPTIONS")
        )

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> Self:
        return cls(crawler)

    async def process_request(self, request: Request) -> None:
        bucket = self.limiter.bucket(request.url)
        if bucket is None:  # e.g. a redirect to the CDN: not ours, whatever meta it inherited
            request.meta.pop(GRANT_META, None)
            return
        grant = await self.limiter.acquire(bucket, request.headers.get("Authorization"))
        request.meta[GRANT_META] = grant.to_meta()

    async def process_response(self, request: Request, response: Response) -> Request | Response:
        if GRANT_META not in request.meta:
            return response
        grant = Grant.from_meta(request.meta[GRANT_META])
        headers = {
            name: value.decode("latin-1")
            for name in FEEDBACK_HEADERS
            if (value := response.headers.get(name)) is not None
        }
        await self.limiter.observe(grant, response.status, headers)
        if request.meta.get("dont_retry", False):
            return response
        if response.status == 429:
            return self._retry_429(request, grant.bucket) or self._give_up(request, response)
        if response.status in self.limiter.config.failure_codes:
            reason = response_status_message(response.status)
            return self._retry(request, grant.bucket, reason) or self._give_up(request, response)
        return response

    async def process_exception(self, request: Request, exception: Exception) -> Request | None:
        if GRANT_META not in request.meta or not isinstance(exception, self.retry_exceptions):
            return None
        grant = Grant.from_meta(request.meta[GRANT_META])
        reason = global_object_name(exception.__class__)
        await self.limiter.failed(grant, reason)
        if request.meta.get("dont_retry", False):
            return None
        retry = self._retry(request, grant.bucket, reason)
        if retry is None:
            request.meta["dont_retry"] = True  # the error goes on to the spider's errback
        return retry

    def _retry(self, request: Request, bucket: str, reason: str) -> Request | None:
        return get_retry_request(
            request,
            spider=self.crawler.spider,
            reason=reason,
            logger=logger,
            stats_base_key=f"{STATS_PREFIX}/{bucket}/retry",
        )

    def _retry_429(self, request: Request, bucket: str) -> Request | None:
        """Retry after a 429 with its own count: meeting the quota is not a failure of the
        request, so it must not use up the request's RETRY_TIMES."""
        failures = request.meta.get("retry_times", 0)
        counted = request.replace(
            meta={**request.meta, "retry_times": request.meta.get(TIMES_429_META, 0)}
        )
        retry = get_retry_request(
            counted,
            spider=self.crawler.spider,
            reason=response_status_message(429),
            max_retry_times=self.retry_429_times,
            logger=logger,
            stats_base_key=f"{STATS_PREFIX}/{bucket}/retry_429",
        )
        if retry is not None:
            retry.meta[TIMES_429_META] = retry.meta["retry_times"]
            retry.meta["retry_times"] = failures
        return retry

    def _give_up(self, request: Request, response: Response) -> Response:
        """Out of retries: the response goes on to the spider (HttpErrorMiddleware, errback),
        and RetryMiddleware must not start over with it."""
        request.meta["dont_retry"] = True
        return response

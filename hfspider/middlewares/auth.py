"""Send the Hub token to the Hub and to nothing else."""

from __future__ import annotations

from scrapy import Request
from scrapy.crawler import Crawler
from scrapy.exceptions import NotConfigured

from hfspider.hub.auth import get_token, is_hub_origin
from hfspider.hub.endpoints import hub_endpoint


class HubAuthMiddleware:
    """Adds `Authorization: Bearer <token>` to requests on the Hub's own origin only.

    The token comes from $HF_TOKEN or the huggingface_hub token file, never from settings
    (Scrapy logs its settings). Redirected requests come through here again: a redirect to
    the CDN (another origin) leaves without the header, which Scrapy's RedirectMiddleware
    has already removed, and this middleware does not add it back.
    """

    def __init__(self, endpoint: str, token: str) -> None:
        self.endpoint = endpoint
        self._header = f"Bearer {token}".encode()

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> HubAuthMiddleware:
        token = get_token()
        if not token:
            raise NotConfigured("no Hub token: crawling anonymously")
        return cls(hub_endpoint(crawler.settings.get("HUB_ENDPOINT")), token)

    def process_request(self, request: Request) -> None:
        if is_hub_origin(request.url, self.endpoint):
            request.headers[b"Authorization"] = self._header
        else:
            request.headers.pop(b"Authorization", None)

    def __repr__(self) -> str:  # never show the token
        return f"{type(self).__name__}({self.endpoint})"

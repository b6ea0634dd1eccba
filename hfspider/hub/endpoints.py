"""The one place that knows the Hub's URLs: listing, model info, resolve, tree and paths-info.

Encoding rules are the Hub client's (huggingface_hub `hf_api.py`, `file_download.py`): a
revision is percent-encoded with no safe characters (`refs/pr/1` -> `refs%2Fpr%2F1`), a file
path in a resolve URL keeps its slashes, a path in a tree URL does not. Repo ids are checked
against the Hub's naming rules before they reach a URL, so a hostile id can never change the
path or the origin of a request.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urljoin, urlsplit

DEFAULT_ENDPOINT = "https://huggingface.co"
ENDPOINT_ENV = "HF_ENDPOINT"

# The largest page the listing serves; the crawl always asks for it (fewest requests).
LISTING_PAGE_SIZE = 1000
# Always descending. `createdAt` pages on `_id` alone, the most stable order for a long crawl.
LISTING_SORTS = ("createdAt", "downloads", "likes", "lastModified", "trendingScore")
DEFAULT_SORT = "createdAt"
# Every name `expand` accepts for models (huggingface_hub `ExpandModelProperty_T`); any
# other name is a 400 from the Hub, so it is refused here first.
EXPAND_PROPERTIES = frozenset(
    {
        "author",
        "baseModels",
        "cardData",
        "childrenModelCount",
        "config",
        "createdAt",
        "disabled",
        "downloads",
        "downloadsAllTime",
        "evalResults",
        "gated",
        "gguf",
        "inference",
        "inferenceProviderMapping",
        "lastModified",
        "library_name",
        "likes",
        "mask_token",
        "model-index",
        "pipeline_tag",
        "private",
        "resourceGroup",
        "safetensors",
        "sha",
        "siblings",
        "spaces",
        "tags",
        "transformersInfo",
        "trendingScore",
        "usedStorage",
        "widgetData",
    }
)
# Every listing field a record uses: in `lite` mode the listing is the only source, in `full`
# mode the pinned model info adds file sizes and hashes (see hfspider.hub.normalise).
RECORD_EXPAND = (
    "author",
    "sha",
    "createdAt",
    "lastModified",
    "private",
    "disabled",
    "gated",
    "downloads",
    "downloadsAllTime",
    "likes",
    "tags",
    "pipeline_tag",
    "library_name",
    "cardData",
    "config",
    "model-index",
    "baseModels",
    "safetensors",
    "gguf",
    "siblings",
)
# paths-info accepts at most this many paths per request.
PATHS_INFO_MAX_PATHS = 2000

_SEGMENT = r"[A-Za-z0-9_](?:[A-Za-z0-9_.-]{0,94}[A-Za-z0-9_])?"
REPO_ID_RE = re.compile(rf"(?:{_SEGMENT}/)?{_SEGMENT}")
HEX40_RE = re.compile(r"[0-9a-f]{40}")
_LINK_RE = re.compile(r'<([^<>]*)>((?:\s*;\s*(?:[^;,"]|"[^"]*")*)*)')
_LINK_PARAM_RE = re.compile(r';\s*([A-Za-z0-9!#$&+.^_`|~-]+)\s*=\s*(?:"([^"]*)"|([^\s;,]*))')


def hub_endpoint(setting: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The Hub base URL: the `HUB_ENDPOINT` setting, else $HF_ENDPOINT, else huggingface.co."""
    env = os.environ if environ is None else environ
    endpoint = (setting or env.get(ENDPOINT_ENV) or DEFAULT_ENDPOINT).strip().rstrip("/")
    parts = urlsplit(endpoint)
    if parts.scheme not in {"http", "https"} or not parts.hostname:
        raise ValueError(f"Hub endpoint must be an http(s) URL with a host, got {endpoint!r}")
    if parts.query or parts.fragment or parts.username or parts.password:
        raise ValueError(f"Hub endpoint must not carry a query, fragment or user: {endpoint!r}")
    return endpoint


def validate_repo_id(repo_id: str) -> str:
    """Return `repo_id` if it follows the Hub's rules (`[owner/]name`, no `..` or `--`)."""
    if (
        not isinstance(repo_id, str)
        or not REPO_ID_RE.fullmatch(repo_id)
        or ".." in repo_id
        or "--" in repo_id
        or repo_id.endswith(".git")
    ):
        raise ValueError(f"not a valid Hub repo id: {repo_id!r}")
    return repo_id


def _revision(revision: str) -> str:
    if not isinstance(revision, str) or not revision:
        raise ValueError(f"revision must be a non-empty string, got {revision!r}")
    return quote(revision, safe="")


@dataclass(frozen=True)
class ListingQuery:
    """The filters of one crawl of `GET /api/models`; `url()` is its first page.

    `library` is folded into `filter` like the Hub client does (the server has no `library`
    parameter); `min_downloads` is not a server filter, so it is not here either.
    """

    search: str | None = None
    author: str | None = None
    filters: tuple[str, ...] = ()
    pipeline_tag: str | None = None
    library: str | None = None
    gated: bool | None = None
    sort: str = DEFAULT_SORT
    expand: tuple[str, ...] = RECORD_EXPAND
    limit: int = LISTING_PAGE_SIZE

    def __post_init__(self) -> None:
        if self.sort not in LISTING_SORTS:
            raise ValueError(f"sort must be one of {', '.join(LISTING_SORTS)}; got {self.sort!r}")
        unknown = sorted(set(self.expand) - EXPAND_PROPERTIES)
        if unknown:
            raise ValueError(f"unknown expand properties (the Hub answers 400): {unknown}")
        if not 1 <= self.limit <= LISTING_PAGE_SIZE:
            raise ValueError(f"limit must be within 1..{LISTING_PAGE_SIZE}, got {self.limit}")

    def params(self) -> list[tuple[str, str]]:
        """Query parameters in a fixed order (the URL doubles as the checkpoint key)."""
        pairs: list[tuple[str, str]] = []
        for name in ("search", "author"):
            value = getattr(self, name)
            if value:
                pairs.append((name, value))
        filters = [*self.filters, *([self.library] if self.library else [])]
        pairs += [("filter", value) for value in filters]
        if self.pipeline_tag:
            pairs.append(("pipeline_tag", self.pipeline_tag))
        if self.gated is not None:
            pairs.append(("gated", "true" if self.gated else "false"))
        pairs += [("sort", self.sort), ("limit", str(self.limit))]
        pairs += [("expand", name) for name in self.expand]
        return pairs

    def url(self, endpoint: str) -> str:
        return f"{endpoint}/api/models?{urlencode(self.params(), quote_via=quote)}"


def model_info_url(endpoint: str, repo_id: str, revision: str | None, *, blobs: bool = True) -> str:
    """`GET /api/models/{id}/revision/{rev}`: the snapshot at `revision` (None: the default
    branch, as it is now), with file sizes and LFS sha256 when `blobs` (one request instead
    of a HEAD per file)."""
    url = f"{endpoint}/api/models/{validate_repo_id(repo_id)}"
    if revision is not None:
        url += f"/revision/{_revision(revision)}"
    return f"{url}?blobs=true" if blobs else url


def resolve_url(endpoint: str, repo_id: str, revision: str, path: str) -> str:
    """`GET /{id}/resolve/{rev}/{path}`: the bytes of one file (counts as a resolver call)."""
    if not isinstance(path, str) or not path:
        raise ValueError(f"file path must be a non-empty string, got {path!r}")
    return f"{endpoint}/{validate_repo_id(repo_id)}/resolve/{_revision(revision)}/{quote(path)}"


def resolve_cache_url(endpoint: str, repo_id: str, commit: str, path: str, blob_id: str) -> str:
    """Where `resolve_url` of a regular (non-LFS) file redirects, built directly.

    Since mid-2025 the Hub answers `/{id}/resolve/{rev}/{path}` of a regular file with a 307
    to `/api/resolve-cache/models/{id}/{commit}/{path}?%2F{id}%2Fresolve%2F{rev}%2F{path}=`
    `&etag=%22{blob sha1}%22` (hub-api.md §5). With the commit and the blob id known from a
    pinned model info, asking there first saves that redirect: one request per file instead
    of two. The caller falls back to `resolve_url` if the Hub ever answers otherwise.
    """
    if not HEX40_RE.fullmatch(commit) or not HEX40_RE.fullmatch(blob_id):
        raise ValueError("resolve-cache needs a 40-hex commit and blob id")
    repo_id = validate_repo_id(repo_id)
    if not isinstance(path, str) or not path:
        raise ValueError(f"file path must be a non-empty string, got {path!r}")
    origin = quote(f"/{repo_id}/resolve/{commit}/{path}", safe="")
    etag = quote(f'"{blob_id}"', safe="")
    cached = f"{endpoint}/api/resolve-cache/models/{repo_id}/{commit}/{quote(path)}"
    return f"{cached}?{origin}=&etag={etag}"


def tree_url(
    endpoint: str,
    repo_id: str,
    revision: str,
    path: str = "",
    *,
    recursive: bool = True,
    expand: bool = False,
) -> str:
    """`GET /api/models/{id}/tree/{rev}[/{path}]`: file entries, paginated by `Link`."""
    url = f"{endpoint}/api/models/{validate_repo_id(repo_id)}/tree/{_revision(revision)}"
    if path:
        url += "/" + quote(path, safe="")
    flags = urlencode({"recursive": str(recursive).lower(), "expand": str(expand).lower()})
    return f"{url}?{flags}"


def paths_info_url(endpoint: str, repo_id: str, revision: str) -> str:
    """`POST /api/models/{id}/paths-info/{rev}`; send `paths_info_form(...)` as the form body."""
    return f"{endpoint}/api/models/{validate_repo_id(repo_id)}/paths-info/{_revision(revision)}"


def paths_info_form(paths: Iterable[str], *, expand: bool = False) -> list[tuple[str, str]]:
    """Form fields for paths-info: one `paths` field per path (unknown paths are dropped by
    the Hub, so the answer may hold fewer entries)."""
    fields = [("paths", path) for path in paths]
    if not fields or len(fields) > PATHS_INFO_MAX_PATHS:
        raise ValueError(f"paths-info takes 1..{PATHS_INFO_MAX_PATHS} paths, got {len(fields)}")
    return [*fields, ("expand", str(expand).lower())]


def next_page_url(link_header: str | None, base_url: str) -> str | None:
    """The `rel="next"` target of an RFC 8288 `Link` header, absolute, or None on the last page.

    The Hub sends absolute URLs; a relative one is resolved against `base_url` (the page that
    carried the header). Whether the target may receive the token is `auth.is_hub_origin`'s call.
    """
    if not link_header:
        return None
    for match in _LINK_RE.finditer(link_header):
        target, params = match.group(1).strip(), match.group(2)
        for name, quoted, bare in _LINK_PARAM_RE.findall(params):
            if name.lower() == "rel" and "next" in (quoted or bare).lower().split():
                return urljoin(base_url, target)
    return None

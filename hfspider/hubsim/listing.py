"""Listings (`GET /api/models`, `GET /api/datasets`): parameters, filters, sorts, cursors.

Pagination is keyset pagination like the Hub's: items are ordered by the sort key descending,
ties by `_id` ascending (`createdAt` sorts by `_id` descending, which embeds the creation
time), and the cursor names the last item served, so a page boundary never moves when items
are added or removed elsewhere. The cursor is an opaque token shaped like the Hub's (base64
of a Mongo-style predicate, e.g. `{"$or":[{"likes":294,"_id":{"$gt":"621f..."}},
{"likes":{"$lt":294}}]}`); an unreadable one is a 400.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol
from urllib.parse import quote, urlencode

MAX_LIMIT = 1000
SORTS = ("trendingScore", "downloads", "likes", "lastModified", "createdAt")
DEFAULT_SORT = "trendingScore"
TRUE_VALUES = ("true", "True", "1")
MODEL_EXPAND = (
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
    "xetEnabled",
)
DATASET_EXPAND = (
    "author",
    "cardData",
    "createdAt",
    "disabled",
    "downloads",
    "downloadsAllTime",
    "gated",
    "lastModified",
    "likes",
    "private",
    "sha",
    "tags",
    "trendingScore",
)


class BadRequestError(ValueError):
    """A request the Hub answers with 400 and this message."""


class Listable(Protocol):
    id: str
    object_id: str
    author: str
    downloads: int
    likes: int
    trending_score: int
    tags: tuple[str, ...]

    @property
    def last_modified(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Query:
    """A parsed listing request."""

    search: str | None
    author: str | None
    filters: tuple[str, ...]
    pipeline_tag: str | None
    library: str | None
    language: str | None
    gated: bool | None
    sort: str
    sort_given: bool
    limit: int
    full: bool
    config: bool
    card_data: bool
    expand: tuple[str, ...] | None
    cursor: tuple[Any, str] | None  # (sort value of the last item served, its _id)


def parse_query(params: Any, default_limit: int, expandable: Sequence[str]) -> Query:
    """Read listing parameters from a multidict (`request.query`); raise BadRequestError."""
    sort = params.get("sort") or DEFAULT_SORT
    if sort not in SORTS:
        raise BadRequestError(f'Invalid sort "{sort}", must be one of: {", ".join(SORTS)}')
    raw_limit = params.get("limit")
    if raw_limit is None:
        limit = default_limit
    else:
        try:
            limit = int(raw_limit)
        except ValueError:
            raise BadRequestError(f'"limit" must be an integer, got "{raw_limit}"') from None
        if not 1 <= limit <= MAX_LIMIT:
            raise BadRequestError(f'"limit" must be between 1 and {MAX_LIMIT}')
    expand = tuple(params.getall("expand", ())) + tuple(params.getall("expand[]", ()))
    for name in expand:
        if name not in expandable:
            raise BadRequestError(f'"expand" must be one of {", ".join(expandable)}; got "{name}"')
    gated = params.get("gated")
    cursor = params.get("cursor")
    return Query(
        search=params.get("search") or None,
        author=params.get("author") or None,
        filters=tuple(params.getall("filter", ())),
        pipeline_tag=params.get("pipeline_tag") or None,
        library=params.get("library") or None,
        language=params.get("language") or None,
        gated=None if gated is None else gated in TRUE_VALUES,
        sort=sort,
        sort_given="sort" in params,
        limit=limit,
        full=params.get("full") in TRUE_VALUES,
        config=params.get("config") in TRUE_VALUES,
        card_data=params.get("cardData") in TRUE_VALUES,
        expand=expand or None,
        cursor=decode_cursor(cursor, sort) if cursor is not None else None,
    )


def matches(item: Any, query: Query) -> bool:
    """Whether a model or dataset passes the query's filters (all of them: AND)."""
    if query.search and query.search.lower() not in item.id.lower():
        return False
    if query.author and query.author.lower() != item.author.lower():
        return False
    tags = item.tags
    if any(f not in tags for f in query.filters):
        return False
    if query.pipeline_tag and getattr(item, "pipeline_tag", None) != query.pipeline_tag:
        return False
    if query.library and query.library not in tags:
        return False
    if query.language and query.language not in tags:
        return False
    if query.gated is not None and bool(item.gated) != query.gated:
        return False
    return True


# -- sort order and cursors ------------------------------------------------------------------

_ATTRIBUTES = {
    "trendingScore": "trending_score",
    "downloads": "downloads",
    "likes": "likes",
    "lastModified": "last_modified",
}


def sort_value(item: Listable, sort: str) -> Any:
    """The value the cursor records for an item (as the API shows it)."""
    return getattr(item, _ATTRIBUTES[sort]) if sort != "createdAt" else None


def _rank(value: Any, object_id: str, sort: str) -> tuple:
    """Position key: ascending order of this tuple is the listing order."""
    if sort == "createdAt":
        return (-int(object_id, 16),)
    if isinstance(value, str):  # lastModified
        value = datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    return (-value, object_id)


class SortedView:
    """Items in listing order for one sort, with the ranks to find a cursor's position."""

    def __init__(self, items: Iterable[Listable], sort: str) -> None:
        ranked = sorted(
            ((_rank(sort_value(i, sort), i.object_id, sort), i) for i in items),
            key=lambda pair: pair[0],
        )
        self.sort = sort
        self.ranks = [rank for rank, _ in ranked]
        self.items = [item for _, item in ranked]

    def page(
        self, query: Query, visible: Callable[[Any], bool]
    ) -> tuple[list[Any], tuple[Any, str] | None]:
        """(items of the page, cursor of the next page or None on the last page)."""
        start = 0
        if query.cursor is not None:
            value, object_id = query.cursor
            start = bisect.bisect_right(self.ranks, _rank(value, object_id, self.sort))
        page: list[Any] = []
        for position in range(start, len(self.items)):
            item = self.items[position]
            if not (visible(item) and matches(item, query)):
                continue
            if len(page) == query.limit:
                last = page[-1]
                return page, (sort_value(last, self.sort), last.object_id)
            page.append(item)
        return page, None


def encode_cursor(sort: str, value: Any, object_id: str) -> str:
    """The Hub-shaped opaque cursor after the item (value, object_id)."""
    if sort == "createdAt":
        predicate: dict[str, Any] = {"_id": {"$lt": object_id}}
    else:
        branches = [{sort: value, "_id": {"$gt": object_id}}, {sort: {"$lt": value}}]
        if sort == "downloads":
            branches.append({sort: None})
        predicate = {"$or": branches}
    return base64.b64encode(json.dumps(predicate, separators=(",", ":")).encode()).decode()


def decode_cursor(cursor: str, sort: str) -> tuple[Any, str]:
    """(value, object_id) from a cursor made by `encode_cursor` for the same sort."""
    try:
        predicate = json.loads(base64.b64decode(cursor, validate=True))
        if sort == "createdAt":
            object_id = predicate["_id"]["$lt"]
            value = None
        else:
            first = predicate["$or"][0]
            value, object_id = first[sort], first["_id"]["$gt"]
            if not isinstance(value, int | float | str) or isinstance(value, bool):
                raise ValueError(value)
            if isinstance(value, str):
                datetime.fromisoformat(value.replace("Z", "+00:00"))
        int(object_id, 16)
        if len(object_id) != 24:
            raise ValueError(object_id)
    except (ValueError, KeyError, TypeError, IndexError, binascii.Error):
        raise BadRequestError("Invalid cursor") from None
    return value, object_id


def next_link(origin: str, path: str, pairs: list[tuple[str, str]], cursor: str) -> str:
    """The absolute `Link` header of the next page: the given params, then the cursor."""
    query = urlencode(pairs, quote_via=quote)
    separator = "&" if query else ""
    return f'<{origin}{path}?{query}{separator}cursor={quote(cursor, safe="")}>; rel="next"'


def listing_link(origin: str, path: str, params: Any, query: Query, cursor: tuple[Any, str]) -> str:
    """`next_link` of a listing: original params (cursor excepted), the effective sort."""
    pairs = [(k, v) for k, v in params.items() if k != "cursor"]
    if not query.sort_given:
        pairs.append(("sort", query.sort))
    return next_link(origin, path, pairs, encode_cursor(query.sort, *cursor))

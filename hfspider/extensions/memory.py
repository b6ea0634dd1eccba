"""The crawl process's malloc arenas limited as soon as the crawler is built, before the
reactor starts any thread (hfspider/memory.py says why)."""

from __future__ import annotations

from scrapy.crawler import Crawler

from hfspider.memory import limit_arenas


class MallocArenas:
    """Calls `limit_arenas(MEMORY_MALLOC_ARENA_MAX)` once (0: glibc's default is kept).
    An extension because extensions are built with the crawler, before any thread."""

    def __init__(self, arena_max: int) -> None:
        self.arena_max = arena_max
        self.limited = limit_arenas(arena_max)

    @classmethod
    def from_crawler(cls, crawler: Crawler) -> MallocArenas:
        extension = cls(crawler.settings.getint("MEMORY_MALLOC_ARENA_MAX", 0))
        crawler.stats.set_value("hfspider/memory/malloc_arena_max", extension.arena_max)
        return extension

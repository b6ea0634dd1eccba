"""The file cache: LRU eviction under a size cap that never touches a file IPFS lacks."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest
from scrapy.statscollectors import MemoryStatsCollector
from scrapy.utils.test import get_crawler

from hfspider.files.cache import FileCache

SHA = "f" * 40


def put(cache: FileCache, name: str, size: int) -> str:
    """A fetched file of `size` bytes, as the pipeline lands it, then indexed."""
    relative = f"files/org/model/{SHA}/{name}"
    path = cache.output / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    cache.add(relative, size)
    return relative


def on_disk(cache: FileCache) -> set[str]:
    return {
        p.relative_to(cache.output).as_posix()
        for p in (cache.output / "files").rglob("*")
        if p.is_file()
    }


def test_least_recently_used_stored_files_go_first(tmp_path: Path) -> None:
    stats = MemoryStatsCollector(get_crawler())
    cache = FileCache(tmp_path, max_bytes=300, stats=stats)
    a, b, c = put(cache, "a", 100), put(cache, "b", 100), put(cache, "c", 100)
    assert cache.mark_stored([a, b, c]) == 3
    cache.add(a, 100)  # reused by a newer record: most recent, and back in the working set
    cache.mark_stored([a])
    cache.make_room(150)  # b and c are older than a
    assert on_disk(cache) == {a}
    assert cache.total() == 100
    assert stats.get_value("hfspider/files/cache/evicted") == 2
    assert stats.get_value("hfspider/files/cache/evicted_bytes") == 200
    assert not (tmp_path / "files" / "org" / "model" / SHA / "b").exists()


def test_a_file_not_yet_stored_is_never_evicted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    stats = MemoryStatsCollector(get_crawler())
    cache = FileCache(tmp_path, max_bytes=250, stats=stats)
    a = put(cache, "a", 100)
    b = put(cache, "b", 100)
    cache.mark_stored([a])
    with caplog.at_level(logging.WARNING):
        c = put(cache, "c", 100)  # over the cap: only `a` may go, and goes
        d = put(cache, "d", 100)  # over again, and nothing stored is left: all kept
        e = put(cache, "e", 100)
    assert on_disk(cache) == {b, c, d, e}
    assert stats.get_value("hfspider/files/cache/over_cap") == 2
    assert sum("over FILES_CACHE_MAX_SIZE" in r.message for r in caplog.records) == 1
    cache.mark_stored([b])  # now `b` may go, and does at once (the cache is over its cap)
    assert on_disk(cache) == {c, d, e}
    assert cache.total() == 300


def test_reuse_takes_a_stored_file_back_into_the_working_set(tmp_path: Path) -> None:
    cache = FileCache(tmp_path, max_bytes=100)
    a = put(cache, "a", 100)
    cache.mark_stored([a])
    cache.add(a, 100)  # a new snapshot record uses it: its CAR is not written yet
    cache.make_room(100)
    assert on_disk(cache) == {a}


def test_the_index_survives_a_restart_and_empty_folders_are_removed(tmp_path: Path) -> None:
    cache = FileCache(tmp_path, max_bytes=1000)
    deep = put(cache, "x/y/z.bin", 600)
    keep = put(cache, "keep.bin", 300)
    cache.mark_stored([deep])
    cache.close()
    again = FileCache(tmp_path, max_bytes=1000)
    assert again.total() == 900
    again.make_room(200)
    assert on_disk(again) == {keep}
    assert not (tmp_path / "files" / "org" / "model" / SHA / "x").exists()
    assert (tmp_path / "files" / "org" / "model" / SHA).is_dir()


def test_no_cap_means_nothing_is_ever_evicted(tmp_path: Path) -> None:
    cache = FileCache(tmp_path, max_bytes=0)
    a = put(cache, "a", 10_000)
    cache.mark_stored([a])
    cache.make_room(10**15)
    assert on_disk(cache) == {a}


def test_only_paths_below_files_can_be_evicted(tmp_path: Path) -> None:
    cache = FileCache(tmp_path, max_bytes=1)
    cache.add("state/files.sqlite", 10)
    with pytest.raises(ValueError, match="not a cached file path"):
        cache.mark_stored(["state/files.sqlite"])
    assert (tmp_path / "state" / "files.sqlite").exists()

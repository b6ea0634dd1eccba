"""glibc malloc tuning for the crawl process: the one place that calls `mallopt` (ctypes).

Two process-wide settings, each for a measured reason:

* fewer arenas (`limit_arenas`): glibc gives threads malloc arenas of their own, up to 8 per
  core. The crawl's threads (Twisted's pool for DNS, `asyncio.to_thread` for CAR writing and
  group commits, the hashing threads of file downloads) each leave a part-used arena behind;
  memory freed in one is not reusable by the others, and the crawl's RSS kept creeping up
  with the models crawled (bench/bench_crawl_memory.py). Two arenas (the main one and one
  shared by the threads) flattened it in an earlier experiment (MALLOC_ARENA_MAX=2); the
  threads allocate little, so they hardly contend for it (no CPU change measured).
  Arenas are created as threads first allocate: call it before any thread starts.
* freed memory kept for reuse (`keep_freed_memory`): see MALLOC_TRIM_THRESHOLD.

Elsewhere than glibc (musl, macOS) both are no-ops that say so: the parameters are glibc's.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import os

logger = logging.getLogger(__name__)

# mallopt parameters (glibc's malloc.h).
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -3, -8
# glibc malloc: allocations under this size come from the heap, and this much freed memory is
# kept there for reuse. Its default (a 128 KiB threshold that grows, a top trimmed past twice
# that) hands the pages of aiohttp's body pieces (up to 256 KiB, freed on the hashing thread)
# back to the kernel and faults them in again: ~90,000 page faults, ~0.2 CPU s per GB.
MALLOC_MMAP_THRESHOLD = 8 << 20
MALLOC_TRIM_THRESHOLD = 64 << 20


def glibc_version() -> str | None:
    """`glibc 2.36`-style, or None if this process's C library is not glibc."""
    try:
        return os.confstr("CS_GNU_LIBC_VERSION")
    except (ValueError, OSError):  # the name is unknown here: not glibc
        return None


def mallopt(parameter: int, value: int) -> bool:
    """glibc's `mallopt(parameter, value)`; False if it refused, or if this is not glibc."""
    if glibc_version() is None:
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(parameter, value))
    except (OSError, AttributeError):
        return False


def limit_arenas(count: int) -> bool:
    """At most `count` malloc arenas from now on (0: glibc's default, left alone); True if
    set. Logs what it did, and why not when it could not."""
    if count <= 0:
        return False
    version = glibc_version()
    if version is None:
        logger.info("malloc arenas not limited: the C library is not glibc")
        return False
    if not mallopt(M_ARENA_MAX, count):
        logger.warning("malloc arenas not limited: %s refused mallopt(M_ARENA_MAX)", version)
        return False
    threads = threads_running()
    logger.info("malloc arenas limited to %d (%s, %s threads running)", count, version, threads)
    return True


def threads_running() -> int | None:
    """Threads of this process (Linux), to check that the arena limit came early enough."""
    try:
        return len(os.listdir("/proc/self/task"))
    except OSError:
        return None


def keep_freed_memory() -> None:
    """Ask glibc's malloc to keep freed heap memory for reuse (see MALLOC_TRIM_THRESHOLD);
    a no-op elsewhere. Process-wide: it costs at most that much idle RSS per arena."""
    mallopt(M_MMAP_THRESHOLD, MALLOC_MMAP_THRESHOLD)
    mallopt(M_TRIM_THRESHOLD, MALLOC_TRIM_THRESHOLD)

"""Shared fixtures. Each real service (Hub emulator, Kubo, redis-server, scrapyd) has its own
fixture module under tests/fixtures/, started for real and stopped afterwards."""

from collections.abc import Iterator

import pytest

pytest_plugins: list[str] = [
    "tests.fixtures.hubsim",
    "tests.fixtures.kubo",
    "tests.fixtures.redis",
    "tests.fixtures.scrapyd",
]


@pytest.fixture(autouse=True)
def _no_crawl_left_running() -> Iterator[None]:
    yield
    # Imported here: at the top it would import the fixture modules before pytest_plugins,
    # so pytest could not rewrite their asserts.
    from tests.crawl_support import kill_leftover_crawls

    kill_leftover_crawls()

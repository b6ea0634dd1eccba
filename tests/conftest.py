"""Shared fixtures. Each real service (Hub emulator, Kubo, redis-server, scrapyd) has its own
fixture module under tests/fixtures/, started for real and stopped afterwards."""

pytest_plugins: list[str] = [
    "tests.fixtures.hubsim",
    "tests.fixtures.kubo",
    "tests.fixtures.redis",
    "tests.fixtures.scrapyd",
]

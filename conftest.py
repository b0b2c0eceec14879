"""Fixtures shared by the test suites of every package in this repository."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import pytest


@pytest.fixture(scope="session")
def redis_server() -> Iterator[Any]:
    """A real throw-away ``redis-server`` on loopback, shared by the session.

    Skips when ``redis-server`` is not installed, except in CI where it fails.
    """
    from hivemind_hub.testing import find_redis_server, running_redis_server

    if find_redis_server() is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is required in CI (apt-get install redis-server)")
        pytest.skip("redis-server is not installed")
    with running_redis_server() as server:
        yield server

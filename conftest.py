"""Fixtures shared by the test suites of every package in this repository."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent


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


@pytest.fixture(scope="session")
def interop_python() -> str:
    """The interop virtualenv's python (released hivemind packages), as a path string.

    ``HIVEMIND_INTEROP_PYTHON`` names it, else ``.cache/interop-venv`` in this
    checkout. Skips when it is missing, except in CI where it fails.
    """
    default = ROOT / ".cache" / "interop-venv" / "bin" / "python"
    path = os.environ.get("HIVEMIND_INTEROP_PYTHON") or str(default)
    if not Path(path).exists():
        message = f"interop python {path} is missing (run `make interop-venv`)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)
    return path

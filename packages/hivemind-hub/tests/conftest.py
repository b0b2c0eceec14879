from __future__ import annotations

import uuid

import pytest
from hivemind_hub.store import JSONClientStore, RedisClientStore, SQLiteClientStore


@pytest.fixture
def xdg(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    return tmp_path


@pytest.fixture
def redis_options(redis_server):
    # A unique key prefix per test isolates tests sharing one server.
    return {**redis_server.options, "index_prefix": f"t{uuid.uuid4().hex[:12]}"}


def _open(kind, tmp_path, request):
    if kind == "json":
        return JSONClientStore(tmp_path / "clients.json")
    if kind == "sqlite":
        return SQLiteClientStore(tmp_path / "clients.db")
    return RedisClientStore(request.getfixturevalue("redis_options"))


@pytest.fixture(params=["json", "sqlite", "redis"])
def store_kind(request):
    return request.param


@pytest.fixture
def open_kind(tmp_path, request):
    opened = []

    def factory(kind):
        store = _open(kind, tmp_path, request)
        opened.append(store)
        return store

    yield factory
    for store in opened:
        store.close()


@pytest.fixture
def store(store_kind, open_kind):
    return open_kind(store_kind)

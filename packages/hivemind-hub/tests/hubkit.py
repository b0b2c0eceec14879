"""Helpers shared by the server tests: config, store and a started hub on port 0."""

from __future__ import annotations

import copy
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import trio
from hivemind_hub.config import default_config_dict, parse_config
from hivemind_hub.serve import ServingHub, serve_hub
from hivemind_hub.store import SQLiteClientStore

UTT = "recognizer_loop:utterance"
PASSWORD = "correct-horse-battery-staple-42"


def hub_config(tmp: Path, **overrides: Any):
    tree = default_config_dict(tmp)
    tree["network_protocol"]["hivemind-websocket-plugin"]["port"] = 0
    tree["database"] = {
        "module": "hivemind-sqlite-db-plugin",
        "hivemind-sqlite-db-plugin": {"path": str(tmp / "clients.db")},
    }
    tree["agent_protocol"] = {"module": None}
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(tree.get(key), dict):
            merged = copy.deepcopy(tree[key])
            merged.update(value)
            tree[key] = merged
        else:
            tree[key] = value
    return parse_config(tree)


@asynccontextmanager
async def running_hub(tmp: Path, config=None, **kwargs: Any) -> AsyncIterator[ServingHub]:
    """Start ``serve_hub`` on port 0 with an SQLite store in ``tmp``."""
    config = config or hub_config(tmp)
    store = SQLiteClientStore(tmp / "clients.db")
    try:
        async with trio.open_nursery() as nursery:
            serving = await nursery.start(
                lambda task_status: serve_hub(
                    config, data=tmp / "hubdata", store=store, task_status=task_status, **kwargs
                )
            )
            try:
                yield serving
            finally:
                nursery.cancel_scope.cancel()
    finally:
        store.close()


async def wait_for(predicate, seconds: float = 5.0) -> None:
    """Poll ``predicate`` (a condition on state other tasks change) until true."""
    with trio.fail_after(seconds):
        while not predicate():  # noqa: ASYNC110 (the state has no event to wait on)
            await trio.sleep(0.01)

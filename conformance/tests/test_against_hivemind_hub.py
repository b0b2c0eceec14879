"""Hub mode against our own hub (``hivemind_hub.serve.serve_hub``): every MUST passes.

The hub runs with an agent implementing the hub echo contract of
docs/spec §9.1 and the three clients the contract asks the operator to
provision (test, admin, restricted).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
import trio
from hivemind_conformance import Credentials, Grade, Profile, RunConfig
from hivemind_conformance._runner import check_hub

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("hivemind_hub") is None
    or importlib.util.find_spec("hivemind_hub.serve") is None,
    reason="hub server not present",
)

TEST = Credentials("conformance-test", os.urandom(16).hex())
ADMIN = Credentials("conformance-admin", os.urandom(16).hex())
OTHER = Credentials("conformance-restricted", os.urandom(16).hex())
SITE = "conformance-hub-site"


class EchoAgent:
    """The hub echo contract as an agent of our hub."""

    name = "conformance-echo"
    answers_queries = False

    def __init__(self) -> None:
        self._send, self._recv = trio.open_memory_channel[Mapping[str, Any]](256)

    def emit(self, message: Mapping[str, Any]) -> bool:
        try:
            self._send.send_nowait(message)
        except trio.WouldBlock:
            return False
        return True

    async def run(self, host: Any, *, task_status: Any = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async for message in self._recv:
            kind = str(message.get("type"))
            if not kind.startswith("hive.conformance.") or kind.endswith(".reply"):
                continue
            context = dict(message.get("context") or {})
            host.deliver(
                {
                    "type": kind + ".reply",
                    "data": {"data": message.get("data"), "context": context},
                    "context": {"source": "hive", "destination": context.get("source")},
                }
            )


def _config(tmp: Path) -> Any:
    from hivemind_hub.config import default_config_dict, parse_config

    tree = default_config_dict(tmp)
    tree["network_protocol"]["hivemind-websocket-plugin"]["port"] = 0
    tree["network_protocol"]["hivemind-websocket-plugin"]["host"] = "127.0.0.1"
    tree["database"] = {
        "module": "hivemind-sqlite-db-plugin",
        "hivemind-sqlite-db-plugin": {"path": str(tmp / "clients.db")},
    }
    tree["agent_protocol"] = {"module": None}
    tree["binarize"] = True
    tree["runtime_password_strength_check"] = False
    tree.setdefault("limits", {}).update(
        {
            "handshake_timeout": 3.0,
            "max_frame_bytes": 256 * 1024,
            "rate_limit_messages_per_second": 500.0,
            "rate_limit_burst": 1000,
        }
    )
    return parse_config(tree)


async def test_every_must_passes_against_our_hub(tmp_path: Path) -> None:
    from hivemind_hub.serve import serve_hub
    from hivemind_hub.store import SQLiteClientStore

    config = _config(tmp_path)
    store = SQLiteClientStore(tmp_path / "clients.db")
    echo = ["hive.conformance.echo"]
    store.create(api_key=TEST.access_key, name="test", password=TEST.password, allowed_types=echo)
    store.create(
        api_key=ADMIN.access_key,
        name="admin",
        password=ADMIN.password,
        allowed_types=echo,
        is_admin=True,
    )
    store.create(
        api_key=OTHER.access_key,
        name="restricted",
        password=OTHER.password,
        allowed_types=echo,
        can_propagate=False,
        can_escalate=False,
    )
    try:
        with trio.fail_after(150):
            async with trio.open_nursery() as nursery:
                serving = await nursery.start(
                    lambda task_status: serve_hub(
                        config,
                        data=tmp_path / "hubdata",
                        store=store,
                        agent=EchoAgent(),
                        site_id=SITE,
                        task_status=task_status,
                    )
                )
                run = RunConfig(
                    target=f"ws://127.0.0.1:{serving.port}",
                    client=TEST,
                    admin=ADMIN,
                    other=OTHER,
                    profile=Profile.N,
                    timeout=30,
                    reply_timeout=4,
                    quiet_timeout=0.6,
                    nonce_samples=300,
                    hub_site_id=SITE,
                    max_frame_bytes=256 * 1024,
                    handshake_timeout=3.0,
                    seed=3,
                )
                results = await check_hub(run)
                nursery.cancel_scope.cancel()
    finally:
        store.close()
    failed = [f"{r.case.id}: {r.expected} / {r.actual}" for r in results if r.grade is Grade.FAIL]
    assert failed == []
    assert sum(r.grade is Grade.PASS for r in results) >= 40

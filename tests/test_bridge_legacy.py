"""A released hivemind-bus-client satellite asks a room through the hub-side room mode.

The hub runs the room-bridge agent with ``legacy_mode`` on: the operator's
accepted room (an invite link) and profile (payer key, trusted dev root) act
for the released satellite, which sends a plain bus message over the legacy
wire. The answer it receives is labelled as verified by the hub on its
behalf. Everything is real: room service, hub, the released client in the
interop virtualenv.
"""

from __future__ import annotations

import importlib.util
import json
import secrets
import subprocess
from pathlib import Path

import httpx
import pytest
import trio
from hivemind_rooms.attestation.service import load_or_create_dev_provider
from hivemind_rooms.hive import ROOM_TYPES
from hivemind_rooms.hive.legacy import LEGACY_ASK, RoomBridgeAgent
from hivemind_rooms.vault import FAST_KDF

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("hivemind_demo", ROOT / "tools" / "demo.py")
demo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(demo)

pytestmark = pytest.mark.slow


def _released_satellite(python: str, port: int, key: str, password: str, question: str) -> dict:
    request = {"port": port, "key": key, "password": password, "question": question}
    done = subprocess.run(
        [python, str(ROOT / "tests" / "interop" / "legacy_room_satellite.py"),
         json.dumps(request)],
        capture_output=True, text=True, timeout=180, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


async def test_released_satellite_asks_through_the_hub_side_mode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, interop_python: str
) -> None:
    monkeypatch.setenv("HIVEMIND_RUNNER", await trio.to_thread.run_sync(demo.pick_runner))
    for name in ("rooms", "hub"):
        (tmp_path / name).mkdir()
    admin = secrets.token_urlsafe(24)
    with trio.fail_after(280):
        async with demo.running_room_service(tmp_path / "rooms", admin, kdf=FAST_KDF) as base:
            async with httpx.AsyncClient(base_url=base, timeout=120) as http:
                sample = await demo.create_sample_room(http, admin)
            root = load_or_create_dev_provider(tmp_path / "rooms", "{}").root_public_key_b64()
            bridge_key, bridge_password = secrets.token_hex(16), secrets.token_urlsafe(18)
            agent = RoomBridgeAgent(
                {
                    "legacy_mode": True,
                    "room_link": sample["link"],
                    "payer_key": sample["payer_key"],
                    "dev_roots": [root],
                    "access_key": bridge_key,
                    "password": bridge_password,
                    "timeout": 120,
                }
            )
            config = demo.linked_hub_config(tmp_path / "rooms", tmp_path / "hub", base, "hub")
            async with demo.running_hub(tmp_path / "hub", config, agent=agent) as hub:
                await demo.wait_for(lambda: hub.hub.router.upstream_peer, 60)
                # The agent is an ordinary participant satellite of its own hub.
                agent.via_hub_url = f"ws://127.0.0.1:{hub.port}"
                hub.hub.store.create(api_key=bridge_key, name="room-bridge",
                                     password=bridge_password, allowed_types=list(ROOM_TYPES),
                                     can_escalate=True)  # fmt: skip
                sat_key, sat_password = secrets.token_hex(16), secrets.token_urlsafe(18)
                hub.hub.store.create(
                    api_key=sat_key, name="released", password=sat_password,
                    allowed_types=[LEGACY_ASK],
                )  # fmt: skip
                got = await trio.to_thread.run_sync(
                    _released_satellite,
                    interop_python,
                    hub.port,
                    sat_key,
                    sat_password,
                    demo.SAMPLE_QUESTION,
                )
                node_id = hub.hub.identity.node_id
    assert "timeout" not in got, got
    assert "error" not in got, got
    assert got["label"] == f"verified by hub {node_id} on behalf of this satellite"
    assert got["verified_by"] == node_id
    assert got["status"] == "completed"
    assert got["room_id"] == sample["room_id"]
    assert "| Ann | Lisbon |" in got["answer"]
    assert "Porto" not in got["answer"]
    assert any("run attestation" in check for check in got["checks"])

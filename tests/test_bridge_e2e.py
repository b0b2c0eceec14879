"""A satellite asks a room through two hubs: satellite -> child hub -> parent hub -> room service.

Everything is real and on loopback: the room service (hypercorn on port 0,
dev attestation, the bwrap or docker sandbox runner), two hubs linked with
profile N, the default agents. The participant verifies the room and the
signed answer itself; the hubs only relay. The test then checks that no hub
log line, no message the hubs handled in memory and no hub database holds
the prompt, the answer or the invite token in clear, that a hub tampering
with a relayed answer (or substituting the seal key) is a verification
failure at the participant, and that a satellite whose grant lacks the room
types is refused by the hub's policy chain.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import trio
from hivemind_proto import HiveMessage, MessageType
from hivemind_proto.trio import SatelliteIdentity, open_hive
from hivemind_rooms.canonical import b64_decode, b64_encode
from hivemind_rooms.hive import (
    ANSWER,
    ATTESTATION,
    ROOM_TYPES,
    BridgeError,
    BridgeVerificationError,
    RoomBridgeClient,
)
from hivemind_rooms.links import RoomLink
from hivemind_rooms.vault import FAST_KDF

ROOT = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("hivemind_demo", ROOT / "tools" / "demo.py")
demo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(demo)

pytestmark = pytest.mark.slow
PASSWORD = "child-link-password-0123456789"


def _recorder(hub: Any, sink: list[str]) -> None:
    """Record every message a hub's router hands to its I/O (what sits in its memory)."""
    apply = hub.apply

    def recording(actions: list[Any]) -> None:
        for action in actions:
            message = getattr(action, "message", None)
            if isinstance(message, HiveMessage):
                sink.append(json.dumps(message.to_dict(), default=str))
            elif message is not None:
                sink.append(json.dumps(message, default=str))
        apply(actions)

    hub.apply = recording


def _tamperer(hub: Any) -> dict[str, Callable[[dict[str, Any]], None] | None]:
    """Make ``hub`` alter room answers from its parent with ``control["mutate"]`` (when set)."""
    control: dict[str, Callable[[dict[str, Any]], None] | None] = {"mutate": None}
    original = hub.from_upstream

    def tampering(message: HiveMessage) -> None:
        mutate = control["mutate"]
        inner = message.inner if message.msg_type is MessageType.QUERY else None
        payload = inner.payload if inner is not None else None
        if mutate and isinstance(payload, dict) and payload.get("type") == ANSWER:
            data = json.loads(json.dumps(payload["data"]))
            mutate(data)
            message = message.replace(payload=inner.replace(payload={**payload, "data": data}))
        original(message)

    hub.from_upstream = tampering
    return control


def _flip_sealed(data: dict[str, Any]) -> None:
    if "sealed_b64" in data:
        raw = bytearray(b64_decode(data["sealed_b64"]))
        raw[len(raw) // 2] ^= 0x01
        data["sealed_b64"] = b64_encode(bytes(raw))


def _swap_seal_key(data: dict[str, Any]) -> None:
    if "seal_statement" in data:
        data["seal_statement"]["body"]["seal_pubkey_b64"] = b64_encode(secrets.token_bytes(32))


def _satellite(hub: Any, allowed: list[str]) -> SatelliteIdentity:
    key, password = secrets.token_hex(16), secrets.token_urlsafe(18)
    hub.store.create(
        api_key=key, name="sat", password=password, allowed_types=allowed, can_escalate=True
    )
    return SatelliteIdentity(access_key=key, password=password, useragent="BridgeSat")


async def test_ask_through_two_hubs_sealed_end_to_end(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("HIVEMIND_RUNNER", await trio.to_thread.run_sync(demo.pick_runner))
    caplog.set_level(logging.DEBUG)
    for name in ("rooms", "parent", "child"):
        (tmp_path / name).mkdir()
    admin = secrets.token_urlsafe(24)
    seen: list[str] = []
    with trio.fail_after(280):
        async with demo.running_room_service(tmp_path / "rooms", admin, kdf=FAST_KDF) as base:
            import httpx

            async with httpx.AsyncClient(base_url=base, timeout=120) as http:
                sample = await demo.create_sample_room(http, admin)
            parent_cfg = demo.linked_hub_config(
                tmp_path / "rooms", tmp_path / "parent", base, "parent-hub"
            )
            async with demo.running_hub(tmp_path / "parent", parent_cfg) as parent:
                parent.hub.store.create(
                    api_key="child-key",
                    name="child",
                    password=PASSWORD,
                    allowed_types=list(ROOM_TYPES),
                    can_escalate=True,
                )
                child_cfg = demo.hub_config(
                    tmp_path / "child",
                    room_port=parent.port,
                    peer_key="child-key",
                    peer_password=PASSWORD,
                )
                async with demo.running_hub(tmp_path / "child", child_cfg) as child:
                    await demo.wait_for(lambda: parent.hub.router.upstream_peer, 60)
                    await demo.wait_for(lambda: child.hub.router.upstream_peer, 60)
                    _recorder(parent.hub, seen)
                    _recorder(child.hub, seen)
                    control = _tamperer(child.hub)
                    policy = demo.dev_policy(tmp_path / "rooms")
                    link = RoomLink.parse(sample["link"])
                    url = f"ws://127.0.0.1:{child.port}"
                    identity = _satellite(child.hub, list(ROOM_TYPES))
                    async with open_hive(url, identity) as sat:
                        bridge = RoomBridgeClient(sat, policy=policy, timeout=120)
                        room = await bridge.verify_room(link)
                        progress: list[str] = []
                        answer = await bridge.ask(
                            room,
                            demo.SAMPLE_QUESTION,
                            payer_key=sample["payer_key"],
                            on_progress=progress.append,
                        )
                        # A hub that alters a relayed sealed answer: refused, not believed.
                        control["mutate"] = _flip_sealed
                        with pytest.raises(BridgeVerificationError) as tampered:
                            await bridge.ask(room, "Who is in Lisbon? SQL: SELECT * FROM people",
                                             payer_key=sample["payer_key"])  # fmt: skip
                        # A hub that substitutes its own seal key.
                        control["mutate"] = _swap_seal_key
                        with pytest.raises(BridgeVerificationError) as swapped:
                            await bridge.verify_room(link)
                    limited = _satellite(child.hub, [ATTESTATION])
                    async with open_hive(url, limited) as sat:
                        bridge = RoomBridgeClient(sat, policy=policy, timeout=30)
                        control["mutate"] = None
                        with pytest.raises(BridgeError, match="policy denied"):
                            await bridge.verify_room(link)

    output = answer.output
    assert answer.status == "completed"
    assert "Lisbon" in output
    assert "example.org" not in output
    assert "Porto" not in output
    assert progress
    assert (
        answer.body["prompt_hash"]
        == __import__("hashlib").sha256(demo.SAMPLE_QUESTION.encode()).hexdigest()
    )
    assert tampered.value.stage == "sealed_reply"
    assert swapped.value.stage == "seal_key"

    secrets_in_clear = [demo.SAMPLE_QUESTION, "SELECT name, email", link.token, "| Ann |", "Lisbon"]
    assert seen, "the hubs relayed nothing"
    assert any(ANSWER in text for text in seen)
    memory = "\n".join(seen)
    logs = caplog.text
    assert "hivemind_hub" in logs  # the hubs logged at DEBUG while relaying
    for secret in secrets_in_clear:
        assert secret not in memory
        assert secret not in logs
        for hub_dir in (tmp_path / "parent", tmp_path / "child"):
            for path in hub_dir.rglob("*"):
                if path.is_file():
                    assert secret.encode() not in path.read_bytes(), path


async def test_sealed_query_agent_upload_through_a_hub(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An uploadable room: the participant's own query agent travels sealed and is attested."""
    monkeypatch.setenv("HIVEMIND_RUNNER", await trio.to_thread.run_sync(demo.pick_runner))
    for name in ("rooms", "hub"):
        (tmp_path / name).mkdir()
    admin = secrets.token_urlsafe(24)
    archive = demo._pack_module().pack_agent(ROOT / "agents" / "simple-query")
    question = "SELECT name, city FROM people"
    seen: list[str] = []
    with trio.fail_after(280):
        async with demo.running_room_service(tmp_path / "rooms", admin, kdf=FAST_KDF) as base:
            import httpx

            async with httpx.AsyncClient(base_url=base, timeout=120) as http:
                sample = await demo.create_sample_room(http, admin, uploadable=True)
            config = demo.linked_hub_config(tmp_path / "rooms", tmp_path / "hub", base, "hub")
            async with demo.running_hub(tmp_path / "hub", config) as hub:
                await demo.wait_for(lambda: hub.hub.router.upstream_peer, 60)
                _recorder(hub.hub, seen)
                identity = _satellite(hub.hub, list(ROOM_TYPES))
                async with open_hive(f"ws://127.0.0.1:{hub.port}", identity) as sat:
                    bridge = RoomBridgeClient(
                        sat, policy=demo.dev_policy(tmp_path / "rooms"), timeout=120
                    )
                    room = await bridge.verify_room(RoomLink.parse(sample["link"]))
                    answer = await bridge.ask(
                        room, question, payer_key=sample["payer_key"], agent_archive=archive
                    )
    assert answer.status == "completed"
    assert "| Ann | Lisbon |" in answer.output
    assert answer.body["agents"]["query"]["agent_id"] != sample["agents"]["query"]
    memory = "\n".join(seen)
    assert b64_encode(archive)[:64] not in memory
    assert question not in memory
    assert "Lisbon" not in memory

"""The room service's HiveMind endpoint, spoken to directly as a peer hub would.

The real service on 127.0.0.1 port 0; the peer side is ``open_hive`` with
Noise. Checks that the endpoint fails closed: unknown credentials and legacy
handshakes are refused, grants are per type and re-read per request, sealed
requests that were altered are refused, and a replayed sealed ask returns the
first run instead of starting another.
"""

from __future__ import annotations

import importlib.util
import os
import secrets
from pathlib import Path
from typing import Any

import httpx
import pytest
import trio
from hivemind_proto import MessageType, NoiseIdentity, StaticKeypair
from hivemind_proto.trio import (
    HiveRefused,
    HiveUnavailable,
    Reconnect,
    SatelliteIdentity,
    open_hive,
)
from hivemind_rooms.attestation import verify_service_attestation
from hivemind_rooms.canonical import b64_decode, b64_encode
from hivemind_rooms.hive import (
    ANSWER,
    ASK,
    ATTESTATION,
    ERROR,
    INSPECT,
    PeerStore,
    open_reply,
    request_message,
    seal_request,
    verify_seal_statement,
)
from hivemind_rooms.links import RoomLink
from hivemind_rooms.vault import FAST_KDF

ROOT = Path(__file__).resolve().parents[3]
_spec = importlib.util.spec_from_file_location("hivemind_demo", ROOT / "tools" / "demo.py")
demo = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(demo)


def _peer_identity(key: str, password: str, *, noise: bool = True) -> SatelliteIdentity:
    return SatelliteIdentity(
        access_key=key,
        password=password,
        useragent="PeerHub",
        noise=NoiseIdentity(StaticKeypair.generate(os.urandom)) if noise else None,
        require_noise=noise,
    )


async def _exchange(client: Any, msg_type: str, data: dict[str, Any]) -> tuple[str, dict]:
    qid = secrets.token_hex(8)
    await client.send(request_message(msg_type, data, qid))
    while True:
        msg = await client.receive(timeout=60)
        if msg.msg_type is MessageType.QUERY and msg.metadata.get("query_id") == qid:
            assert msg.metadata["is_response"] is True
            payload = msg.inner.payload
            if payload["type"] != "hivemind.room.progress":
                return payload["type"], payload["data"]


async def _attested(client: Any, base: str, data_dir: Path) -> bytes:
    nonce = secrets.token_bytes(16)
    kind, data = await _exchange(client, ATTESTATION, {"nonce": nonce.hex()})
    assert kind == ANSWER
    service = verify_service_attestation(
        data["bundle"]["attestation"], service_url=base, nonce=nonce,
        policy=demo.dev_policy(data_dir),
    )  # fmt: skip
    return verify_seal_statement(data["seal_statement"], service)


@pytest.mark.slow
async def test_endpoint_fails_closed_and_replays_return_the_first_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HIVEMIND_RUNNER", await trio.to_thread.run_sync(demo.pick_runner))
    admin = secrets.token_urlsafe(24)
    with trio.fail_after(240):
        async with demo.running_room_service(tmp_path, admin, kdf=FAST_KDF) as base:
            async with httpx.AsyncClient(base_url=base, timeout=120) as http:
                sample = await demo.create_sample_room(http, admin)
            link = RoomLink.parse(sample["link"])
            store = PeerStore(tmp_path)
            full = store.add("full")
            narrow = store.add("narrow", allowed_types=(ATTESTATION,))
            url = base.replace("http://", "ws://")
            once = Reconnect(initial=0.1, maximum=0.1, attempts=1)
            with pytest.raises(HiveRefused):
                async with open_hive(url, _peer_identity("unknown", "x" * 20), reconnect=once):
                    pass
            legacy = _peer_identity(full.access_key, full.password, noise=False)
            with pytest.raises((HiveRefused, HiveUnavailable)):
                async with open_hive(url, legacy, reconnect=once):
                    pass
            async with open_hive(url, _peer_identity(narrow.access_key, narrow.password)) as c:
                seal_key = await _attested(c, base, tmp_path)
                envelope, _ = seal_request(
                    seal_key,
                    op="inspect",
                    room_id=link.room_id,
                    nonce=secrets.token_hex(16),
                    body={"token": link.token},
                )
                assert await _exchange(c, INSPECT, envelope) == (
                    ERROR, {"nonce": envelope["nonce"], "error": "not allowed"}
                )  # fmt: skip
            async with open_hive(url, _peer_identity(full.access_key, full.password)) as c:
                seal_key = await _attested(c, base, tmp_path)
                nonce = secrets.token_hex(16)
                body = {"token": link.token, "payer_key": sample["payer_key"],
                        "query": demo.SAMPLE_QUESTION}  # fmt: skip
                envelope, reply = seal_request(
                    seal_key, op="ask", room_id=link.room_id, nonce=nonce, body=body
                )
                raw = bytearray(b64_decode(envelope["sealed_b64"]))
                raw[-1] ^= 1
                altered = {**envelope, "sealed_b64": b64_encode(bytes(raw))}
                assert (await _exchange(c, ASK, altered))[0] == ERROR
                assert (await _exchange(c, ASK, {**envelope, "room_id": "room_000000000000"}))[
                    0
                ] == ERROR
                first = await _exchange(c, ASK, envelope)
                replayed = await _exchange(c, ASK, envelope)
                runs = []
                for kind, data in (first, replayed):
                    assert kind == ANSWER
                    _, opened = open_reply(reply, data["sealed_b64"], op="ask",
                                           room_id=link.room_id, nonce=nonce)  # fmt: skip
                    runs.append(opened["run"])
                assert runs[0]["run_id"] == runs[1]["run_id"]
                assert runs[0]["status"] == "completed"
                store.remove("full")
                kind, data = await _exchange(c, ASK, envelope)
                assert (kind, data["error"]) == (ERROR, "not allowed")
            store.close()

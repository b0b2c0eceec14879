"""Profile S: the spec §10 weaknesses the hub fixes, each with a test that fails without the fix.

W1  access key alone is a credential (cleartext frames, RSA branch):
    test_cleartext_without_handshake_never_injected, test_rsa_pubkey_handshake_refused
W2  the literal key ``revoked`` logs in: test_revoked_tombstone_key_never_logs_in
W4  the hSub is never verified: test_wrong_password_closed_1008_without_envelope
W11 cleartext accepted after the handshake: test_cleartext_after_handshake_closes_1008
W13 JSON-Z85P offered though unusable: test_hub_never_offers_z85p
W17 INTERCOM never verified, decrypted INTERCOM dispatched on the outer type:
    test_intercom.py (forged, foreign-key and unsigned envelopes dropped, hub-addressed
    inner messages through the policy chain), test_e2e_intercom.py (released client)
W18 binary ACL bypass, stale grants on a DB error: test_store_error_denies_and_closes,
    test_routing.py::test_binary_denied_with_empty_whitelist
W19 grants need a reconnect, illegal BROADCAST only logged, can_broadcast ignored,
    utterances unrevocable: test_grant_change_by_another_process_applies_at_once,
    test_illegal_broadcast_disconnects, test_utterance_can_be_revoked,
    test_routing.py::test_illegal_wrapper_disconnects
W20 no per-credential cap, session collisions: test_connection_cap_per_credential,
    test_same_session_replaces_the_old_connection
W21 one node id everywhere, no loop prevention:
    test_hub_links.py::test_ring_of_links_does_not_amplify,
    test_serve.py::test_identity_is_stable_and_unique
W22 no handshake timeout, rate limit or frame cap, unbounded queues and caches:
    test_handshake_timeout, test_rate_limit, test_oversize_frame_closed_1009,
    test_slow_consumer_is_closed_1013, test_routing.py::test_flood_memory_is_bounded,
    PING amplification: test_routing.py::test_own_ping_answers_are_throttled_by_the_flood_interval
W23 bad credentials retried forever (no 1008): test_wrong_password_closed_1008_without_envelope
    and test_e2e_interop.py (the released client sees 1008)
W24 secrets and utterances in logs: test_e2e_interop.py (INFO log capture of a full run)
W25 SHA-1 self-signed certificates: test_tls_certificate_is_sha256_and_serves_wss
Pushed revocation (deleting or demoting a client closes its live connections):
    test_delete_closes_live_connection_at_once,
    test_delete_by_another_process_closes_on_next_message,
    test_demotion_closes_admin_connection
"""

from __future__ import annotations

import contextlib
import json
import os
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
import trio
import trio.lowlevel
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from hivemind_hub._tls import ensure_certificate
from hivemind_hub.store import SQLiteClientStore
from hivemind_proto import (
    CloseCode,
    Connection,
    HandshakeComplete,
    HiveMessage,
    MessageType,
    Role,
    SatelliteSettings,
    build_authorization,
    bus_message,
)
from hivemind_proto.trio import SatelliteIdentity, open_hive
from hivemind_proto.trio._client import _close_tcp
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

from .hubkit import PASSWORD, UTT, hub_config, running_hub, wait_for
from .test_serve import RecordingAgent

KEY = "hard0123456789abcdef0123456789ab"


def utterance(session: str = "s1") -> HiveMessage:
    ctx = {"session": {"session_id": session}}
    return HiveMessage(MessageType.BUS, bus_message(UTT, {"utterances": ["x"]}, ctx))


def identity(key: str = KEY, session: str = "s1", password: str = PASSWORD):
    return SatelliteIdentity(access_key=key, password=password, session_id=session)


@asynccontextmanager
async def raw_ws(port: int, key: str = KEY, **kwargs) -> AsyncIterator[WebSocketConnection]:
    url = f"ws://127.0.0.1:{port}/?authorization={build_authorization('raw', key)}"
    async with open_websocket_url(url, **kwargs) as ws:
        try:
            yield ws
        finally:
            await _close_tcp(ws)


async def handshake(ws: WebSocketConnection, session: str = "raw-s1") -> Connection:
    """Complete the password handshake by hand with the sans-IO satellite."""
    settings = SatelliteSettings(
        password=PASSWORD,
        hello={"pubkey": None, "session": {"session_id": session}, "site_id": "x"},
    )
    conn = Connection(Role.SATELLITE, settings, rng=os.urandom)
    done = False
    while not done:
        for event in conn.receive_frame(await ws.get_message()):
            done = done or isinstance(event, HandshakeComplete)
        for frame in conn.data_to_send():
            await ws.send_message(frame)
    return conn


async def drain(ws: WebSocketConnection) -> None:
    while True:
        await ws.get_message()


async def closed_code(ws: WebSocketConnection, seconds: float = 10) -> int | None:
    with trio.fail_after(seconds), pytest.raises(ConnectionClosed):
        await drain(ws)
    return ws.closed.code if ws.closed else None


@asynccontextmanager
async def hub(tmp_path: Path, agent=None, **overrides):
    agent = agent or RecordingAgent()
    config = hub_config(tmp_path, **overrides)
    with trio.fail_after(60):
        async with running_hub(tmp_path, config=config, agent=agent) as serving:
            serving.hub.store.create(
                api_key=KEY, name="one", password=PASSWORD, allowed_types=[UTT]
            )
            yield serving, agent


# -- W1, W11, W13, W2, W4 -------------------------------------------------------------


async def test_cleartext_without_handshake_never_injected(tmp_path) -> None:
    async with hub(tmp_path, limits={"handshake_timeout": 1.0}) as (serving, agent):
        async with raw_ws(serving.port) as ws:
            await ws.get_message()  # HELLO
            await ws.get_message()  # HANDSHAKE offer
            await ws.send_message(json.dumps(utterance("sneaky").to_dict()))
            code = await closed_code(ws)
        assert code == CloseCode.POLICY_VIOLATION
        assert agent.of_type(UTT) == []


async def test_rsa_pubkey_handshake_refused(tmp_path) -> None:
    async with hub(tmp_path) as (serving, _agent):
        async with raw_ws(serving.port) as ws:
            await ws.get_message()
            await ws.get_message()
            shake = {"msg_type": "shake", "payload": {"pubkey": "-----BEGIN PUBLIC KEY-----"}}
            await ws.send_message(json.dumps(shake))
            assert await closed_code(ws) == CloseCode.POLICY_VIOLATION
        assert serving.hub.live == {}


async def test_cleartext_after_handshake_closes_1008(tmp_path) -> None:
    async with hub(tmp_path) as (serving, agent), raw_ws(serving.port) as ws:
        await handshake(ws)
        await wait_for(lambda: serving.hub.live)
        await ws.send_message(json.dumps(utterance("raw-s1").to_dict()))
        assert await closed_code(ws) == CloseCode.POLICY_VIOLATION
        assert agent.of_type(UTT) == []


async def test_hub_never_offers_z85p(tmp_path) -> None:
    async with hub(tmp_path) as (serving, _), raw_ws(serving.port) as ws:
        hello = json.loads(await ws.get_message())
        offer = json.loads(await ws.get_message())
        assert hello["payload"]["node_id"] == serving.hub.identity.node_id
        assert "JSON-Z85P" not in offer["payload"]["encodings"]
        assert "JSON-B91" in offer["payload"]["encodings"]


async def test_revoked_tombstone_key_never_logs_in(tmp_path) -> None:
    async with hub(tmp_path) as (serving, _):
        store = serving.hub.store
        store.delete(store.get_by_access_key(KEY).client_id)
        for key in ("revoked", KEY):
            async with raw_ws(serving.port, key=key) as ws:
                assert await closed_code(ws) == CloseCode.POLICY_VIOLATION


async def test_wrong_password_closed_1008_without_envelope(tmp_path) -> None:
    async with hub(tmp_path) as (serving, _), raw_ws(serving.port) as ws:
        settings = SatelliteSettings(
            password="a-wrong-password", hello={"session": {"session_id": "w"}}
        )
        conn = Connection(Role.SATELLITE, settings, rng=os.urandom)
        replies: list = []

        async def converse() -> None:
            while True:
                frame = await ws.get_message()
                replies.append(frame)
                conn.receive_frame(frame)
                for out in conn.data_to_send():
                    await ws.send_message(out)

        with pytest.raises(ConnectionClosed), trio.fail_after(10):
            await converse()
        assert ws.closed.code == CloseCode.POLICY_VIOLATION
        # HELLO and the offer only: the hub never answered with its envelope.
        assert len(replies) == 2
        assert all('"envelope"' not in r for r in replies)


# -- W18, W19 -------------------------------------------------------------------------


async def test_grant_change_by_another_process_applies_at_once(tmp_path) -> None:
    async with hub(tmp_path) as (serving, agent):
        other = SQLiteClientStore(tmp_path / "clients.db")  # as the CLI would
        try:
            async with open_hive(f"ws://127.0.0.1:{serving.port}", identity()) as sat:
                custom = HiveMessage(MessageType.BUS, bus_message("custom.type", {}, {}))
                await sat.send(custom)
                denied = await sat.receive(timeout=5)
                assert denied.payload["type"] == "hive.policy.denied"
                client = other.get_by_access_key(KEY)
                other.update(client.client_id, allowed_types=[UTT, "custom.type"])
                await sat.send(custom)
                await wait_for(lambda: agent.of_type("custom.type"))
        finally:
            other.close()


async def test_utterance_can_be_revoked(tmp_path) -> None:
    async with hub(tmp_path) as (serving, agent):
        store = serving.hub.store
        store.update(store.get_by_access_key(KEY).client_id, allowed_types=["other"])
        async with open_hive(f"ws://127.0.0.1:{serving.port}", identity()) as sat:
            await sat.send(utterance())
            denied = await sat.receive(timeout=5)
            assert denied.payload["data"]["denied_type"] == UTT
        assert agent.of_type(UTT) == []


async def test_illegal_broadcast_disconnects(tmp_path) -> None:
    async with (
        hub(tmp_path) as (serving, _),
        open_hive(f"ws://127.0.0.1:{serving.port}", identity()) as sat,
    ):
        await wait_for(lambda: serving.hub.live)
        await sat.send(HiveMessage(MessageType.BROADCAST, utterance()))
        await wait_for(lambda: not serving.hub.live)
        channel = sat.channel
        await wait_for(lambda: channel.closed.is_set())
        assert channel.close_code == CloseCode.POLICY_VIOLATION


async def test_store_error_denies_and_closes(tmp_path) -> None:
    async with (
        hub(tmp_path) as (serving, _),
        open_hive(f"ws://127.0.0.1:{serving.port}", identity()) as sat,
    ):
        await wait_for(lambda: serving.hub.live)
        serving.hub.store.close()  # every lookup now fails
        await sat.send(utterance())
        await wait_for(lambda: not serving.hub.live)
        channel = sat.channel
        await wait_for(lambda: channel.closed.is_set())
        assert channel.close_code == CloseCode.POLICY_VIOLATION


# -- W20 ------------------------------------------------------------------------------


async def test_connection_cap_per_credential(tmp_path) -> None:
    async with hub(tmp_path, limits={"max_connections_per_credential": 2}) as (serving, _):
        url = f"ws://127.0.0.1:{serving.port}"
        async with open_hive(url, identity(session="a")), open_hive(url, identity(session="b")):
            await wait_for(lambda: len(serving.hub.live) == 2)
            async with raw_ws(serving.port) as ws:
                await handshake(ws, session="c")
                assert await closed_code(ws) == CloseCode.TRY_AGAIN_LATER
            assert len(serving.hub.live) == 2


async def test_same_session_replaces_the_old_connection(tmp_path) -> None:
    async with hub(tmp_path) as (serving, _), raw_ws(serving.port) as first:
        await handshake(first, session="dup")
        await wait_for(lambda: serving.hub.live)
        async with raw_ws(serving.port) as second:
            await handshake(second, session="dup")
            assert await closed_code(first) == CloseCode.NORMAL
            assert len(serving.hub.live) == 1


# -- revocation -----------------------------------------------------------------------


async def test_delete_closes_live_connection_at_once(tmp_path) -> None:
    async with hub(tmp_path) as (serving, _), raw_ws(serving.port) as ws:
        await handshake(ws)
        await wait_for(lambda: serving.hub.live)
        store = serving.hub.store
        store.delete(store.get_by_access_key(KEY).client_id)
        assert await closed_code(ws, 5) == CloseCode.POLICY_VIOLATION


async def test_delete_by_another_process_closes_on_next_message(tmp_path) -> None:
    async with hub(tmp_path) as (serving, agent):
        other = SQLiteClientStore(tmp_path / "clients.db")
        try:
            async with raw_ws(serving.port) as ws:
                conn = await handshake(ws)
                await wait_for(lambda: serving.hub.live)
                other.delete(other.get_by_access_key(KEY).client_id)
                conn.send(utterance("raw-s1"))
                for frame in conn.data_to_send():
                    await ws.send_message(frame)
                assert await closed_code(ws) == CloseCode.POLICY_VIOLATION
            assert agent.of_type(UTT) == []
        finally:
            other.close()


async def test_demotion_closes_admin_connection(tmp_path) -> None:
    async with hub(tmp_path) as (serving, _):
        store = serving.hub.store
        cid = store.get_by_access_key(KEY).client_id
        store.update(cid, is_admin=True)
        async with raw_ws(serving.port) as ws:
            await handshake(ws)
            await wait_for(lambda: serving.hub.live)
            store.update(cid, is_admin=False)
            assert await closed_code(ws, 5) == CloseCode.POLICY_VIOLATION


# -- W22 ------------------------------------------------------------------------------


async def test_handshake_timeout(tmp_path) -> None:
    async with (
        hub(tmp_path, limits={"handshake_timeout": 0.5}) as (serving, _),
        raw_ws(serving.port) as ws,
    ):
        start = trio.current_time()
        assert await closed_code(ws) == CloseCode.POLICY_VIOLATION
        assert trio.current_time() - start < 5


async def test_rate_limit(tmp_path) -> None:
    limits = {"rate_limit_messages_per_second": 5.0, "rate_limit_burst": 5}
    async with hub(tmp_path, limits=limits) as (serving, agent), raw_ws(serving.port) as ws:
        conn = await handshake(ws)
        with contextlib.suppress(ConnectionClosed):  # the hub may close mid-burst
            for _ in range(40):
                conn.send(utterance("raw-s1"))
                for frame in conn.data_to_send():
                    await ws.send_message(frame)
        assert await closed_code(ws) == CloseCode.POLICY_VIOLATION
        assert len(agent.of_type(UTT)) <= 6


async def test_oversize_frame_closed_1009(tmp_path) -> None:
    async with (
        hub(tmp_path, limits={"max_frame_bytes": 4096}) as (serving, _),
        raw_ws(serving.port) as ws,
    ):
        await handshake(ws)
        await ws.send_message("x" * 10_000)
        assert await closed_code(ws) == CloseCode.MESSAGE_TOO_BIG


async def test_slow_consumer_is_closed_1013(tmp_path) -> None:
    agent = RecordingAgent()
    # message_queue_size=1: once we stop reading, TCP pushes back on the hub.
    async with (
        hub(tmp_path, agent=agent, limits={"outbound_queue_size": 4}) as (serving, _),
        raw_ws(serving.port, message_queue_size=1) as ws,
    ):
        await handshake(ws)
        await wait_for(lambda: serving.hub.live)
        [live] = serving.hub.live.values()
        channel = live.link
        big = "y" * 65_536
        for i in range(400):
            if channel.closed.is_set() or channel.close_code is not None:
                break
            agent.host.deliver(
                bus_message("speak", {"i": i, "pad": big}, {"destination": live.peer})
            )
            await trio.lowlevel.checkpoint()
        await wait_for(lambda: channel.close_code is not None, 20)
        assert channel.close_code == CloseCode.TRY_AGAIN_LATER


# -- W25 ------------------------------------------------------------------------------


async def test_tls_certificate_is_sha256_and_serves_wss(tmp_path) -> None:
    cert_dir = tmp_path / "certs"
    cert_path, key_path = ensure_certificate(cert_dir, "hub")
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)
    assert key_path.stat().st_mode & 0o077 == 0
    ws_cfg = {
        "hivemind-websocket-plugin": {
            "host": "127.0.0.1",
            "port": 0,
            "ssl": True,
            "cert_dir": str(cert_dir),
            "cert_name": "hub",
        }
    }
    async with hub(tmp_path, network_protocol=ws_cfg) as (serving, agent):
        context = ssl.create_default_context(cafile=str(cert_path))
        context.check_hostname = False
        async with open_hive(
            f"wss://127.0.0.1:{serving.port}", identity(), ssl_context=context
        ) as sat:
            await sat.send(utterance())
            await wait_for(lambda: agent.of_type(UTT))

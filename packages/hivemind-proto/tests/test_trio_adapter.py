"""The trio adapter over real websockets on loopback: both roles, both profiles."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import trio
from hivemind_proto import (
    Authorization,
    BinaryType,
    CloseCode,
    HiveMessage,
    HubSettings,
    MessageReceived,
    MessageType,
    NoiseIdentity,
    Profile,
    StaticKeypair,
    bus_message,
)
from hivemind_proto.trio import (
    ChannelLimits,
    HiveChannel,
    HiveRefused,
    Reconnect,
    SatelliteIdentity,
    ServerLimits,
    open_hive,
    serve_hive,
)
from hivemind_proto.trio._client import _close_tcp
from trio_websocket import ConnectionClosed, WebSocketConnection, open_websocket_url

PASSWORD = "correct horse battery staple"
ACCESS_KEY = "0123456789abcdef0123456789abcdef"
HUB_NOISE = StaticKeypair.generate(os.urandom)
FAST_PSK = b"\x07" * 32


def hub_settings(noise: bool = False) -> HubSettings:
    return HubSettings(
        hello={"pubkey": None, "peer": "test::1", "node_id": "hub-under-test"},
        password=PASSWORD,
        noise=NoiseIdentity(HUB_NOISE, psk=FAST_PSK) if noise else None,
    )


async def authenticate_known(auth: Authorization) -> HubSettings | None:
    return hub_settings(noise=True) if auth.access_key == ACCESS_KEY else None


async def echo_handler(channel: HiveChannel, auth: Authorization) -> None:
    """Echo every message back, as the conformance testee contract asks."""
    while True:
        event = await channel.receive_event()
        if isinstance(event, MessageReceived):
            await channel.send(event.message)


async def start_hub(nursery: trio.Nursery, **kwargs: object) -> str:
    port = await nursery.start(
        lambda task_status: serve_hive(
            authenticate_known,
            echo_handler,
            "127.0.0.1",
            0,
            rng=os.urandom,
            task_status=task_status,
            **kwargs,
        )
    )
    return f"ws://127.0.0.1:{port}"


def identity(noise: bool = False, password: str = PASSWORD) -> SatelliteIdentity:
    return SatelliteIdentity(
        access_key=ACCESS_KEY,
        password=password,
        site_id="kitchen",
        noise=NoiseIdentity(StaticKeypair.generate(os.urandom), psk=FAST_PSK) if noise else None,
        require_noise=noise,
    )


@asynccontextmanager
async def raw_websocket(url: str) -> AsyncIterator[WebSocketConnection]:
    """A bare websocket client; the server may close first (see ``_close_tcp``)."""
    async with open_websocket_url(url) as ws:
        try:
            yield ws
        finally:
            await _close_tcp(ws)


UTTERANCE = HiveMessage(
    MessageType.BUS, bus_message("recognizer_loop:utterance", {"utterances": ["hi"]})
)


@pytest.mark.parametrize("noise", [False, True], ids=["legacy", "noise"])
async def test_satellite_round_trip(noise: bool) -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            url = await start_hub(nursery)
            async with open_hive(url, identity(noise)) as client:
                assert client.handshake is not None
                expected = Profile.NOISE if noise else Profile.LEGACY_PASSWORD
                assert client.handshake.profile is expected
                assert client.hub_hello["node_id"] == "hub-under-test"
                await client.send(UTTERANCE)
                echoed = await client.receive(timeout=5)
                assert echoed == UTTERANCE
                big = HiveMessage(MessageType.BINARY, os.urandom(300_000), bin_type=BinaryType.FILE)
                await client.send(big)
                assert (await client.receive(timeout=5)).payload == big.payload
            nursery.cancel_scope.cancel()


async def test_wrong_password_is_refused_with_1008() -> None:
    with trio.fail_after(20):
        async with trio.open_nursery() as nursery:
            url = await start_hub(nursery)
            with pytest.raises(HiveRefused):
                async with open_hive(url, identity(password="wrong password")):
                    pytest.fail("a wrong password must not produce a connection")
            nursery.cancel_scope.cancel()


async def test_unknown_access_key_closed_1008_without_hello() -> None:
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            url = await start_hub(nursery)
            from hivemind_proto import build_authorization

            target = f"{url}/?authorization={build_authorization('ua', 'not-a-client')}"
            async with raw_websocket(target) as ws:
                with pytest.raises(ConnectionClosed):
                    await ws.get_message()
            assert ws.closed is not None
            assert ws.closed.code == CloseCode.POLICY_VIOLATION
            nursery.cancel_scope.cancel()


async def test_handshake_timeout_closes_silent_client() -> None:
    limits = ServerLimits(channel=ChannelLimits(handshake_timeout=0.5))
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            url = await start_hub(nursery, limits=limits)
            from hivemind_proto import build_authorization

            target = f"{url}/?authorization={build_authorization('ua', ACCESS_KEY)}"
            async with raw_websocket(target) as ws:
                frames = [await ws.get_message(), await ws.get_message()]
                assert '"msg_type": "hello"' in frames[0]
                assert '"msg_type": "shake"' in frames[1]
                with pytest.raises(ConnectionClosed):
                    await ws.get_message()
            assert ws.closed is not None
            assert ws.closed.code == CloseCode.POLICY_VIOLATION
            nursery.cancel_scope.cancel()


async def test_client_reconnects_after_link_loss() -> None:
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            url = await start_hub(nursery)
            async with open_hive(url, identity(), reconnect=Reconnect(initial=0.05)) as client:
                first = client.channel
                assert first is not None
                await first.aclose(CloseCode.GOING_AWAY, "test drop")
                await client.send(UTTERANCE, timeout=10)
                assert await client.receive(timeout=5) == UTTERANCE
                assert client.reconnects == 1
                assert client.channel is not first
            nursery.cancel_scope.cancel()


FLOOD = 150


async def flooding_handler(channel: HiveChannel, auth: Authorization) -> None:
    """On ``test.flood`` push numbered messages every 2 ms, as agents do (``send_nowait``)."""
    while True:
        event = await channel.receive_event()
        if isinstance(event, MessageReceived) and event.message.payload.get("type") == "test.flood":
            for n in range(FLOOD):
                assert channel.send_nowait(
                    HiveMessage(MessageType.BUS, bus_message("test.flooded", {"n": n}))
                )
                await trio.sleep(0.002)
        elif isinstance(event, MessageReceived):
            await channel.send(event.message)


async def test_rekey_while_the_hub_is_sending_loses_nothing() -> None:
    """A hub message sealed while the re-handshake runs in a worker thread must use the new key.

    Without the hold, messages the agent queued during the PBKDF2 step left
    after the HANDSHAKE response but sealed with the old key, and the
    satellite closed the connection on the first one (DecryptionError).
    """
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(
                lambda task_status: serve_hive(
                    authenticate_known,
                    flooding_handler,
                    "127.0.0.1",
                    0,
                    rng=os.urandom,
                    task_status=task_status,
                )
            )
            async with open_hive(f"ws://127.0.0.1:{port}", identity()) as client:
                await client.send(HiveMessage(MessageType.BUS, bus_message("test.flood", {})))
                first = await client.receive(timeout=5)
                await client.rekey()
                await client.send(UTTERANCE)  # held until the new key exists
                seen = [first.payload["data"]["n"]]
                echoed = False
                while len(seen) < FLOOD or not echoed:
                    message = await client.receive(timeout=5)
                    if message == UTTERANCE:
                        echoed = True
                    else:
                        seen.append(message.payload["data"]["n"])
                assert seen == list(range(FLOOD))
                assert client.reconnects == 0
                assert client.channel is not None
                assert client.channel.handshake is not None
                assert client.channel.handshake.rekey
            nursery.cancel_scope.cancel()

"""The hub's own websocket server side: in memory against wsproto, and serve_hive on loopback."""

from __future__ import annotations

import os

import pytest
import trio
import trio.testing
from hivemind_proto import (
    Authorization,
    CloseCode,
    HiveMessage,
    HubSettings,
    MessageType,
    build_authorization,
    bus_message,
)
from hivemind_proto.trio import (
    HiveChannel,
    SatelliteIdentity,
    ServerLimits,
    open_hive,
    serve_hive,
)
from hivemind_proto.trio._transport import TransportClosed
from hivemind_proto.trio._wsserver import StreamWebSocket, read_upgrade
from trio_websocket import open_websocket_url
from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Ping,
    Pong,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)

ACCESS_KEY = "0123456789abcdef0123456789abcdef"
TARGET = f"/?authorization={build_authorization('ua', ACCESS_KEY)}"
UTTERANCE = HiveMessage(MessageType.BUS, bus_message("recognizer_loop:utterance", {}))


async def upgraded(max_bytes: int = 1024) -> tuple[StreamWebSocket, trio.abc.Stream, WSConnection]:
    """A server websocket over an in-memory stream, and the wsproto client driving it."""
    server_stream, client_stream = trio.testing.memory_stream_pair()
    client = WSConnection(ConnectionType.CLIENT)
    await client_stream.send_all(client.send(Request(host="hub", target=TARGET)))
    upgrade = await read_upgrade(server_stream)
    assert upgrade is not None
    assert upgrade.target == TARGET
    ws = await upgrade.accept(max_bytes)
    client.receive_data(await client_stream.receive_some(65536))
    assert any(isinstance(e, AcceptConnection) for e in client.events())
    return ws, client_stream, client


async def client_events(stream: trio.abc.Stream, client: WSConnection) -> list[object]:
    client.receive_data(await stream.receive_some(65536))
    return list(client.events())


async def test_fragmented_messages_are_assembled_and_pings_answered() -> None:
    with trio.fail_after(5):
        ws, stream, client = await upgraded()
        data = client.send(TextMessage(data="hel", message_finished=False))
        data += client.send(Ping(payload=b"p1"))
        data += client.send(TextMessage(data="lo", message_finished=True))
        data += client.send(BytesMessage(data=b"\x01\x02"))
        await stream.send_all(data)
        assert await ws.receive() == "hello"
        assert await ws.receive() == b"\x01\x02"
        [pong] = await client_events(stream, client)
        assert isinstance(pong, Pong)
        assert pong.payload == b"p1"


async def test_message_over_the_cap_closes_1009() -> None:
    with trio.fail_after(5):
        ws, stream, client = await upgraded(max_bytes=100)
        data = client.send(BytesMessage(data=b"x" * 60, message_finished=False))
        data += client.send(BytesMessage(data=b"x" * 60, message_finished=True))
        await stream.send_all(data)
        with pytest.raises(TransportClosed) as caught:
            await ws.receive()
        assert caught.value.code == CloseCode.MESSAGE_TOO_BIG
        [close] = await client_events(stream, client)
        assert isinstance(close, CloseConnection)
        assert close.code == CloseCode.MESSAGE_TOO_BIG


async def test_peer_close_is_answered_and_reported() -> None:
    with trio.fail_after(5):
        ws, stream, client = await upgraded()
        await stream.send_all(client.send(CloseConnection(code=4000, reason="bye")))
        with pytest.raises(TransportClosed) as caught:
            await ws.receive()
        assert (caught.value.code, caught.value.reason) == (4000, "bye")
        [reply] = await client_events(stream, client)
        assert isinstance(reply, CloseConnection)
        assert reply.code == 4000
        with pytest.raises(TransportClosed):
            await ws.send("too late")


async def test_aclose_waits_for_the_peer_while_another_task_reads() -> None:
    with trio.fail_after(5):
        ws, stream, client = await upgraded()
        seen: list[int | None] = []

        async def reader() -> None:
            with pytest.raises(TransportClosed) as caught:
                await ws.receive()
            seen.append(caught.value.code)

        async def peer() -> None:
            [close] = await client_events(stream, client)
            assert isinstance(close, CloseConnection)
            await stream.send_all(client.send(close.response()))

        async with trio.open_nursery() as nursery:
            nursery.start_soon(reader)
            await trio.testing.wait_all_tasks_blocked()
            nursery.start_soon(peer)
            await ws.aclose(CloseCode.POLICY_VIOLATION, "revoked")
        assert seen == [CloseCode.POLICY_VIOLATION]


async def test_eof_is_an_abnormal_close() -> None:
    with trio.fail_after(5):
        ws, stream, _ = await upgraded()
        await stream.aclose()
        with pytest.raises(TransportClosed) as caught:
            await ws.receive()
        assert caught.value.code == 1006


async def test_bad_upgrade_request_gets_an_http_error() -> None:
    with trio.fail_after(5):
        server_stream, client_stream = trio.testing.memory_stream_pair()
        await client_stream.send_all(b"GET / HTTP/1.1\r\nHost: hub\r\n\r\n")
        assert await read_upgrade(server_stream) is None
        answer = await client_stream.receive_some(65536)
        assert answer.startswith(b"HTTP/1.1 400")


def settings() -> HubSettings:
    return HubSettings(hello={"pubkey": None, "node_id": "hub"}, password="pw")


async def parked(channel: HiveChannel, auth: Authorization) -> None:
    while True:  # never reached here: no satellite completes the handshake
        await channel.receive_event()


async def test_serve_hive_refuses_beyond_max_connections_with_503() -> None:
    async def authenticate(auth: Authorization) -> HubSettings | None:
        return settings()

    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            port = await nursery.start(
                lambda task_status: serve_hive(
                    authenticate,
                    parked,
                    "127.0.0.1",
                    0,
                    rng=os.urandom,
                    limits=ServerLimits(max_connections=1),
                    task_status=task_status,
                )
            )
            url = f"ws://127.0.0.1:{port}{TARGET}"
            async with open_websocket_url(url) as first:
                assert '"msg_type": "hello"' in await first.get_message()
                async with await trio.open_tcp_stream("127.0.0.1", port) as second:
                    client = WSConnection(ConnectionType.CLIENT)
                    await second.send_all(client.send(Request(host="hub", target=TARGET)))
                    events = await client_events(second, client)
                    for _ in range(10):  # the answer may come in several reads
                        if any(isinstance(e, RejectData) and e.body_finished for e in events):
                            break
                        events += await client_events(second, client)
                [rejected, *body] = events
                assert isinstance(rejected, RejectConnection)
                assert rejected.status_code == 503
                assert b"".join(e.data for e in body if isinstance(e, RejectData)) == (
                    b"hub at capacity"
                )
                await first.ping(b"still there")  # answered by the hub's reader
                await first.aclose(CloseCode.NORMAL)
            assert first.closed is not None
            assert first.closed.code == CloseCode.NORMAL
            nursery.cancel_scope.cancel()


def _descendants(task: trio.lowlevel.Task) -> int:
    return sum(
        1 + _descendants(child) for nursery in task.child_nurseries for child in nursery.child_tasks
    )


async def test_an_idle_satellite_costs_the_hub_one_task() -> None:
    """No reader, writer or channel task stays behind once a session is idle."""
    ready: list[HiveChannel] = []

    async def authenticate(auth: Authorization) -> HubSettings | None:
        return settings()

    async def idle(channel: HiveChannel, auth: Authorization) -> None:
        ready.append(channel)
        while True:
            await channel.receive_event()

    identity = SatelliteIdentity(access_key=ACCESS_KEY, password="pw", site_id="s")
    with trio.fail_after(20):
        async with trio.open_nursery() as server:
            port = await server.start(
                lambda task_status: serve_hive(
                    authenticate, idle, "127.0.0.1", 0, rng=os.urandom, task_status=task_status
                )
            )
            [hub_task] = server.child_tasks
            await trio.testing.wait_all_tasks_blocked()
            before = _descendants(hub_task)
            async with (
                open_hive(f"ws://127.0.0.1:{port}", identity) as first,
                open_hive(f"ws://127.0.0.1:{port}", identity) as second,
            ):
                await first.send(UTTERANCE)
                await second.send(UTTERANCE)
                for _ in range(100):  # the hub sees both sessions (bounded wait)
                    if len(ready) == 2:
                        break
                    await trio.sleep(0.01)
                await trio.testing.wait_all_tasks_blocked()
                assert len(ready) == 2
                assert _descendants(hub_task) == before + 2
            server.cancel_scope.cancel()

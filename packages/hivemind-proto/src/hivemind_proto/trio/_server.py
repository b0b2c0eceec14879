"""Hub side of the trio adapter: accept websocket upgrades and run channels.

``serve_hive`` listens with trio-websocket. For every upgrade request it parses
the ``?authorization=`` credential, asks the owner's ``authenticate`` callback
for the connection's ``HubSettings`` (None means unknown client: the request
is rejected before any HELLO is sent), runs a ``HiveChannel`` and hands the
ready channel to the owner's ``handler``. Sessions are bounded: at most
``max_connections`` at once, each with its own limits.
"""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import final

import trio
from trio_websocket import WebSocketRequest, serve_websocket

from .._auth import Authorization, authorization_from_target
from .._connection import Connection
from .._errors import CloseCode, RemoteProtocolError
from .._noise import derive_psk
from .._settings import HubSettings
from .._state import Role
from ._channel import ChannelClosed, ChannelLimits, HiveChannel
from ._transport import FrameTransport, TrioWebSocketTransport

log = logging.getLogger("hivemind_proto.trio.server")

Authenticate = Callable[[Authorization], Awaitable[HubSettings | None]]
Handler = Callable[[HiveChannel, Authorization], Awaitable[None]]


@final
@dataclass(frozen=True, slots=True)
class ServerLimits:
    """Bounds on a listening hub.

    Args:
        max_connections: concurrent websocket sessions.
        max_message_bytes: largest websocket message the library assembles.
        channel: per-connection limits.
    """

    max_connections: int = 20_000
    max_message_bytes: int = 10 * 1024 * 1024
    channel: ChannelLimits = field(default_factory=ChannelLimits)


async def run_hub_session(
    transport: FrameTransport,
    settings: HubSettings,
    authorization: Authorization,
    handler: Handler,
    *,
    rng: Callable[[int], bytes],
    limits: ChannelLimits,
    psk_deriver: Callable[[str, str], bytes] = derive_psk,
) -> HiveChannel:
    """Run one hub-side session over an accepted transport until it closes.

    ``psk_deriver`` computes a Noise PSK the settings do not hold; it runs in
    a worker thread behind ``HANDSHAKE_THREADS`` (a hub passes a cache here).
    """
    conn = Connection(Role.HUB, settings, rng=rng, psk_deriver=psk_deriver)
    channel = HiveChannel(conn, transport, limits)
    async with trio.open_nursery() as nursery:
        try:
            await channel.open(nursery)
        except ChannelClosed:
            return channel
        try:
            with contextlib.suppress(ChannelClosed):
                await handler(channel, authorization)
        finally:
            await channel.aclose(channel.close_code or CloseCode.NORMAL)
            channel.end()
            nursery.cancel_scope.cancel()
    return channel


async def serve_hive(
    authenticate: Authenticate,
    handler: Handler,
    host: str,
    port: int,
    *,
    rng: Callable[[int], bytes],
    ssl_context: ssl.SSLContext | None = None,
    limits: ServerLimits | None = None,
    psk_deriver: Callable[[str, str], bytes] = derive_psk,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the hive protocol; reports the bound port when listening.

    ``psk_deriver`` is passed to every session (see ``run_hub_session``).
    """
    limits = limits or ServerLimits()
    slots = trio.Semaphore(limits.max_connections)

    async def on_request(request: WebSocketRequest) -> None:
        try:
            slots.acquire_nowait()
        except trio.WouldBlock:
            await request.reject(503, body=b"hub at capacity")
            return
        try:
            await _accept(request, authenticate, handler, rng, limits, psk_deriver)
        finally:
            slots.release()

    async with trio.open_nursery() as nursery:
        server = await nursery.start(
            lambda task_status: serve_websocket(
                on_request,
                host,
                port,
                ssl_context,
                handler_nursery=nursery,
                max_message_size=limits.max_message_bytes,
                task_status=task_status,
            )
        )
        task_status.started(server.port)


async def _accept(
    request: WebSocketRequest,
    authenticate: Authenticate,
    handler: Handler,
    rng: Callable[[int], bytes],
    limits: ServerLimits,
    psk_deriver: Callable[[str, str], bytes],
) -> None:
    try:
        authorization = authorization_from_target(request.path)
    except RemoteProtocolError:
        await _refuse(request, "invalid authorization")
        return
    settings = await authenticate(authorization)
    if settings is None:
        await _refuse(request, "invalid access key")
        return
    ws = await request.accept()
    transport = TrioWebSocketTransport(ws)
    await run_hub_session(
        transport,
        settings,
        authorization,
        handler,
        rng=rng,
        limits=limits.channel,
        psk_deriver=psk_deriver,
    )


async def _refuse(request: WebSocketRequest, reason: str) -> None:
    """Accept only to close with 1008, so the client learns why it was refused.

    Our satellites treat 1008 as final; released 0.4.x clients still reconnect,
    with a growing delay.
    """
    ws = await request.accept()
    with trio.move_on_after(5):
        await ws.aclose(CloseCode.POLICY_VIOLATION, reason)

"""Hub side of the trio adapter: accept websocket upgrades and run channels.

``serve_hive`` listens on trio TCP (or TLS) listeners and speaks the websocket
protocol itself (``_wsserver``: one task per connection, no reader task, so
an idle satellite costs little). For every upgrade request it parses
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
from typing import Any, final

import trio

from .._auth import Authorization, authorization_from_target
from .._connection import Connection
from .._errors import CloseCode, RemoteProtocolError
from .._noise import derive_psk
from .._settings import HubSettings
from .._state import Role
from ._channel import ChannelClosed, ChannelLimits, HiveChannel
from ._transport import FrameTransport
from ._wsserver import UPGRADE_TIMEOUT, Upgrade, read_upgrade

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
    nursery: trio.Nursery | None = None,
) -> HiveChannel:
    """Run one hub-side session over an accepted transport until it closes.

    The handshake and the ``handler`` run in the calling task; the channel's
    writer runs in ``nursery`` (one that outlives the session, such as the
    server's; by default one opened for this session).

    ``psk_deriver`` computes a Noise PSK the settings do not hold; it runs in
    a worker thread behind ``HANDSHAKE_THREADS`` (a hub passes a cache here).
    """
    conn = Connection(Role.HUB, settings, rng=rng, psk_deriver=psk_deriver)
    channel = HiveChannel(conn, transport, limits)
    if nursery is not None:
        await _session(channel, authorization, handler, nursery)
        return channel
    async with trio.open_nursery() as own:
        await _session(channel, authorization, handler, own)
        own.cancel_scope.cancel()
    return channel


async def _session(
    channel: HiveChannel, authorization: Authorization, handler: Handler, nursery: trio.Nursery
) -> None:
    try:
        await channel.open(nursery)
    except ChannelClosed:
        return
    try:
        with contextlib.suppress(ChannelClosed):
            await handler(channel, authorization)
    finally:
        try:
            await channel.aclose(channel.close_code or CloseCode.NORMAL)
        finally:
            channel.end()


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

    async def on_stream(stream: trio.abc.Stream) -> None:
        upgrade = None
        try:
            with trio.move_on_after(UPGRADE_TIMEOUT):
                upgrade = await read_upgrade(stream)
            if upgrade is None:
                return
            try:
                slots.acquire_nowait()
            except trio.WouldBlock:
                await upgrade.reject(503, b"hub at capacity")
                return
            try:
                # the session runs right here, one task per connection, so that
                # an idle satellite holds as few coroutine frames as possible
                opened = await _accept(upgrade, authenticate, rng, limits, psk_deriver)
                if opened is not None:
                    await _session(*opened, handler, writers)
            finally:
                slots.release()
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        finally:
            await trio.aclose_forcefully(stream)

    listeners: list[trio.SocketListener] = await trio.open_tcp_listeners(port, host=host)
    served: list[trio.abc.Listener[Any]] = list(listeners)
    if ssl_context is not None:
        served = [trio.SSLListener(lst, ssl_context, https_compatible=True) for lst in listeners]
    async with trio.open_nursery() as writers:
        await writers.start(trio.serve_listeners, on_stream, served)
        task_status.started(listeners[0].socket.getsockname()[1])


async def _accept(
    upgrade: Upgrade,
    authenticate: Authenticate,
    rng: Callable[[int], bytes],
    limits: ServerLimits,
    psk_deriver: Callable[[str, str], bytes],
) -> tuple[HiveChannel, Authorization] | None:
    """Accept a known client's upgrade and build its channel; None when refused."""
    try:
        authorization = authorization_from_target(upgrade.target)
    except RemoteProtocolError:
        await _refuse(upgrade, "invalid authorization", limits.max_message_bytes)
        return None
    settings = await authenticate(authorization)
    if settings is None:
        await _refuse(upgrade, "invalid access key", limits.max_message_bytes)
        return None
    transport = await upgrade.accept(limits.max_message_bytes)
    conn = Connection(Role.HUB, settings, rng=rng, psk_deriver=psk_deriver)
    return HiveChannel(conn, transport, limits.channel), authorization


async def _refuse(upgrade: Upgrade, reason: str, max_message_bytes: int) -> None:
    """Accept only to close with 1008, so the client learns why it was refused.

    Our satellites treat 1008 as final; released 0.4.x clients still reconnect,
    with a growing delay.
    """
    ws = await upgrade.accept(max_message_bytes)
    await ws.aclose(CloseCode.POLICY_VIOLATION, reason)

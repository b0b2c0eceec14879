"""Satellite side of the trio adapter: ``open_hive``.

Theory of operation: ``open_hive`` connects, completes the handshake and
yields a ``HiveClient`` once the connection is ready. A supervisor task keeps
it that way: when the link drops it reconnects with exponential backoff
(bounded attempts), re-handshaking from scratch so no key outlives its
connection. A close with code 1008 means the hub refused our credentials:
that is final and never retried. Inbound messages of every connection flow
into one bounded channel, so ``receive`` works across reconnects.
"""

from __future__ import annotations

import contextlib
import os
import ssl
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, final

import trio
import trio.lowlevel
from trio_websocket import HandshakeError, open_websocket_url

from .._auth import build_authorization
from .._connection import Connection
from .._envelope import HiveMessage
from .._errors import CloseCode
from .._events import HandshakeComplete, MessageReceived
from .._settings import NoiseIdentity, SatelliteSettings
from .._state import Role
from ._channel import ChannelClosed, ChannelLimits, HiveChannel
from ._groups import single_exception
from ._transport import TrioWebSocketTransport


class HiveRefused(Exception):
    """The hub refused us (close 1008): wrong credentials or policy. Not retried."""


class HiveUnavailable(Exception):
    """The hub could not be reached, or the link was lost for good."""


@final
@dataclass(frozen=True, slots=True)
class Reconnect:
    """Backoff for reconnecting: ``initial`` doubling up to ``maximum`` seconds."""

    initial: float = 0.5
    maximum: float = 30.0
    attempts: int = 10


@final
@dataclass(frozen=True, slots=True)
class SatelliteIdentity:
    """Who we are to the hub."""

    access_key: str
    password: str
    useragent: str = "HivemindSatellite"
    site_id: str = "unknown"
    session_id: str | None = None
    noise: NoiseIdentity | None = None
    require_noise: bool = False
    binarize: bool = False

    def __repr__(self) -> str:
        return f"SatelliteIdentity(useragent={self.useragent!r}, site_id={self.site_id!r})"

    def settings(self, session_id: str) -> SatelliteSettings:
        """Build the per-connection settings."""
        session = {"session_id": session_id, "site_id": self.site_id}
        hello = {"pubkey": None, "session": session, "site_id": self.site_id}
        return SatelliteSettings(
            password=self.password,
            hello=hello,
            binarize=self.binarize,
            noise=self.noise,
            require_noise=self.require_noise,
        )


@final
class HiveClient:
    """A connected satellite. Use ``send`` and ``receive``."""

    def __init__(self, identity: SatelliteIdentity, inbound_size: int) -> None:
        self.identity = identity
        self.session_id = identity.session_id or uuid.uuid4().hex
        self.channel: HiveChannel | None = None
        self.connected = trio.Event()
        self.handshake: HandshakeComplete | None = None
        self.reconnects = 0
        self._inbound_send, self._inbound_recv = trio.open_memory_channel[HiveMessage](inbound_size)
        self._failure: BaseException | None = None

    @property
    def hub_hello(self) -> dict[str, Any]:
        """The hub's HELLO payload of the current connection."""
        return dict(self.channel.conn.hub_hello) if self.channel else {}

    async def send(self, message: HiveMessage, timeout: float = 10.0) -> None:  # noqa: ASYNC109 (bounded by default, unlike a bare await)
        """Send ``message``, waiting up to ``timeout`` for a live connection.

        Raises:
            HiveUnavailable: no connection came back in time.
            HiveRefused: the hub refused us.
        """
        with trio.move_on_after(timeout):
            while True:
                self._raise_failure()
                await self.connected.wait()
                channel = self.channel
                assert channel is not None
                try:
                    await channel.send(message)
                    return
                except ChannelClosed:
                    await trio.lowlevel.checkpoint()
        raise HiveUnavailable("no connection to the hub")

    async def rekey(self) -> None:
        """Agree a fresh session key on the live connection (password sessions).

        Raises:
            HiveUnavailable: not connected.
            LocalProtocolError: the session was not agreed by password.
        """
        channel = self.channel
        if channel is None or not self.connected.is_set():
            raise HiveUnavailable("no connection to the hub")
        try:
            await channel.rekey()
        except ChannelClosed:
            raise HiveUnavailable("the hub link closed") from None

    async def receive(self, timeout: float | None = None) -> HiveMessage:  # noqa: ASYNC109 (same)
        """Return the next message from the hub.

        Raises:
            trio.TooSlowError: nothing arrived within ``timeout``.
            HiveUnavailable: the link is gone for good.
        """
        with trio.fail_after(timeout if timeout is not None else float("inf")):
            try:
                return await self._inbound_recv.receive()
            except trio.EndOfChannel:
                self._raise_failure()
                raise HiveUnavailable("the hub link is closed") from None

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure


@asynccontextmanager
async def open_hive(
    url: str,
    identity: SatelliteIdentity,
    *,
    ssl_context: ssl.SSLContext | None = None,
    limits: ChannelLimits | None = None,
    reconnect: Reconnect | None = None,
    connect_timeout: float = 10.0,
    max_message_bytes: int = 10 * 1024 * 1024,
    rng: Callable[[int], bytes] = os.urandom,
) -> AsyncIterator[HiveClient]:
    """Connect to a hub at ``url`` (``ws://host:port``) and yield a ready client.

    Raises:
        HiveRefused: the hub refused the credentials.
        HiveUnavailable: the hub could not be reached.
    """
    limits = limits or ChannelLimits()
    client = HiveClient(identity, limits.inbound_queue)
    credential = build_authorization(identity.useragent, identity.access_key)
    target = f"{url.rstrip('/')}/?authorization={credential}"

    async def connect_once(
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> int | None:
        try:
            async with open_websocket_url(
                target,
                ssl_context,
                connect_timeout=connect_timeout,
                max_message_size=max_message_bytes,
            ) as ws:
                conn = Connection(Role.SATELLITE, identity.settings(client.session_id), rng=rng)
                channel = HiveChannel(conn, TrioWebSocketTransport(ws), limits)
                try:
                    return await _run_channel(client, channel, task_status)
                finally:
                    await _close_tcp(ws)
        except (HandshakeError, OSError) as exc:
            raise HiveUnavailable(f"cannot connect to {url}: {type(exc).__name__}") from None

    async def supervise(task_status: trio.TaskStatus[None]) -> None:
        code = await _first(connect_once, task_status)
        policy = reconnect or Reconnect()
        delay, failures = policy.initial, 0
        while code != CloseCode.POLICY_VIOLATION and failures < policy.attempts:
            await trio.sleep(delay)
            try:
                code = await connect_once()
                delay, failures = policy.initial, 0
            except (HiveUnavailable, ChannelClosed):
                failures += 1
                delay = min(policy.maximum, delay * 2)
        client._failure = (
            HiveRefused("the hub refused our credentials")
            if code == CloseCode.POLICY_VIOLATION
            else HiveUnavailable("lost the hub link")
        )
        client._inbound_send.close()

    with single_exception():
        async with trio.open_nursery() as nursery:
            await nursery.start(supervise)
            try:
                yield client
            finally:
                nursery.cancel_scope.cancel()


async def _first(
    connect_once: Callable[..., Any], task_status: trio.TaskStatus[None]
) -> int | None:
    try:
        return await connect_once(task_status)
    except ChannelClosed as exc:
        if exc.code == CloseCode.POLICY_VIOLATION:
            raise HiveRefused(f"the hub refused the connection: {exc.reason}") from None
        raise HiveUnavailable(f"handshake failed: {exc}") from None


async def _close_tcp(ws: object) -> None:
    """Close the TCP stream under a websocket the server closed.

    trio-websocket 0.12 leaves a client's socket open when the server ends the
    session first (it waits for a TCP close it never reads); the socket then
    lingers until garbage collection.
    """
    stream = getattr(ws, "_stream", None)
    if isinstance(stream, trio.abc.AsyncResource):
        await trio.aclose_forcefully(stream)


async def _run_channel(
    client: HiveClient, channel: HiveChannel, task_status: trio.TaskStatus[None]
) -> int | None:
    """Run one connection; return its close code when it ends."""
    failure: ChannelClosed | None = None
    async with trio.open_nursery() as nursery:
        try:
            await nursery.start(channel.run)
        except ChannelClosed as exc:
            failure = exc
        else:
            if client.channel is not None:
                client.reconnects += 1
            client.channel, client.handshake = channel, channel.handshake
            client.connected.set()
            task_status.started()
            await _pump(client, channel)
            client.connected = trio.Event()
        nursery.cancel_scope.cancel()
    if failure is not None:
        raise failure
    return channel.close_code


async def _pump(client: HiveClient, channel: HiveChannel) -> None:
    with contextlib.suppress(ChannelClosed, trio.ClosedResourceError):
        while True:
            event = await channel.receive_event()
            if isinstance(event, MessageReceived):
                await client._inbound_send.send(event.message)

"""Run a sans-IO ``Connection`` over a frame transport, under trio.

Theory of operation: one reader task feeds every inbound frame to the
connection and pushes the resulting events into a bounded channel (a slow
owner therefore slows the reader, and TCP pushes back on the peer). Every
outbound frame goes into a second bounded channel drained by exactly one
writer task, so frames are never interleaved. When the outbound channel is
full the peer is not reading fast enough: the configured slow-consumer policy
either closes the connection (the default: nothing is silently lost) or drops
the frame and counts it.

Handshake steps that cost real CPU (PBKDF2, argon2id) run in a worker thread
behind a process-wide limiter, so a flood of handshakes cannot stall every
other connection; ``ConnectionOwner`` holds outbound messages meanwhile. The
handshake must finish within ``handshake_timeout``; inbound frames are rate
limited by a token bucket; any protocol error closes the websocket with the
code the error carries.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from enum import Enum
from typing import final

import trio

from .._connection import Connection
from .._envelope import HiveMessage
from .._errors import CloseCode, LocalProtocolError, RemoteProtocolError
from .._events import Event, HandshakeComplete, HelloReceived
from .._state import Role, State
from ._owner import HANDSHAKE_THREADS, ConnectionOwner
from ._transport import Frame, FrameTransport, TransportClosed

__all__ = [
    "HANDSHAKE_THREADS",
    "ChannelClosed",
    "ChannelLimits",
    "HiveChannel",
    "SlowConsumerPolicy",
]

log = logging.getLogger("hivemind_proto.trio")


class SlowConsumerPolicy(Enum):
    """What to do when the peer does not read its frames fast enough."""

    CLOSE = "close"
    DROP = "drop"


@final
@dataclass(frozen=True, slots=True)
class ChannelLimits:
    """Bounds on one connection.

    Args:
        outbound_queue: frames waiting for the writer.
        inbound_queue: events waiting for the owner.
        handshake_timeout: seconds allowed until the connection is ready.
        send_timeout: seconds one websocket write may take.
        frames_per_second: sustained inbound frame rate.
        burst: inbound frames allowed at once above the rate.
        slow_consumer: the policy when ``outbound_queue`` is full.
    """

    outbound_queue: int = 256
    inbound_queue: int = 64
    handshake_timeout: float = 10.0
    send_timeout: float = 10.0
    frames_per_second: float = 200.0
    burst: int = 400
    slow_consumer: SlowConsumerPolicy = SlowConsumerPolicy.CLOSE

    def __post_init__(self) -> None:
        if min(self.outbound_queue, self.inbound_queue, self.burst) < 1:
            raise ValueError("queue sizes and burst must be positive")
        if min(self.handshake_timeout, self.send_timeout, self.frames_per_second) <= 0:
            raise ValueError("timeouts and rates must be positive")


class ChannelClosed(Exception):
    """The channel is closed; ``code`` says how, when known."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"hive connection closed (code={code}) {reason}".strip())
        self.code = code
        self.reason = reason


@final
class _TokenBucket:
    def __init__(self, rate: float, burst: int) -> None:
        self._rate, self._burst = rate, float(burst)
        self._tokens, self._stamp = float(burst), trio.current_time()

    def take(self) -> bool:
        now = trio.current_time()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self._rate)
        self._stamp = now
        if self._tokens < 1:
            return False
        self._tokens -= 1
        return True


@final
class HiveChannel:
    """A ``Connection`` driven over a websocket by trio tasks."""

    def __init__(
        self, conn: Connection, transport: FrameTransport, limits: ChannelLimits | None = None
    ) -> None:
        self.conn = conn
        self.limits = limits or ChannelLimits()
        self._owner = ConnectionOwner(conn, self.limits.outbound_queue)
        self._transport = transport
        self._out_send, self._out_recv = trio.open_memory_channel[Frame](self.limits.outbound_queue)
        self._ev_send, self._ev_recv = trio.open_memory_channel[Event](self.limits.inbound_queue)
        self.ready = trio.Event()
        self.closed = trio.Event()
        self.close_code: int | None = None
        self.close_reason = ""
        self.hello: HelloReceived | None = None
        self.handshake: HandshakeComplete | None = None
        self.dropped_frames = 0
        self._overflowed = False
        self._bucket: _TokenBucket | None = None

    # -- owner API ------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the connection until it closes; report started once it is ready.

        Raises:
            ChannelClosed: the connection closed before it was ready (bad
                credentials, handshake timeout, peer gone). After it was ready
                a close ends ``run`` normally; ``close_code`` tells how.
        """
        self._bucket = _TokenBucket(self.limits.frames_per_second, self.limits.burst)
        failure: ChannelClosed | None = None
        try:
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._writer)
                try:
                    if self.conn.role is Role.HUB:
                        self.conn.start()
                        self._flush()
                    await self._handshake()
                except ChannelClosed as exc:
                    failure = exc
                    nursery.cancel_scope.cancel()
                else:
                    task_status.started()
                    with contextlib.suppress(ChannelClosed):
                        await self._read_forever()
                    nursery.cancel_scope.cancel()
        finally:
            self._ev_send.close()
            self.closed.set()
        if failure is not None:
            raise failure

    def send_nowait(self, message: HiveMessage) -> bool:
        """Seal and queue ``message``; never blocks.

        Returns:
            False when the frame was dropped (policy DROP) or the channel is
            closing; True when queued.
        """
        if self.closed.is_set() or self.close_code is not None:
            return False
        try:
            held = self._owner.send(message)
        except LocalProtocolError:
            if self.conn.state in (State.CLOSED, State.ERROR):
                return False
            raise
        if not held:
            self._on_overflow()
            return False
        return self._flush()

    async def send(self, message: HiveMessage) -> None:
        """Send ``message``, waiting for queue space (a client's backpressure).

        Raises:
            ChannelClosed: the connection is closed.
        """
        if self.close_code is not None or self.closed.is_set():
            raise ChannelClosed(self.close_code, self.close_reason)
        await self._owner.wait_idle()
        self.conn.send(message)
        for frame in self.conn.data_to_send():
            try:
                await self._out_send.send(frame)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                raise ChannelClosed(self.close_code, self.close_reason) from None

    async def rekey(self) -> None:
        """Satellite, legacy password session: agree a fresh session key.

        Messages sent until the hub answers are held and sealed with the new
        key (``Connection.send``).

        Raises:
            LocalProtocolError: not a ready legacy-password satellite.
            ChannelClosed: the connection is closed.
        """
        if self.close_code is not None or self.closed.is_set():
            raise ChannelClosed(self.close_code, self.close_reason)
        await self._owner.wait_idle()
        self.conn.rekey()
        self._flush()

    async def receive_event(self) -> Event:
        """Return the next event.

        Raises:
            ChannelClosed: no more events will come.
        """
        try:
            return await self._ev_recv.receive()
        except (trio.EndOfChannel, trio.ClosedResourceError):
            raise ChannelClosed(self.close_code, self.close_reason) from None

    async def aclose(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Close the websocket with ``code``."""
        if self.close_code is None:
            self.close_code, self.close_reason = int(code), reason
        if self.conn.state not in (State.CLOSED, State.ERROR):
            self.conn.close(code)
        self._out_send.close()
        await self._transport.aclose(int(code), reason[:120])

    # -- tasks ------------------------------------------------------------------

    async def _handshake(self) -> None:
        try:
            with trio.fail_after(self.limits.handshake_timeout):
                while not self.ready.is_set():
                    await self._read_one()
        except trio.TooSlowError:
            await self.aclose(CloseCode.POLICY_VIOLATION, "handshake timeout")
            raise ChannelClosed(CloseCode.POLICY_VIOLATION, "handshake timeout") from None

    async def _read_forever(self) -> None:
        while True:
            await self._read_one()

    async def _read_one(self) -> None:
        try:
            frame = await self._transport.receive()
        except TransportClosed as exc:
            self.close_code = self.close_code or exc.code or CloseCode.GOING_AWAY
            raise ChannelClosed(exc.code, exc.reason or "") from None
        assert self._bucket is not None
        if not self._bucket.take():
            await self._fail(RemoteProtocolError("rate limit exceeded", CloseCode.POLICY_VIOLATION))
        try:
            events = await self._owner.receive_frame(frame)
        except RemoteProtocolError as exc:
            await self._fail(exc)
        self._flush()
        for event in events:
            self._note(event)
            await self._ev_send.send(event)

    def _note(self, event: Event) -> None:
        if isinstance(event, HandshakeComplete):
            self.handshake = event
            if self.conn.role is Role.SATELLITE:
                self.ready.set()
        elif isinstance(event, HelloReceived) and self.conn.role is Role.HUB:
            self.hello = event
            self.ready.set()

    async def _fail(self, exc: RemoteProtocolError) -> None:
        log.info("closing hive connection: %s (code %s)", exc, exc.close_code)
        await self.aclose(exc.close_code, str(exc))
        raise ChannelClosed(exc.close_code, str(exc))

    async def _writer(self) -> None:
        async with self._out_recv:
            async for frame in self._out_recv:
                if self._overflowed:
                    break
                try:
                    with trio.fail_after(self.limits.send_timeout):
                        await self._transport.send(frame)
                except trio.TooSlowError:
                    self._mark_slow()
                    break
                except TransportClosed:
                    break
        self._out_send.close()
        if self._overflowed:
            await self._transport.aclose(CloseCode.TRY_AGAIN_LATER, "slow consumer")

    def _flush(self) -> bool:
        ok = True
        for frame in self._owner.data_to_send():
            try:
                self._out_send.send_nowait(frame)
            except trio.WouldBlock:
                ok = False
                self._on_overflow()
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                return False
        return ok

    def _on_overflow(self) -> None:
        if self.limits.slow_consumer is SlowConsumerPolicy.DROP:
            self.dropped_frames += 1
            return
        self._mark_slow()
        self._out_send.close()

    def _mark_slow(self) -> None:
        self._overflowed = True
        if self.close_code is None:
            self.close_code, self.close_reason = CloseCode.TRY_AGAIN_LATER, "slow consumer"

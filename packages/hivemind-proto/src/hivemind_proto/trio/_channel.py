"""Run a sans-IO ``Connection`` over a frame transport, under trio.

Theory of operation: a channel costs as little as possible while idle, since
a hub holds thousands of them. There is no reader task: the owner's
``receive_event`` reads the next frame itself and feeds it to the connection
(a slow owner therefore reads slowly, and TCP pushes back on the peer); only
the events of that one frame are buffered. Every outbound frame goes into a
bounded queue drained by exactly one writer task, so frames are never
interleaved; the writer is started when the first frame is queued and ends
when the queue is empty, so an idle channel has none. When the queue is full
the peer is not reading fast enough: the configured slow-consumer policy
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

import logging
from collections import deque
from dataclasses import dataclass
from enum import Enum
from typing import NoReturn, final

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
        inbound_queue: events waiting for the owner (a satellite client's
            queue of received messages; a channel itself buffers only the
            events of the frame it read last).
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
    __slots__ = ("_burst", "_rate", "_stamp", "_tokens")

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
    """A ``Connection`` driven over a websocket by trio tasks.

    Run it with ``run`` (in its own task), or from the owner's task with
    ``open`` inside a nursery that outlives the session; then read with
    ``receive_event`` from one task at a time.
    """

    __slots__ = (
        "_bucket",
        "_closed",
        "_ended",
        "_events",
        "_nursery",
        "_out_closed",
        "_outbox",
        "_overflowed",
        "_owner",
        "_reading",
        "_ready",
        "_ready_event",
        "_space",
        "_transport",
        "_writer_scope",
        "_writing",
        "close_code",
        "close_reason",
        "conn",
        "dropped_frames",
        "handshake",
        "hello",
        "limits",
    )

    def __init__(
        self, conn: Connection, transport: FrameTransport, limits: ChannelLimits | None = None
    ) -> None:
        self.conn = conn
        self.limits = limits or ChannelLimits()
        self._owner = ConnectionOwner(conn, self.limits.outbound_queue)
        self._transport = transport
        #: The public events are made only when someone asks for them.
        self._ready = False
        self._ready_event: trio.Event | None = None
        self._closed: trio.Event | None = None
        self.close_code: int | None = None
        self.close_reason = ""
        self.hello: HelloReceived | None = None
        self.handshake: HandshakeComplete | None = None
        self.dropped_frames = 0
        self._overflowed = False
        self._bucket: _TokenBucket | None = None
        #: Frames waiting for the writer (None while empty).
        self._outbox: deque[Frame] | None = None
        self._out_closed = False
        self._writing = False
        #: The running writer's scope, cancelled by ``end``.
        self._writer_scope: trio.CancelScope | None = None
        #: Set (then dropped) when the writer frees room in the outbox.
        self._space: trio.Event | None = None
        #: Events of the last frame read, not yet handed to the owner.
        self._events: deque[Event] | None = None
        self._reading = False
        self._ended = False
        self._nursery: trio.Nursery | None = None

    @property
    def ready(self) -> trio.Event:
        """Set once the handshake is done."""
        if self._ready_event is None:
            self._ready_event = trio.Event()
            if self._ready:
                self._ready_event.set()
        return self._ready_event

    @property
    def closed(self) -> trio.Event:
        """Set once the session is over (``end``, or the peer went away)."""
        if self._closed is None:
            self._closed = trio.Event()
            if self._ended:
                self._closed.set()
        return self._closed

    # -- owner API ------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Run the connection until it closes; report started once it is ready.

        The owner reads events with ``receive_event`` meanwhile.

        Raises:
            ChannelClosed: the connection closed before it was ready (bad
                credentials, handshake timeout, peer gone). After it was ready
                a close ends ``run`` normally; ``close_code`` tells how.
        """
        failure: ChannelClosed | None = None
        try:
            async with trio.open_nursery() as nursery:
                try:
                    await self.open(nursery)
                except ChannelClosed as exc:
                    failure = exc
                else:
                    task_status.started()
                    await self.closed.wait()
                nursery.cancel_scope.cancel()
        finally:
            self.end()
        if failure is not None:
            raise failure

    async def open(self, nursery: trio.Nursery) -> None:
        """Run the handshake in the calling task; writers run in ``nursery``.

        ``nursery`` must outlive the session (it may be shared by many);
        call ``end`` when the session is over, which also stops its writer
        (``closed`` is also set when the peer goes away).

        Raises:
            ChannelClosed: the connection closed before it was ready.
        """
        self._nursery = nursery
        self._bucket = _TokenBucket(self.limits.frames_per_second, self.limits.burst)
        try:
            if self.conn.role is Role.HUB:
                self.conn.start()
                self._flush()
            await self._handshake()
        except ChannelClosed:
            self.end()
            raise

    def end(self) -> None:
        """Mark the session over: nothing more is read or queued; sets ``closed``."""
        self._ended = True
        self._close_outbox()
        if self._writer_scope is not None:
            self._writer_scope.cancel()
        if self._closed is not None:
            self._closed.set()

    def send_nowait(self, message: HiveMessage) -> bool:
        """Seal and queue ``message``; never blocks.

        Returns:
            False when the frame was dropped (policy DROP) or the channel is
            closing; True when queued.
        """
        if self._ended or self.close_code is not None:
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
        if self.close_code is not None or self._ended:
            raise ChannelClosed(self.close_code, self.close_reason)
        await self._owner.wait_idle()
        self.conn.send(message)
        for frame in self.conn.data_to_send():
            while not self._out_closed and self._queued() >= self.limits.outbound_queue:
                if self._space is None:
                    self._space = trio.Event()
                await self._space.wait()
            if not self._enqueue(frame):
                raise ChannelClosed(self.close_code, self.close_reason)

    async def rekey(self) -> None:
        """Satellite, legacy password session: agree a fresh session key.

        Messages sent until the hub answers are held and sealed with the new
        key (``Connection.send``).

        Raises:
            LocalProtocolError: not a ready legacy-password satellite.
            ChannelClosed: the connection is closed.
        """
        if self.close_code is not None or self._ended:
            raise ChannelClosed(self.close_code, self.close_reason)
        await self._owner.wait_idle()
        self.conn.rekey()
        self._flush()

    async def receive_event(self) -> Event:
        """Return the next event, reading from the peer when none is buffered.

        Raises:
            ChannelClosed: no more events will come.
            trio.BusyResourceError: another task is reading this channel.
        """
        while not self._events:
            if self._ended:
                raise ChannelClosed(self.close_code, self.close_reason)
            if self._reading:
                raise trio.BusyResourceError("another task is reading this channel")
            self._reading = True
            try:
                # read here rather than through _read_one: one coroutine frame
                # less for every idle connection
                try:
                    frame = await self._transport.receive()
                except TransportClosed as exc:
                    self._transport_closed(exc)
                await self._process(frame)
            except ChannelClosed:
                self.end()
                raise
            finally:
                self._reading = False
        event = self._events.popleft()
        if not self._events:
            self._events = None
        return event

    async def aclose(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Close the websocket with ``code``."""
        if self.close_code is None:
            self.close_code, self.close_reason = int(code), reason
        if self.conn.state not in (State.CLOSED, State.ERROR):
            self.conn.close(code)
        self._close_outbox()
        await self._transport.aclose(int(code), reason[:120])

    # -- reading ----------------------------------------------------------------

    async def _handshake(self) -> None:
        try:
            with trio.fail_after(self.limits.handshake_timeout):
                while not self._ready:
                    await self._read_one()
        except trio.TooSlowError:
            await self.aclose(CloseCode.POLICY_VIOLATION, "handshake timeout")
            raise ChannelClosed(CloseCode.POLICY_VIOLATION, "handshake timeout") from None

    async def _read_one(self) -> None:
        try:
            frame = await self._transport.receive()
        except TransportClosed as exc:
            self._transport_closed(exc)
        await self._process(frame)

    def _transport_closed(self, exc: TransportClosed) -> NoReturn:
        self.close_code = self.close_code or exc.code or CloseCode.GOING_AWAY
        raise ChannelClosed(exc.code, exc.reason or "") from None

    async def _process(self, frame: Frame) -> None:
        """Rate-limit ``frame``, feed it to the connection, keep its events."""
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
        if events:
            if self._events is None:
                self._events = deque(events)
            else:
                self._events.extend(events)

    def _note(self, event: Event) -> None:
        if isinstance(event, HandshakeComplete):
            self.handshake = event
            if self.conn.role is Role.SATELLITE:
                self._mark_ready()
        elif isinstance(event, HelloReceived) and self.conn.role is Role.HUB:
            self.hello = event
            self._mark_ready()

    def _mark_ready(self) -> None:
        self._ready = True
        if self._ready_event is not None:
            self._ready_event.set()

    async def _fail(self, exc: RemoteProtocolError) -> None:
        log.info("closing hive connection: %s (code %s)", exc, exc.close_code)
        await self.aclose(exc.close_code, str(exc))
        raise ChannelClosed(exc.close_code, str(exc))

    # -- writing ----------------------------------------------------------------

    def _queued(self) -> int:
        return len(self._outbox) if self._outbox is not None else 0

    def _enqueue(self, frame: Frame) -> bool:
        """Queue ``frame`` for the writer (starting it if idle); False when closed."""
        if self._out_closed:
            return False
        if self._outbox is None:
            self._outbox = deque()
        self._outbox.append(frame)
        if not self._writing:
            assert self._nursery is not None, "open() or run() the channel first"
            self._writing = True
            self._nursery.start_soon(self._writer)
        return True

    async def _writer(self) -> None:
        with trio.CancelScope() as scope:
            self._writer_scope = scope
            if self._ended:
                scope.cancel()
            try:
                await self._drain()
            finally:
                self._writing = False
                self._writer_scope = None
                if not self._outbox:
                    self._outbox = None
            if self._overflowed:
                self._close_outbox()
                await self._transport.aclose(CloseCode.TRY_AGAIN_LATER, "slow consumer")

    async def _drain(self) -> None:
        while self._outbox:
            frame = self._outbox.popleft()
            self._wake_senders()
            if self._overflowed:
                return
            try:
                with trio.fail_after(self.limits.send_timeout):
                    await self._transport.send(frame)
            except trio.TooSlowError:
                self._mark_slow()
                return
            except TransportClosed:
                self._close_outbox()
                return

    def _wake_senders(self) -> None:
        if self._space is not None:
            self._space.set()
            self._space = None

    def _close_outbox(self) -> None:
        self._out_closed = True
        self._wake_senders()

    def _flush(self) -> bool:
        ok = True
        for frame in self._owner.data_to_send():
            if self._out_closed:
                return False
            if self._queued() >= self.limits.outbound_queue:
                ok = False
                self._on_overflow()
            else:
                self._enqueue(frame)
        return ok

    def _on_overflow(self) -> None:
        if self.limits.slow_consumer is SlowConsumerPolicy.DROP:
            self.dropped_frames += 1
            return
        self._mark_slow()
        self._close_outbox()

    def _mark_slow(self) -> None:
        self._overflowed = True
        if self.close_code is None:
            self.close_code, self.close_reason = CloseCode.TRY_AGAIN_LATER, "slow consumer"

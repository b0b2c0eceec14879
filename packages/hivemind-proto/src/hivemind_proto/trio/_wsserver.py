"""The hub's websocket server side: wsproto straight on a trio stream.

Theory of operation: a hub holds thousands of mostly idle connections, so a
connection here is one task and a few small objects. ``read_upgrade`` runs
the HTTP upgrade with wsproto's ``H11Handshake`` (h11 bounds the request
size); once the upgrade is accepted only wsproto's frame-level
``Connection`` is kept. ``StreamWebSocket`` has no reader task: ``receive``
reads the stream in the caller's task, answers pings and the peer's close as
it meets them, and assembles each message up to ``max_message_bytes`` (a
larger one closes with 1009). Writes from the channel's writer and the
reader's control replies are serialised by a small lock that allocates
nothing while uncontended. ``aclose`` sends our close frame and waits (at most
``CLOSE_TIMEOUT`` seconds) for the peer's, reading itself unless another task
is reading, then closes the stream.
"""

from __future__ import annotations

import contextlib
from typing import Final, final

import trio
from wsproto import ConnectionType
from wsproto.connection import Connection as WsConnection
from wsproto.connection import ConnectionState
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    RejectData,
    Request,
    TextMessage,
)
from wsproto.handshake import H11Handshake
from wsproto.utilities import LocalProtocolError as WsLocalError
from wsproto.utilities import RemoteProtocolError as WsRemoteError

from .._errors import CloseCode
from ._transport import Frame, TransportClosed

__all__ = ["CLOSE_TIMEOUT", "UPGRADE_TIMEOUT", "StreamWebSocket", "Upgrade", "read_upgrade"]

#: Seconds a client has to send its upgrade request.
UPGRADE_TIMEOUT: Final = 60.0
#: Seconds ``aclose`` waits for the peer's close frame.
CLOSE_TIMEOUT: Final = 5.0
_RECEIVE_BYTES: Final = 16384
_ABNORMAL: Final = 1006


@final
class Upgrade:
    """A websocket upgrade request read from ``stream``, to accept or reject once."""

    __slots__ = ("_handshake", "stream", "target")

    def __init__(self, stream: trio.abc.Stream, handshake: H11Handshake, request: Request) -> None:
        self.stream = stream
        #: The request target (path and query).
        self.target = request.target
        self._handshake: H11Handshake | None = handshake

    async def accept(self, max_message_bytes: int) -> StreamWebSocket:
        """Switch protocols; return the open websocket (the HTTP side is then dropped)."""
        handshake = self._take()
        await self.stream.send_all(handshake.send(AcceptConnection()))
        ws = handshake.connection
        assert ws is not None
        return StreamWebSocket(self.stream, ws, max_message_bytes)

    async def reject(self, status: int, body: bytes) -> None:
        """Answer with an HTTP error instead of upgrading."""
        handshake = self._take()
        headers = [(b"content-length", str(len(body)).encode())]
        data = handshake.send(RejectConnection(status_code=status, headers=headers, has_body=True))
        data += handshake.send(RejectData(data=body, body_finished=True))
        await self.stream.send_all(data)

    def _take(self) -> H11Handshake:
        handshake, self._handshake = self._handshake, None
        if handshake is None:
            raise trio.ClosedResourceError("the upgrade was already answered")
        return handshake


async def read_upgrade(stream: trio.abc.Stream) -> Upgrade | None:
    """Read the upgrade request; None when the peer sent none or a bad one.

    A malformed request is answered with the HTTP error wsproto suggests.
    Callers bound the time (``UPGRADE_TIMEOUT``).
    """
    handshake = H11Handshake(ConnectionType.SERVER)
    while True:
        try:
            data = await stream.receive_some(_RECEIVE_BYTES)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            return None
        if not data:
            return None
        try:
            handshake.receive_data(data)
        except WsRemoteError as exc:
            if exc.event_hint is not None:
                with contextlib.suppress(
                    trio.BrokenResourceError, trio.ClosedResourceError, WsLocalError
                ):
                    await stream.send_all(handshake.send(exc.event_hint))
            return None
        for event in handshake.events():
            if isinstance(event, Request):
                return Upgrade(stream, handshake, event)


@final
class StreamWebSocket:
    """An accepted server-side websocket as a frame transport (no task of its own)."""

    __slots__ = (
        "_close_code",
        "_close_reason",
        "_gone",
        "_max",
        "_parts",
        "_peer_closed",
        "_reading",
        "_send_done",
        "_sending",
        "_size",
        "_stream",
        "_ws",
    )

    def __init__(self, stream: trio.abc.Stream, ws: WsConnection, max_message_bytes: int) -> None:
        self._stream = stream
        self._ws = ws
        self._max = max_message_bytes
        self._parts: list[str | bytes] | None = None
        self._size = 0
        self._reading = False
        self._sending = False
        self._send_done: trio.Event | None = None
        #: Set once the close handshake is over (or the stream is gone).
        self._peer_closed: trio.Event | None = None
        self._close_code: int | None = None
        self._close_reason: str | None = None
        self._gone = False

    async def receive(self) -> Frame:
        """Return the next whole message.

        Raises:
            TransportClosed: the websocket is closed (with the peer's code).
        """
        if self._reading:
            raise trio.BusyResourceError("another task is reading this websocket")
        self._reading = True
        try:
            while True:
                for event in self._ws.events():
                    frame = await self._on_event(event)
                    if frame is not None:
                        return frame
                if self._ws.state is ConnectionState.CLOSED or self._stream_gone():
                    raise TransportClosed(self._close_code, self._close_reason)
                try:
                    data = await self._stream.receive_some(_RECEIVE_BYTES)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    data = b""
                self._feed(data)
        finally:
            self._reading = False

    async def send(self, frame: Frame) -> None:
        """Send one message.

        Raises:
            TransportClosed: the websocket is closing or the peer is gone.
        """
        kind = TextMessage if isinstance(frame, str) else BytesMessage
        await self._send_event(kind(data=frame))

    async def aclose(self, code: int, reason: str) -> None:
        """Close with ``code`` (idempotent); then close the stream."""
        if self._ws.state is ConnectionState.OPEN:
            self._remember(code, reason)
            await self._send_quietly(CloseConnection(code=code, reason=reason))
        with trio.move_on_after(CLOSE_TIMEOUT):
            await self._await_peer_close()
        self._gone = True
        await trio.aclose_forcefully(self._stream)
        self._ended()

    # -- reading --------------------------------------------------------------

    def _feed(self, data: bytes) -> None:
        """Hand bytes read to wsproto; at the end of the stream, raise."""
        if not data:
            self._gone = True
            self._remember(_ABNORMAL, None)
            self._ended()
            raise TransportClosed(self._close_code, self._close_reason)
        with contextlib.suppress(WsLocalError):  # data after the close handshake
            self._ws.receive_data(data)

    async def _on_event(self, event: object) -> Frame | None:
        if isinstance(event, Message):
            return await self._on_message(event)
        if isinstance(event, Ping):
            await self._send_quietly(event.response())
        elif isinstance(event, CloseConnection):
            self._remember(event.code, event.reason)
            if self._ws.state is ConnectionState.REMOTE_CLOSING:
                await self._send_quietly(event.response())
            self._ended()
            raise TransportClosed(self._close_code, self._close_reason)
        return None

    async def _on_message(self, event: Message) -> Frame | None:
        self._size += len(event.data)
        if self._size > self._max:
            self._parts, self._size = None, 0
            reason = f"message larger than {self._max} bytes"
            self._remember(CloseCode.MESSAGE_TOO_BIG, reason)
            await self._send_quietly(CloseConnection(code=CloseCode.MESSAGE_TOO_BIG, reason=reason))
            raise TransportClosed(CloseCode.MESSAGE_TOO_BIG, reason)
        if event.message_finished and self._parts is None:
            self._size = 0
            return event.data
        if self._parts is None:
            self._parts = []
        self._parts.append(event.data)
        if not event.message_finished:
            return None
        parts, self._parts, self._size = self._parts, None, 0
        if isinstance(event, TextMessage):
            return "".join(p for p in parts if isinstance(p, str))
        return b"".join(p for p in parts if isinstance(p, bytes | bytearray))

    async def _await_peer_close(self) -> None:
        """Wait for the peer's close frame: read it ourselves unless a reader is at it."""
        if self._ws.state is ConnectionState.CLOSED or self._stream_gone():
            return
        if self._reading:
            if self._peer_closed is None:
                self._peer_closed = trio.Event()
            await self._peer_closed.wait()
            return
        try:
            while True:
                await self.receive()
        except (TransportClosed, trio.BusyResourceError):
            pass

    def _remember(self, code: int | None, reason: str | None) -> None:
        if self._close_code is None:
            self._close_code, self._close_reason = code, reason

    def _ended(self) -> None:
        if self._peer_closed is not None:
            self._peer_closed.set()

    def _stream_gone(self) -> bool:
        return self._gone

    # -- writing --------------------------------------------------------------

    async def _send_quietly(self, event: Ping | CloseConnection | object) -> None:
        """Send a control frame; a peer already gone is no error here."""
        with contextlib.suppress(TransportClosed):
            await self._send_event(event)

    async def _send_event(self, event: Message | Ping | CloseConnection | object) -> None:
        while self._sending:
            if self._send_done is None:
                self._send_done = trio.Event()
            await self._send_done.wait()
        try:
            data = self._ws.send(event)  # type: ignore[arg-type]
        except WsLocalError:
            raise TransportClosed(self._close_code, self._close_reason) from None
        self._sending = True
        try:
            await self._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise TransportClosed(self._close_code, self._close_reason) from None
        finally:
            self._sending = False
            done, self._send_done = self._send_done, None
            if done is not None:
                done.set()

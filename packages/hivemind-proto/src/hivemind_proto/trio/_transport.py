"""Frame transports: the websocket libraries a ``Connection`` can run over.

A transport moves whole websocket messages: ``str`` for text frames, ``bytes``
for binary frames. ``TransportClosed`` is raised when the peer is gone, with the
close code when one is known.
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any, Protocol, final

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection

Frame = str | bytes


class TransportClosed(Exception):
    """The websocket is closed."""

    def __init__(self, code: int | None = None, reason: str | None = None) -> None:
        super().__init__(f"websocket closed (code={code}, reason={reason!r})")
        self.code = code
        self.reason = reason


class FrameTransport(Protocol):
    """What ``HiveChannel`` needs from a websocket."""

    async def receive(self) -> Frame:
        """Return the next whole message; raise ``TransportClosed`` at the end."""
        ...

    async def send(self, frame: Frame) -> None:
        """Send one whole message; raise ``TransportClosed`` if the peer is gone."""
        ...

    async def aclose(self, code: int, reason: str) -> None:
        """Close with ``code`` (idempotent)."""
        ...


@final
class TrioWebSocketTransport:
    """A trio-websocket ``WebSocketConnection`` as a frame transport."""

    def __init__(self, ws: WebSocketConnection) -> None:
        self._ws = ws

    async def receive(self) -> Frame:
        """Return the next message."""
        try:
            return await self._ws.get_message()
        except ConnectionClosed as exc:
            reason = exc.reason
            raise TransportClosed(
                reason.code if reason else None, reason.reason if reason else None
            ) from None

    async def send(self, frame: Frame) -> None:
        """Send one message."""
        try:
            await self._ws.send_message(frame)
        except ConnectionClosed as exc:
            reason = exc.reason
            raise TransportClosed(reason.code if reason else None) from None

    async def aclose(self, code: int, reason: str) -> None:
        """Close the websocket."""
        with trio.move_on_after(5):
            await self._ws.aclose(code, reason)


Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


@final
class AsgiWebSocketTransport:
    """An accepted ASGI websocket (for example Starlette's, under hypercorn+trio).

    It speaks the ASGI message protocol directly, so the adapter needs no
    Starlette import: pass ``websocket.receive`` and ``websocket.send``.
    """

    def __init__(self, receive: Receive, send: Send) -> None:
        self._receive = receive
        self._send = send
        self._closed = False

    async def receive(self) -> Frame:
        """Return the next message."""
        if self._closed:
            raise TransportClosed()
        message = await self._receive()
        if message["type"] == "websocket.disconnect":
            self._closed = True
            raise TransportClosed(message.get("code"))
        text = message.get("text")
        return text if text is not None else bytes(message.get("bytes") or b"")

    async def send(self, frame: Frame) -> None:
        """Send one message."""
        if self._closed:
            raise TransportClosed()
        key = "text" if isinstance(frame, str) else "bytes"
        try:
            await self._send({"type": "websocket.send", key: frame})
        except (OSError, RuntimeError, trio.BrokenResourceError):
            self._closed = True
            raise TransportClosed() from None

    async def aclose(self, code: int, reason: str) -> None:
        """Close the websocket."""
        if self._closed:
            return
        self._closed = True
        with trio.move_on_after(5):
            with contextlib.suppress(OSError, RuntimeError, trio.BrokenResourceError):
                await self._send({"type": "websocket.close", "code": code, "reason": reason})

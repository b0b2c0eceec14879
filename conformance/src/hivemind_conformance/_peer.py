"""A scripted raw peer on ``hivemind_proto.hazmat``, with a frame log.

Theory of operation: a ``FramePeer`` wraps one websocket and moves whole
frames, logging each one (direction, kind, a short hex or text preview). It
never interprets anything on its own: the cases decide what to send, byte for
byte, which is how they send malformed traffic a ``Connection`` would never
produce. ``LegacyKeys`` holds an agreed legacy session (key, cipher, text
encoding) and seals or opens frames with it; ``NoiseKeys`` does the same for
a finished Noise handshake. ``open_client_peer`` dials a hub (hub mode) and
``ScriptedHubServer`` accepts clients (client mode).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any, Final, final
from urllib.parse import urlsplit

import trio
from hivemind_proto import Cipher, HiveMessage, MessageType, TextEncoding
from hivemind_proto.hazmat import (
    Compression,
    NoiseTransport,
    SessionKey,
    decode_json,
    decode_wire1,
    encode_json,
    encode_wire1,
    is_encrypted_json,
    loads,
    open_binary_frame,
    open_json_frame,
    seal_binary_frame,
    seal_json_frame,
)
from trio_websocket import (
    ConnectionClosed,
    ConnectionRejected,
    HandshakeError,
    WebSocketConnection,
    WebSocketRequest,
    serve_websocket,
    wrap_client_stream,
)

Frame = str | bytes
Rng = Callable[[int], bytes]

#: Frames kept in a peer's log (the report prints the last few).
LOG_LIMIT: Final = 200
PREVIEW: Final = 96


class PeerClosed(Exception):
    """The websocket is closed; ``code`` is the close code (1006: no close frame)."""

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"closed with code {code} {reason}".strip())
        self.code = code
        self.reason = reason


def describe_failure(exc: BaseException) -> str:
    """What a case saw instead of what it expected, for a ``Failed`` message.

    Args:
        exc: The peer closing, a timeout, or another error.

    Returns:
        A short description (the close code, "nothing before the timeout", or
        the exception's type and text).
    """
    if isinstance(exc, PeerClosed):
        return f"the connection closed (code {exc.code})"
    if isinstance(exc, trio.TooSlowError):
        return "nothing before the timeout"
    return f"{type(exc).__name__}: {exc}"


@final
@dataclass(frozen=True, slots=True)
class LogEntry:
    """One logged wire event."""

    at: float
    direction: str  # "->" we sent, "<-" we received, "xx" close
    kind: str  # "text", "binary", "close"
    preview: str

    def render(self) -> str:
        """One line for reports."""
        return f"{self.at:8.3f} {self.direction} {self.kind:6} {self.preview}"


def _preview(frame: Frame) -> str:
    if isinstance(frame, str):
        text = frame if len(frame) <= PREVIEW else frame[:PREVIEW] + "..."
        return f"({len(frame)}) {text}"
    head = frame[: PREVIEW // 2].hex()
    return f"({len(frame)}) {head}{'...' if len(frame) > PREVIEW // 2 else ''}"


class FramePeer:
    """One websocket, frame by frame, with a log."""

    def __init__(
        self, ws: WebSocketConnection, log: list[LogEntry], close_timeout: float = 5.0
    ) -> None:
        self.ws = ws
        self.log = log
        #: Seconds the peer has to close when a requirement says it must (spec §0).
        self.close_timeout = close_timeout
        self.close_code: int | None = None
        self.close_reason = ""
        self._t0 = trio.current_time()

    def _note(self, direction: str, kind: str, preview: str) -> None:
        self.log.append(LogEntry(trio.current_time() - self._t0, direction, kind, preview))
        del self.log[:-LOG_LIMIT]

    @property
    def closed(self) -> bool:
        """Whether the websocket is known to be closed."""
        return self.close_code is not None or self.ws.closed is not None

    async def send(self, frame: Frame) -> None:
        """Send one frame.

        Raises:
            PeerClosed: the websocket is closed.
        """
        self._note("->", "text" if isinstance(frame, str) else "binary", _preview(frame))
        try:
            await self.ws.send_message(frame)
        except ConnectionClosed as exc:
            raise self._closed(exc) from None

    async def recv(self, timeout: float) -> Frame:  # noqa: ASYNC109 (every read is bounded)
        """Return the next frame.

        Raises:
            PeerClosed: the websocket closed.
            trio.TooSlowError: nothing within ``timeout`` seconds.
        """
        with trio.fail_after(timeout):
            try:
                frame = await self.ws.get_message()
            except ConnectionClosed as exc:
                raise self._closed(exc) from None
        self._note("<-", "text" if isinstance(frame, str) else "binary", _preview(frame))
        return frame

    async def recv_or_none(self, timeout: float) -> Frame | None:  # noqa: ASYNC109
        """Return the next frame, or None when nothing came within ``timeout``.

        Raises:
            PeerClosed: the websocket closed.
        """
        try:
            return await self.recv(timeout)
        except trio.TooSlowError:
            return None

    async def wait_closed(self, timeout: float) -> tuple[int | None, list[Frame]]:  # noqa: ASYNC109
        """Read until the peer closes; return the close code and what arrived first.

        Raises:
            trio.TooSlowError: still open after ``timeout`` seconds.
        """
        frames: list[Frame] = []
        with trio.fail_after(timeout):
            while True:
                try:
                    frames.append(await self.recv(timeout))
                except PeerClosed as exc:
                    return exc.code, frames

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Close our side (bounded)."""
        self._note("xx", "close", f"sent {code} {reason}")
        with trio.move_on_after(2), contextlib.suppress(Exception):
            await self.ws.aclose(code, reason)
        await _drop_tcp(self.ws)

    def _closed(self, exc: ConnectionClosed) -> PeerClosed:
        reason = exc.reason
        code = reason.code if reason is not None else 1006
        self.close_code = code
        self.close_reason = (reason.reason or "") if reason is not None else ""
        self._note("xx", "close", f"received {code} {self.close_reason}")
        return PeerClosed(code, self.close_reason)

    # -- cleartext JSON helpers -------------------------------------------

    async def send_json(self, obj: Any) -> None:
        """Send a JSON value as a text frame (no validation at all)."""
        await self.send(json.dumps(obj))

    async def send_plain(self, message: HiveMessage) -> None:
        """Send a HiveMessage as a cleartext JSON text frame."""
        await self.send(encode_json(message))

    async def recv_plain(self, timeout: float) -> dict[str, Any]:  # noqa: ASYNC109
        """Receive a cleartext JSON object frame.

        Raises:
            ValueError: the frame is binary or not a JSON object.
        """
        frame = await self.recv(timeout)
        if not isinstance(frame, str):
            raise ValueError("expected a text frame, got a binary one")
        obj = loads(frame)
        if not isinstance(obj, dict):
            raise ValueError("expected a JSON object")
        return obj


async def _drop_tcp(ws: WebSocketConnection) -> None:
    """Close the TCP stream under a websocket and drain what is still queued.

    trio-websocket may leave the stream open after the peer closed, and its
    reader task blocks while a received message waits in the queue: it would
    then never notice the closed stream and its nursery would never exit.
    """
    stream = getattr(ws, "_stream", None)
    if isinstance(stream, trio.abc.AsyncResource):
        await trio.aclose_forcefully(stream)
    with trio.move_on_after(1):
        for _ in range(10_000):
            try:
                await ws.get_message()
            except ConnectionClosed:
                break


# --------------------------------------------------------------------------- keyed sessions


@final
@dataclass(slots=True)
class LegacyKeys:
    """An agreed legacy session: one key for both directions (spec §4.1)."""

    key: SessionKey = field(repr=False)
    cipher: Cipher
    encoding: TextEncoding
    rng: Rng = field(repr=False)

    def seal(self, message: HiveMessage, *, binary: bool = False, compress: bool = True) -> Frame:
        """Seal ``message`` as an encrypted text frame, or a binary WIRE-1 frame."""
        if binary or message.msg_type is MessageType.BINARY:
            mode = Compression.ALWAYS if compress else Compression.NEVER
            return self.seal_bytes(encode_wire1(message, compression=mode))
        return self.seal_text(encode_json(message).encode())

    def seal_text(self, plaintext: bytes) -> str:
        """Seal raw plaintext bytes as an encrypted JSON text frame."""
        return seal_json_frame(
            plaintext, cipher=self.cipher, key=self.key, encoding=self.encoding, rng=self.rng
        )

    def seal_bytes(self, plaintext: bytes) -> bytes:
        """Seal raw plaintext bytes as a binary frame."""
        return seal_binary_frame(plaintext, cipher=self.cipher, key=self.key, rng=self.rng)

    def open(self, frame: Frame) -> HiveMessage:
        """Authenticate and decode one frame sealed with this session.

        Raises:
            hivemind_proto.RemoteProtocolError: not a valid sealed frame.
            ValueError: a cleartext frame.
        """
        if isinstance(frame, bytes):
            plain = open_binary_frame(frame, cipher=self.cipher, key=self.key)
            return decode_wire1(plain, allow_legacy_thirdparty=True)
        obj = loads(frame)
        if not is_encrypted_json(obj):
            raise ValueError("cleartext frame where an encrypted one was expected")
        return decode_json(
            open_json_frame(obj, cipher=self.cipher, key=self.key, encoding=self.encoding)
        )

    def open_raw(self, frame: Frame) -> bytes:
        """Authenticate one frame and return its plaintext bytes."""
        if isinstance(frame, bytes):
            return open_binary_frame(frame, cipher=self.cipher, key=self.key)
        obj = loads(frame)
        if not is_encrypted_json(obj):
            raise ValueError("cleartext frame where an encrypted one was expected")
        return open_json_frame(obj, cipher=self.cipher, key=self.key, encoding=self.encoding)


@final
@dataclass(slots=True)
class NoiseKeys:
    """A finished Noise handshake: binary frames ``marker || message`` (spec §3.11)."""

    transport: NoiseTransport = field(repr=False)

    def seal(self, message: HiveMessage) -> bytes:
        """Seal ``message`` with the JSON marker (0x00)."""
        return self.transport.encrypt(b"\x00" + encode_json(message).encode())

    def open(self, frame: Frame) -> HiveMessage:
        """Decrypt and decode one transport frame.

        Raises:
            hivemind_proto.ProtocolError: not a valid transport frame.
            ValueError: a text frame, or an unknown marker.
        """
        if not isinstance(frame, bytes):
            raise ValueError("text frame after a Noise handshake")
        plain = self.transport.decrypt(frame)
        marker, body = plain[:1], plain[1:]
        if marker == b"\x00":
            return decode_json(body)
        if marker == b"\x01":
            return decode_wire1(body)
        if marker == b"\x02":
            from hivemind_proto.hazmat import decode_msgpack

            return decode_msgpack(body)
        raise ValueError(f"unknown payload marker {marker.hex()}")


# --------------------------------------------------------------------------- dialling and serving


@contextlib.asynccontextmanager
async def open_client_peer(
    url: str, log: list[LogEntry], *, connect_timeout: float = 5.0, close_timeout: float = 5.0
) -> AsyncIterator[FramePeer]:
    """Dial ``url`` (the full target, query included) and yield a ``FramePeer``.

    The TCP stream is ours, so it is closed on every path (a refused upgrade
    included).

    Raises:
        PeerClosed: the upgrade was refused (code None) or the hub is unreachable.
    """
    parts = urlsplit(url)
    resource = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    host = parts.hostname or "127.0.0.1"
    try:
        with trio.fail_after(connect_timeout):
            stream = await trio.open_tcp_stream(host, parts.port or 80)
    except (OSError, trio.TooSlowError) as exc:
        raise PeerClosed(None, f"cannot connect: {type(exc).__name__}") from None
    try:
        async with trio.open_nursery() as nursery:
            try:
                with trio.fail_after(connect_timeout):
                    ws = await wrap_client_stream(
                        nursery,
                        stream,
                        host,
                        resource,
                        message_queue_size=64,
                        max_message_size=16 * 1024 * 1024,
                    )
            except (trio.TooSlowError, HandshakeError, ConnectionRejected) as exc:
                raise PeerClosed(None, f"upgrade failed: {type(exc).__name__}") from None
            try:
                yield FramePeer(ws, log, close_timeout)
            finally:
                await _drop_tcp(ws)
                nursery.cancel_scope.cancel()
    finally:
        await trio.aclose_forcefully(stream)


@final
@dataclass(frozen=True, slots=True)
class Accepted:
    """A client connection the scripted hub accepted."""

    peer: FramePeer
    path: str
    headers: tuple[tuple[str, str], ...]


class ScriptedHubServer:
    """Accepts websocket clients on 127.0.0.1 and hands each to the running case."""

    def __init__(self, log: list[LogEntry], port: int = 0, close_timeout: float = 5.0) -> None:
        self.log = log
        self.port = port
        self.close_timeout = close_timeout
        self._send, self._recv = trio.open_memory_channel[Accepted](8)
        self._done = trio.Event()

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen until cancelled; reports the bound port."""

        async def on_request(request: WebSocketRequest) -> None:
            ws = await request.accept()
            headers = tuple((k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers)
            peer = FramePeer(ws, self.log, self.close_timeout)
            accepted = Accepted(peer, request.path, headers)
            try:
                self._send.send_nowait(accepted)
            except trio.WouldBlock:
                await ws.aclose(1013, "too many connections")
                return
            await self._done.wait()
            await _drop_tcp(ws)

        async with trio.open_nursery() as nursery:
            server = await nursery.start(
                lambda task_status: serve_websocket(
                    on_request,
                    "127.0.0.1",
                    self.port,
                    None,
                    handler_nursery=nursery,
                    max_message_size=16 * 1024 * 1024,
                    task_status=task_status,
                )
            )
            self.port = server.port
            task_status.started(server.port)

    async def accept(self, timeout: float) -> Accepted:  # noqa: ASYNC109
        """Return the next client connection.

        Raises:
            trio.TooSlowError: no client connected in time.
        """
        with trio.fail_after(timeout):
            return await self._recv.receive()

    async def accept_or_none(self, timeout: float) -> Accepted | None:  # noqa: ASYNC109
        """Return the next client connection, or None after ``timeout``."""
        try:
            return await self.accept(timeout)
        except trio.TooSlowError:
            return None

    def finish(self) -> None:
        """Release every connection handler (they drop their TCP streams)."""
        self._done.set()

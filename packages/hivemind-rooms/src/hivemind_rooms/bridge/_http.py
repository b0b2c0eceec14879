"""A small HTTP/1.1 server on a unix socket (h11 over trio), one request per connection.

Theory of operation. The bridge is reached only through a socket file that
the runner mounts into one sandbox, so the listener needs no TLS and no
authentication: holding the socket is the capability. Each connection
carries exactly one request (the agent SDK opens a fresh connection per
call), which keeps the state machine trivial: read one complete request
within a deadline and a size bound, hand it to the handler, write one
response, close. Connections beyond ``max_connections`` are closed at once.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from pathlib import Path
from typing import Any, final

import h11
import trio

__all__ = ["HttpRequest", "HttpResponse", "json_response", "serve_unix"]

_READ_CHUNK = 65536
_KNOWN = frozenset(int(s) for s in HTTPStatus)


@final
@dataclasses.dataclass(frozen=True)
class HttpRequest:
    """One request: method, path (without query), lower-case headers, body."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes = dataclasses.field(repr=False)


@final
@dataclasses.dataclass(frozen=True)
class HttpResponse:
    """One response."""

    status: int
    body: bytes = dataclasses.field(repr=False)
    content_type: str = "application/json"


def json_response(status: int, value: Any) -> HttpResponse:
    """Build a JSON response."""
    data = json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
    return HttpResponse(status, data.encode("utf-8"))


Handler = Callable[[HttpRequest], Awaitable[HttpResponse]]


class _Refused(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


async def _read_request(stream: trio.SocketStream, max_body: int) -> HttpRequest:
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=32 * 1024)
    head: h11.Request | None = None
    body = bytearray()
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(_READ_CHUNK)
            conn.receive_data(data)
            continue
        if isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > max_body:
                raise _Refused(413, "request body too large")
        elif isinstance(event, h11.EndOfMessage) and head is not None:
            headers = {k.decode().lower(): v.decode("latin-1") for k, v in head.headers}
            path = head.target.decode("latin-1").split("?", 1)[0]
            return HttpRequest(head.method.decode(), path, headers, bytes(body))
        elif isinstance(event, h11.ConnectionClosed):
            raise _Refused(400, "connection closed")


async def _write(stream: trio.SocketStream, response: HttpResponse) -> None:
    reason = HTTPStatus(response.status).phrase if response.status in _KNOWN else "Status"
    head = (
        f"HTTP/1.1 {response.status} {reason}\r\n"
        f"content-type: {response.content_type}\r\n"
        f"content-length: {len(response.body)}\r\n"
        "cache-control: no-store\r\nconnection: close\r\n\r\n"
    )
    await stream.send_all(head.encode("latin-1") + response.body)


async def _serve_one(
    stream: trio.SocketStream, handler: Handler, max_body: int, read_timeout: float
) -> None:
    try:
        with trio.fail_after(read_timeout):
            request = await _read_request(stream, max_body)
        response = await handler(request)
    except _Refused as exc:
        response = json_response(exc.status, {"error": str(exc)})
    except (h11.RemoteProtocolError, trio.TooSlowError):
        response = json_response(400, {"error": "malformed or slow request"})
    try:
        await _write(stream, response)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass
    finally:
        await stream.aclose()


async def serve_unix(
    path: Path,
    handler: Handler,
    *,
    max_body: int = 8 * 1024 * 1024,
    max_connections: int = 16,
    read_timeout: float = 30.0,
    task_status: trio.TaskStatus[Path] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``handler`` on a new unix socket at ``path`` until cancelled.

    Args:
        path: Socket file to create (must not exist); made world-writable so a
            sandbox user can connect, its directory controls who can reach it.
        handler: Answers one request.
        max_body: Largest request body accepted (413 beyond).
        max_connections: Concurrent connections; more are closed unanswered.
        read_timeout: Seconds a client has to send its whole request.
        task_status: Started with the socket path once it listens.
    """
    sock = trio.socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    limiter = trio.CapacityLimiter(max_connections)
    try:
        await sock.bind(str(path))
        os.chmod(path, 0o666)
        sock.listen(max_connections)
        task_status.started(path)
        async with trio.open_nursery() as nursery:
            while True:
                raw, _ = await sock.accept()
                stream = trio.SocketStream(raw)
                try:
                    limiter.acquire_on_behalf_of_nowait(stream)
                except trio.WouldBlock:
                    await stream.aclose()
                    continue
                nursery.start_soon(_guarded, limiter, stream, handler, max_body, read_timeout)
    finally:
        sock.close()
        path.unlink(missing_ok=True)  # noqa: ASYNC240  (removes the socket file)


async def _guarded(
    limiter: trio.CapacityLimiter,
    stream: trio.SocketStream,
    handler: Handler,
    max_body: int,
    read_timeout: float,
) -> None:
    try:
        await _serve_one(stream, handler, max_body, read_timeout)
    finally:
        limiter.release_on_behalf_of(stream)

"""The HTTP polling transport (spec §1.2): hypercorn + Starlette under trio.

Theory of operation
-------------------
A polling client has no socket of its own: ``/connect`` creates a hub-side
sans-IO ``Connection`` keyed by the access key (one per key, as upstream),
``/send_message`` feeds it one frame (the form field ``message``), and the
frames the hub produces wait in a bounded outbox that ``/get_messages`` and
``/get_binary_messages`` drain. Every request carries ``?authorization=``.
The same hub logic serves it as a websocket: ``Hub.attach`` once the
satellite's HELLO arrives, ``Hub.on_message`` per message, the same limits
(handshake timeout, rate limit, frame size, outbox size with the close
policy for a client that stops polling).

The released polling client (hivemind-bus-client 0.4.x) handles every frame
twice, so it answers the offer with two password handshakes before its next
poll and keeps only the second. The connection re-keys on the second one;
the answer to the first would let the client derive a key the hub no longer
holds, so an undrained answer is withdrawn when a later handshake (before
the satellite's HELLO) supersedes it. The offer never proposes binary frames
here: a form field carries text only.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

import trio
from hivemind_proto import (
    Authorization,
    CloseCode,
    Connection,
    HandshakeComplete,
    HelloReceived,
    HiveMessage,
    LocalProtocolError,
    MessageReceived,
    Profile,
    RemoteProtocolError,
    Role,
    parse_authorization,
)
from hivemind_proto.trio import ConnectionOwner
from hypercorn.config import Config as HypercornConfig
from hypercorn.trio import serve as hypercorn_serve
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from ._hub import Hub, LiveLink

__all__ = ["HttpLink", "create_http_app", "serve_http"]

log = logging.getLogger("hivemind_hub.http")
Frame = str | bytes


@dataclass
class HttpLink:
    """One polling client: its connection and the frames waiting for it."""

    conn: Connection
    auth: Authorization = field(repr=False)
    capacity: int
    started: float
    owner: ConnectionOwner = field(init=False, repr=False)
    live: LiveLink | None = None
    outbox: deque[Frame] = field(default_factory=deque)
    answer: Frame | None = field(default=None, repr=False)
    closed: bool = False
    close_code: int | None = None
    tokens: float = 0.0
    stamp: float = 0.0
    lock: trio.Lock = field(default_factory=trio.Lock)

    def __post_init__(self) -> None:
        self.owner = ConnectionOwner(self.conn, self.capacity)

    def queue(self, frames: list[Frame]) -> bool:
        """Add frames to the outbox; a full outbox closes the link (slow consumer)."""
        for frame in frames:
            if len(self.outbox) >= self.capacity:
                self.closed, self.close_code = True, CloseCode.TRY_AGAIN_LATER
                return False
            self.outbox.append(frame)
        return True

    def supersede(self, answer: list[Frame]) -> None:
        """Replace an undrained handshake answer by the one for the hub's current key.

        A password handshake repeated before the satellite's HELLO re-keys the
        connection; the earlier answer belongs to a key the hub no longer
        holds, so it is withdrawn if the client has not fetched it yet.
        """
        if self.answer is not None and self.answer in self.outbox:
            self.outbox.remove(self.answer)
        self.answer = answer[-1] if answer else None

    def send_nowait(self, message: HiveMessage) -> bool:
        """Seal ``message`` for the client and queue it."""
        if self.closed:
            return False
        try:
            held = self.owner.send(message)
        except LocalProtocolError:
            return False
        if not held:
            self.closed, self.close_code = True, CloseCode.TRY_AGAIN_LATER
            return False
        return self.queue(self.owner.data_to_send())

    async def aclose(self, code: int, reason: str) -> None:
        """Close the link; the next request sees it gone."""
        self.closed = True
        self.close_code = self.close_code or code

    def drain(self, binary: bool) -> list[Frame]:
        """Take every queued frame of one kind."""
        kind = bytes if binary else str
        taken = [f for f in self.outbox if isinstance(f, kind)]
        self.outbox = deque(f for f in self.outbox if not isinstance(f, kind))
        return taken


class HttpTransport:
    """The polling endpoints over a running ``Hub``."""

    def __init__(self, hub: Hub) -> None:
        self.hub = hub
        self.links: dict[str, HttpLink] = {}
        limits = hub.config.limits
        self.handshake_timeout = limits.handshake_timeout
        self.rate = limits.rate_limit_messages_per_second
        self.burst = float(limits.rate_limit_burst)
        self.max_frame = limits.max_frame_bytes
        self.capacity = limits.outbound_queue_size

    @staticmethod
    def _auth(request: Request) -> Authorization | None:
        value = request.query_params.get("authorization")
        if not value:
            return None
        try:
            return parse_authorization(value)
        except RemoteProtocolError:
            return None

    def _current(self, auth: Authorization) -> HttpLink | None:
        link = self.links.get(auth.access_key)
        if link is None:
            return None
        expired = link.live is None and trio.current_time() - link.started > self.handshake_timeout
        if link.closed or expired:
            self._drop(auth.access_key, link)
            return None
        return link

    def _drop(self, key: str, link: HttpLink) -> None:
        link.closed = True
        if self.links.get(key) is link:
            del self.links[key]
        if link.live is not None:
            self.hub.detach(link.live)

    async def connect(self, request: Request) -> JSONResponse:
        """``POST /connect``: authenticate and queue the hub's HELLO and offer."""
        auth = self._auth(request)
        if auth is None:
            return JSONResponse({"error": "Missing authorization"}, status_code=400)
        settings = await self.hub.authenticate(auth)
        if settings is None:
            return JSONResponse({"error": "invalid access key"}, status_code=403)
        old = self.links.get(auth.access_key)
        if old is not None:
            self._drop(auth.access_key, old)
        # A form field carries text only: never offer binary (WIRE-1) frames here.
        settings = dataclasses.replace(settings, binarize=False)
        conn = Connection(Role.HUB, settings, rng=os.urandom, psk_deriver=self.hub.derive_psk)
        now = trio.current_time()
        link = HttpLink(conn, auth, self.capacity, now, tokens=self.burst, stamp=now)
        conn.start()
        link.queue(conn.data_to_send())
        self.links[auth.access_key] = link
        return JSONResponse({"status": "Connected"})

    async def disconnect(self, request: Request) -> JSONResponse:
        """``POST /disconnect``."""
        auth = self._auth(request)
        link = self._current(auth) if auth else None
        if auth is None or link is None:
            return JSONResponse({"error": "Already Disconnected"})
        self._drop(auth.access_key, link)
        return JSONResponse({"status": "Disconnected"})

    def _take_token(self, link: HttpLink) -> bool:
        now = trio.current_time()
        link.tokens = min(self.burst, link.tokens + (now - link.stamp) * self.rate)
        link.stamp = now
        if link.tokens < 1:
            return False
        link.tokens -= 1
        return True

    async def send_message(self, request: Request) -> JSONResponse:
        """``POST /send_message``: one frame in the form field ``message``."""
        auth = self._auth(request)
        link = self._current(auth) if auth else None
        if auth is None or link is None:
            return JSONResponse({"error": "Client is not connected"})
        form = await request.form(max_files=0, max_fields=4, max_part_size=self.max_frame)
        message = form.get("message")
        if not isinstance(message, str) or not message:
            return JSONResponse({"error": "Missing message"}, status_code=400)
        if len(message) > self.max_frame:
            self._drop(auth.access_key, link)
            return JSONResponse({"error": "message too big"}, status_code=413)
        if not self._take_token(link):
            self._drop(auth.access_key, link)
            return JSONResponse({"error": "rate limit exceeded"}, status_code=429)
        async with link.lock:
            return await self._feed(auth, link, message)

    async def _feed(self, auth: Authorization, link: HttpLink, frame: str) -> JSONResponse:
        try:
            events = await link.owner.receive_frame(frame)
        except RemoteProtocolError as exc:
            log.info("polling client closed with %d (protocol error)", exc.close_code)
            self._drop(auth.access_key, link)
            return JSONResponse({"error": "protocol error", "code": exc.close_code}, 400)
        frames = link.owner.data_to_send()
        if link.live is None and any(_legacy_keyed(e) for e in events):
            link.supersede(frames)
        link.queue(frames)
        for event in events:
            if isinstance(event, HelloReceived) and link.live is None:
                link.live = await self.hub.attach(link, auth, event.payload)
                if link.live is None:
                    self._drop(auth.access_key, link)
                    return JSONResponse({"error": "Connection refused"}, status_code=403)
            elif isinstance(event, MessageReceived) and link.live is not None:
                await self.hub.on_message(link.live, event.message)
        if link.closed:
            self._drop(auth.access_key, link)
            return JSONResponse({"error": "Client is not connected"})
        return JSONResponse({"status": "message sent"})

    async def get_messages(self, request: Request) -> JSONResponse:
        """``GET /get_messages``: drain the queued text frames."""
        return self._drain(request, binary=False)

    async def get_binary_messages(self, request: Request) -> JSONResponse:
        """``GET /get_binary_messages``: drain the queued binary frames (Base64)."""
        return self._drain(request, binary=True)

    def _drain(self, request: Request, binary: bool) -> JSONResponse:
        auth = self._auth(request)
        link = self._current(auth) if auth else None
        if link is None:
            return JSONResponse({"error": "Client is not connected"})
        frames = link.drain(binary)
        if binary:
            encoded = [base64.b64encode(f).decode() for f in frames if isinstance(f, bytes)]
            return JSONResponse({"status": "messages retrieved", "b64_messages": encoded})
        return JSONResponse({"status": "messages retrieved", "messages": frames})


def _legacy_keyed(event: object) -> bool:
    return isinstance(event, HandshakeComplete) and event.profile is Profile.LEGACY_PASSWORD


def create_http_app(hub: Hub) -> Starlette:
    """Return the Starlette app of the polling transport for ``hub``."""
    transport = HttpTransport(hub)
    routes = [
        Route("/connect", transport.connect, methods=["POST"]),
        Route("/disconnect", transport.disconnect, methods=["POST"]),
        Route("/send_message", transport.send_message, methods=["POST"]),
        Route("/get_messages", transport.get_messages, methods=["GET"]),
        Route("/get_binary_messages", transport.get_binary_messages, methods=["GET"]),
    ]
    app = Starlette(routes=routes)
    app.state.transport = transport
    return app


async def serve_http(
    hub: Hub,
    host: str,
    port: int,
    *,
    tls: tuple[Path, Path] | None = None,
    task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve the polling transport with hypercorn; reports the bound port.

    Args:
        hub: The running hub.
        host: Bind address.
        port: Bind port (0 picks a free one).
        tls: ``(certificate, key)`` files to serve HTTPS, or None.
        task_status: Receives the bound port.
    """
    config = HypercornConfig()
    if tls is not None:
        config.certfile, config.keyfile = str(tls[0]), str(tls[1])
    config.bind = [f"[{host}]:{port}" if ":" in host else f"{host}:{port}"]
    config.accesslog = None  # request lines carry the authorization token
    config.errorlog = log
    config.h11_max_incomplete_size = 64 * 1024

    async with trio.open_nursery() as nursery:
        binds = await nursery.start(
            lambda task_status: hypercorn_serve(
                create_http_app(hub), config, task_status=task_status
            )
        )
        task_status.started(int(str(binds[0]).rsplit(":", 1)[1]))

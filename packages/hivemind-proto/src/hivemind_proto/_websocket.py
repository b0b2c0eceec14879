"""A HiveMind connection over a byte stream: wsproto composed with ``Connection``.

Theory of operation: two sans-IO machines are stacked, the way wsproto stacks
itself on h11. ``wsproto`` turns TCP bytes into websocket events (the HTTP
upgrade, text and binary messages, pings, closes); each complete message is
one frame for the HiveMind ``Connection`` above it, whose outbound frames go
back down through wsproto as websocket messages.

The hub side reads the ``?authorization=`` credential from the upgrade request
and asks the owner's ``authenticate`` callback for the client's settings;
unknown or malformed credentials are accepted only to be closed at once with
1008 (released clients then stop retrying) and no HELLO is ever sent.
Messages are assembled up to ``max_frame_bytes``; larger ones close with 1009.
Websocket pings are answered, peer closes are acknowledged. Whatever the
bytes, ``receive_data`` raises only ``RemoteProtocolError`` (fail closed:
after it, the queued close frame is all that is left to send).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, final

from wsproto import ConnectionType, WSConnection
from wsproto.events import (
    AcceptConnection,
    BytesMessage,
    CloseConnection,
    Message,
    Ping,
    RejectConnection,
    Request,
    TextMessage,
)
from wsproto.utilities import LocalProtocolError as WsLocalError
from wsproto.utilities import RemoteProtocolError as WsRemoteError

from ._auth import Authorization, authorization_from_target, build_authorization
from ._connection import Connection
from ._envelope import HiveMessage
from ._errors import CloseCode, LocalProtocolError, ProtocolError, RemoteProtocolError
from ._events import ConnectionClosed, Event
from ._noise import derive_psk
from ._record import Frame, Rng
from ._settings import HubSettings, SatelliteSettings
from ._state import Role

Authenticate = Callable[[Authorization], HubSettings | None]
_WS_ERRORS: Final = (WsLocalError, WsRemoteError)


@final
class HiveWebSocket:
    """A HiveMind endpoint that reads and writes raw TCP bytes.

    Args:
        role: HUB (server side of the upgrade) or SATELLITE (client side).
        rng: randomness for the ``Connection``.
        authenticate: hub only; maps a credential to settings (None: refuse).
        settings: satellite only; its ``SatelliteSettings``.
        host: satellite only; the Host header.
        useragent: satellite only; the credential's user agent.
        access_key: satellite only; the credential's access key.
        psk_deriver: passed to the ``Connection`` (argon2id by default).
    """

    def __init__(
        self,
        role: Role,
        *,
        rng: Rng,
        authenticate: Authenticate | None = None,
        settings: SatelliteSettings | None = None,
        host: str = "localhost",
        useragent: str = "HivemindSatellite",
        access_key: str = "",
        psk_deriver: Callable[[str, str], bytes] = derive_psk,
    ) -> None:
        self.role: Final = role
        self._rng = rng
        self._psk_deriver = psk_deriver
        self._authenticate = authenticate
        self._buffer: list[Frame] = []
        self._partial: list[str | bytes] = []
        self._partial_size = 0
        self._closed = False
        self.connection: Connection | None = None
        if role is Role.HUB:
            if authenticate is None:
                raise LocalProtocolError("a hub endpoint needs an authenticate callback")
            self._ws = WSConnection(ConnectionType.SERVER)
            self._max = 64 * 1024
            self._out = bytearray()
        else:
            if settings is None or not access_key:
                raise LocalProtocolError("a satellite endpoint needs settings and an access key")
            self._ws = WSConnection(ConnectionType.CLIENT)
            self._max = settings.max_frame_bytes
            self.connection = Connection(role, settings, rng=rng, psk_deriver=psk_deriver)
            target = f"/?authorization={build_authorization(useragent, access_key)}"
            self._out = bytearray(self._ws.send(Request(host=host, target=target)))

    @property
    def closed(self) -> bool:
        """True once a close was sent or received."""
        return self._closed

    def data_to_send(self) -> bytes:
        """Hand out (and forget) the bytes queued for the peer."""
        self._drain_connection()
        out, self._out = bytes(self._out), bytearray()
        return out

    def send(self, message: HiveMessage) -> None:
        """Queue ``message`` (see ``Connection.send``)."""
        if self.connection is None or self._closed:
            raise LocalProtocolError("the connection is not open")
        self.connection.send(message)

    def close(self, code: int = CloseCode.NORMAL, reason: str = "") -> None:
        """Queue a websocket close."""
        if not self._closed:
            self._closed = True
            self._out += self._ws.send(CloseConnection(code=code, reason=reason[:120]))

    def receive_data(self, data: bytes | None) -> list[Event]:
        """Feed bytes from the peer (``None`` at end of stream).

        Raises:
            RemoteProtocolError: the peer broke the websocket or HiveMind
                protocol; a close frame with the error's code is queued.
        """
        if self._closed or data == b"":  # an empty read is not end of stream here
            return []
        try:
            self._ws.receive_data(data)
            events: list[Event] = []
            for ws_event in self._ws.events():
                events += self._on_ws_event(ws_event)
            return events
        except _WS_ERRORS as exc:
            self._fail(RemoteProtocolError(f"websocket error: {exc}", CloseCode.PROTOCOL_ERROR))
        except ProtocolError as exc:
            remote = exc if isinstance(exc, RemoteProtocolError) else RemoteProtocolError(str(exc))
            self._fail(remote)
        raise AssertionError("unreachable")  # pragma: no cover

    def _fail(self, exc: RemoteProtocolError) -> None:
        if not self._closed:
            try:
                self.close(exc.close_code, str(exc))
            except _WS_ERRORS:
                self._closed = True
        raise exc

    def _on_ws_event(self, event: object) -> list[Event]:
        if isinstance(event, Request):
            return self._on_request(event)
        if isinstance(event, AcceptConnection):
            return []
        if isinstance(event, RejectConnection):
            raise RemoteProtocolError("the hub rejected the upgrade", CloseCode.POLICY_VIOLATION)
        if isinstance(event, Message):
            return self._on_message(event)
        if isinstance(event, Ping):
            self._out += self._ws.send(event.response())
            return []
        if isinstance(event, CloseConnection):
            if not self._closed:
                self._closed = True
                self._out += self._ws.send(event.response())
            return [ConnectionClosed(event.code)]
        return []

    def _on_request(self, request: Request) -> list[Event]:
        assert self._authenticate is not None
        self._out += self._ws.send(AcceptConnection())
        try:
            settings = self._authenticate(authorization_from_target(request.target))
        except RemoteProtocolError:
            settings = None
        if settings is None:
            raise RemoteProtocolError("invalid access key", CloseCode.POLICY_VIOLATION)
        self._max = settings.max_frame_bytes
        self.connection = Connection(
            Role.HUB, settings, rng=self._rng, psk_deriver=self._psk_deriver
        )
        self.connection.start()
        return []

    def _on_message(self, message: Message) -> list[Event]:
        self._partial_size += len(message.data)
        if self._partial_size > self._max:
            raise RemoteProtocolError("frame too large", CloseCode.MESSAGE_TOO_BIG)
        self._partial.append(message.data)
        if not message.message_finished:
            return []
        if isinstance(message, TextMessage):
            frame: Frame = "".join(part for part in self._partial if isinstance(part, str))
        else:
            frame = b"".join(part for part in self._partial if isinstance(part, bytes))
        self._partial, self._partial_size = [], 0
        if self.connection is None:
            raise RemoteProtocolError("a message before the upgrade completed")
        return self.connection.receive_frame(frame)

    def _drain_connection(self) -> None:
        if self.connection is None or self._closed:
            return
        for frame in self.connection.data_to_send():
            kind = TextMessage if isinstance(frame, str) else BytesMessage
            self._out += self._ws.send(kind(data=frame))

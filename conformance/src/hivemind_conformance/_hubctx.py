"""Hub mode: the suite plays a client against a hub under test.

``HubContext`` is what every hub case receives. It dials fresh connections,
runs the opening (hub HELLO and HANDSHAKE offer), the legacy password
handshake built by hand from ``hivemind_proto.hazmat`` pieces, and the echo
contract of docs/spec §9.1 (``hive.conformance.echo`` answered with
``hive.conformance.echo.reply`` to the sender).
"""

from __future__ import annotations

import contextlib
import json
import random
import uuid
from dataclasses import dataclass, field
from typing import Any, Final

import trio
from hivemind_proto import (
    Cipher,
    HiveMessage,
    MessageType,
    TextEncoding,
    build_authorization,
    bus_message,
)
from hivemind_proto.hazmat import derive_session_key, make_envelope, verify_envelope

from ._case import Failed, Skipped
from ._config import Credentials, RunConfig
from ._peer import FramePeer, LegacyKeys, LogEntry, PeerClosed, describe_failure, open_client_peer

ECHO: Final = "hive.conformance.echo"
FORBIDDEN: Final = "hive.conformance.forbidden"
REPLY_SUFFIX: Final = ".reply"
#: What the suite offers unless a case asks otherwise (every hub must allow JSON-HEX).
OFFER_ENCODINGS: Final = ["JSON-HEX", "JSON-B64", "JSON-URLSAFE-B64", "JSON-B32"]
OFFER_CIPHERS: Final = ["AES-GCM", "CHACHA20-POLY1305"]


@dataclass(slots=True)
class Session:
    """A keyed, registered connection to the hub."""

    peer: FramePeer
    keys: LegacyKeys
    hello: dict[str, Any]
    offer: dict[str, Any]
    response: dict[str, Any]
    session_id: str
    iv: bytes = field(repr=False)
    backlog: list[HiveMessage] = field(default_factory=list)

    async def send(self, message: HiveMessage, *, binary: bool = False) -> None:
        """Seal and send ``message``."""
        await self.peer.send(self.keys.seal(message, binary=binary))

    def open_json(self, obj: dict[str, Any]) -> HiveMessage:
        """Open an already parsed encrypted text frame with the session key.

        Raises:
            Failed: it does not open.
        """
        try:
            return self.keys.open(json.dumps(obj))
        except Exception as exc:
            raise Failed(
                "every hub frame after keying to open with the session key",
                f"a frame that does not ({type(exc).__name__})",
            ) from None

    async def recv(self, timeout: float) -> HiveMessage:  # noqa: ASYNC109
        """Receive and open the next message (HELLO/HANDSHAKE may arrive in clear).

        Raises:
            Failed: the frame does not open with the session key.
        """
        frame = await self.peer.recv(timeout)
        try:
            return self.keys.open(frame)
        except Exception as exc:
            if isinstance(frame, str) and '"msg_type"' in frame:
                message = _plain_message(frame)
                if message is not None and message.msg_type in _CLEAR_TYPES:
                    return message
            raise Failed(
                "every hub frame after keying to open with the session key",
                f"a frame that does not ({type(exc).__name__})",
            ) from None


_CLEAR_TYPES: Final = frozenset({MessageType.HELLO, MessageType.HANDSHAKE})


def _plain_message(frame: str) -> HiveMessage | None:
    from hivemind_proto.hazmat import decode_json

    try:
        return decode_json(frame)
    except Exception:
        return None


class HubContext:
    """Helpers for one hub case; every connection is fresh."""

    def __init__(self, config: RunConfig, rng: random.Random, log: list[LogEntry]) -> None:
        self.config = config
        self.random = rng
        self.log = log
        self._stack = contextlib.AsyncExitStack()

    def rng(self, n: int) -> bytes:
        """Seeded random bytes."""
        return self.random.randbytes(n)

    def session_id(self) -> str:
        """A fresh seeded session id."""
        return uuid.UUID(bytes=self.rng(16)).hex

    async def __aenter__(self) -> HubContext:
        await self._stack.__aenter__()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        """Close every connection this case opened."""
        await self._stack.__aexit__(*exc_info)  # type: ignore[arg-type]

    # -- dialling -------------------------------------------------------

    def target(self, query: str) -> str:
        """The hub URL with a raw query string."""
        return f"{self.config.target.rstrip('/')}/?{query}"

    def auth_query(self, creds: Credentials | None = None, access_key: str | None = None) -> str:
        """``authorization=...`` for ``creds`` (the test client by default)."""
        key = access_key if access_key is not None else (creds or self.config.client).access_key
        return "authorization=" + build_authorization(self.config.useragent, key)

    async def dial(self, query: str | None = None) -> FramePeer:
        """Open a websocket with ``query`` (the test client's credential by default).

        Raises:
            PeerClosed: the upgrade was refused.
        """
        url = self.target(query if query is not None else self.auth_query())
        peer = open_client_peer(url, self.log, close_timeout=self.config.close_timeout)
        return await self._stack.enter_async_context(peer)

    async def opening(self, peer: FramePeer) -> tuple[dict[str, Any], dict[str, Any]]:
        """Read the hub HELLO and HANDSHAKE offer payloads.

        Raises:
            Failed: the hub did not open with HELLO then HANDSHAKE.
        """
        try:
            hello = await peer.recv_plain(self.config.reply_timeout)
            offer = await peer.recv_plain(self.config.reply_timeout)
        except (PeerClosed, trio.TooSlowError, ValueError) as exc:
            raise Failed(
                "a cleartext HELLO then a HANDSHAKE offer", describe_failure(exc)
            ) from None
        if hello.get("msg_type") != "hello" or offer.get("msg_type") != "shake":
            raise Failed(
                "msg_type hello then shake",
                f"{hello.get('msg_type')!r} then {offer.get('msg_type')!r}",
            )
        if not isinstance(hello.get("payload"), dict) or not isinstance(offer.get("payload"), dict):
            raise Failed("object payloads", "a non-object payload")
        return hello["payload"], offer["payload"]

    def material(
        self,
        password: str,
        iv: bytes,
        *,
        encodings: list[str] | None = None,
        ciphers: list[str] | None = None,
        binarize: bool = False,
    ) -> dict[str, Any]:
        """A password-branch HANDSHAKE payload (None lists are left out)."""
        payload: dict[str, Any] = {"binarize": binarize, "envelope": make_envelope(password, iv)}
        if encodings is not None:
            payload["encodings"] = encodings
        if ciphers is not None:
            payload["ciphers"] = ciphers
        return payload

    async def handshake(
        self,
        peer: FramePeer,
        *,
        creds: Credentials | None = None,
        encodings: list[str] | None = OFFER_ENCODINGS,
        ciphers: list[str] | None = OFFER_CIPHERS,
        binarize: bool = False,
        rekeying: Session | None = None,
    ) -> tuple[dict[str, Any], LegacyKeys, bytes]:
        """Send password-branch material and complete the handshake.

        Args:
            rekeying: the live session being re-keyed: until the hub answers,
                it may still send frames sealed with the session's old key
                (they go to its backlog).

        Returns:
            The hub's response payload, the session keys and our IV.

        Raises:
            Failed: no valid response.
        """
        creds = creds or self.config.client
        iv = self.rng(8)
        payload = self.material(
            creds.password,
            iv,
            encodings=encodings,
            ciphers=ciphers,
            binarize=binarize,
        )
        await peer.send_plain(HiveMessage(MessageType.HANDSHAKE, payload))
        response = await self.read_response(peer, rekeying)
        hub_iv = _verified_iv(creds.password, response.get("envelope"), iv)
        keys = LegacyKeys(
            derive_session_key(creds.password, iv, hub_iv),
            Cipher(response.get("cipher") or "AES-GCM"),
            TextEncoding(response.get("encoding") or "JSON-HEX"),
            self.rng,
        )
        return response, keys, iv

    async def read_response(
        self, peer: FramePeer, rekeying: Session | None = None
    ) -> dict[str, Any]:
        """Read the hub's cleartext HANDSHAKE response payload.

        Raises:
            Failed: anything else arrived (beyond old-key frames of
                ``rekeying``), or nothing.
        """
        deadline = trio.current_time() + self.config.reply_timeout
        while True:
            try:
                obj = await peer.recv_plain(max(0.0, deadline - trio.current_time()))
            except (PeerClosed, trio.TooSlowError, ValueError) as exc:
                raise Failed("a cleartext HANDSHAKE response", describe_failure(exc)) from None
            if rekeying is None or obj.get("msg_type") is not None:
                break
            rekeying.backlog.append(rekeying.open_json(obj))
        payload = obj.get("payload")
        if obj.get("msg_type") != "shake" or not isinstance(payload, dict):
            raise Failed("a cleartext HANDSHAKE response", f"msg_type {obj.get('msg_type')!r}")
        return payload

    async def session(
        self,
        *,
        creds: Credentials | None = None,
        session_id: str | None = None,
        encrypted_hello: bool = True,
        binarize: bool = False,
        encodings: list[str] | None = OFFER_ENCODINGS,
        ciphers: list[str] | None = OFFER_CIPHERS,
        site_id: str = "conformance",
        pubkey: str | None = None,
    ) -> Session:
        """Dial, handshake and send our HELLO: a registered session.

        Args:
            pubkey: The RSA public key (PEM) our HELLO announces; None by default.
        """
        creds = creds or self.config.client
        try:
            peer = await self.dial(self.auth_query(creds))
        except PeerClosed as exc:
            raise Failed("the hub to accept the test client", describe_failure(exc)) from None
        hello, offer = await self.opening(peer)
        response, keys, iv = await self.handshake(
            peer, creds=creds, binarize=binarize, encodings=encodings, ciphers=ciphers
        )
        sid = session_id or self.session_id()
        ours = HiveMessage(
            MessageType.HELLO,
            {
                "pubkey": pubkey,
                "session": {"session_id": sid, "site_id": site_id},
                "site_id": site_id,
            },
        )
        if encrypted_hello:
            await peer.send(keys.seal(ours))
        else:
            await peer.send_plain(ours)
        return Session(peer, keys, hello, offer, response, sid, iv)

    # -- the echo contract ------------------------------------------------

    def echo_message(
        self, session: Session | None, data: dict[str, Any], kind: str = ECHO
    ) -> HiveMessage:
        """A BUS request of the echo contract."""
        context: dict[str, Any] = {"source": self.config.useragent, "destination": "HiveMind"}
        if session is not None:
            context["session"] = {"session_id": session.session_id, "site_id": "conformance"}
        return HiveMessage(MessageType.BUS, bus_message(kind, data, context))

    async def wait_reply(
        self,
        session: Session,
        kind: str = ECHO,
        timeout: float | None = None,  # noqa: ASYNC109
    ) -> HiveMessage | None:
        """Wait for ``<kind>.reply``; other messages go to the session backlog."""
        deadline = trio.current_time() + (timeout or self.config.reply_timeout)
        while (left := deadline - trio.current_time()) > 0:
            try:
                message = await session.recv(left)
            except trio.TooSlowError:
                return None
            if message.bus_type == kind + REPLY_SUFFIX:
                return message
            session.backlog.append(message)
        return None

    async def echo(self, session: Session, data: dict[str, Any] | None = None) -> HiveMessage:
        """Round-trip one echo request.

        Raises:
            Failed: no reply arrived.
        """
        data = data if data is not None else {"nonce": self.rng(8).hex()}
        await session.send(self.echo_message(session, data))
        try:
            reply = await self.wait_reply(session)
        except PeerClosed as exc:
            raise Failed("an echo reply", describe_failure(exc)) from None
        if reply is None:
            raise Failed("an echo reply (the echo contract, docs/spec §9.1)", "no reply")
        return reply

    def need(self, creds: Credentials | None, what: str) -> Credentials:
        """Return ``creds`` or skip the case."""
        if creds is None:
            raise Skipped(f"needs {what}")
        return creds


def reply_data(reply: HiveMessage) -> dict[str, Any]:
    """The ``data`` object of an echo reply."""
    payload = reply.payload
    assert isinstance(payload, dict)
    data = payload.get("data")
    return data if isinstance(data, dict) else {}


def _verified_iv(password: str, envelope: object, own_iv: bytes) -> bytes:
    try:
        return verify_envelope(password, envelope, own_iv=own_iv)
    except Exception:
        raise Failed("a hub envelope that verifies against the password", repr(envelope)) from None

"""One HiveMind connection, hub side or satellite side, with no I/O.

Theory of operation: the owner feeds every websocket message it reads to
``receive_frame`` and gets back a list of events; everything the connection
must send (its own handshake steps included) is queued and handed out by
``data_to_send``, which the owner drains after every call. The connection
never reads a clock and never draws randomness except through the ``rng``
it was given.

Every input first goes through the transition table in ``_state`` (one place
holds the rules); the handlers below then do the work of a legal transition.
Any failure moves the connection to ERROR and raises; from ERROR nothing more
is accepted or produced, so the protocol fails closed.

Hardening over the legacy wire (profile S), all without changing bytes:
the satellite's password envelope is verified before the hub answers (a wrong
password gets no envelope, close 1008); a reflected envelope is refused; the
RSA ``pubkey`` handshake is refused with a clear message; after keys exist,
cleartext frames other than HELLO and HANDSHAKE are refused; a hub HELLO is
never encrypted and a satellite accepts encrypted frames only when keyed.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Final, final

from ._ciphers import SessionKey
from ._envelope import HiveMessage
from ._errors import (
    CloseCode,
    DecryptionError,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)
from ._events import (
    ConnectionClosed,
    Event,
    HandshakeComplete,
    HelloReceived,
    MessageReceived,
    Profile,
)
from ._json_codec import encode_json
from ._negotiation import accept_selection, negotiate
from ._noise import (
    NoiseHandshake,
    NoisePattern,
    NoiseSuite,
    derive_psk,
    protocol_name,
)
from ._password import PasswordHandshake, derive_session_key, verify_envelope
from ._record import Frame, LegacyRecord, NoiseRecord, Record, Rng, parse_text_frame
from ._settings import HubSettings, SatelliteSettings
from ._state import Input, Role, State, allowed_states
from ._types import Cipher, MessageType, PayloadMarker, TextEncoding

_HANDSHAKE_TYPES: Final = frozenset({MessageType.HELLO, MessageType.HANDSHAKE})
_PAYLOAD_FORMATS: Final = {
    "msgpack": PayloadMarker.MSGPACK,
    "json": PayloadMarker.JSON,
    "wire1": PayloadMarker.WIRE1,
}


def canonical_json(obj: Any) -> bytes:
    """Sorted keys, no spaces, UTF-8: the byte form bound into the Noise prologue."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def noise_prologue(hello: Mapping[str, Any], offer: Mapping[str, Any], name: str) -> bytes:
    """Bind the cleartext negotiation (hub HELLO and HANDSHAKE offer) to the handshake."""
    return canonical_json(hello) + canonical_json(offer) + name.encode()


@final
class Connection:
    """A sans-IO HiveMind connection.

    Args:
        role: which end we are.
        settings: ``HubSettings`` for a hub, ``SatelliteSettings`` for a satellite.
        rng: source of random bytes (``os.urandom`` in production).
        psk_deriver: computes the Noise PSK from ``(password, node_id)`` when
            the settings hold none; injectable because argon2id is slow.

    Any exception other than ``LocalProtocolError``, ``RemoteProtocolError``
    and its subclasses is a bug.
    """

    def __init__(
        self,
        role: Role,
        settings: HubSettings | SatelliteSettings,
        *,
        rng: Rng,
        psk_deriver: Callable[[str, str], bytes] = derive_psk,
    ) -> None:
        expected = HubSettings if role is Role.HUB else SatelliteSettings
        if not isinstance(settings, expected):
            raise LocalProtocolError(f"a {role.value} connection needs {expected.__name__}")
        self.role: Final = role
        self._settings = settings
        self._rng = rng
        self._psk_deriver = psk_deriver
        self._state = State.IDLE if role is Role.HUB else State.AWAITING_HELLO
        self._outbox: list[Frame] = []
        self._held_for_rekey: list[HiveMessage] = []
        self._record: Record | None = None
        self._legacy: LegacyRecord | None = None
        self._profile: Profile | None = None
        self._hub_hello: Mapping[str, Any] = {}
        self._offer: Mapping[str, Any] = {}
        self._password_hs: PasswordHandshake | None = None
        self._noise_hs: NoiseHandshake | None = None
        self._noise_marker = PayloadMarker.MSGPACK
        if role is Role.HUB:
            assert isinstance(settings, HubSettings)
            if settings.crypto_key:
                self._install_legacy(
                    SessionKey.from_legacy_crypto_key(settings.crypto_key),
                    Cipher.AES_GCM,
                    TextEncoding.JSON_HEX,
                    binarize=False,
                )

    # -- public surface --------------------------------------------------

    @property
    def state(self) -> State:
        """The current state."""
        return self._state

    @property
    def profile(self) -> Profile | None:
        """How keys were agreed, once they are."""
        return self._profile

    @property
    def hub_hello(self) -> Mapping[str, Any]:
        """Satellite side: the hub's HELLO payload (empty until received)."""
        return self._hub_hello

    def data_to_send(self) -> list[Frame]:
        """Hand out (and forget) every frame queued for the peer."""
        frames, self._outbox = self._outbox, []
        return frames

    def start(self) -> None:
        """Hub: queue the HELLO and the HANDSHAKE offer.

        Raises:
            LocalProtocolError: not a hub, or already started.
        """
        with self._guard():
            self._advance(Input.START, State.OFFERED)
            settings = self._hub_settings
            self._offer = self._build_offer(settings)
            self._queue_plain(HiveMessage(MessageType.HELLO, dict(settings.hello)))
            self._queue_plain(HiveMessage(MessageType.HANDSHAKE, dict(self._offer)))

    def send(self, message: HiveMessage) -> None:
        """Queue ``message`` for the peer, sealed with the session keys.

        While a satellite re-keys, messages are held and sealed with the new
        key once the hub's response arrives: the hub switches keys as it
        answers, so a frame sealed with the old key and still in flight then
        could not be opened.

        Raises:
            LocalProtocolError: keys are not agreed yet, the state forbids
                sending, or the message is HELLO/HANDSHAKE (the connection
                sends those itself).
        """
        if message.msg_type in _HANDSHAKE_TYPES:
            raise LocalProtocolError("HELLO and HANDSHAKE are sent by the connection itself")
        with self._guard():
            self._advance(Input.SEND_MESSAGE, self._state)
            if self._state is State.REKEYING:
                self._held_for_rekey.append(message)
                return
            self._outbox.append(self._require_record().seal(message))

    def rekey(self) -> None:
        """Satellite, legacy profile: start a new password handshake.

        Raises:
            LocalProtocolError: not a ready legacy-password satellite.
        """
        if self._profile is not Profile.LEGACY_PASSWORD:
            raise LocalProtocolError("only legacy password sessions re-key by handshake")
        with self._guard():
            self._advance(Input.SEND_REKEY, State.REKEYING)
            self._queue_material()

    def close(self, code: int = CloseCode.NORMAL) -> ConnectionClosed:
        """Mark the connection closed; returns the event describing it."""
        allowed_states(self.role, self._state, Input.CLOSE)
        self._state = State.CLOSED
        self._outbox.clear()
        self._held_for_rekey.clear()
        return ConnectionClosed(int(code))

    def receive_frame(self, frame: Frame) -> list[Event]:
        """Process one websocket message from the peer.

        Returns:
            The events it produced, in order.

        Raises:
            RemoteProtocolError: the peer broke the protocol (``close_code``
                says how to close); ``DecryptionError`` for any frame that
                fails authentication.
        """
        if self._state in (State.ERROR, State.CLOSED):
            raise RemoteProtocolError(f"connection is {self._state.value}")
        with self._guard(remote=True):
            if len(frame) > self._settings.max_frame_bytes:
                raise RemoteProtocolError("frame too large", CloseCode.MESSAGE_TOO_BIG)
            message, encrypted = self._open(frame)
            return self._dispatch(message, encrypted)

    # -- frame decoding --------------------------------------------------

    def _open(self, frame: Frame) -> tuple[HiveMessage, bool]:
        if isinstance(frame, str):
            if self._profile is Profile.NOISE:
                raise RemoteProtocolError("text frames are not allowed after a Noise handshake")
            obj, encrypted = parse_text_frame(frame)
            if not encrypted:
                return HiveMessage.from_dict(obj), False
            if self._legacy is None:
                raise RemoteProtocolError("encrypted frame before keys were agreed")
            return self._legacy.open_text(obj), True
        if not isinstance(frame, bytes | bytearray | memoryview):
            raise LocalProtocolError("a frame is str (text) or bytes (binary)")
        if self._record is None:
            raise RemoteProtocolError("binary frame before keys were agreed")
        return self._record.open_binary(bytes(frame)), True

    def _dispatch(self, message: HiveMessage, encrypted: bool) -> list[Event]:
        inp = self._classify(message)
        if not encrypted:
            self._check_cleartext(inp)
        handler = _HANDLERS[inp]
        return handler(self, message, encrypted)

    def _classify(self, message: HiveMessage) -> Input:
        if message.msg_type is MessageType.HELLO:
            return Input.RECV_HELLO
        if message.msg_type is not MessageType.HANDSHAKE:
            return Input.RECV_MESSAGE
        payload = message.payload
        assert isinstance(payload, Mapping)
        noise = payload.get("noise")
        if isinstance(noise, Mapping) and "msg" in noise:
            return Input.RECV_NOISE
        if self.role is Role.HUB:
            return Input.RECV_MATERIAL
        return Input.RECV_RESPONSE if "envelope" in payload else Input.RECV_OFFER

    def _check_cleartext(self, inp: Input) -> None:
        if inp is Input.RECV_MESSAGE:
            raise RemoteProtocolError("cleartext messages are refused: encryption is required")
        if self._profile is Profile.NOISE:
            raise RemoteProtocolError("cleartext frames are refused after a Noise handshake")
        if self.role is Role.SATELLITE and inp is Input.RECV_HELLO and self._hub_hello:
            # a second cleartext hub HELLO could only come from a meddler
            raise RemoteProtocolError("unexpected cleartext HELLO")

    # -- handlers: both roles ----------------------------------------------

    def _on_message(self, message: HiveMessage, encrypted: bool) -> list[Event]:
        self._advance(Input.RECV_MESSAGE, self._state)
        return [MessageReceived(message, encrypted)]

    def _on_hello(self, message: HiveMessage, encrypted: bool) -> list[Event]:
        payload = message.payload
        assert isinstance(payload, Mapping)
        if self.role is Role.SATELLITE:
            return self._on_hub_hello(payload, encrypted)
        if self._state is State.OFFERED and not encrypted:
            raise RemoteProtocolError("a HELLO before the handshake must be encrypted")
        self._advance(Input.RECV_HELLO, State.READY)
        if self._profile is None:  # pre-shared key client that skipped the handshake
            self._profile = Profile.LEGACY_PRESHARED
        self._offer = {}  # only a handshake reads it: an idle hub connection keeps none
        return [HelloReceived(payload, encrypted)]

    # -- handlers: hub ------------------------------------------------------

    def _on_material(self, message: HiveMessage, encrypted: bool) -> list[Event]:
        settings = self._hub_settings
        payload = dict(message.payload)  # type: ignore[arg-type]
        target = State.KEYED if self._state is State.OFFERED else self._state
        self._advance(Input.RECV_MATERIAL, target)
        if "pubkey" in payload or "envelope" not in payload:
            raise RemoteProtocolError(
                "only the password handshake is supported (the RSA handshake is refused)"
            )
        if not settings.legacy_allowed or not settings.password:
            raise RemoteProtocolError("this client must use the Noise handshake")
        ours = PasswordHandshake(settings.password, self._fresh_iv(payload["envelope"]))
        client_iv = verify_envelope(settings.password, payload["envelope"], own_iv=ours.iv)
        selection = negotiate(
            payload,
            allowed_ciphers=settings.allowed_ciphers,
            allowed_encodings=settings.allowed_encodings,
            hub_binarize=settings.binarize,
        )
        response = {
            "envelope": ours.envelope,
            "encoding": selection.encoding.value,
            "cipher": selection.cipher.value,
        }
        self._queue_plain(HiveMessage(MessageType.HANDSHAKE, response))
        rekey = self._profile is not None
        key = derive_session_key(settings.password, ours.iv, client_iv)
        self._install_legacy(key, selection.cipher, selection.encoding, selection.binarize)
        self._profile = Profile.LEGACY_PASSWORD
        return [
            HandshakeComplete(
                Profile.LEGACY_PASSWORD,
                cipher=selection.cipher,
                encoding=selection.encoding,
                binarize=selection.binarize,
                rekey=rekey,
            )
        ]

    def _fresh_iv(self, envelope: object) -> bytes:
        """Draw our IV, never equal to the peer's (that would zero the salt)."""
        for _ in range(4):
            iv = self._rng(8)
            if not isinstance(envelope, str) or not envelope.lower().startswith(iv.hex()):
                return iv
        raise LocalProtocolError("the random source keeps repeating the peer's IV")

    def _on_noise(self, message: HiveMessage, encrypted: bool) -> list[Event]:
        noise = message.payload.get("noise")  # type: ignore[union-attr]
        if not isinstance(noise, Mapping) or not isinstance(noise.get("msg"), str):
            raise RemoteProtocolError("malformed Noise handshake message")
        try:
            raw = bytes.fromhex(noise["msg"])
        except ValueError:
            raise RemoteProtocolError("malformed Noise handshake message") from None
        if self.role is Role.HUB:
            return self._hub_noise(noise, raw)
        return self._satellite_noise(raw)

    def _hub_noise(self, noise: Mapping[str, Any], raw: bytes) -> list[Event]:
        if self._noise_hs is None:
            return self._hub_noise_first(noise, raw)
        self._advance(Input.RECV_NOISE, State.KEYED)
        self._noise_hs.read_message(raw)
        return self._noise_done()

    def _hub_noise_first(self, noise: Mapping[str, Any], raw: bytes) -> list[Event]:
        settings = self._hub_settings
        identity = settings.noise
        if identity is None:
            raise RemoteProtocolError("this hub does not offer Noise")
        pattern = _enum(NoisePattern, noise.get("pattern"))
        suite = _enum(NoiseSuite, noise.get("suite"))
        offered = self._offer.get("noise")
        if (
            not isinstance(offered, Mapping)
            or pattern.value not in offered["patterns"]
            or suite not in identity.suites
        ):
            raise RemoteProtocolError("Noise pattern or suite not offered")
        done = pattern is NoisePattern.KKpsk0
        self._advance(Input.RECV_NOISE, State.KEYED if done else State.NOISE_HANDSHAKE)
        assert settings.password is not None
        psk = identity.psk or self._psk_deriver(settings.password, settings.hello["node_id"])
        hs = NoiseHandshake(
            pattern,
            suite,
            initiator=False,
            static=identity.static,
            psk=psk,
            prologue=noise_prologue(settings.hello, self._offer, protocol_name(pattern, suite)),
            rng=self._rng,
            remote_static=identity.pinned_peer if done else None,
        )
        self._noise_hs = hs
        request = _json_object(hs.read_message(raw))
        self._noise_marker = _pick_payload_format(request.get("payload_formats"))
        reply = {"encoding": "msgpack", "payload_format": _format_name(self._noise_marker)}
        self._queue_plain(
            HiveMessage(MessageType.HANDSHAKE, {"noise": {"msg": _hex_json(hs, reply)}})
        )
        return self._noise_done() if done else []

    def _noise_done(self) -> list[Event]:
        hs = self._noise_hs
        assert hs is not None
        assert hs.complete
        identity = self._settings.noise
        assert identity is not None
        remote = hs.remote_static
        if identity.pinned_peer is not None and remote != identity.pinned_peer:
            raise RemoteProtocolError("the peer's Noise key contradicts its pin")
        self._record = NoiseRecord(hs.split(), self._noise_marker)
        self._legacy = None
        self._noise_hs = None
        self._profile = Profile.NOISE
        if self.role is Role.SATELLITE:
            self._send_own_hello()
        return [
            HandshakeComplete(
                Profile.NOISE,
                noise_protocol=protocol_name(hs.pattern, hs.suite),
                remote_static=remote.hex() if remote is not None else None,
            )
        ]

    # -- handlers: satellite ------------------------------------------------

    def _on_hub_hello(self, payload: Mapping[str, Any], encrypted: bool) -> list[Event]:
        if self._state is State.AWAITING_HELLO:
            if encrypted:
                raise RemoteProtocolError("the hub HELLO is never encrypted")
            if not isinstance(payload.get("node_id"), str):
                raise RemoteProtocolError("the hub HELLO has no node_id")
            self._advance(Input.RECV_HELLO, State.AWAITING_OFFER)
            self._hub_hello = payload
        else:
            self._advance(Input.RECV_HELLO, self._state)
        return [HelloReceived(payload, encrypted)]

    def _on_offer(self, message: HiveMessage, encrypted: bool) -> list[Event]:
        settings = self._satellite_settings
        offer = message.payload
        assert isinstance(offer, Mapping)
        self._offer = offer
        if settings.noise is not None and isinstance(offer.get("noise"), Mapping):
            self._advance(Input.RECV_OFFER, State.NOISE_HANDSHAKE)
            self._start_noise(settings, offer["noise"])
            return []
        if settings.require_noise:
            raise RemoteProtocolError("the hub does not offer the Noise handshake")
        if offer.get("password") is False and settings.crypto_key:
            self._advance(Input.RECV_OFFER, State.READY)
            key = SessionKey.from_legacy_crypto_key(settings.crypto_key)
            self._install_legacy(key, Cipher.AES_GCM, TextEncoding.JSON_HEX, binarize=False)
            self._profile = Profile.LEGACY_PRESHARED
            self._send_own_hello()
            return [
                HandshakeComplete(Profile.LEGACY_PRESHARED, Cipher.AES_GCM, TextEncoding.JSON_HEX)
            ]
        self._advance(Input.RECV_OFFER, State.AWAITING_RESPONSE)
        self._queue_material()
        return []

    def _queue_material(self) -> None:
        settings = self._satellite_settings
        self._password_hs = PasswordHandshake(settings.password, self._rng(8))
        material = {
            "binarize": settings.binarize,
            "encodings": [e.value for e in settings.encodings],
            "ciphers": [c.value for c in settings.ciphers],
            "envelope": self._password_hs.envelope,
        }
        self._queue_plain(HiveMessage(MessageType.HANDSHAKE, material))

    def _on_response(self, message: HiveMessage, encrypted: bool) -> list[Event]:
        settings = self._satellite_settings
        payload = message.payload
        assert isinstance(payload, Mapping)
        rekey = self._state is State.REKEYING
        self._advance(Input.RECV_RESPONSE, State.READY)
        hs = self._password_hs
        if hs is None:
            raise RemoteProtocolError("unexpected handshake response")
        key = hs.complete(payload.get("envelope"))
        cipher, encoding = accept_selection(payload, settings.ciphers, settings.encodings)
        binarize = settings.binarize and self._offer.get("binarize") is True
        self._install_legacy(key, cipher, encoding, binarize)
        self._password_hs = None
        self._profile = Profile.LEGACY_PASSWORD
        if not rekey:
            self._send_own_hello()
        held, self._held_for_rekey = self._held_for_rekey, []
        record = self._require_record()
        self._outbox.extend(record.seal(m) for m in held)
        return [HandshakeComplete(Profile.LEGACY_PASSWORD, cipher, encoding, binarize, rekey=rekey)]

    def _start_noise(self, settings: SatelliteSettings, offered: Mapping[str, Any]) -> None:
        identity = settings.noise
        assert identity is not None
        patterns = offered.get("patterns") or []
        suites = offered.get("suites") or []
        use_kk = identity.pinned_peer is not None and NoisePattern.KKpsk0.value in patterns
        pattern = NoisePattern.KKpsk0 if use_kk else NoisePattern.XXpsk2
        if pattern.value not in patterns:
            raise RemoteProtocolError("the hub offers no Noise pattern we speak")
        suite = next((s for s in identity.suites if s.value in suites), None)
        if suite is None:
            raise RemoteProtocolError("the hub offers no Noise suite we accept")
        node_id = self._hub_hello["node_id"]
        psk = identity.psk or self._psk_deriver(settings.password, node_id)
        name = protocol_name(pattern, suite)
        hs = NoiseHandshake(
            pattern,
            suite,
            initiator=True,
            static=identity.static,
            psk=psk,
            prologue=noise_prologue(self._hub_hello, self._offer, name),
            rng=self._rng,
            remote_static=identity.pinned_peer if use_kk else None,
        )
        self._noise_hs = hs
        request = {
            "binarize": settings.binarize,
            "encodings": [e.value for e in settings.encodings],
            "payload_formats": list(_PAYLOAD_FORMATS),
        }
        noise = {"pattern": pattern.value, "suite": suite.value, "msg": _hex_json(hs, request)}
        self._queue_plain(HiveMessage(MessageType.HANDSHAKE, {"noise": noise}))

    def _satellite_noise(self, raw: bytes) -> list[Event]:
        hs = self._noise_hs
        self._advance(Input.RECV_NOISE, State.READY)
        if hs is None:
            raise RemoteProtocolError("unexpected Noise message")
        reply = _json_object(hs.read_message(raw))
        self._noise_marker = _PAYLOAD_FORMATS.get(reply.get("payload_format"), PayloadMarker.JSON)
        if not hs.complete:
            self._queue_plain(
                HiveMessage(MessageType.HANDSHAKE, {"noise": {"msg": hs.write_message().hex()}})
            )
        return self._noise_done()

    def _send_own_hello(self) -> None:
        hello = HiveMessage(MessageType.HELLO, dict(self._satellite_settings.hello))
        self._outbox.append(self._require_record().seal(hello))

    # -- plumbing -----------------------------------------------------------

    def _advance(self, inp: Input, target: State) -> None:
        outcomes = allowed_states(self.role, self._state, inp)
        if target not in outcomes:
            raise AssertionError(f"{inp} cannot lead from {self._state} to {target}")
        self._state = target

    def _install_legacy(
        self, key: SessionKey, cipher: Cipher, encoding: TextEncoding, binarize: bool
    ) -> None:
        self._legacy = LegacyRecord(cipher, key, encoding, binarize, self._rng)
        self._record = self._legacy

    def _require_record(self) -> Record:
        if self._record is None:
            raise LocalProtocolError("no keys yet: messages can be sent once the handshake is done")
        return self._record

    def _queue_plain(self, message: HiveMessage) -> None:
        self._outbox.append(encode_json(message))

    def _build_offer(self, settings: HubSettings) -> dict[str, Any]:
        offer: dict[str, Any] = {
            "handshake": True,
            "min_protocol_version": 1 if settings.legacy_allowed else 3,
            "max_protocol_version": 3 if settings.noise is not None else 1,
            "binarize": settings.binarize,
            "preshared_key": bool(settings.crypto_key),
            "password": bool(settings.password) and settings.legacy_allowed,
            "crypto_required": True,
            "encodings": [e.value for e in settings.allowed_encodings],
            "ciphers": [c.value for c in settings.allowed_ciphers],
        }
        if settings.noise is not None:
            patterns = [NoisePattern.XXpsk2.value]
            if settings.noise.pinned_peer is not None:
                patterns.insert(0, NoisePattern.KKpsk0.value)
            offer["noise"] = {
                "patterns": patterns,
                "suites": [s.value for s in settings.noise.suites],
            }
        return offer

    @property
    def _hub_settings(self) -> HubSettings:
        if not isinstance(self._settings, HubSettings):
            raise LocalProtocolError("only a hub does this")
        return self._settings

    @property
    def _satellite_settings(self) -> SatelliteSettings:
        if not isinstance(self._settings, SatelliteSettings):
            raise LocalProtocolError("only a satellite does this")
        return self._settings

    def _guard(self, remote: bool = False) -> _Guard:
        return _Guard(self, remote)


class _Guard:
    """Moves the connection to ERROR when the guarded block raises.

    On the receiving path a ``LocalProtocolError`` raised while decoding peer
    data (an impossible message) is the peer's fault and is re-raised as a
    ``RemoteProtocolError``.
    """

    __slots__ = ("_conn", "_remote")

    def __init__(self, conn: Connection, remote: bool) -> None:
        self._conn = conn
        self._remote = remote

    def __enter__(self) -> None:
        if self._conn._state is State.ERROR:
            raise LocalProtocolError("the connection has failed")

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:
        if exc is None:
            return
        self._conn._state = State.ERROR
        self._conn._outbox.clear()
        self._conn._record = self._conn._legacy = None
        if self._remote and isinstance(exc, LocalProtocolError):
            raise RemoteProtocolError(str(exc)) from None


def _enum(kind: type[NoisePattern] | type[NoiseSuite], value: Any) -> Any:
    try:
        return kind(value)
    except ValueError:
        raise RemoteProtocolError(f"unknown Noise {kind.__name__} {value!r}") from None


def _json_object(raw: bytes) -> dict[str, Any]:
    try:
        obj = json.loads(raw) if raw else {}
    except ValueError:
        raise RemoteProtocolError("malformed Noise handshake payload") from None
    if not isinstance(obj, dict):
        raise RemoteProtocolError("malformed Noise handshake payload")
    return obj


def _hex_json(hs: NoiseHandshake, payload: Mapping[str, Any]) -> str:
    return hs.write_message(canonical_json(payload)).hex()


def _pick_payload_format(offered: Any) -> PayloadMarker:
    if isinstance(offered, list):
        for name in offered:
            if isinstance(name, str) and name in _PAYLOAD_FORMATS:
                return _PAYLOAD_FORMATS[name]
    return PayloadMarker.JSON


def _format_name(marker: PayloadMarker) -> str:
    return next(name for name, m in _PAYLOAD_FORMATS.items() if m is marker)


_HANDLERS: Final[dict[Input, Callable[[Connection, HiveMessage, bool], list[Event]]]] = {
    Input.RECV_HELLO: Connection._on_hello,
    Input.RECV_MESSAGE: Connection._on_message,
    Input.RECV_MATERIAL: Connection._on_material,
    Input.RECV_NOISE: Connection._on_noise,
    Input.RECV_OFFER: Connection._on_offer,
    Input.RECV_RESPONSE: Connection._on_response,
}

__all__ = ["Connection", "DecryptionError", "ProtocolError", "canonical_json", "noise_prologue"]

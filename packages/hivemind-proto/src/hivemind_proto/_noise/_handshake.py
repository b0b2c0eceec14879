"""The Noise HandshakeState (revision 34, §5.3) as one table-driven interpreter.

Theory of operation: ``PATTERNS`` (in ``_patterns.py``) lists each message's
tokens; ``write_message`` and ``read_message`` walk the current message's
tokens in order and then seal or open the payload. Messages alternate, the
initiator sending the even-numbered ones; calling the wrong method for the
current turn is a ``LocalProtocolError`` and changes nothing.

Everything that can fail while reading is the peer's doing: a message too
short for its tokens is a ``RemoteProtocolError``, and anything cryptographic
(a tag that does not verify because of a wrong PSK, a wrong static key or a
tampered prologue; a low-order public key; a static key other than the pinned
one) is a ``DecryptionError`` with no detail. Any failure, on either path,
is fatal: the object refuses all later calls, because its hash and chaining
key have already absorbed part of a bad message.

When the handshake completes, ``split`` hands the two transport ciphers to a
``NoiseTransport`` exactly once (a second transport with the same keys would
reuse nonces) and drops the handshake secrets.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import final

from .._errors import CloseCode, DecryptionError, LocalProtocolError, RemoteProtocolError
from ._keys import NoisePublicKey, Rng, StaticKeypair, random_bytes
from ._patterns import (
    PATTERNS,
    NoisePattern,
    PatternSpec,
    Token,
    coerce_pattern,
    coerce_suite,
    protocol_name,
)
from ._primitives import DHLEN, MAX_MESSAGE_LEN, TAGLEN, NoiseSuite, is_low_order
from ._symmetric import SymmetricState
from ._transport import NoiseTransport

#: Length of a pre-shared key.
PSK_LEN = 32


class _Cursor:
    """Consumes a received message field by field."""

    __slots__ = ("_data", "_pos")

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def take(self, n: int) -> bytes:
        end = self._pos + n
        if end > len(self._data):
            raise RemoteProtocolError("truncated Noise handshake message")
        chunk = self._data[self._pos : end]
        self._pos = end
        return chunk

    def rest(self) -> bytes:
        return self._data[self._pos :]


def _remote_key(raw: bytes) -> NoisePublicKey:
    """Accept a public key received from the peer, refusing low-order points."""
    if is_low_order(raw):
        raise DecryptionError
    return NoisePublicKey._trusted(raw)


@final
class NoiseHandshake:
    """One side of a Noise handshake (``XXpsk2`` or ``KKpsk0``).

    Any exception other than those listed in the methods' Raises sections is a
    bug.
    """

    __slots__ = (
        "_e",
        "_expected_rs",
        "_failed",
        "_hash",
        "_index",
        "_initiator",
        "_pattern",
        "_psk",
        "_re",
        "_rng",
        "_rs",
        "_s",
        "_spec",
        "_suite",
        "_sym",
    )

    def __init__(
        self,
        pattern: NoisePattern,
        suite: NoiseSuite,
        *,
        initiator: bool,
        static: StaticKeypair,
        psk: bytes,
        prologue: bytes,
        rng: Rng,
        remote_static: NoisePublicKey | None = None,
    ) -> None:
        """Prepare one side of a handshake.

        Args:
            pattern: ``XXpsk2`` or ``KKpsk0``.
            suite: the cipher suite.
            initiator: whether this side sends the first message.
            static: this side's long-term keypair.
            psk: the 32-byte pre-shared key (see ``derive_psk``).
            prologue: bytes both sides must agree on (the cleartext negotiation).
            rng: returns ``n`` random bytes; used once, for the ephemeral key.
            remote_static: the peer's static key. Required for ``KKpsk0``; for
                ``XXpsk2`` it is optional and, when given, the key the peer
                proves must equal it (a pinned key).

        Raises:
            LocalProtocolError: an argument is invalid or ``KKpsk0`` lacks
                ``remote_static``.
        """
        self._pattern = coerce_pattern(pattern)
        self._suite = coerce_suite(suite)
        self._spec: PatternSpec = PATTERNS[self._pattern]
        _check_arguments(static, psk, prologue, remote_static)
        if remote_static is None and self._spec.needs_remote_static(initiator):
            raise LocalProtocolError(f"{self._pattern.value} needs the peer's static key")
        self._initiator = bool(initiator)
        self._s = static
        self._psk: bytes | None = psk
        self._rng = rng
        self._expected_rs = remote_static
        known = self._spec.needs_remote_static(self._initiator)
        self._rs: NoisePublicKey | None = remote_static if known else None
        self._e: StaticKeypair | None = None
        self._re: NoisePublicKey | None = None
        self._index = 0
        self._failed = False
        self._hash: bytes | None = None
        name = protocol_name(self._pattern, self._suite).encode("ascii")
        self._sym: SymmetricState | None = SymmetricState(name, self._suite)
        self._sym.mix_hash(prologue)
        self._mix_premessages()

    # -- public state -------------------------------------------------------

    @property
    def pattern(self) -> NoisePattern:
        """The handshake pattern."""
        return self._pattern

    @property
    def suite(self) -> NoiseSuite:
        """The cipher suite."""
        return self._suite

    @property
    def initiator(self) -> bool:
        """Whether this side sends the first message."""
        return self._initiator

    @property
    def complete(self) -> bool:
        """Whether every handshake message has been written or read."""
        return not self._failed and self._index == len(self._spec.messages)

    @property
    def our_turn(self) -> bool:
        """Whether the next step is ``write_message`` (False once complete)."""
        if self._index >= len(self._spec.messages):
            return False
        return (self._index % 2 == 0) == self._initiator

    @property
    def remote_static(self) -> NoisePublicKey | None:
        """The peer's static key: known up front (KK) or once proven (XX), else None."""
        return None if self._failed else self._rs

    @property
    def handshake_hash(self) -> bytes:
        """The final handshake hash, equal on both sides.

        Raises:
            LocalProtocolError: the handshake is not complete.
        """
        if self._hash is None or self._failed:
            raise LocalProtocolError("the handshake hash exists only once the handshake completes")
        return self._hash

    # -- messages ------------------------------------------------------------

    def write_message(self, payload: bytes = b"") -> bytes:
        """Produce the next handshake message.

        Args:
            payload: bytes to carry (encrypted in both supported patterns).

        Returns:
            The message to send to the peer.

        Raises:
            LocalProtocolError: it is the peer's turn, the handshake is complete
                or has failed, the payload does not fit in 65535 bytes, or
                ``rng`` misbehaved.
        """
        tokens = self._turn_tokens(writing=True)
        if len(payload) > MAX_MESSAGE_LEN - _overhead(tokens):
            raise LocalProtocolError("handshake payload too long for one Noise message")
        with self._fatal():
            parts = [self._write_token(token) for token in tokens]
            parts.append(self._symmetric.encrypt_and_hash(bytes(payload)))
            self._advance()
        return b"".join(parts)

    def read_message(self, message: bytes) -> bytes:
        """Consume the peer's next handshake message.

        Args:
            message: the message exactly as received.

        Returns:
            The payload the peer attached.

        Raises:
            DecryptionError: authentication failed (wrong PSK or static key,
                tampered prologue or message, low-order or unexpected key).
            RemoteProtocolError: the message is too short or too long.
            LocalProtocolError: it is our turn to write, or the handshake is
                complete or has failed.
        """
        tokens = self._turn_tokens(writing=False)
        with self._fatal():
            if len(message) > MAX_MESSAGE_LEN:
                raise RemoteProtocolError("Noise message too long", CloseCode.MESSAGE_TOO_BIG)
            cursor = _Cursor(bytes(message))
            for token in tokens:
                self._read_token(token, cursor)
            payload = self._symmetric.decrypt_and_hash(cursor.rest())
            self._advance()
        return payload

    def split(self) -> NoiseTransport:
        """Hand over to the transport phase (once, after the last message).

        Returns:
            The transport for this side.

        Raises:
            LocalProtocolError: the handshake is incomplete or failed, or
                ``split`` was already called.
        """
        if not self.complete or self._sym is None:
            raise LocalProtocolError("split needs a complete handshake and works only once")
        first, second = self._sym.split()
        send, recv = (first, second) if self._initiator else (second, first)
        assert self._hash is not None
        transport = NoiseTransport(send, recv, self._hash)
        self._sym = None
        self._psk = None
        return transport

    def __repr__(self) -> str:
        role = "initiator" if self._initiator else "responder"
        return (
            f"NoiseHandshake({self._pattern.value}, {self._suite.value}, {role}, "
            f"message={self._index}, complete={self.complete}, failed={self._failed})"
        )

    # -- interpreter ---------------------------------------------------------

    @property
    def _symmetric(self) -> SymmetricState:
        assert self._sym is not None
        return self._sym

    def _turn_tokens(self, *, writing: bool) -> tuple[Token, ...]:
        """The tokens of the current message, after checking whose turn it is."""
        if self._failed:
            raise LocalProtocolError("the handshake failed earlier and cannot be used")
        if self._index >= len(self._spec.messages):
            raise LocalProtocolError("the handshake is already complete")
        if writing and not self.our_turn:
            raise LocalProtocolError("it is the peer's turn to send a handshake message")
        if not writing and self.our_turn:
            raise LocalProtocolError("it is this side's turn to write a handshake message")
        return self._spec.messages[self._index]

    @contextmanager
    def _fatal(self) -> Iterator[None]:
        """Mark the handshake failed if the body raises anything."""
        try:
            yield
        except BaseException:
            self._failed = True
            self._sym = None
            self._psk = None
            self._e = None
            raise

    def _mix_premessages(self) -> None:
        # Pre-messages are hashed initiator first; only ``s`` occurs in them.
        for pre_is_initiator, tokens in (
            (True, self._spec.initiator_pre),
            (False, self._spec.responder_pre),
        ):
            for token in tokens:
                assert token is Token.S
                key = self._s.public if pre_is_initiator == self._initiator else self._rs
                assert key is not None
                self._symmetric.mix_hash(bytes(key))

    def _write_token(self, token: Token) -> bytes:
        sym = self._symmetric
        match token:
            case Token.E:
                self._e = StaticKeypair(random_bytes(self._rng, DHLEN))
                raw = bytes(self._e.public)
                sym.mix_hash(raw)
                if self._spec.psk_mode:
                    sym.mix_key(raw)
                return raw
            case Token.S:
                return sym.encrypt_and_hash(bytes(self._s.public))
            case Token.PSK:
                assert self._psk is not None
                sym.mix_key_and_hash(self._psk)
                return b""
            case _:
                self._mix_dh(token)
                return b""

    def _read_token(self, token: Token, cursor: _Cursor) -> None:
        sym = self._symmetric
        match token:
            case Token.E:
                raw = cursor.take(DHLEN)
                self._re = _remote_key(raw)
                sym.mix_hash(raw)
                if self._spec.psk_mode:
                    sym.mix_key(raw)
            case Token.S:
                size = DHLEN + (TAGLEN if sym.has_key else 0)
                key = _remote_key(sym.decrypt_and_hash(cursor.take(size)))
                if self._expected_rs is not None and key != self._expected_rs:
                    raise DecryptionError
                self._rs = key
            case Token.PSK:
                assert self._psk is not None
                sym.mix_key_and_hash(self._psk)
            case _:
                self._mix_dh(token)

    def _mix_dh(self, token: Token) -> None:
        """MixKey(DH(...)) for ``ee``, ``es``, ``se`` and ``ss``."""
        init = self._initiator
        match token:
            case Token.EE:
                local, remote = self._e, self._re
            case Token.ES:
                local, remote = (self._e, self._rs) if init else (self._s, self._re)
            case Token.SE:
                local, remote = (self._s, self._re) if init else (self._e, self._rs)
            case Token.SS:
                local, remote = self._s, self._rs
            case _:
                raise AssertionError(token)
        assert local is not None
        assert remote is not None
        self._symmetric.mix_key(local.dh(remote))

    def _advance(self) -> None:
        self._index += 1
        if self._index == len(self._spec.messages):
            self._hash = self._symmetric.handshake_hash
            self._e = None
            self._re = None


def _overhead(tokens: tuple[Token, ...]) -> int:
    """Upper bound of a message's length beyond its payload."""
    size = TAGLEN
    for token in tokens:
        if token is Token.E:
            size += DHLEN
        elif token is Token.S:
            size += DHLEN + TAGLEN
    return size


def _check_arguments(
    static: StaticKeypair,
    psk: bytes,
    prologue: bytes,
    remote_static: NoisePublicKey | None,
) -> None:
    if not isinstance(static, StaticKeypair):
        raise LocalProtocolError("static must be a StaticKeypair")
    if not isinstance(psk, bytes) or len(psk) != PSK_LEN:
        raise LocalProtocolError(f"the PSK must be {PSK_LEN} bytes")
    if not isinstance(prologue, bytes):
        raise LocalProtocolError("the prologue must be bytes")
    if remote_static is not None and not isinstance(remote_static, NoisePublicKey):
        raise LocalProtocolError("remote_static must be a NoisePublicKey")

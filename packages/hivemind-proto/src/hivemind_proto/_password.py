"""The legacy password handshake ("hSub").

Theory of operation: each side draws an 8-byte IV and sends the envelope
``hex(iv || SHA-256(iv || password))[:48]``. A receiver checks the peer's
envelope by recomputing it from the IV it carries (constant-time compare),
refuses an envelope whose IV equals its own (a reflected envelope would make
the salt all zeros), and both sides derive the session key
``PBKDF2-HMAC-SHA256(password, iv_a XOR iv_b, 100000, 32)``.

The envelope is an offline-crackable verifier (spec weakness W3): it is kept
only for compatibility with released clients; profile N replaces it.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from typing import Final, final

from ._ciphers import SessionKey
from ._errors import LocalProtocolError, RemoteProtocolError

IV_SIZE: Final = 8
ENVELOPE_HEX_LEN: Final = 48
ENVELOPE_MIN_HEX: Final = 48
ENVELOPE_MAX_HEX: Final = 80
PBKDF2_ITERATIONS: Final = 100_000
_HEX_DIGITS: Final = frozenset("0123456789abcdefABCDEF")


def make_envelope(password: str, iv: bytes, hex_len: int = ENVELOPE_HEX_LEN) -> str:
    """Return the hSub envelope for ``password`` and ``iv``."""
    if len(iv) != IV_SIZE:
        raise LocalProtocolError("the handshake IV must be 8 bytes")
    digest = hashlib.sha256(iv + password.encode("utf-8")).digest()
    return (iv + digest).hex()[:hex_len]


def envelope_iv(envelope: object) -> bytes:
    """Validate an envelope's shape and return its IV.

    Raises:
        RemoteProtocolError: not a string of 48 to 80 hex digits.
    """
    if not isinstance(envelope, str) or not ENVELOPE_MIN_HEX <= len(envelope) <= ENVELOPE_MAX_HEX:
        raise RemoteProtocolError("malformed handshake envelope")
    if not _HEX_DIGITS.issuperset(envelope):
        raise RemoteProtocolError("malformed handshake envelope")
    return bytes.fromhex(envelope[: 2 * IV_SIZE])


def verify_envelope(password: str, envelope: object, own_iv: bytes | None = None) -> bytes:
    """Check a peer envelope against ``password``; return the peer IV.

    Raises:
        RemoteProtocolError: malformed, reflected, or made with another password.
            The message does not say which.
    """
    peer_iv = envelope_iv(envelope)
    assert isinstance(envelope, str)
    expected = make_envelope(password, peer_iv, ENVELOPE_MAX_HEX)[: len(envelope)]
    matches = hmac.compare_digest(expected.encode(), envelope.lower().encode())
    reflected = own_iv is not None and hmac.compare_digest(peer_iv, own_iv)
    if not matches or reflected:
        raise RemoteProtocolError("handshake authentication failed")
    return peer_iv


def derive_session_key(password: str, iv_a: bytes, iv_b: bytes) -> SessionKey:
    """Derive the 32-byte session key from both IVs (order does not matter)."""
    salt = bytes(a ^ b for a, b in zip(iv_a, iv_b, strict=True))
    raw = hashlib.pbkdf2_hmac("sha256", password.encode("utf-8"), salt, PBKDF2_ITERATIONS)
    return SessionKey(raw)


@final
@dataclass(slots=True)
class PasswordHandshake:
    """One side of a password handshake: our IV, our envelope, the key once known."""

    password: str = field(repr=False)
    iv: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.password, str) or not self.password:
            raise LocalProtocolError("the password handshake needs a non-empty password")
        if len(self.iv) != IV_SIZE:
            raise LocalProtocolError("the handshake IV must be 8 bytes")

    @property
    def envelope(self) -> str:
        """Our envelope, to send to the peer."""
        return make_envelope(self.password, self.iv)

    def complete(self, peer_envelope: object) -> SessionKey:
        """Verify the peer envelope and derive the session key.

        Raises:
            RemoteProtocolError: the peer envelope does not verify.
        """
        peer_iv = verify_envelope(self.password, peer_envelope, own_iv=self.iv)
        return derive_session_key(self.password, self.iv, peer_iv)

"""Session keys and the two legacy per-frame AEAD ciphers.

Theory of operation
-------------------
The legacy wire (profile L) seals every frame with one symmetric key used in
both directions, a fresh random nonce per frame and no associated data:

* ``AES-GCM`` with a **16-byte** nonce. GCM accepts nonces other than 96 bits
  by hashing them into the initial counter block (GHASH); libsodium does not
  offer that, so this cipher runs on ``cryptography``'s ``AESGCM``. Keys are
  16 (the legacy pre-shared ``crypto_key``), 24 or 32 bytes (handshake keys).
* ``CHACHA20-POLY1305`` (RFC 8439) with a 12-byte nonce and a 32-byte key,
  through libsodium (pynacl's bindings).

Both produce a 16-byte tag. A ``SessionKey`` wraps the key bytes so they never
show up in a repr or a log line, compares in constant time, and keeps its own
``AESGCM`` object so the AES key schedule is computed once per key, not once
per frame (no global cache ever holds key material).

Opening fails with ``DecryptionError`` and nothing else, whatever went wrong:
wrong key, altered bytes, a nonce of the wrong size, a key the cipher cannot
use. Sealing with a key or nonce the cipher cannot use is the caller's
mistake and raises ``LocalProtocolError``.
"""

from __future__ import annotations

import hmac
from typing import final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nacl._sodium import ffi as _ffi  # pynacl's own cffi binding of libsodium
from nacl._sodium import lib as _sodium

from ._errors import DecryptionError, LocalProtocolError
from ._types import Cipher

__all__ = [
    "TAG_SIZE",
    "SessionKey",
    "aead_open",
    "aead_seal",
    "nonce_size",
]

#: Authentication tag length of both ciphers, in bytes.
TAG_SIZE = 16

_NONCE_SIZES = {Cipher.AES_GCM: 16, Cipher.CHACHA20_POLY1305: 12}
_KEY_SIZES = {Cipher.AES_GCM: frozenset({16, 24, 32}), Cipher.CHACHA20_POLY1305: frozenset({32})}
_ALL_KEY_SIZES = frozenset({16, 24, 32})
_LEGACY_KEY_CHARS = 16


@final
class SessionKey:
    """Key material of one legacy session.

    The bytes are only reachable through ``raw``; ``repr`` shows the length
    alone, and equality runs in constant time. Instances are not hashable, so
    they cannot end up as dictionary keys by accident.

    Args:
        raw: 16, 24 or 32 key bytes (AES-GCM); ChaCha20-Poly1305 needs 32.

    Raises:
        LocalProtocolError: ``raw`` is not bytes of a valid length.
    """

    __slots__ = ("_aesgcm", "_raw")

    def __init__(self, raw: bytes) -> None:
        if not isinstance(raw, bytes | bytearray) or len(raw) not in _ALL_KEY_SIZES:
            raise LocalProtocolError("a session key is 16, 24 or 32 bytes")
        self._raw = bytes(raw)
        self._aesgcm: AESGCM | None = None

    @classmethod
    def from_legacy_crypto_key(cls, text: str) -> SessionKey:
        """Build the key of a legacy pre-shared ``crypto_key``.

        The stored key is a 16-character string used as its UTF-8 bytes, so
        it selects AES-128-GCM (ChaCha20-Poly1305 cannot use it).

        Args:
            text: the client's ``crypto_key`` as stored.

        Returns:
            The session key.

        Raises:
            LocalProtocolError: ``text`` is not 16 characters whose UTF-8
                encoding is 16 bytes.
        """
        if not isinstance(text, str) or len(text) != _LEGACY_KEY_CHARS:
            raise LocalProtocolError("a legacy crypto_key is exactly 16 characters")
        raw = text.encode("utf-8")
        if len(raw) != _LEGACY_KEY_CHARS:
            raise LocalProtocolError("a legacy crypto_key must be 16 ASCII characters")
        return cls(raw)

    @property
    def raw(self) -> bytes:
        """The key bytes. Handle with care: never log them."""
        return self._raw

    def supports(self, cipher: Cipher) -> bool:
        """Whether ``cipher`` can run with this key's length.

        Args:
            cipher: a legacy cipher.

        Returns:
            True when the key length suits the cipher.
        """
        return len(self._raw) in _KEY_SIZES[cipher]

    def _aes(self) -> AESGCM:
        aes = self._aesgcm
        if aes is None:
            aes = self._aesgcm = AESGCM(self._raw)
        return aes

    def __repr__(self) -> str:
        return f"SessionKey(<{len(self._raw)} bytes>)"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SessionKey):
            return NotImplemented
        return hmac.compare_digest(self._raw, other._raw)

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> object:
        raise TypeError("session keys are not picklable")


def nonce_size(cipher: Cipher) -> int:
    """Nonce length of a legacy cipher.

    Args:
        cipher: the cipher.

    Returns:
        16 for AES-GCM (the legacy wire's non-standard size), 12 for
        ChaCha20-Poly1305.
    """
    return _NONCE_SIZES[cipher]


def _check_seal_inputs(cipher: Cipher, key: SessionKey, nonce: bytes) -> None:
    if not key.supports(cipher):
        raise LocalProtocolError(f"{cipher.value} cannot use a {len(key.raw)}-byte key")
    if len(nonce) != _NONCE_SIZES[cipher]:
        raise LocalProtocolError(f"{cipher.value} needs a {_NONCE_SIZES[cipher]}-byte nonce")


def seal_joined(cipher: Cipher, key: SessionKey, nonce: bytes, plaintext: bytes) -> bytes:
    """Encrypt and return ``ciphertext || tag`` (internal fast path)."""
    _check_seal_inputs(cipher, key, nonce)
    if cipher is Cipher.AES_GCM:
        return key._aes().encrypt(nonce, plaintext, None)
    return _chacha_seal(key.raw, nonce, bytes(plaintext))


def open_joined(cipher: Cipher, key: SessionKey, nonce: bytes, sealed: bytes) -> bytes:
    """Authenticate and decrypt ``ciphertext || tag`` (internal fast path).

    Raises:
        DecryptionError: on any failure.
    """
    if len(nonce) != _NONCE_SIZES.get(cipher, -1) or not key.supports(cipher):
        raise DecryptionError()
    if len(sealed) < TAG_SIZE:
        raise DecryptionError()
    try:
        if cipher is Cipher.AES_GCM:
            return key._aes().decrypt(nonce, sealed, None)
        return _chacha_open(key.raw, nonce, bytes(sealed))
    except (InvalidTag, ValueError, TypeError):
        raise DecryptionError() from None


# ChaCha20-Poly1305 goes straight to libsodium through pynacl's cffi module:
# pynacl's public wrapper re-validates and re-allocates on every call, which
# costs three times the cipher itself on a 1 KiB frame. Lengths are checked
# by the callers above; ``_NULL`` stands for the optional output-length
# pointers and the absent associated data.
_NULL = _ffi.NULL


def _chacha_seal(key: bytes, nonce: bytes, plaintext: bytes) -> bytes:
    out = bytearray(len(plaintext) + TAG_SIZE)
    rc = _sodium.crypto_aead_chacha20poly1305_ietf_encrypt(
        _ffi.from_buffer(out), _NULL, plaintext, len(plaintext), _NULL, 0, _NULL, nonce, key
    )
    if rc != 0:
        raise LocalProtocolError("ChaCha20-Poly1305 refused to seal")
    return bytes(out)


def _chacha_open(key: bytes, nonce: bytes, sealed: bytes) -> bytes:
    out = bytearray(len(sealed) - TAG_SIZE)
    rc = _sodium.crypto_aead_chacha20poly1305_ietf_decrypt(
        _ffi.from_buffer(out), _NULL, _NULL, sealed, len(sealed), _NULL, 0, nonce, key
    )
    if rc != 0:
        raise ValueError("authentication failed")
    return bytes(out)


def aead_seal(
    cipher: Cipher, key: SessionKey, nonce: bytes, plaintext: bytes
) -> tuple[bytes, bytes]:
    """Encrypt one frame's plaintext (no associated data).

    This takes an explicit nonce: it belongs to the hazmat corner. Reusing a
    nonce with the same key breaks both ciphers; the framing functions draw a
    fresh one per frame.

    Args:
        cipher: the negotiated cipher.
        key: the session key.
        nonce: exactly ``nonce_size(cipher)`` bytes, never reused with ``key``.
        plaintext: the bytes to protect.

    Returns:
        ``(ciphertext, tag)``; the ciphertext has the plaintext's length and
        the tag is 16 bytes.

    Raises:
        LocalProtocolError: the key length or nonce length does not suit the
            cipher. Any other exception is a bug.
    """
    sealed = seal_joined(cipher, key, nonce, plaintext)
    return sealed[:-TAG_SIZE], sealed[-TAG_SIZE:]


def aead_open(
    cipher: Cipher, key: SessionKey, nonce: bytes, ciphertext: bytes, tag: bytes
) -> bytes:
    """Authenticate and decrypt one frame (no associated data).

    Args:
        cipher: the negotiated cipher.
        key: the session key.
        nonce: the frame's nonce.
        ciphertext: the encrypted bytes.
        tag: the 16-byte authentication tag.

    Returns:
        The plaintext.

    Raises:
        DecryptionError: for every failure, without detail. Any other
            exception is a bug.
    """
    if len(tag) != TAG_SIZE:
        raise DecryptionError()
    return open_joined(cipher, key, nonce, bytes(ciphertext) + bytes(tag))

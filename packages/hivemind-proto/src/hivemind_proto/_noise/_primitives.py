"""Noise cipher suites: the DH, hash and cipher functions (Noise revision 34, §4 and §12).

Theory of operation: a suite name such as ``25519_ChaChaPoly_SHA256`` picks one
function of each family. Both of our suites share X25519 and SHA-256 and differ
only in the AEAD, so the only per-suite object is an AEAD bound to one key.

* DH: X25519 through libsodium (``crypto_scalarmult``). libsodium refuses a
  result of all zeros, which happens exactly when the peer's public value lies
  in the small subgroup; we treat that as an authentication failure. The cffi
  binding does not check input lengths, so every caller here passes exactly
  32 bytes (``NoisePublicKey`` and the key classes guarantee it).
* HASH: SHA-256; HMAC and HKDF are the Noise definitions (§4.3), built on the
  C ``hmac.digest`` so no Python-level hashing objects are created.
* Cipher functions: the 96-bit nonce is 32 zero bits followed by the 64-bit
  counter, little-endian for ChaChaPoly and big-endian for AESGCM. ChaChaPoly
  comes from libsodium (IETF ChaCha20-Poly1305); AESGCM from ``cryptography``,
  whose ``AESGCM`` object is created once per key and reused for every message.

Any AEAD failure becomes ``DecryptionError`` raised ``from None``: the caller
learns that authentication failed and nothing else.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from enum import StrEnum
from typing import Protocol, final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from nacl.bindings import (
    crypto_aead_chacha20poly1305_ietf_decrypt,
    crypto_aead_chacha20poly1305_ietf_encrypt,
    crypto_scalarmult,
    crypto_scalarmult_base,
)
from nacl.exceptions import CryptoError
from nacl.exceptions import RuntimeError as NaclRuntimeError

from .._errors import DecryptionError

#: Length of an X25519 public key, private key and shared secret.
DHLEN = 32
#: Output length of SHA-256.
HASHLEN = 32
#: Length of a cipher key.
KEYLEN = 32
#: Length of an AEAD authentication tag.
TAGLEN = 16
#: Largest Noise message (handshake or transport) on the wire.
MAX_MESSAGE_LEN = 65535
#: The nonce value Noise reserves (for REKEY); counters never reach it.
MAX_NONCE = 2**64 - 1

_LE_NONCE = struct.Struct("<4xQ")
_BE_NONCE = struct.Struct(">4xQ")
_ZERO_KEY = bytes(KEYLEN)
# Any scalar works for the small-subgroup probe: libsodium clamps it to a
# multiple of the cofactor, so the product is zero exactly for low-order points.
_PROBE_SCALAR = bytes([9]) * DHLEN


class NoiseSuite(StrEnum):
    """A Noise cipher suite; the value is the suite part of the protocol name."""

    CHACHAPOLY = "25519_ChaChaPoly_SHA256"
    AESGCM = "25519_AESGCM_SHA256"


class Aead(Protocol):
    """An AEAD bound to one key; ``n`` is the 64-bit Noise counter."""

    def encrypt(self, n: int, ad: bytes, plaintext: bytes) -> bytes:
        """Seal ``plaintext`` under nonce ``n`` with associated data ``ad``."""
        ...

    def decrypt(self, n: int, ad: bytes, ciphertext: bytes) -> bytes:
        """Open ``ciphertext``; raise ``DecryptionError`` when it does not authenticate."""
        ...


@final
class ChaChaPolyAead:
    """IETF ChaCha20-Poly1305 (libsodium) with the Noise little-endian nonce."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        self._key = key

    def encrypt(self, n: int, ad: bytes, plaintext: bytes) -> bytes:
        """Seal ``plaintext`` under nonce ``n``."""
        return crypto_aead_chacha20poly1305_ietf_encrypt(
            plaintext, ad, _LE_NONCE.pack(n), self._key
        )

    def decrypt(self, n: int, ad: bytes, ciphertext: bytes) -> bytes:
        """Open ``ciphertext`` under nonce ``n``.

        Raises:
            DecryptionError: the tag does not verify.
        """
        try:
            return crypto_aead_chacha20poly1305_ietf_decrypt(
                ciphertext, ad, _LE_NONCE.pack(n), self._key
            )
        except CryptoError:
            raise DecryptionError from None


@final
class AesGcmAead:
    """AES-256-GCM (``cryptography``) with the Noise big-endian nonce."""

    __slots__ = ("_aead",)

    def __init__(self, key: bytes) -> None:
        self._aead = AESGCM(key)

    def encrypt(self, n: int, ad: bytes, plaintext: bytes) -> bytes:
        """Seal ``plaintext`` under nonce ``n``."""
        return self._aead.encrypt(_BE_NONCE.pack(n), plaintext, ad)

    def decrypt(self, n: int, ad: bytes, ciphertext: bytes) -> bytes:
        """Open ``ciphertext`` under nonce ``n``.

        Raises:
            DecryptionError: the tag does not verify.
        """
        try:
            return self._aead.decrypt(_BE_NONCE.pack(n), ciphertext, ad)
        except InvalidTag:
            raise DecryptionError from None


def new_aead(suite: NoiseSuite, key: bytes) -> Aead:
    """Bind the suite's cipher function to ``key`` (32 bytes)."""
    if suite is NoiseSuite.AESGCM:
        return AesGcmAead(key)
    return ChaChaPolyAead(key)


def rekey(aead: Aead) -> bytes:
    """Noise REKEY: the first 32 bytes of ENCRYPT(k, 2^64-1, empty, 32 zero bytes)."""
    return aead.encrypt(MAX_NONCE, b"", _ZERO_KEY)[:KEYLEN]


def dh_public(private: bytes) -> bytes:
    """X25519 public key of a 32-byte private key."""
    return crypto_scalarmult_base(private)


def dh(private: bytes, public: bytes) -> bytes:
    """X25519 shared secret of two 32-byte values.

    Raises:
        DecryptionError: the result is all zeros (``public`` has low order).
    """
    try:
        return crypto_scalarmult(private, public)
    except NaclRuntimeError:
        raise DecryptionError from None


def is_low_order(public: bytes) -> bool:
    """Whether a 32-byte X25519 public value lies in the small subgroup."""
    try:
        crypto_scalarmult(_PROBE_SCALAR, public)
    except NaclRuntimeError:
        return True
    return False


def hash_(data: bytes) -> bytes:
    """SHA-256."""
    return hashlib.sha256(data).digest()


def _hmac(key: bytes, data: bytes) -> bytes:
    return hmac.digest(key, data, "sha256")


def hkdf2(chaining_key: bytes, ikm: bytes) -> tuple[bytes, bytes]:
    """Noise HKDF with two outputs."""
    temp = _hmac(chaining_key, ikm)
    out1 = _hmac(temp, b"\x01")
    return out1, _hmac(temp, out1 + b"\x02")


def hkdf3(chaining_key: bytes, ikm: bytes) -> tuple[bytes, bytes, bytes]:
    """Noise HKDF with three outputs."""
    temp = _hmac(chaining_key, ikm)
    out1 = _hmac(temp, b"\x01")
    out2 = _hmac(temp, out1 + b"\x02")
    return out1, out2, _hmac(temp, out2 + b"\x03")

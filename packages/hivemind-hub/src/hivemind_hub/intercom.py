"""INTERCOM cryptography for the hub (RSA-PSS signatures, RSA-OAEP and AES-GCM).

``RsaIntercom`` is what ``Router`` is given to check INTERCOM signatures and to
open envelopes addressed to the hub; ``seal`` builds envelopes (for our own
senders and for tests).

Theory of operation
-------------------
Parameters match the released clients (PyCryptodome defaults, spec §7.4):

* signature: RSA-PSS, SHA-256, MGF1-SHA-256, over the raw ``ciphertext``
  bytes. Released clients use a 32-byte salt; any salt length verifies;
* legacy body: RSA-OAEP with SHA-1 (MGF1-SHA-1, empty label) of the inner
  message JSON, so at most ``k - 42`` bytes (214 for RSA-2048);
* hybrid body: a random 32-byte key wrapped with the same OAEP, the JSON
  sealed with AES-256-GCM (16-byte nonce and 16-byte tag as released
  clients make them; 12-byte nonces also open).

Public keys are parsed once (a bounded cache keyed by the PEM text, itself
bounded in length) and only RSA keys of 2048 to 4096 bits are used, so the
cost of one check is bounded.
Every failure is a plain False / None: no detail leaves this module.
"""

from __future__ import annotations

import base64
import os
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .routing._intercom import SealedIntercom

__all__ = ["RsaIntercom", "seal"]

MIN_KEY_BITS: Final = 2048
MAX_KEY_BITS: Final = 4096
#: Longest public key PEM text parsed (an RSA-4096 key is about 800 characters).
MAX_PEM_CHARS: Final = 4096
#: GCM nonce lengths accepted when opening (16 from released clients, 12 common).
_NONCE_LENGTHS: Final = frozenset({12, 16})
_TAG_BYTES: Final = 16
_AES_KEY_BYTES: Final = 32


def _oaep() -> padding.OAEP:
    return padding.OAEP(mgf=padding.MGF1(hashes.SHA1()), algorithm=hashes.SHA1(), label=None)


def _pss(salt_length: int) -> padding.PSS:
    return padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt_length)


def _usable(key: object) -> bool:
    return isinstance(key, rsa.RSAPublicKey | rsa.RSAPrivateKey) and (
        MIN_KEY_BITS <= key.key_size <= MAX_KEY_BITS
    )


def _load_public(pem: str) -> rsa.RSAPublicKey | None:
    if len(pem) > MAX_PEM_CHARS:
        return None
    try:
        key = serialization.load_pem_public_key(pem.encode("utf-8"))
    except (ValueError, TypeError, UnicodeError):
        return None
    return key if isinstance(key, rsa.RSAPublicKey) and _usable(key) else None


class RsaIntercom:
    """The hub's INTERCOM crypto (implements ``routing.IntercomCrypto``).

    Args:
        private_key: The hub's RSA private key; None makes ``open`` refuse
            everything (signatures are still checked).
        key_cache: How many parsed public keys are kept.
    """

    def __init__(
        self, private_key: rsa.RSAPrivateKey | None = None, *, key_cache: int = 256
    ) -> None:
        if private_key is not None and not _usable(private_key):
            raise ValueError("the hub INTERCOM key must be RSA of 2048 to 4096 bits")
        self._private = private_key
        self._cache: OrderedDict[str, rsa.RSAPublicKey | None] = OrderedDict()
        self._cache_size = max(1, key_cache)

    def __repr__(self) -> str:
        return f"RsaIntercom(can_open={self._private is not None})"

    @classmethod
    def from_private_pem(cls, pem: bytes) -> RsaIntercom:
        """Build from a PEM private key; empty ``pem`` gives a verify-only instance.

        Raises:
            ValueError: ``pem`` is not an unencrypted RSA key of a usable size.
        """
        if not pem:
            return cls(None)
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("the hub INTERCOM key must be RSA")
        return cls(key)

    def _public(self, pem: str) -> rsa.RSAPublicKey | None:
        if pem in self._cache:
            self._cache.move_to_end(pem)
            return self._cache[pem]
        key = _load_public(pem)
        self._cache[pem] = key
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return key

    def verify(self, pubkey_pem: str, data: bytes, signature: bytes) -> bool:
        """True when ``signature`` is an RSA-PSS-SHA256 signature of ``data`` by the key."""
        usable = isinstance(pubkey_pem, str) and len(pubkey_pem) <= MAX_PEM_CHARS
        key = self._public(pubkey_pem) if usable else None
        if key is None or len(signature) != key.key_size // 8:
            return False
        try:
            key.verify(signature, data, _pss(padding.PSS.AUTO), hashes.SHA256())
        except (InvalidSignature, ValueError):
            return False
        return True

    def open(self, sealed: SealedIntercom) -> bytes | None:
        """Decrypt an envelope addressed to the hub; None when it does not open."""
        key = self._private
        if key is None:
            return None
        size = key.key_size // 8
        if sealed.hybrid_fields:
            parts = (sealed.encrypted_key, sealed.nonce, sealed.tag)
            wrapped, nonce, tag = (part or b"" for part in parts)
            return self._open_hybrid(wrapped, nonce, tag, sealed.ciphertext)
        blob = sealed.ciphertext
        if len(blob) == size:
            return self._unwrap(blob)
        # Packed hybrid: len(2) || wrapped key || nonce(16) || tag(16) || body.
        if len(blob) < 2 + size + 16 + _TAG_BYTES or int.from_bytes(blob[:2], "big") != size:
            return None
        rest = blob[2 + size :]
        return self._open_hybrid(blob[2 : 2 + size], rest[:16], rest[16:32], rest[32:])

    def _unwrap(self, block: bytes) -> bytes | None:
        key = self._private
        if key is None or len(block) != key.key_size // 8:
            return None
        try:
            return key.decrypt(block, _oaep())
        except ValueError:
            return None

    def _open_hybrid(self, wrapped: bytes, nonce: bytes, tag: bytes, body: bytes) -> bytes | None:
        if len(nonce) not in _NONCE_LENGTHS or len(tag) != _TAG_BYTES:
            return None
        aes_key = self._unwrap(wrapped)
        if aes_key is None or len(aes_key) != _AES_KEY_BYTES:
            return None
        try:
            return AESGCM(aes_key).decrypt(nonce, body + tag, None)
        except InvalidTag:
            return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def seal(
    recipient_pem: str,
    plaintext: bytes,
    signer: rsa.RSAPrivateKey,
    *,
    hybrid: bool | None = None,
    randbytes: Callable[[int], bytes] = os.urandom,
) -> dict[str, str]:
    """Build an INTERCOM payload for the holder of ``recipient_pem``.

    Args:
        recipient_pem: The addressee's RSA public key (PEM).
        plaintext: The inner message JSON (UTF-8).
        signer: The sender's RSA private key (signs the raw ciphertext).
        hybrid: True for the field hybrid envelope, False for the legacy one,
            None to use the legacy one only when the plaintext fits RSA-OAEP.
        randbytes: Source of the AES key and nonce.

    Returns:
        The payload, every binary field standard base64.

    Raises:
        ValueError: ``recipient_pem`` is not a usable RSA public key, or a
            legacy envelope was asked for and the plaintext does not fit.
    """
    recipient = _load_public(recipient_pem)
    if recipient is None:
        raise ValueError("the recipient key is not a usable RSA public key")
    fits = len(plaintext) <= recipient.key_size // 8 - 2 * hashes.SHA1.digest_size - 2
    if hybrid is None:
        hybrid = not fits
    if not hybrid:
        if not fits:
            raise ValueError("the plaintext is too long for a legacy INTERCOM envelope")
        ciphertext = recipient.encrypt(plaintext, _oaep())
        return {"ciphertext": _b64(ciphertext), "signature": _b64(_sign(signer, ciphertext))}
    aes_key, nonce = randbytes(_AES_KEY_BYTES), randbytes(16)
    sealed = AESGCM(aes_key).encrypt(nonce, plaintext, None)
    body, tag = sealed[:-_TAG_BYTES], sealed[-_TAG_BYTES:]
    return {
        "encrypted_key": _b64(recipient.encrypt(aes_key, _oaep())),
        "ciphertext": _b64(body),
        "tag": _b64(tag),
        "nonce": _b64(nonce),
        "signature": _b64(_sign(signer, body)),
    }


def _sign(signer: rsa.RSAPrivateKey, data: bytes) -> bytes:
    return signer.sign(data, _pss(hashes.SHA256.digest_size), hashes.SHA256())

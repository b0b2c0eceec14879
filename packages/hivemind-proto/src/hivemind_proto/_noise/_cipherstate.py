"""The Noise CipherState (revision 34, §5.1): one key and one 64-bit counter.

Theory of operation: the counter is the nonce, so the two sides of a channel
stay in step only if every message is decrypted exactly once and in order. A
replayed, reordered or dropped message is therefore an authentication failure,
not something to recover from. The counter advances only after a successful
operation; the reserved value 2^64-1 is never used for a message.

Before a key is set (early in a handshake) ``encrypt_with_ad`` and
``decrypt_with_ad`` pass data through unchanged, as the framework requires.
"""

from __future__ import annotations

from typing import final

from .._errors import DecryptionError, LocalProtocolError
from ._primitives import MAX_NONCE, TAGLEN, Aead, NoiseSuite, new_aead, rekey


@final
class CipherState:
    """A key (possibly empty) and its nonce counter."""

    __slots__ = ("_aead", "_n", "_suite")

    def __init__(self, suite: NoiseSuite, key: bytes | None = None) -> None:
        self._suite = suite
        self._aead: Aead | None = None
        self._n = 0
        if key is not None:
            self.initialize_key(key)

    def initialize_key(self, key: bytes) -> None:
        """Install a 32-byte key and reset the counter to zero."""
        self._aead = new_aead(self._suite, key)
        self._n = 0

    @property
    def has_key(self) -> bool:
        """Whether a key is installed."""
        return self._aead is not None

    @property
    def nonce(self) -> int:
        """The counter value the next message will use."""
        return self._n

    def encrypt_with_ad(self, ad: bytes, plaintext: bytes) -> bytes:
        """Seal ``plaintext`` (or return it unchanged when there is no key).

        Raises:
            LocalProtocolError: the counter space is exhausted.
        """
        aead = self._aead
        if aead is None:
            return plaintext
        n = self._n
        if n >= MAX_NONCE:
            raise LocalProtocolError("Noise nonce space exhausted; the channel must be replaced")
        ciphertext = aead.encrypt(n, ad, plaintext)
        self._n = n + 1
        return ciphertext

    def decrypt_with_ad(self, ad: bytes, ciphertext: bytes) -> bytes:
        """Open ``ciphertext`` (or return it unchanged when there is no key).

        Raises:
            DecryptionError: the message does not authenticate under the next
                counter value, is shorter than a tag, or the peer has used up
                the counter space.
        """
        aead = self._aead
        if aead is None:
            return ciphertext
        n = self._n
        if n >= MAX_NONCE or len(ciphertext) < TAGLEN:
            raise DecryptionError
        plaintext = aead.decrypt(n, ad, ciphertext)
        self._n = n + 1
        return plaintext

    def rekey(self) -> None:
        """Replace the key by Noise REKEY; the counter is kept.

        Raises:
            LocalProtocolError: there is no key to replace.
        """
        if self._aead is None:
            raise LocalProtocolError("no key to rekey")
        self._aead = new_aead(self._suite, rekey(self._aead))

    def _set_nonce(self, n: int) -> None:
        """Move the counter (tests of counter exhaustion only)."""
        self._n = n

"""The Noise SymmetricState (revision 34, §5.2): chaining key, handshake hash, cipher.

Theory of operation: the handshake hash ``h`` absorbs everything either side
sends or knows up front (prologue, pre-message keys, every public key and
ciphertext), and it is the associated data of every handshake encryption, so a
single changed byte anywhere makes the next tag fail. The chaining key ``ck``
absorbs every DH result and the PSK through HKDF; ``split`` derives the two
transport keys from it once the last message has been processed.
"""

from __future__ import annotations

from typing import final

from ._cipherstate import CipherState
from ._primitives import HASHLEN, NoiseSuite, hash_, hkdf2, hkdf3


@final
class SymmetricState:
    """Chaining key, handshake hash and the handshake CipherState."""

    __slots__ = ("_cipher", "_ck", "_h", "_suite")

    def __init__(self, protocol_name: bytes, suite: NoiseSuite) -> None:
        if len(protocol_name) <= HASHLEN:
            h = protocol_name.ljust(HASHLEN, b"\x00")
        else:
            h = hash_(protocol_name)
        self._h = h
        self._ck = h
        self._suite = suite
        self._cipher = CipherState(suite)

    @property
    def has_key(self) -> bool:
        """Whether the handshake cipher has a key (payloads are encrypted)."""
        return self._cipher.has_key

    @property
    def handshake_hash(self) -> bytes:
        """The current handshake hash ``h``."""
        return self._h

    def mix_key(self, ikm: bytes) -> None:
        """Absorb key material (a DH output or an ephemeral key in PSK mode)."""
        self._ck, temp_k = hkdf2(self._ck, ikm)
        self._cipher.initialize_key(temp_k)

    def mix_hash(self, data: bytes) -> None:
        """Absorb public data into the handshake hash."""
        self._h = hash_(self._h + data)

    def mix_key_and_hash(self, ikm: bytes) -> None:
        """Absorb a pre-shared key into both the chaining key and the hash."""
        self._ck, temp_h, temp_k = hkdf3(self._ck, ikm)
        self.mix_hash(temp_h)
        self._cipher.initialize_key(temp_k)

    def encrypt_and_hash(self, plaintext: bytes) -> bytes:
        """Encrypt with ``h`` as associated data, then absorb the ciphertext."""
        ciphertext = self._cipher.encrypt_with_ad(self._h, plaintext)
        self.mix_hash(ciphertext)
        return ciphertext

    def decrypt_and_hash(self, ciphertext: bytes) -> bytes:
        """Decrypt with ``h`` as associated data, then absorb the ciphertext.

        Raises:
            DecryptionError: the ciphertext does not authenticate.
        """
        plaintext = self._cipher.decrypt_with_ad(self._h, ciphertext)
        self.mix_hash(ciphertext)
        return plaintext

    def split(self) -> tuple[CipherState, CipherState]:
        """Derive the initiator-to-responder and responder-to-initiator ciphers."""
        temp_k1, temp_k2 = hkdf2(self._ck, b"")
        self._ck = b""
        return CipherState(self._suite, temp_k1), CipherState(self._suite, temp_k2)

"""The Noise transport phase: two CipherStates, one per direction.

Theory of operation: after ``Split()`` each side encrypts with one CipherState
and decrypts with the other; the 64-bit counters are the nonces, so a
replayed, reordered, dropped, truncated or modified message fails to
authenticate. Such a failure is fatal: the transport marks itself failed and
refuses every later call, because continuing after a gap would desynchronise
the counters and invite an attacker to probe.

A Noise message carries at most 65535 bytes, so one ``encrypt`` call takes at
most ``MAX_PLAINTEXT_LEN`` (65519) bytes of plaintext. Callers fragment larger
payloads themselves; this layer defines no reassembly format.
"""

from __future__ import annotations

from typing import final

from .._errors import CloseCode, LocalProtocolError, RemoteProtocolError
from ._cipherstate import CipherState
from ._primitives import MAX_MESSAGE_LEN, TAGLEN

#: Largest plaintext one transport message can carry.
MAX_PLAINTEXT_LEN = MAX_MESSAGE_LEN - TAGLEN

_FAILED = "the Noise transport failed earlier and cannot be used"


@final
class NoiseTransport:
    """An established Noise channel (the result of ``NoiseHandshake.split``).

    Any exception other than those listed in the methods' Raises sections is a
    bug.
    """

    __slots__ = ("_failed", "_handshake_hash", "_recv", "_send")

    def __init__(self, send: CipherState, recv: CipherState, handshake_hash: bytes) -> None:
        """Wrap the two directions; use ``NoiseHandshake.split`` to obtain one."""
        self._send = send
        self._recv = recv
        self._handshake_hash = handshake_hash
        self._failed = False

    @property
    def handshake_hash(self) -> bytes:
        """The final handshake hash, identical on both sides (channel binding)."""
        return self._handshake_hash

    @property
    def failed(self) -> bool:
        """Whether an earlier failure has made the transport unusable."""
        return self._failed

    def encrypt(self, plaintext: bytes) -> bytes:
        """Encrypt one message to the peer.

        Args:
            plaintext: at most ``MAX_PLAINTEXT_LEN`` bytes.

        Returns:
            The Noise transport message (``len(plaintext) + 16`` bytes).

        Raises:
            LocalProtocolError: ``plaintext`` is too long (nothing is consumed),
                the counter space is exhausted, or the transport has failed.
        """
        if self._failed:
            raise LocalProtocolError(_FAILED)
        if len(plaintext) > MAX_PLAINTEXT_LEN:
            raise LocalProtocolError(
                f"a Noise message carries at most {MAX_PLAINTEXT_LEN} bytes of plaintext"
            )
        if type(plaintext) is not bytes:
            plaintext = bytes(plaintext)
        try:
            return self._send.encrypt_with_ad(b"", plaintext)
        except BaseException:
            self._failed = True
            raise

    def decrypt(self, message: bytes) -> bytes:
        """Decrypt the next message from the peer.

        Args:
            message: one Noise transport message, exactly as the peer sent it.

        Returns:
            The plaintext.

        Raises:
            DecryptionError: the message does not authenticate as the next one
                (replayed, reordered, truncated, modified or forged); fatal.
            RemoteProtocolError: the message is longer than 65535 bytes; fatal.
            LocalProtocolError: the transport has failed earlier.
        """
        if self._failed:
            raise LocalProtocolError(_FAILED)
        if len(message) > MAX_MESSAGE_LEN:
            self._failed = True
            raise RemoteProtocolError("Noise message too long", CloseCode.MESSAGE_TOO_BIG)
        if type(message) is not bytes:
            message = bytes(message)
        try:
            return self._recv.decrypt_with_ad(b"", message)
        except BaseException:
            self._failed = True
            raise

    def rekey_send(self) -> None:
        """Apply Noise REKEY to the sending key (the peer must ``rekey_receive``).

        Raises:
            LocalProtocolError: the transport has failed.
        """
        if self._failed:
            raise LocalProtocolError(_FAILED)
        self._send.rekey()

    def rekey_receive(self) -> None:
        """Apply Noise REKEY to the receiving key (after the peer's ``rekey_send``).

        Raises:
            LocalProtocolError: the transport has failed.
        """
        if self._failed:
            raise LocalProtocolError(_FAILED)
        self._recv.rekey()

    def __repr__(self) -> str:
        return (
            f"NoiseTransport(sent={self._send.nonce}, received={self._recv.nonce}, "
            f"failed={self._failed})"
        )

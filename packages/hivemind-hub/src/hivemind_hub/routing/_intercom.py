"""INTERCOM envelopes as the routing core sees them: parsed, bounded, never trusted.

Theory of operation
-------------------
An INTERCOM payload is an end-to-end envelope from one node to the holder of
``target_pubkey``. Three shapes travel:

* legacy: ``{"ciphertext", "signature"}``; ``ciphertext`` is RSA-OAEP(SHA-1)
  of the inner message JSON under the addressee's key;
* hybrid (fields): ``{"encrypted_key", "ciphertext", "tag", "nonce",
  "signature"}``; an AES-256-GCM body whose key is RSA-OAEP wrapped;
* hybrid (packed, later released clients): the legacy two fields, but
  ``ciphertext`` is ``len(2, big endian) || wrapped key || nonce(16) ||
  tag(16) || body``.

Every binary field is standard base64 text. In all three the signature is
RSA-PSS(SHA-256) over the raw ``ciphertext`` bytes, made with the sender's
private key. The routing core checks it against the key the sending
connection declared in its HELLO (the pin), so a hub never relays, and never
acts on, an envelope the connection's key holder did not sign.

Sizes are bounded here, before any cryptography runs: the decoded ciphertext
is at most ``MAX_CIPHERTEXT_BYTES`` and the other fields are short.

The cryptography itself is injected (``IntercomCrypto``), which keeps this
package free of key handling; ``hivemind_hub.intercom`` implements it.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

from hivemind_proto import CodecError, HiveMessage, LocalProtocolError, MessageType

__all__ = [
    "MAX_CIPHERTEXT_BYTES",
    "EnvelopeError",
    "IntercomCrypto",
    "SealedIntercom",
    "decode_inner",
    "parse_envelope",
]

#: Largest decoded ``ciphertext`` accepted (checked before any crypto).
MAX_CIPHERTEXT_BYTES: Final = 64 * 1024
#: Largest decoded signature or wrapped key (an RSA-8192 block).
MAX_BLOCK_BYTES: Final = 1024
#: Largest decoded GCM nonce or tag.
MAX_SMALL_BYTES: Final = 64


@dataclass(frozen=True)
class SealedIntercom:
    """A parsed INTERCOM envelope (all fields decoded, sizes checked).

    Attributes:
        ciphertext: The raw bytes the signature covers.
        signature: The sender's RSA-PSS signature over ``ciphertext``.
        encrypted_key: The wrapped AES key of a field hybrid envelope.
        nonce: The GCM nonce of a field hybrid envelope.
        tag: The GCM tag of a field hybrid envelope.
    """

    ciphertext: bytes = field(repr=False)
    signature: bytes = field(repr=False)
    encrypted_key: bytes | None = field(default=None, repr=False)
    nonce: bytes | None = field(default=None, repr=False)
    tag: bytes | None = field(default=None, repr=False)

    @property
    def hybrid_fields(self) -> bool:
        """True for the field hybrid envelope."""
        return self.encrypted_key is not None


class IntercomCrypto(Protocol):
    """The public-key operations the routing core needs for INTERCOM."""

    def verify(self, pubkey_pem: str, data: bytes, signature: bytes) -> bool:
        """True when ``signature`` is a valid signature of ``data`` by ``pubkey_pem``."""
        ...

    def open(self, sealed: SealedIntercom) -> bytes | None:
        """Decrypt an envelope addressed to this hub; None when it does not open."""
        ...


class EnvelopeError(ValueError):
    """An INTERCOM payload is not an acceptable envelope (``reason`` says why)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _b64(value: Any, limit: int) -> bytes:
    """Strictly decode base64 text of at most ``limit`` decoded bytes.

    Raises:
        EnvelopeError: ``oversize`` past the limit (judged on the text length
            first, before decoding), else ``malformed``.
    """
    if not isinstance(value, str) or not value:
        raise EnvelopeError("malformed")
    if len(value) > 4 * ((limit + 2) // 3):
        raise EnvelopeError("oversize")
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raise EnvelopeError("malformed") from None
    if len(raw) > limit:
        raise EnvelopeError("oversize")
    if not raw:
        raise EnvelopeError("malformed")
    return raw


def parse_envelope(payload: Any) -> SealedIntercom:
    """Parse and bound an INTERCOM payload.

    Args:
        payload: The INTERCOM message payload.

    Returns:
        The decoded envelope.

    Raises:
        EnvelopeError: ``plaintext`` (no ciphertext or no signature),
            ``oversize`` or ``malformed``.
    """
    if not isinstance(payload, Mapping):
        raise EnvelopeError("malformed")
    if "ciphertext" not in payload or "signature" not in payload:
        raise EnvelopeError("plaintext")
    ciphertext = _b64(payload["ciphertext"], MAX_CIPHERTEXT_BYTES)
    signature = _b64(payload["signature"], MAX_BLOCK_BYTES)
    if "encrypted_key" not in payload:
        return SealedIntercom(ciphertext, signature)
    wrapped = _b64(payload.get("encrypted_key"), MAX_BLOCK_BYTES)
    nonce = _b64(payload.get("nonce"), MAX_SMALL_BYTES)
    tag = _b64(payload.get("tag"), MAX_SMALL_BYTES)
    return SealedIntercom(ciphertext, signature, wrapped, nonce, tag)


def decode_inner(plaintext: bytes) -> HiveMessage | None:
    """Decode the inner message of an opened envelope.

    The inner object is a HiveMessage JSON object, or (as released clients
    also send) a bare agent-bus message ``{"type", "data", "context"}``,
    which becomes a BUS message. INTERCOM inside INTERCOM (at any depth of
    wrappers) is refused, so one frame costs at most one decryption.

    Returns:
        The inner message, or None when it is not a valid message.
    """
    try:
        obj = json.loads(plaintext.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if isinstance(obj, dict) and "msg_type" not in obj and isinstance(obj.get("type"), str):
        obj = {"msg_type": MessageType.BUS.value, "payload": obj}
    try:
        inner = HiveMessage.from_dict(obj)
    except (CodecError, LocalProtocolError, RecursionError):
        return None
    nested = inner
    while True:
        if nested.msg_type is MessageType.INTERCOM:
            return None
        if not isinstance(nested.payload, HiveMessage):
            return inner
        nested = nested.payload

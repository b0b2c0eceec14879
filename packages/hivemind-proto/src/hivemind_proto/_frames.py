"""Legacy encrypted framing (wire profile L).

Theory of operation
-------------------
Once a session key exists, every message travels sealed in one of two forms:

* a **JSON text frame**: ``{"ciphertext": E(ct), "tag": E(tag), "nonce":
  E(nonce)}``, where ``E`` is the negotiated text encoding applied to each
  byte string on its own. We write exactly the bytes the released client's
  ``json.dumps`` writes: that key order, ``", "`` and ``": "`` separators,
  ASCII-only escaping (basE91 text contains ``"``, Z85P text starts with a
  control character). Received frames may omit ``tag``; the last 16 bytes of
  the ciphertext are then the tag (the layout Web Crypto produces).
* a **binary frame**: ``nonce || ciphertext || tag``.

The plaintext is a whole serialized HiveMessage (JSON or WIRE-1 bytes); this
module does not look inside it. There is no associated data, no counter and
no direction label on this wire, so replay protection cannot exist here.

Nonces come from the ``rng`` the caller passes in (``os.urandom`` in
production): the core never draws randomness itself. ``*_with_nonce``
variants take the nonce explicitly for known-answer tests; they are hazmat.

Whatever is wrong with a received frame (bad text encoding, wrong field type,
short frame, failed tag) surfaces as ``DecryptionError``, never with detail.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from json.encoder import encode_basestring_ascii
from typing import Any

from ._ciphers import TAG_SIZE, SessionKey, nonce_size, open_joined, seal_joined
from ._encodings import decode_text, encode_text
from ._errors import CodecError, DecryptionError, LocalProtocolError
from ._types import Cipher, TextEncoding

__all__ = [
    "Rng",
    "is_encrypted_json",
    "open_binary_frame",
    "open_json_frame",
    "seal_binary_frame",
    "seal_binary_frame_with_nonce",
    "seal_json_frame",
    "seal_json_frame_with_nonce",
]

#: A source of random bytes: ``rng(n)`` returns ``n`` fresh random bytes.
Rng = Callable[[int], bytes]


def _draw_nonce(cipher: Cipher, rng: Rng) -> bytes:
    size = nonce_size(cipher)
    nonce = rng(size)
    if not isinstance(nonce, bytes) or len(nonce) != size:
        raise LocalProtocolError(f"rng returned something other than {size} bytes")
    return nonce


# --------------------------------------------------------------------------- JSON frames


def seal_json_frame(
    plaintext: bytes, *, cipher: Cipher, key: SessionKey, encoding: TextEncoding, rng: Rng
) -> str:
    """Seal a plaintext as a legacy encrypted JSON text frame.

    Args:
        plaintext: the serialized message.
        cipher: the negotiated cipher.
        key: the session key.
        encoding: the negotiated text encoding.
        rng: returns fresh random bytes; one nonce is drawn per call.

    Returns:
        The frame text, byte-identical to what the released client writes.

    Raises:
        LocalProtocolError: the key does not suit the cipher, or ``rng``
            misbehaved. Any other exception is a bug.
    """
    return seal_json_frame_with_nonce(
        plaintext, cipher=cipher, key=key, encoding=encoding, nonce=_draw_nonce(cipher, rng)
    )


def seal_json_frame_with_nonce(
    plaintext: bytes, *, cipher: Cipher, key: SessionKey, encoding: TextEncoding, nonce: bytes
) -> str:
    """Seal a JSON text frame with a caller-chosen nonce (hazmat).

    Only for known-answer tests and scripted peers: a nonce must never be
    used twice with one key.

    Args:
        plaintext: the serialized message.
        cipher: the negotiated cipher.
        key: the session key.
        encoding: the negotiated text encoding.
        nonce: exactly ``nonce_size(cipher)`` bytes.

    Returns:
        The frame text.

    Raises:
        LocalProtocolError: the key or nonce does not suit the cipher. Any
            other exception is a bug.
    """
    sealed = seal_joined(cipher, key, nonce, plaintext)
    split = len(sealed) - TAG_SIZE
    quote = _quote_plain if encoding in _NO_ESCAPES else encode_basestring_ascii
    return (
        '{"ciphertext": '
        + quote(encode_text(sealed[:split], encoding))
        + ', "tag": '
        + quote(encode_text(sealed[split:], encoding))
        + ', "nonce": '
        + quote(encode_text(nonce, encoding))
        + "}"
    )


#: Encodings whose alphabets hold no character JSON must escape.
_NO_ESCAPES = frozenset(
    {
        TextEncoding.JSON_B64,
        TextEncoding.JSON_URLSAFE_B64,
        TextEncoding.JSON_B32,
        TextEncoding.JSON_HEX,
    }
)


def _quote_plain(text: str) -> str:
    return '"' + text + '"'


def open_json_frame(
    obj: Mapping[str, Any], *, cipher: Cipher, key: SessionKey, encoding: TextEncoding
) -> bytes:
    """Authenticate and decrypt a parsed encrypted JSON frame.

    Args:
        obj: the frame, already parsed from JSON.
        cipher: the negotiated cipher.
        key: the session key.
        encoding: the negotiated text encoding.

    Returns:
        The plaintext bytes.

    Raises:
        DecryptionError: any field is missing, not a string, not valid text
            for ``encoding``, or the frame fails authentication. Any other
            exception is a bug.
    """
    try:
        sealed = _decode_field(obj, "ciphertext", encoding)
        nonce = _decode_field(obj, "nonce", encoding)
        if "tag" in obj:
            sealed += _decode_field(obj, "tag", encoding)
    except (CodecError, KeyError, TypeError):
        raise DecryptionError() from None
    return open_joined(cipher, key, nonce, sealed)


def _decode_field(obj: Mapping[str, Any], name: str, encoding: TextEncoding) -> bytes:
    value = obj[name]
    if not isinstance(value, str):
        raise TypeError(name)
    return decode_text(value, encoding)


def is_encrypted_json(obj: object) -> bool:
    """Whether a parsed JSON text frame is an encrypted frame.

    A frame is encrypted iff it is an object with ``ciphertext`` and
    ``nonce`` and without ``msg_type`` (so a HiveMessage whose payload
    mentions "ciphertext" is not mistaken for one).

    Args:
        obj: the parsed JSON value.

    Returns:
        True for an encrypted frame.
    """
    return (
        isinstance(obj, dict) and "ciphertext" in obj and "nonce" in obj and "msg_type" not in obj
    )


# --------------------------------------------------------------------------- binary frames


def seal_binary_frame(plaintext: bytes, *, cipher: Cipher, key: SessionKey, rng: Rng) -> bytes:
    """Seal a plaintext as a legacy binary frame ``nonce || ciphertext || tag``.

    Args:
        plaintext: the serialized message (WIRE-1 bytes).
        cipher: the negotiated cipher.
        key: the session key.
        rng: returns fresh random bytes; one nonce is drawn per call.

    Returns:
        The frame bytes.

    Raises:
        LocalProtocolError: the key does not suit the cipher, or ``rng``
            misbehaved. Any other exception is a bug.
    """
    nonce = _draw_nonce(cipher, rng)
    return nonce + seal_joined(cipher, key, nonce, plaintext)


def seal_binary_frame_with_nonce(
    plaintext: bytes, *, cipher: Cipher, key: SessionKey, nonce: bytes
) -> bytes:
    """Seal a binary frame with a caller-chosen nonce (hazmat).

    Args:
        plaintext: the serialized message.
        cipher: the negotiated cipher.
        key: the session key.
        nonce: exactly ``nonce_size(cipher)`` bytes, never reused with ``key``.

    Returns:
        The frame bytes.

    Raises:
        LocalProtocolError: the key or nonce does not suit the cipher. Any
            other exception is a bug.
    """
    return bytes(nonce) + seal_joined(cipher, key, nonce, plaintext)


def open_binary_frame(frame: bytes, *, cipher: Cipher, key: SessionKey) -> bytes:
    """Authenticate and decrypt a legacy binary frame.

    Args:
        frame: ``nonce || ciphertext || tag`` as received.
        cipher: the negotiated cipher.
        key: the session key.

    Returns:
        The plaintext bytes.

    Raises:
        DecryptionError: the frame is too short or fails authentication.
            Any other exception is a bug.
    """
    size = nonce_size(cipher)
    if len(frame) < size + TAG_SIZE:
        raise DecryptionError()
    view = memoryview(frame)
    return open_joined(cipher, key, bytes(view[:size]), view[size:])

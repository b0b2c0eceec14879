"""Record layers: how a keyed connection turns messages into frames and back.

Theory of operation: a frame is what one websocket message carries, ``str``
for a text frame and ``bytes`` for a binary one.

* ``LegacyRecord`` (profiles L/S): JSON messages travel as text frames
  ``{"ciphertext","tag","nonce"}``; BINARY messages, and every message once
  ``binarize`` was negotiated, travel as WIRE-1 bitstrings sealed into binary
  frames ``nonce || ciphertext || tag``. Nonces are random (drawn from the
  injected rng); nothing stops a replay within a session: that is the legacy
  wire's weakness W9, fixed only by profile N.
* ``NoiseRecord`` (profile N): every frame is binary. Its plaintext is one
  marker byte (0x00 JSON, 0x01 WIRE-1, 0x02 msgpack) and the encoded message.
  A plaintext longer than one Noise message holds is cut into chunks of
  ``NOISE_CHUNK`` bytes, each sealed as its own Noise transport message, and
  the ciphertexts are concatenated; since every chunk but the last seals to
  exactly 65535 bytes, the receiver splits the frame at those boundaries
  without any length field. A frame that fits in one message is therefore
  byte-identical to the single-message framing of upstream v3 peers. Counter
  nonces make replayed, reordered or dropped frames fail authentication.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Final, Protocol, final

from ._ciphers import SessionKey
from ._envelope import HiveMessage
from ._errors import CodecError
from ._frames import (
    is_encrypted_json,
    open_binary_frame,
    open_json_frame,
    seal_binary_frame,
    seal_json_frame,
)
from ._json_codec import decode_json, encode_json, loads
from ._msgpack_codec import decode_msgpack, encode_msgpack
from ._noise import NoiseTransport
from ._types import Cipher, MessageType, PayloadMarker, TextEncoding
from ._wire1 import Compression, decode_wire1, encode_wire1

Frame = str | bytes
Rng = Callable[[int], bytes]

_TEXT_ONLY: Final = frozenset({MessageType.INTERCOM, MessageType.THIRDPRTY})
NOISE_MAX_MESSAGE: Final = 65535
NOISE_TAG: Final = 16
NOISE_CHUNK: Final = NOISE_MAX_MESSAGE - NOISE_TAG


class Record(Protocol):
    """Seals outbound messages and opens inbound frames of a keyed connection."""

    def seal(self, message: HiveMessage) -> Frame:
        """Return the frame carrying ``message``."""
        ...

    def open_binary(self, frame: bytes) -> HiveMessage:
        """Authenticate and decode a binary frame."""
        ...


@final
@dataclass(slots=True)
class LegacyRecord:
    """Per-frame AEAD of the legacy wire."""

    cipher: Cipher
    key: SessionKey = field(repr=False)
    encoding: TextEncoding
    binarize: bool
    rng: Rng = field(repr=False)

    def seal(self, message: HiveMessage) -> Frame:
        """Seal ``message`` as a text frame, or a binary one when binarized.

        INTERCOM and THIRDPRTY always travel as text: WIRE-1 has no code for
        INTERCOM and hardened decoders refuse code 11.
        """
        kind = message.msg_type
        if kind is MessageType.BINARY or (self.binarize and kind not in _TEXT_ONLY):
            plaintext = encode_wire1(message, compression=Compression.ALWAYS)
            return seal_binary_frame(plaintext, cipher=self.cipher, key=self.key, rng=self.rng)
        plaintext = encode_json(message).encode("utf-8")
        return seal_json_frame(
            plaintext, cipher=self.cipher, key=self.key, encoding=self.encoding, rng=self.rng
        )

    def open_text(self, obj: dict[str, object]) -> HiveMessage:
        """Open an encrypted JSON frame (already parsed)."""
        plaintext = open_json_frame(obj, cipher=self.cipher, key=self.key, encoding=self.encoding)
        return decode_json(plaintext)

    def open_binary(self, frame: bytes) -> HiveMessage:
        """Open an encrypted WIRE-1 frame."""
        plaintext = open_binary_frame(frame, cipher=self.cipher, key=self.key)
        return decode_wire1(plaintext)


@final
@dataclass(slots=True)
class NoiseRecord:
    """Noise transport messages carrying marker-prefixed payloads."""

    transport: NoiseTransport = field(repr=False)
    payload_marker: PayloadMarker = PayloadMarker.MSGPACK

    def seal(self, message: HiveMessage) -> bytes:
        """Seal ``message`` into one binary frame (several Noise messages if long)."""
        plaintext = bytes((self.payload_marker,)) + _encode(message, self.payload_marker)
        if len(plaintext) <= NOISE_CHUNK:
            return self.transport.encrypt(plaintext)
        view = memoryview(plaintext)
        return b"".join(
            self.transport.encrypt(bytes(view[i : i + NOISE_CHUNK]))
            for i in range(0, len(plaintext), NOISE_CHUNK)
        )

    def open_binary(self, frame: bytes) -> HiveMessage:
        """Open a frame: decrypt every chunk in order, then decode by marker."""
        if len(frame) <= NOISE_MAX_MESSAGE:
            plaintext = self.transport.decrypt(frame)
        else:
            view = memoryview(frame)
            plaintext = b"".join(
                self.transport.decrypt(bytes(view[i : i + NOISE_MAX_MESSAGE]))
                for i in range(0, len(frame), NOISE_MAX_MESSAGE)
            )
        if not plaintext:
            raise CodecError("empty Noise payload")
        return _decode(plaintext[0], memoryview(plaintext)[1:])


def _encode(message: HiveMessage, marker: PayloadMarker) -> bytes:
    if marker is PayloadMarker.MSGPACK:
        return encode_msgpack(message)
    if marker is PayloadMarker.WIRE1 or message.msg_type is MessageType.BINARY:
        return encode_wire1(message, compression=Compression.AUTO)
    return encode_json(message).encode("utf-8")


def _decode(marker: int, body: memoryview) -> HiveMessage:
    if marker == PayloadMarker.MSGPACK:
        return decode_msgpack(bytes(body))
    if marker == PayloadMarker.WIRE1:
        return decode_wire1(bytes(body))
    if marker == PayloadMarker.JSON:
        return decode_json(bytes(body))
    raise CodecError(f"unknown payload marker {marker:#04x}")


def parse_text_frame(frame: str) -> tuple[dict[str, object], bool]:
    """Parse a text frame; return the JSON object and whether it is encrypted.

    Raises:
        CodecError: not a JSON object.
    """
    obj = loads(frame)
    if not isinstance(obj, dict):
        raise CodecError("a text frame must hold a JSON object")
    return obj, is_encrypted_json(obj)

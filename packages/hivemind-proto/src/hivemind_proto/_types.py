"""Enumerations shared by every layer of the protocol: message types, binary
payload types, ciphers, text encodings and payload markers."""

from __future__ import annotations

from enum import IntEnum, StrEnum


class MessageType(StrEnum):
    """A HiveMessage ``msg_type``; the value is the wire string."""

    HANDSHAKE = "shake"
    BUS = "bus"
    SHARED_BUS = "shared_bus"
    BROADCAST = "broadcast"
    PROPAGATE = "propagate"
    ESCALATE = "escalate"
    HELLO = "hello"
    QUERY = "query"
    CASCADE = "cascade"
    PING = "ping"
    RENDEZVOUS = "rendezvous"
    THIRDPRTY = "3rdparty"
    BINARY = "bin"
    INTERCOM = "intercom"


#: 5-bit WIRE-1 type codes. INTERCOM has none and cannot travel in WIRE-1.
WIRE1_TYPE_CODES: dict[MessageType, int] = {
    MessageType.HANDSHAKE: 0,
    MessageType.BUS: 1,
    MessageType.SHARED_BUS: 2,
    MessageType.BROADCAST: 3,
    MessageType.PROPAGATE: 4,
    MessageType.ESCALATE: 5,
    MessageType.HELLO: 6,
    MessageType.QUERY: 7,
    MessageType.CASCADE: 8,
    MessageType.PING: 9,
    MessageType.RENDEZVOUS: 10,
    MessageType.THIRDPRTY: 11,
    MessageType.BINARY: 12,
}

#: Types whose payload is a complete nested HiveMessage.
WRAPPER_TYPES = frozenset(
    {
        MessageType.BROADCAST,
        MessageType.PROPAGATE,
        MessageType.ESCALATE,
        MessageType.QUERY,
        MessageType.CASCADE,
    }
)

#: Types whose payload is an agent-bus (OVOS) message ``{type, data, context}``.
BUS_TYPES = frozenset({MessageType.BUS, MessageType.SHARED_BUS})


class BinaryType(IntEnum):
    """The 4-bit ``bin_type`` of a BINARY message."""

    UNDEFINED = 0
    RAW_AUDIO = 1
    NUMPY_IMAGE = 2
    FILE = 3
    STT_AUDIO_TRANSCRIBE = 4
    STT_AUDIO_HANDLE = 5
    TTS_AUDIO = 6


class Cipher(StrEnum):
    """Legacy per-frame AEAD ciphers; the value is the wire name."""

    AES_GCM = "AES-GCM"
    CHACHA20_POLY1305 = "CHACHA20-POLY1305"


class TextEncoding(StrEnum):
    """Text encodings of encrypted JSON frames; the value is the wire name."""

    JSON_B64 = "JSON-B64"
    JSON_URLSAFE_B64 = "JSON-URLSAFE-B64"
    JSON_B32 = "JSON-B32"
    JSON_HEX = "JSON-HEX"
    JSON_B91 = "JSON-B91"
    JSON_Z85B = "JSON-Z85B"
    JSON_Z85P = "JSON-Z85P"


class PayloadMarker(IntEnum):
    """First plaintext byte of every profile-N transport message."""

    JSON = 0x00
    WIRE1 = 0x01
    MSGPACK = 0x02

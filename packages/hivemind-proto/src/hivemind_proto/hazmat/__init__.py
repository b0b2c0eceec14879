"""Raw codecs, ciphers and handshake pieces, without the state machine.

Everything here can build traffic a ``Connection`` would never produce: frames
sealed with a chosen nonce, envelopes for any password and IV, WIRE-1 frames
with any header bits, Noise handshakes driven by hand. It exists for test
tools (the conformance suite crafts malformed traffic with it) and for
interoperability work. Misusing it breaks security; ordinary code should use
``hivemind_proto.Connection`` and ``hivemind_proto.trio``.
"""

from __future__ import annotations

from .._bits import BitReader, BitWriter
from .._ciphers import SessionKey, aead_open, aead_seal, nonce_size
from .._encodings import decode_text, encode_text
from .._envelope import HiveMessage, RouteHop, nested_from_json, parse_route
from .._frames import (
    is_encrypted_json,
    open_binary_frame,
    open_json_frame,
    seal_binary_frame,
    seal_binary_frame_with_nonce,
    seal_json_frame,
    seal_json_frame_with_nonce,
)
from .._json_codec import decode_json, dumps, encode_json, loads
from .._msgpack_codec import decode_msgpack, encode_msgpack
from .._negotiation import HUB_CIPHERS, HUB_ENCODINGS, SATELLITE_ENCODINGS, negotiate
from .._noise import NoiseHandshake, NoiseTransport, protocol_name
from .._password import (
    PBKDF2_ITERATIONS,
    PasswordHandshake,
    derive_session_key,
    envelope_iv,
    make_envelope,
    verify_envelope,
)
from .._types import WIRE1_TYPE_CODES
from .._wire1 import Compression, decode_wire1, encode_wire1

__all__ = [
    "HUB_CIPHERS",
    "HUB_ENCODINGS",
    "PBKDF2_ITERATIONS",
    "SATELLITE_ENCODINGS",
    "WIRE1_TYPE_CODES",
    "BitReader",
    "BitWriter",
    "Compression",
    "HiveMessage",
    "NoiseHandshake",
    "NoiseTransport",
    "PasswordHandshake",
    "RouteHop",
    "SessionKey",
    "aead_open",
    "aead_seal",
    "decode_json",
    "decode_msgpack",
    "decode_text",
    "decode_wire1",
    "derive_session_key",
    "dumps",
    "encode_json",
    "encode_msgpack",
    "encode_text",
    "encode_wire1",
    "envelope_iv",
    "is_encrypted_json",
    "loads",
    "make_envelope",
    "negotiate",
    "nested_from_json",
    "nonce_size",
    "open_binary_frame",
    "open_json_frame",
    "parse_route",
    "protocol_name",
    "seal_binary_frame",
    "seal_binary_frame_with_nonce",
    "seal_json_frame",
    "seal_json_frame_with_nonce",
    "verify_envelope",
]

"""The HiveMind wire protocol, sans-IO.

``hivemind_proto`` turns websocket frames into events and messages into
frames, for both ends of a connection (hub and satellite), on three profiles:
the legacy v1 wire every released client speaks (L), the same bytes hardened
(S), and v3 Noise (N). It performs no I/O, reads no clock and draws randomness
only from the ``rng`` it is given. ``hivemind_proto.trio`` runs a
``Connection`` over a websocket; ``hivemind_proto.hazmat`` exposes the raw
codecs and ciphers for tools that must craft malformed traffic.
"""

from __future__ import annotations

from ._auth import (
    Authorization,
    authorization_from_target,
    build_authorization,
    parse_authorization,
)
from ._connection import Connection, canonical_json, noise_prologue
from ._envelope import HiveMessage, RouteHop, bus_message
from ._errors import (
    CloseCode,
    CodecError,
    DecryptionError,
    LocalProtocolError,
    ProtocolError,
    RemoteProtocolError,
)
from ._events import (
    ConnectionClosed,
    Event,
    HandshakeComplete,
    HelloReceived,
    MessageReceived,
    Profile,
)
from ._json_codec import decode_json, encode_json
from ._msgpack_codec import decode_msgpack, encode_msgpack
from ._noise import NoisePattern, NoisePublicKey, NoiseSuite, StaticKeypair, derive_psk
from ._record import Frame
from ._settings import HubSettings, NoiseIdentity, SatelliteSettings
from ._state import Role, State
from ._types import BinaryType, Cipher, MessageType, PayloadMarker, TextEncoding
from ._websocket import HiveWebSocket
from ._wire1 import Compression, decode_wire1, encode_wire1

__all__ = [
    "Authorization",
    "BinaryType",
    "Cipher",
    "CloseCode",
    "CodecError",
    "Compression",
    "Connection",
    "ConnectionClosed",
    "DecryptionError",
    "Event",
    "Frame",
    "HandshakeComplete",
    "HelloReceived",
    "HiveMessage",
    "HiveWebSocket",
    "HubSettings",
    "LocalProtocolError",
    "MessageReceived",
    "MessageType",
    "NoiseIdentity",
    "NoisePattern",
    "NoisePublicKey",
    "NoiseSuite",
    "PayloadMarker",
    "Profile",
    "ProtocolError",
    "RemoteProtocolError",
    "Role",
    "RouteHop",
    "SatelliteSettings",
    "State",
    "StaticKeypair",
    "TextEncoding",
    "authorization_from_target",
    "build_authorization",
    "bus_message",
    "canonical_json",
    "decode_json",
    "decode_msgpack",
    "decode_wire1",
    "derive_psk",
    "encode_json",
    "encode_msgpack",
    "encode_wire1",
    "noise_prologue",
    "parse_authorization",
]

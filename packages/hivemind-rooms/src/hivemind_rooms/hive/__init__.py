"""The room service as a HiveMind node, and end-to-end sealed room requests.

Hubs link to the service's websocket endpoint (:func:`hive_endpoint`) with
credentials from :class:`PeerStore` and relay ``hivemind.room.*`` requests
(:mod:`hivemind_rooms.hive._wire`). Participants use
:class:`RoomBridgeClient` over any satellite connection; prompts and answers
are sealed end to end (:mod:`hivemind_rooms.hive._sealing`).
"""

from __future__ import annotations

from ._node import HiveNode, hive_endpoint
from ._peers import PEERS_FILE, ROOM_TYPES, PeerHub, PeerStore
from ._sealing import SealError, SealKey, open_reply, seal_request, verify_seal_statement
from ._wire import (
    ANSWER,
    ASK,
    ATTESTATION,
    ERROR,
    INSPECT,
    NAMESPACE,
    PROGRESS,
    request_message,
    response_message,
)
from .client import (
    BridgeError,
    BridgeVerificationError,
    RoomBridgeClient,
    VerifiedAnswer,
    VerifiedBridgeRoom,
)

__all__ = [
    "ANSWER",
    "ASK",
    "ATTESTATION",
    "ERROR",
    "INSPECT",
    "NAMESPACE",
    "PEERS_FILE",
    "PROGRESS",
    "ROOM_TYPES",
    "BridgeError",
    "BridgeVerificationError",
    "HiveNode",
    "PeerHub",
    "PeerStore",
    "RoomBridgeClient",
    "SealError",
    "SealKey",
    "VerifiedAnswer",
    "VerifiedBridgeRoom",
    "hive_endpoint",
    "open_reply",
    "request_message",
    "response_message",
    "seal_request",
    "verify_seal_statement",
]

"""The hub's pure routing core (no trio, no I/O): see ``_router``."""

from __future__ import annotations

from ._actions import (
    Action,
    BinaryPayload,
    Disconnect,
    EmitToAgent,
    SendToPeer,
    SendUpstream,
    SharedBus,
    UpdateSession,
)
from ._bounded import BoundedMap, BoundedSet
from ._intercom import MAX_CIPHERTEXT_BYTES, IntercomCrypto, SealedIntercom
from ._router import QUERY_KEY, UPSTREAM, PeerState, Router

__all__ = [
    "MAX_CIPHERTEXT_BYTES",
    "QUERY_KEY",
    "UPSTREAM",
    "Action",
    "BinaryPayload",
    "BoundedMap",
    "BoundedSet",
    "Disconnect",
    "EmitToAgent",
    "IntercomCrypto",
    "PeerState",
    "Router",
    "SealedIntercom",
    "SendToPeer",
    "SendUpstream",
    "SharedBus",
    "UpdateSession",
]

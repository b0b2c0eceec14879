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
from ._router import QUERY_KEY, UPSTREAM, PeerState, Router

__all__ = [
    "QUERY_KEY",
    "UPSTREAM",
    "Action",
    "BinaryPayload",
    "BoundedMap",
    "BoundedSet",
    "Disconnect",
    "EmitToAgent",
    "PeerState",
    "Router",
    "SendToPeer",
    "SendUpstream",
    "SharedBus",
    "UpdateSession",
]

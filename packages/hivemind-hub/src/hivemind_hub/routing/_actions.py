"""What the routing core asks the server to do: an outbox of frozen actions."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, final

from hivemind_proto import BinaryType, HiveMessage

__all__ = [
    "Action",
    "BinaryPayload",
    "Disconnect",
    "EmitToAgent",
    "SendToPeer",
    "SendUpstream",
    "SharedBus",
    "UpdateSession",
]


class Action:
    """Base class of outbox entries."""

    __slots__ = ()


@final
@dataclass(frozen=True, slots=True)
class SendToPeer(Action):
    """Send ``message`` to the registered downstream connection ``peer``."""

    peer: str
    message: HiveMessage


@final
@dataclass(frozen=True, slots=True)
class SendUpstream(Action):
    """Send ``message`` to the parent hub over the upstream link."""

    message: HiveMessage


@final
@dataclass(frozen=True, slots=True)
class EmitToAgent(Action):
    """Emit an agent-bus message ``{"type", "data", "context"}``."""

    message: Mapping[str, Any]
    peer: str | None = None


@final
@dataclass(frozen=True, slots=True)
class Disconnect(Action):
    """Close the connection ``peer`` with a websocket close code."""

    peer: str
    code: int
    reason: str


@final
@dataclass(frozen=True, slots=True)
class UpdateSession(Action):
    """The connection ``peer`` now has this session."""

    peer: str
    session: Mapping[str, Any]


@final
@dataclass(frozen=True, slots=True)
class BinaryPayload(Action):
    """An admitted BINARY payload for the binary protocol hook."""

    peer: str
    bin_type: BinaryType
    payload: bytes = field(repr=False)
    metadata: Mapping[str, Any] = field(default_factory=dict)


@final
@dataclass(frozen=True, slots=True)
class SharedBus(Action):
    """A satellite's copy of its own bus traffic (passive monitoring only)."""

    peer: str
    payload: Mapping[str, Any] = field(repr=False)

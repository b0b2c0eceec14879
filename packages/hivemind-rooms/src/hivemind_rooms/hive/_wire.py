"""The ``hivemind.room.*`` message types and their QUERY envelopes.

Room requests travel as agent-bus messages inside QUERY envelopes, so hubs
route them with their existing QUERY machinery (to the parent link, answers
back along the recorded origin) and admit them with their policy chain (the
type is in a reserved namespace a client's ``allowed_types`` must list).
Every answer is a QUERY response carrying the request's ``query_id``; one
request may be answered several times (progress, then the answer).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from hivemind_proto import HiveMessage, MessageType, bus_message

__all__ = [
    "ANSWER",
    "ASK",
    "ATTESTATION",
    "ERROR",
    "INSPECT",
    "NAMESPACE",
    "PROGRESS",
    "REQUEST_OPS",
    "request_message",
    "response_message",
]

NAMESPACE: Final = "hivemind.room."
ATTESTATION: Final = "hivemind.room.attestation"
INSPECT: Final = "hivemind.room.inspect"
ASK: Final = "hivemind.room.ask"
PROGRESS: Final = "hivemind.room.progress"
ANSWER: Final = "hivemind.room.answer"
ERROR: Final = "hivemind.room.error"
#: Request types and the operation name sealed into them.
REQUEST_OPS: Final = {ATTESTATION: "attestation", INSPECT: "inspect", ASK: "ask"}


def request_message(msg_type: str, data: Mapping[str, Any], query_id: str) -> HiveMessage:
    """A room request as a satellite sends it (QUERY around a BUS message)."""
    inner = HiveMessage(MessageType.BUS, bus_message(msg_type, data, {}))
    return HiveMessage(MessageType.QUERY, inner, metadata={"query_id": query_id})


def response_message(
    request: HiveMessage, msg_type: str, data: Mapping[str, Any], *, responder: str
) -> HiveMessage:
    """Answer ``request`` with one QUERY response."""
    meta = {
        "query_id": request.metadata.get("query_id"),
        "originator_peer": request.metadata.get("originator_peer"),
        "responder_peer": responder,
        "is_response": True,
    }
    inner = HiveMessage(MessageType.BUS, bus_message(msg_type, data, {"source": responder}))
    return HiveMessage(MessageType.QUERY, inner, metadata=meta, source_peer=responder)

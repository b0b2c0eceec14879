"""The HiveMessage envelope.

Theory of operation: a ``HiveMessage`` is an immutable value. Its ``payload``
is typed by ``msg_type`` and checked when the message is built, so an
impossible message (a BROADCAST without a nested message, a BUS without a
``type``, a BINARY carrying a dict) cannot exist:

* wrapper types (BROADCAST, PROPAGATE, ESCALATE, QUERY, CASCADE) carry a nested
  ``HiveMessage``;
* BUS and SHARED_BUS carry an agent-bus message: a mapping with a string
  ``type`` (``data`` and ``context`` default to empty mappings);
* BINARY carries ``bytes`` plus a 4-bit ``bin_type``;
* every other type carries an opaque JSON object.

``route`` is the hop trail (``RouteHop(source, targets)``) used for reply routing
and loop suppression. ``to_dict``/``from_dict`` convert to and from the JSON
object form of the legacy wire; decoding is lenient in what the spec allows
(unknown keys ignored, missing optional keys defaulted, hops with an empty
source or empty targets dropped) and strict about everything else.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Union, final

from ._errors import CodecError, LocalProtocolError
from ._types import BUS_TYPES, WRAPPER_TYPES, BinaryType, MessageType

Payload = Union["HiveMessage", Mapping[str, Any], bytes]

#: ``dict`` first: it short-circuits the slower ``Mapping`` ABC check.
_MAPPINGS: Final = (dict, Mapping)

#: Top-level keys of the JSON envelope, in the order the released client emits.
ENVELOPE_KEYS: Final = (
    "msg_type",
    "payload",
    "metadata",
    "route",
    "node",
    "target_site_id",
    "target_pubkey",
    "source_peer",
)


@final
@dataclass(frozen=True, slots=True)
class RouteHop:
    """One hop of a message's route: who forwarded it and to whom."""

    source: str
    targets: tuple[str, ...]

    def __post_init__(self) -> None:
        if not isinstance(self.source, str) or not self.source:
            raise LocalProtocolError("a route hop needs a non-empty source")
        if not self.targets or not all(isinstance(t, str) for t in self.targets):
            raise LocalProtocolError("a route hop needs a non-empty tuple of string targets")

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON object form ``{"source", "targets"}``."""
        return {"source": self.source, "targets": list(self.targets)}


@final
@dataclass(frozen=True, slots=True, eq=True)
class HiveMessage:
    """One HiveMind message.

    Args:
        msg_type: the message type.
        payload: typed by ``msg_type`` (see the module comment).
        metadata: free-form "hivemeta" object.
        route: the hop trail, oldest first.
        node: reserved node id (never set by released peers).
        target_site_id: site filter for BUS inside transport wrappers.
        target_pubkey: INTERCOM addressee.
        source_peer: the last forwarding peer.
        bin_type: the binary payload kind (BINARY only).

    Raises:
        LocalProtocolError: the payload does not fit the message type.
    """

    msg_type: MessageType
    payload: Payload
    metadata: Mapping[str, Any] = field(default_factory=dict)
    route: tuple[RouteHop, ...] = ()
    node: str | None = None
    target_site_id: str | None = None
    target_pubkey: str | None = None
    source_peer: str | None = None
    bin_type: BinaryType = BinaryType.UNDEFINED

    def __post_init__(self) -> None:
        if not isinstance(self.msg_type, MessageType):
            raise LocalProtocolError(f"msg_type must be a MessageType, not {self.msg_type!r}")
        _check_payload(self.msg_type, self.payload)
        if not isinstance(self.metadata, _MAPPINGS):
            raise LocalProtocolError("metadata must be a mapping")
        if self.bin_type != BinaryType.UNDEFINED and self.msg_type is not MessageType.BINARY:
            raise LocalProtocolError("bin_type is only meaningful for BINARY messages")
        for name in ("node", "target_site_id", "target_pubkey", "source_peer"):
            value = getattr(self, name)
            if value is not None and not isinstance(value, str):
                raise LocalProtocolError(f"{name} must be a string or None")

    # -- convenience -----------------------------------------------------

    @property
    def inner(self) -> HiveMessage:
        """The nested message of a wrapper type.

        Raises:
            LocalProtocolError: this message is not a wrapper.
        """
        if not isinstance(self.payload, HiveMessage):
            raise LocalProtocolError(f"{self.msg_type.value} messages have no nested message")
        return self.payload

    @property
    def bus_type(self) -> str | None:
        """The agent-bus ``type`` of a BUS/SHARED_BUS payload, else None."""
        if self.msg_type in BUS_TYPES:
            return str(self.payload["type"])  # type: ignore[index]
        return None

    def replace(self, **changes: Any) -> HiveMessage:
        """Return a copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **changes)

    def with_hop(self, source: str, targets: tuple[str, ...] | None = None) -> HiveMessage:
        """Append a route hop unless the last hop already has this source."""
        if self.route and self.route[-1].source == source:
            return self
        hop = RouteHop(source, targets or (source,))
        return dataclasses.replace(self, route=(*self.route, hop))

    def route_contains(self, source: str) -> bool:
        """True when any hop of the route was made by ``source``."""
        return any(hop.source == source for hop in self.route)

    # -- JSON object form ------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """Return the legacy JSON object form (key order of the released client).

        Raises:
            LocalProtocolError: BINARY messages have no JSON form.
        """
        if self.msg_type is MessageType.BINARY:
            raise LocalProtocolError("BINARY messages cannot be represented as JSON")
        payload = self.payload
        body = payload.to_dict() if isinstance(payload, HiveMessage) else payload
        return {
            "msg_type": self.msg_type.value,
            "payload": body,
            "metadata": self.metadata,
            "route": [hop.to_dict() for hop in self.route],
            "node": self.node,
            "target_site_id": self.target_site_id,
            "target_pubkey": self.target_pubkey,
            "source_peer": self.source_peer,
        }

    @classmethod
    def from_dict(cls, obj: Any) -> HiveMessage:
        """Build a message from its JSON object form.

        Unknown top-level keys are ignored; missing optional keys take their
        defaults.

        Raises:
            CodecError: the object is not a valid HiveMessage.
        """
        if not isinstance(obj, _MAPPINGS):
            raise CodecError("a HiveMessage must be a JSON object")
        msg_type = parse_message_type(obj.get("msg_type"))
        if msg_type is MessageType.BINARY:
            raise CodecError("BINARY messages cannot travel as JSON")
        try:
            return cls(
                msg_type=msg_type,
                payload=_payload_from_json(msg_type, obj.get("payload")),
                metadata=_mapping_or_empty(obj.get("metadata"), "metadata"),
                route=parse_route(obj.get("route")),
                node=_optional_str(obj.get("node"), "node"),
                target_site_id=_optional_str(obj.get("target_site_id"), "target_site_id"),
                target_pubkey=_optional_str(obj.get("target_pubkey"), "target_pubkey"),
                source_peer=_optional_str(obj.get("source_peer"), "source_peer"),
            )
        except LocalProtocolError as exc:
            raise CodecError(f"invalid HiveMessage: {exc}") from None


# -- helpers -----------------------------------------------------------------


def bus_message(
    msg_type: str, data: Mapping[str, Any] | None = None, context: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """Build an agent-bus message object ``{"type", "data", "context"}``."""
    return {"type": msg_type, "data": dict(data or {}), "context": dict(context or {})}


def parse_message_type(value: Any) -> MessageType:
    """Map a wire ``msg_type`` string to ``MessageType``.

    Raises:
        CodecError: unknown or missing type.
    """
    try:
        return MessageType(value)
    except ValueError:
        raise CodecError(f"unknown msg_type {value!r}") from None


def parse_route(value: Any) -> tuple[RouteHop, ...]:
    """Parse a JSON route list, dropping hops with an empty source or targets.

    Raises:
        CodecError: the route is not a list of hop objects.
    """
    if value is None:
        return ()
    if not isinstance(value, list):
        raise CodecError("route must be a list")
    hops: list[RouteHop] = []
    for item in value:
        if not isinstance(item, _MAPPINGS):
            raise CodecError("route hops must be objects")
        source, targets = item.get("source"), item.get("targets")
        if not source or not targets:
            continue
        if not isinstance(source, str) or not isinstance(targets, list):
            raise CodecError("route hop has wrong field types")
        if not all(isinstance(t, str) for t in targets):
            raise CodecError("route hop targets must be strings")
        hops.append(RouteHop(source, tuple(targets)))
    return tuple(hops)


def _check_payload(msg_type: MessageType, payload: Any) -> None:
    if msg_type in WRAPPER_TYPES:
        if not isinstance(payload, HiveMessage):
            raise LocalProtocolError(f"{msg_type.value} needs a nested HiveMessage payload")
    elif msg_type is MessageType.BINARY:
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise LocalProtocolError("BINARY needs a bytes payload")
    elif not isinstance(payload, _MAPPINGS):
        raise LocalProtocolError(f"{msg_type.value} needs an object payload")
    elif msg_type in BUS_TYPES and not isinstance(payload.get("type"), str):
        raise LocalProtocolError(f"{msg_type.value} payload needs a string 'type'")


def _payload_from_json(msg_type: MessageType, value: Any) -> Payload:
    if msg_type in WRAPPER_TYPES:
        return nested_from_json(value)
    if msg_type in BUS_TYPES:
        if not isinstance(value, _MAPPINGS) or not isinstance(value.get("type"), str):
            raise CodecError(f"{msg_type.value} payload needs a string 'type'")
        data = _mapping_or_empty(value.get("data"), "payload.data")
        context = _mapping_or_empty(value.get("context"), "payload.context")
        return {**value, "data": data, "context": context}
    if value is None:
        return {}
    if not isinstance(value, _MAPPINGS):
        raise CodecError(f"{msg_type.value} payload must be an object")
    return value


def nested_from_json(value: Any) -> HiveMessage:
    """Parse the nested message of a wrapper.

    An object without ``msg_type`` but with a ``type`` is an agent-bus message
    and becomes a BUS message, as released peers do.

    Raises:
        CodecError: not an object, or not a valid message.
    """
    if not isinstance(value, _MAPPINGS):
        raise CodecError("a wrapper payload must be a HiveMessage object")
    if "msg_type" not in value and isinstance(value.get("type"), str):
        return HiveMessage(MessageType.BUS, _payload_from_json(MessageType.BUS, value))
    return HiveMessage.from_dict(value)


def _mapping_or_empty(value: Any, name: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, _MAPPINGS):
        raise CodecError(f"{name} must be an object")
    return value


def _optional_str(value: Any, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise CodecError(f"{name} must be a string or null")

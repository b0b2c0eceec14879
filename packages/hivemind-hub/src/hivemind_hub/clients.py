"""The client record: one credential allowed to connect to the hub.

Theory of operation
-------------------
A :class:`Client` is an immutable value. Stores hand out fresh values and take
whole values back (``dataclasses.replace`` makes the edited copy), so a record
held by a live connection can never change underneath it; the connection asks
the store again when it needs the current grants.

Storage shape. Records are stored as a JSON object with the upstream field
names (``client_id``, ``api_key``, ``allowed_types``, ...). Reading is lenient
so that every historic layout loads: legacy top-level ``intent_blacklist``,
``skill_blacklist`` and ``message_blacklist`` move into ``metadata`` (an entry
already in ``metadata`` wins), unknown top-level keys are folded into
``metadata`` too, and 0/1 integers in boolean columns (old SQLite rows) are
accepted. Building a record directly is strict: booleans must be ``bool``.

Access control is deny-by-default: an empty ``allowed_types`` admits nothing,
for admins too.

Secrets. ``password`` and ``crypto_key`` are kept in clear because the legacy
handshakes need them, but they never appear in ``repr`` output.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from types import MappingProxyType
from typing import Any, Final

from ._errors import InvalidClientError

__all__ = [
    "LEGACY_METADATA_KEYS",
    "REVOKED_ACCESS_KEY",
    "Client",
]

#: The access key the upstream hub writes into deleted rows. It never matches.
REVOKED_ACCESS_KEY: Final = "revoked"

#: Legacy top-level list fields that live in ``metadata`` from schema v2 on.
LEGACY_METADATA_KEYS: Final = ("intent_blacklist", "skill_blacklist", "message_blacklist")

_BOOL_FIELDS: Final = ("is_admin", "can_broadcast", "can_escalate", "can_propagate")


@dataclass(frozen=True, eq=True, repr=False)
class Client:
    """One hub credential and its grants (spec §6.1).

    Attributes:
        client_id: Stable numeric id, never reused.
        api_key: The access key presented in the connection URL.
        name: Friendly name, part of the peer string.
        description: Free text.
        is_admin: Informational; admins are still bound by ``allowed_types``.
        last_seen: Unix time of the last inbound message, ``-1`` if never.
        allowed_types: Whitelist of agent-bus message types the client may
            inject. Empty means deny everything.
        crypto_key: Deprecated legacy pre-shared key (16 characters) or None.
        password: Handshake password (kept in clear for the legacy handshake).
        can_broadcast: May send BROADCAST (together with ``is_admin``).
        can_escalate: May send ESCALATE and QUERY.
        can_propagate: May send PROPAGATE and CASCADE.
        metadata: Admin-defined data read by policy plugins (read-only view).
    """

    client_id: int
    api_key: str
    name: str = ""
    description: str = ""
    is_admin: bool = False
    last_seen: float = -1.0
    allowed_types: tuple[str, ...] = ()
    crypto_key: str | None = None
    password: str | None = None
    can_broadcast: bool = True
    can_escalate: bool = True
    can_propagate: bool = True
    metadata: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        _check_int("client_id", self.client_id)
        for name in ("api_key", "name", "description"):
            _check_str(name, getattr(self, name))
        for name in ("crypto_key", "password"):
            value = getattr(self, name)
            if value is not None:
                _check_str(name, value)
        for name in _BOOL_FIELDS:
            if not isinstance(getattr(self, name), bool):
                raise InvalidClientError(f"{name}: expected a boolean")
        if isinstance(self.last_seen, bool) or not isinstance(self.last_seen, int | float):
            raise InvalidClientError("last_seen: expected a number")
        if not math.isfinite(self.last_seen):
            raise InvalidClientError("last_seen: expected a finite number")
        object.__setattr__(self, "last_seen", float(self.last_seen))
        object.__setattr__(self, "allowed_types", _str_tuple("allowed_types", self.allowed_types))
        if not isinstance(self.metadata, Mapping):
            raise InvalidClientError("metadata: expected an object")
        frozen_meta = MappingProxyType(json.loads(_dumps_metadata(self.metadata)))
        object.__setattr__(self, "metadata", frozen_meta)

    def __repr__(self) -> str:
        return (
            f"Client(client_id={self.client_id}, name={self.name!r}, "
            f"is_admin={self.is_admin}, allowed_types={list(self.allowed_types)!r}, "
            "api_key=<hidden>, password=<hidden>)"
        )

    # Equality compares values; hashing a record with a mapping inside makes no sense.
    __hash__ = None  # type: ignore[assignment]

    @property
    def is_revoked(self) -> bool:
        """True for a legacy tombstone row (access key ``revoked`` or empty)."""
        return self.api_key in ("", REVOKED_ACCESS_KEY)

    @property
    def intent_blacklist(self) -> tuple[str, ...]:
        """Intents the OVOS agent must not trigger for this client (metadata shim)."""
        return _meta_list(self.metadata, "intent_blacklist")

    @property
    def skill_blacklist(self) -> tuple[str, ...]:
        """Skills the OVOS agent must not trigger for this client (metadata shim)."""
        return _meta_list(self.metadata, "skill_blacklist")

    def with_changes(self, **changes: Any) -> Client:
        """Return a copy with some fields replaced (validated like the constructor).

        Raises:
            InvalidClientError: A field name is unknown or a value is invalid.
        """
        unknown = set(changes) - {f.name for f in fields(self)}
        if unknown:
            raise InvalidClientError(f"unknown client field(s): {', '.join(sorted(unknown))}")
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """Return the storage form (upstream field names, plain JSON types)."""
        return {
            "client_id": self.client_id,
            "api_key": self.api_key,
            "name": self.name,
            "description": self.description,
            "is_admin": self.is_admin,
            "last_seen": self.last_seen,
            "allowed_types": list(self.allowed_types),
            "crypto_key": self.crypto_key,
            "password": self.password,
            "can_broadcast": self.can_broadcast,
            "can_escalate": self.can_escalate,
            "can_propagate": self.can_propagate,
            "metadata": json.loads(_dumps_metadata(self.metadata)),
        }

    def to_json(self) -> str:
        """Return the storage form as JSON with sorted keys."""
        return json.dumps(self.to_dict(), sort_keys=True, ensure_ascii=False)

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Client:
        """Build a record from any historic storage layout (see module notes).

        Raises:
            InvalidClientError: The mapping lacks ``client_id``/``api_key`` or
                holds a value of the wrong type.
        """
        if not isinstance(raw, Mapping):
            raise InvalidClientError("client record: expected an object")
        known = {f.name for f in fields(cls)}
        data = dict(raw)
        metadata = _load_metadata(data.pop("metadata", None))
        for key in [k for k in data if k not in known]:
            value = data.pop(key)
            if key in LEGACY_METADATA_KEYS and _is_empty(value):
                continue
            metadata.setdefault(str(key), _decode_json_text(value))
        if "client_id" not in data or "api_key" not in data:
            raise InvalidClientError("client record: client_id and api_key are required")
        for name in _BOOL_FIELDS:
            if name in data:
                data[name] = _coerce_bool(name, data[name])
        if data.get("allowed_types") is not None:
            data["allowed_types"] = _decode_json_text(data["allowed_types"])
        else:
            data.pop("allowed_types", None)
        if data.get("last_seen") is None:
            data.pop("last_seen", None)
        for name in ("name", "description"):
            if data.get(name) is None:
                data.pop(name, None)
        data["metadata"] = metadata
        return cls(**data)

    @classmethod
    def from_json(cls, text: str) -> Client:
        """Parse a record stored as JSON text.

        Raises:
            InvalidClientError: The text is not a JSON object or not a valid record.
        """
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise InvalidClientError("client record: not valid JSON") from exc
        return cls.from_dict(raw)


def _dumps_metadata(metadata: Mapping[str, Any]) -> str:
    try:
        return json.dumps(dict(metadata), sort_keys=True, ensure_ascii=False)
    except (TypeError, ValueError) as exc:
        raise InvalidClientError("metadata: values must be JSON-serializable") from exc


def _check_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidClientError(f"{name}: expected an integer")


def _check_str(name: str, value: object) -> None:
    if not isinstance(value, str):
        raise InvalidClientError(f"{name}: expected a string")


def _str_tuple(name: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise InvalidClientError(f"{name}: expected a list of strings")
    items = tuple(value)
    if not all(isinstance(item, str) for item in items):
        raise InvalidClientError(f"{name}: expected a list of strings")
    return tuple(dict.fromkeys(items))


def _coerce_bool(name: str, value: object) -> bool:
    # Old SQLite rows hold 0/1 integers in BOOLEAN columns (spec W26).
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    raise InvalidClientError(f"{name}: expected a boolean")


def _decode_json_text(value: Any) -> Any:
    # SQLite list/dict columns hold JSON text.
    if isinstance(value, str) and value[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _load_metadata(value: Any) -> dict[str, Any]:
    value = _decode_json_text(value)
    if value is None or value == "":
        return {}
    if not isinstance(value, Mapping):
        raise InvalidClientError("metadata: expected an object")
    return dict(value)


def _is_empty(value: Any) -> bool:
    return value is None or value == "" or _decode_json_text(value) in ([], {})


def _meta_list(metadata: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = metadata.get(key)
    if not isinstance(value, list | tuple):
        return ()
    return tuple(str(item) for item in value)

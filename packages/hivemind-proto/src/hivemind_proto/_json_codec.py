"""The legacy JSON form of a HiveMessage.

Encoding reproduces the released client byte for byte: ``json.dumps`` with the
default separators (``", "`` and ``": "``), ``ensure_ascii=False`` and the key
order of ``ENVELOPE_KEYS``. Decoding parses structurally and never compares
bytes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from ._envelope import HiveMessage
from ._errors import CodecError, LocalProtocolError

_DECODER = json.JSONDecoder()
_ENCODER = json.JSONEncoder(ensure_ascii=False, default=lambda o: _to_json_value(o))


def _to_json_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, tuple):
        return list(value)
    raise LocalProtocolError(f"{type(value).__name__} values cannot be sent as JSON")


def encode_json(message: HiveMessage) -> str:
    """Serialise ``message`` to its legacy JSON text.

    Raises:
        LocalProtocolError: the message (or a value inside it) has no JSON form.
    """
    return _ENCODER.encode(message.to_dict())


def dumps(obj: Any) -> str:
    """Serialise a JSON value the way the legacy wire does."""
    return _ENCODER.encode(obj)


def loads(text: str | bytes) -> Any:
    """Parse JSON text from the wire.

    Raises:
        CodecError: not UTF-8 or not JSON.
    """
    try:
        if not isinstance(text, str):
            text = text.decode("utf-8")  # the wire is UTF-8; skips json's encoding sniffing
        return _DECODER.decode(text)
    except (ValueError, RecursionError) as exc:
        raise CodecError(f"invalid JSON: {type(exc).__name__}") from None


def decode_json(text: str | bytes) -> HiveMessage:
    """Parse a legacy JSON HiveMessage.

    Raises:
        CodecError: not JSON, or not a valid HiveMessage.
    """
    return HiveMessage.from_dict(loads(text))

"""The msgpack form of a HiveMessage (profile N, payload marker ``0x02``).

Theory of operation. This is our own format: a single msgpack map with short
string keys that carries every field of the envelope, so nothing is lost the
way it is in WIRE-1 (route, targets, source peer, nested wrappers and raw
bytes all travel natively). Keys whose value is the default are omitted.

=====  =================  =====================================================
key    envelope field     msgpack value
=====  =================  =====================================================
``t``  ``msg_type``       str, the wire name (``"bus"``, ``"intercom"``, ...);
                          required
``p``  ``payload``        wrappers: the nested message as a map of this same
                          layout; BINARY: bin; every other type: a map (BUS
                          and SHARED_BUS: the agent-bus object with a str
                          ``type``); required
``m``  ``metadata``       map with str keys; omitted when empty
``r``  ``route``          array of hops, each ``[source: str, [target: str,
                          ...]]``, oldest first; omitted when empty
``n``  ``node``           str; omitted when null
``s``  ``target_site_id`` str; omitted when null
``k``  ``target_pubkey``  str; omitted when null
``f``  ``source_peer``    str; omitted when null
``b``  ``bin_type``       int 0-6; written for BINARY only
=====  =================  =====================================================

Values inside payloads and metadata are plain msgpack values: nil, bool, int
(64-bit), float, str, bin, array and maps with str keys. Extension types
(timestamps included) are refused.

The decoder ignores unknown keys (room for later fields) and is strict about
everything else: it bounds the buffer and every container length with
``msgpack.Unpacker`` limits, requires str map keys, refuses trailing bytes,
bounds wrapper nesting, and reports every failure as ``CodecError``. As in
the JSON form, a BUS payload's ``data`` and ``context`` default to empty maps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import msgpack

from ._envelope import HiveMessage, RouteHop, parse_message_type
from ._errors import CodecError, LocalProtocolError
from ._types import BUS_TYPES, WRAPPER_TYPES, BinaryType, MessageType

__all__ = ["decode_msgpack", "encode_msgpack"]

#: Default bound on the size of an encoded message.
DEFAULT_MAX_SIZE: Final = 16 * 1024 * 1024
#: Deepest chain of nested wrappers the decoder accepts.
MAX_NESTING: Final = 32

_OPTIONAL_STR_KEYS: Final = (
    ("n", "node"),
    ("s", "target_site_id"),
    ("k", "target_pubkey"),
    ("f", "source_peer"),
)


# -- encoding -------------------------------------------------------------------


def encode_msgpack(message: HiveMessage) -> bytes:
    """Serialise ``message`` to its msgpack map form.

    Args:
        message: the message to encode.

    Returns:
        The msgpack bytes.

    Raises:
        LocalProtocolError: a payload or metadata value has no msgpack form
            (an int beyond 64 bits, an arbitrary object, ...). Any other
            exception is a bug.
    """
    try:
        return msgpack.packb(_to_map(message), use_bin_type=True, default=_pack_default)
    except (TypeError, ValueError, OverflowError, RecursionError) as exc:
        raise LocalProtocolError(f"message has no msgpack form: {type(exc).__name__}") from None


def _to_map(message: HiveMessage) -> dict[str, Any]:
    payload = message.payload
    out: dict[str, Any] = {"t": message.msg_type.value}
    if isinstance(payload, HiveMessage):
        out["p"] = _to_map(payload)
    elif message.msg_type is MessageType.BINARY:
        out["p"] = bytes(payload)  # type: ignore[arg-type]
        out["b"] = int(message.bin_type)
    else:
        out["p"] = payload
    if message.metadata:
        out["m"] = message.metadata
    if message.route:
        out["r"] = [[hop.source, list(hop.targets)] for hop in message.route]
    for key, name in _OPTIONAL_STR_KEYS:
        value = getattr(message, name)
        if value is not None:
            out[key] = value
    return out


def _pack_default(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, bytearray | memoryview):
        return bytes(value)
    raise TypeError(f"{type(value).__name__} cannot be packed")


# -- decoding -------------------------------------------------------------------


def decode_msgpack(data: bytes, *, max_size: int = DEFAULT_MAX_SIZE) -> HiveMessage:
    """Parse a message from its msgpack map form.

    Args:
        data: the encoded message.
        max_size: the largest accepted input, in bytes.

    Returns:
        The message.

    Raises:
        CodecError: the bytes are not a valid message. Any other exception is
            a bug.
    """
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CodecError("a msgpack message must be bytes")
    size = len(data)
    if size == 0:
        raise CodecError("empty msgpack message")
    if size > max_size:
        raise CodecError(f"msgpack message is {size} bytes; the limit is {max_size}")
    return _message_from_map(_unpack(bytes(data)), 0)


def _unpack(data: bytes) -> Any:
    # Every container and string is bounded by the input length: an honest
    # element takes at least one byte, so a larger declared count is a lie
    # that must not be allowed to preallocate memory.
    size = len(data)
    unpacker = msgpack.Unpacker(
        None,
        raw=False,
        use_list=True,
        strict_map_key=True,
        object_pairs_hook=_str_key_map,
        ext_hook=_refuse_ext,
        max_buffer_size=size,
        max_str_len=size,
        max_bin_len=size,
        max_array_len=size,
        max_map_len=size,
        max_ext_len=0,
    )
    try:
        unpacker.feed(data)
        obj = unpacker.unpack()
    except CodecError:
        raise
    except Exception as exc:  # msgpack documents no narrower base class
        raise CodecError(f"invalid msgpack: {type(exc).__name__}") from None
    if unpacker.tell() != size:
        raise CodecError("trailing bytes after the msgpack message")
    return obj


def _str_key_map(pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    out = dict(pairs)
    for key in out:
        if type(key) is not str:
            raise CodecError("msgpack map keys must be strings")
    return out


def _refuse_ext(code: int, data: bytes) -> Any:
    raise CodecError(f"msgpack extension type {code} is not allowed")


def _message_from_map(obj: Any, depth: int) -> HiveMessage:
    if not isinstance(obj, dict):
        raise CodecError("a msgpack HiveMessage must be a map")
    if depth > MAX_NESTING:
        raise CodecError("nested messages too deep")
    msg_type = parse_message_type(obj.get("t"))
    fields = {name: _optional_str(obj.get(key), name) for key, name in _OPTIONAL_STR_KEYS}
    try:
        return HiveMessage(
            msg_type=msg_type,
            payload=_payload(msg_type, obj.get("p"), depth),
            metadata=_map_or_empty(obj.get("m"), "metadata"),
            route=_route(obj.get("r")),
            bin_type=_bin_type(obj.get("b")),
            **fields,
        )
    except LocalProtocolError as exc:
        raise CodecError(f"invalid HiveMessage: {exc}") from None


def _payload(msg_type: MessageType, value: Any, depth: int) -> Any:
    if msg_type in WRAPPER_TYPES:
        return _message_from_map(value, depth + 1)
    if msg_type is MessageType.BINARY:
        if not isinstance(value, bytes):
            raise CodecError("a BINARY payload must be msgpack bin")
        return value
    if not isinstance(value, dict):
        raise CodecError(f"a {msg_type.value} payload must be a map")
    if msg_type in BUS_TYPES:
        if not isinstance(value.get("type"), str):
            raise CodecError(f"{msg_type.value} payload needs a string 'type'")
        data = _map_or_empty(value.get("data"), "payload.data")
        context = _map_or_empty(value.get("context"), "payload.context")
        return {**value, "data": data, "context": context}
    return value


def _route(value: Any) -> tuple[RouteHop, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise CodecError("route must be an array")
    hops: list[RouteHop] = []
    for hop in value:
        if not isinstance(hop, list) or len(hop) != 2:
            raise CodecError("a route hop must be [source, targets]")
        source, targets = hop
        if not isinstance(source, str) or not isinstance(targets, list):
            raise CodecError("route hop has wrong field types")
        if not all(isinstance(target, str) for target in targets):
            raise CodecError("route hop targets must be strings")
        hops.append(RouteHop(source, tuple(targets)))
    return tuple(hops)


def _bin_type(value: Any) -> BinaryType:
    if value is None:
        return BinaryType.UNDEFINED
    if type(value) is not int:
        raise CodecError("bin_type must be an integer")
    try:
        return BinaryType(value)
    except ValueError:
        raise CodecError(f"unknown bin_type {value}") from None


def _map_or_empty(value: Any, name: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise CodecError(f"{name} must be a map")
    return value


def _optional_str(value: Any, name: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise CodecError(f"{name} must be a string or nil")

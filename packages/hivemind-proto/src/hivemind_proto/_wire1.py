"""WIRE-1: the bit-packed binary form of a HiveMessage.

Theory of operation. A frame is a bit string, MSB first, zero-padded at the
*front* to a whole number of bytes::

    [0-7 zero bits] 1 | V | [8-bit version if V] | 5-bit type | C | 8-bit M |
    M bytes metadata | [4-bit bin_type if BINARY] | payload bytes

* The metadata block is ``json.dumps(metadata)`` with the default separators
  and ASCII escaping (what the released client writes), ``{}`` when empty,
  zlib-compressed when ``C`` is set, and at most 255 bytes long.
* A BINARY payload is raw bytes and is never compressed; any other payload is
  the UTF-8 JSON of the payload alone (BUS: the agent-bus object; wrappers:
  the complete nested HiveMessage object, route included), zlib-compressed
  when ``C`` is set.
* The outer envelope's route, node, target and source fields have no place in
  a frame. For wrappers the decoder restores the outer route from the nested
  message's route, which is where relays keep the accumulated trail.

Released 0.4.x decoders read the ``C`` bit with a truthiness test that is
always true, so they zlib-decompress every frame and fail on an uncompressed
one. ``Compression.ALWAYS`` is therefore the default; ``AUTO`` (the shorter
frame, ties uncompressed) is only safe towards fixed decoders. This decoder
honours ``C``.

Decoding is strict and fails closed: any malformed input raises
``CodecError`` and nothing else; zlib output is bounded (decompression bombs
are refused), trailing data after a zlib stream is refused, type codes 13-31
are refused, and the legacy THIRDPRTY code 11 only with an explicit opt-in.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Mapping
from enum import Enum
from functools import lru_cache
from typing import Any, Final, final

from ._bits import BitReader, BitWriter
from ._envelope import HiveMessage
from ._errors import CodecError, LocalProtocolError
from ._json_codec import dumps, loads
from ._types import WIRE1_TYPE_CODES, WRAPPER_TYPES, BinaryType, MessageType

__all__ = ["Compression", "decode_wire1", "encode_wire1"]

#: The only frame-format version this implementation speaks.
WIRE1_VERSION: Final = 1
#: Largest metadata block (the length field is 8 bits).
MAX_METADATA_BYTES: Final = 255
#: Default bound on the output of each zlib block.
DEFAULT_MAX_DECOMPRESSED: Final = 16 * 1024 * 1024

_CODE_TO_TYPE: Final = {code: mtype for mtype, code in WIRE1_TYPE_CODES.items()}
_MAX_PAD_BITS: Final = 7


@final
class Compression(Enum):
    """How ``encode_wire1`` sets the ``C`` bit."""

    #: Always compress (C=1): the only choice released 0.4.x decoders accept.
    ALWAYS = "always"
    #: Never compress (C=0).
    NEVER = "never"
    #: The shorter of the two frames; ties go to the uncompressed one.
    AUTO = "auto"


# The metadata block keeps json.dumps defaults (ASCII escaping) so that frames
# match the released client byte for byte; the payload uses the JSON style of
# the legacy text wire (see _json_codec).
_META_ENCODER: Final = json.JSONEncoder(default=lambda o: _metadata_value(o))


def _metadata_value(value: Any) -> Any:
    if isinstance(value, Mapping):
        return dict(value)
    raise LocalProtocolError(f"{type(value).__name__} values cannot be sent as metadata")


# -- encoding -------------------------------------------------------------------


def encode_wire1(
    message: HiveMessage,
    *,
    compression: Compression = Compression.ALWAYS,
    versioned: bool = False,
) -> bytes:
    """Serialise ``message`` as a WIRE-1 frame.

    Only ``msg_type``, ``payload``, ``metadata`` and ``bin_type`` travel; see
    the module comment for what a frame cannot carry.

    Args:
        message: the message to encode.
        compression: how to set the ``C`` bit (``ALWAYS`` suits every peer).
        versioned: emit ``V=1`` and the 8-bit version field.

    Returns:
        The frame bytes.

    Raises:
        LocalProtocolError: INTERCOM (it has no WIRE-1 code), a metadata block
            over 255 bytes, or a value with no JSON form. Any other exception
            is a bug.
    """
    code = WIRE1_TYPE_CODES.get(message.msg_type)
    if code is None:
        raise LocalProtocolError(f"{message.msg_type.value} messages have no WIRE-1 type code")
    if not isinstance(compression, Compression):
        raise LocalProtocolError(f"compression must be a Compression, not {compression!r}")
    meta = _metadata_json(message)
    body = _payload_bytes(message)
    if compression is Compression.NEVER:
        return _frame(message, code, versioned, False, meta, body)
    if compression is Compression.ALWAYS:
        return _frame(message, code, versioned, True, meta, body)
    return _auto_frame(message, code, versioned, meta, body)


def _auto_frame(
    message: HiveMessage, code: int, versioned: bool, meta: bytes, body: bytes
) -> bytes:
    try:
        plain = _frame(message, code, versioned, False, meta, body)
    except LocalProtocolError:
        # The metadata may only fit under the 255-byte limit once compressed.
        return _frame(message, code, versioned, True, meta, body)
    try:
        packed = _frame(message, code, versioned, True, meta, body)
    except LocalProtocolError:
        return plain
    return packed if len(packed) < len(plain) else plain


def _frame(
    message: HiveMessage,
    code: int,
    versioned: bool,
    compressed: bool,
    meta: bytes,
    body: bytes,
) -> bytes:
    if compressed:
        meta = _deflate_metadata(meta)
        if message.msg_type is not MessageType.BINARY:
            body = zlib.compress(body)
    if len(meta) > MAX_METADATA_BYTES:
        raise LocalProtocolError(
            f"metadata block is {len(meta)} bytes; WIRE-1 allows {MAX_METADATA_BYTES}"
        )
    # Start bit, V, [version], type, C and M fit one int: build it directly.
    if versioned:
        head = (0b11 << 22) | (WIRE1_VERSION << 14) | (code << 9) | (compressed << 8) | len(meta)
        head_bits = 24
    else:
        head = (0b10 << 14) | (code << 9) | (compressed << 8) | len(meta)
        head_bits = 16
    writer = BitWriter()
    writer.write_uint(head, head_bits)
    writer.write_bytes(meta)
    if message.msg_type is MessageType.BINARY:
        writer.write_uint(int(message.bin_type), 4)
    writer.write_bytes(body)
    return writer.getvalue()


# Metadata blocks are tiny and repeat (``{}`` on most messages, the same audio
# parameters on every chunk of a stream), while each zlib call pays for
# setting up a fresh stream. zlib output is deterministic, so caching is exact.
@lru_cache(maxsize=256)
def _deflate_metadata(block: bytes) -> bytes:
    return zlib.compress(block)


def _metadata_json(message: HiveMessage) -> bytes:
    try:
        return _META_ENCODER.encode(message.metadata).encode("ascii")
    except (TypeError, ValueError, RecursionError) as exc:
        raise LocalProtocolError(f"metadata has no JSON form: {type(exc).__name__}") from None


def _payload_bytes(message: HiveMessage) -> bytes:
    payload = message.payload
    if message.msg_type is MessageType.BINARY:
        return bytes(payload)  # type: ignore[arg-type]
    obj = payload.to_dict() if isinstance(payload, HiveMessage) else payload
    try:
        return dumps(obj).encode("utf-8")
    except (TypeError, ValueError, RecursionError) as exc:
        raise LocalProtocolError(f"payload has no JSON form: {type(exc).__name__}") from None


# -- decoding -------------------------------------------------------------------


def decode_wire1(
    data: bytes,
    *,
    max_decompressed: int = DEFAULT_MAX_DECOMPRESSED,
    allow_legacy_thirdparty: bool = False,
) -> HiveMessage:
    """Parse a WIRE-1 frame.

    Args:
        data: the frame bytes.
        max_decompressed: the most bytes a single zlib block may inflate to.
        allow_legacy_thirdparty: accept type code 11 (THIRDPRTY), which the
            legacy encoder also used for INTERCOM.

    Returns:
        The message. Wrappers get their route back from the nested message.

    Raises:
        CodecError: the bytes are not a valid frame. Any other exception is a
            bug.
        LocalProtocolError: ``max_decompressed`` is negative.
    """
    if max_decompressed < 0:
        raise LocalProtocolError("max_decompressed must not be negative")
    if not isinstance(data, bytes | bytearray | memoryview):
        raise CodecError("a WIRE-1 frame must be bytes")
    reader = BitReader(data)
    reader.skip_zeros(_MAX_PAD_BITS)
    reader.read_uint(1)  # the start bit, known to be 1
    if reader.read_uint(1):
        version = reader.read_uint(8)
        if version != WIRE1_VERSION:
            raise CodecError(f"unsupported WIRE-1 version {version}")
    msg_type = _read_type(reader, allow_legacy_thirdparty)
    compressed = bool(reader.read_uint(1))
    meta_block = reader.read_bytes(reader.read_uint(8))
    if compressed:
        meta_block = _inflate_metadata(meta_block, max_decompressed)
    metadata = loads(_text(meta_block, False, max_decompressed))
    if not isinstance(metadata, dict):
        raise CodecError("WIRE-1 metadata must be a JSON object")
    if msg_type is MessageType.BINARY:
        return _binary_message(reader, metadata)
    payload = loads(_text(reader.read_rest(), compressed, max_decompressed))
    return _json_message(msg_type, payload, metadata)


def _read_type(reader: BitReader, allow_legacy_thirdparty: bool) -> MessageType:
    code = reader.read_uint(5)
    msg_type = _CODE_TO_TYPE.get(code)
    if msg_type is None:
        raise CodecError(f"unknown WIRE-1 type code {code}")
    if msg_type is MessageType.THIRDPRTY and not allow_legacy_thirdparty:
        raise CodecError("WIRE-1 type code 11 (legacy THIRDPRTY) is not accepted")
    return msg_type


def _binary_message(reader: BitReader, metadata: dict[str, Any]) -> HiveMessage:
    raw_type = reader.read_uint(4)
    try:
        bin_type = BinaryType(raw_type)
    except ValueError:
        raise CodecError(f"unknown bin_type {raw_type}") from None
    body = reader.read_rest()
    return HiveMessage(MessageType.BINARY, body, metadata=metadata, bin_type=bin_type)


def _json_message(msg_type: MessageType, payload: Any, metadata: dict[str, Any]) -> HiveMessage:
    obj = {"msg_type": msg_type.value, "payload": payload, "metadata": metadata}
    try:
        message = HiveMessage.from_dict(obj)
    except RecursionError:
        raise CodecError("nested messages too deep") from None
    except LocalProtocolError as exc:
        raise CodecError(f"invalid payload: {exc}") from None
    if msg_type in WRAPPER_TYPES:
        # The frame cannot carry the outer route; the nested message has it.
        message = message.replace(route=message.inner.route)
    return message


def _text(block: bytes, compressed: bool, limit: int) -> str:
    if compressed:
        block = _inflate(block, limit)
    try:
        return block.decode("utf-8")
    except UnicodeDecodeError:
        raise CodecError("WIRE-1 text is not UTF-8") from None


_INFLATED_METADATA: dict[bytes, bytes] = {}
_INFLATE_CACHE_ENTRIES: Final = 256
_INFLATE_CACHE_MAX_OUTPUT: Final = 1024


def _inflate_metadata(block: bytes, limit: int) -> bytes:
    # Cached for the same reason as _deflate_metadata. Only small outputs are
    # kept (a 255-byte block can inflate to ~260 KB), the cache is emptied
    # when full, and failures are never cached.
    out = _INFLATED_METADATA.get(block)
    if out is None:
        out = _inflate(block, limit)
        if len(out) <= _INFLATE_CACHE_MAX_OUTPUT:
            if len(_INFLATED_METADATA) >= _INFLATE_CACHE_ENTRIES:
                _INFLATED_METADATA.clear()
            _INFLATED_METADATA[block] = out
    elif len(out) > limit:
        raise CodecError(f"zlib block inflates beyond {limit} bytes")
    return out


def _inflate(block: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj()
    try:
        out = inflater.decompress(block, limit + 1)
    except zlib.error:
        raise CodecError("invalid zlib stream") from None
    if len(out) > limit:
        raise CodecError(f"zlib block inflates beyond {limit} bytes")
    if not inflater.eof:
        raise CodecError("truncated zlib stream")
    if inflater.unused_data:
        raise CodecError("data after the zlib stream")
    return out

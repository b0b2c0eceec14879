"""Hypothesis strategies for HiveMessages, shared by the proto test modules.

Import with ``from .strategies import hive_messages`` (the test modules run
with ``--import-mode=importlib``).

* ``json_values()``: values every codec carries (JSON types; ints within 64
  bits so msgpack can carry them; no NaN or infinities, which break equality).
* ``hive_messages()``: any valid HiveMessage, wrappers nested up to
  ``max_depth`` deep, with routes and optional string fields.
* ``json_messages()``: messages with a JSON form (no BINARY anywhere).
* ``wire1_messages()``: messages ``encode_wire1`` accepts (no INTERCOM at the
  top, metadata under the 255-byte block limit, nested messages JSON-able).
"""

from __future__ import annotations

import json
import zlib
from typing import Any

from hivemind_proto._envelope import HiveMessage, RouteHop, bus_message
from hivemind_proto._types import BUS_TYPES, WRAPPER_TYPES, BinaryType, MessageType
from hypothesis import strategies as st

MAX_WIRE1_METADATA = 255

_ints = st.integers(min_value=-(2**63), max_value=2**64 - 1)
_floats = st.floats(allow_nan=False, allow_infinity=False)
_scalars = st.none() | st.booleans() | _ints | _floats | st.text(max_size=20)
_keys = st.text(max_size=10)


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    """JSON values: scalars, lists and str-keyed objects."""
    return st.recursive(
        _scalars,
        lambda children: (
            st.lists(children, max_size=4) | st.dictionaries(_keys, children, max_size=4)
        ),
        max_leaves=max_leaves,
    )


def json_objects(max_leaves: int = 12) -> st.SearchStrategy[dict[str, Any]]:
    """JSON objects with str keys."""
    return st.dictionaries(_keys, json_values(max_leaves), max_size=4)


def small_metadata() -> st.SearchStrategy[dict[str, Any]]:
    """Metadata whose block fits WIRE-1 both plain and compressed."""
    small = st.none() | st.booleans() | _ints | _floats | st.text(max_size=8)
    return st.dictionaries(st.text(max_size=8), small, max_size=3).filter(_fits_wire1)


def _fits_wire1(meta: dict[str, Any]) -> bool:
    block = json.dumps(meta).encode("ascii")
    return max(len(block), len(zlib.compress(block))) <= MAX_WIRE1_METADATA


def routes() -> st.SearchStrategy[tuple[RouteHop, ...]]:
    """Route trails of up to three hops."""
    names = st.text(min_size=1, max_size=12)
    hop = st.builds(RouteHop, names, st.lists(names, min_size=1, max_size=3).map(tuple))
    return st.lists(hop, max_size=3).map(tuple)


def bus_payloads() -> st.SearchStrategy[dict[str, Any]]:
    """Agent-bus messages ``{type, data, context}``."""
    return st.builds(bus_message, st.text(max_size=30), json_objects(), json_objects(6))


_optional_str = st.none() | st.text(max_size=20)
_LEAF_TYPES = sorted(set(MessageType) - WRAPPER_TYPES - {MessageType.BINARY}, key=str)
_WRAPPERS = sorted(WRAPPER_TYPES, key=str)


def _payload_for(msg_type: MessageType) -> st.SearchStrategy[Any]:
    if msg_type in BUS_TYPES:
        return bus_payloads()
    return json_objects()


def _leaf(msg_type: MessageType, metadata: st.SearchStrategy[dict[str, Any]]) -> Any:
    return st.builds(
        HiveMessage,
        msg_type=st.just(msg_type),
        payload=_payload_for(msg_type),
        metadata=metadata,
        route=routes(),
        node=_optional_str,
        target_site_id=_optional_str,
        target_pubkey=_optional_str,
        source_peer=_optional_str,
    )


def _binary(metadata: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[HiveMessage]:
    return st.builds(
        HiveMessage,
        msg_type=st.just(MessageType.BINARY),
        payload=st.binary(max_size=64),
        metadata=metadata,
        route=routes(),
        source_peer=_optional_str,
        bin_type=st.sampled_from(BinaryType),
    )


def hive_messages(
    *,
    max_depth: int = 3,
    allow_binary: bool = True,
    allow_intercom: bool = True,
    metadata: st.SearchStrategy[dict[str, Any]] | None = None,
    inner_allow_binary: bool | None = None,
) -> st.SearchStrategy[HiveMessage]:
    """Valid HiveMessages of every type.

    Args:
        max_depth: how many wrappers may nest (0: no wrappers).
        allow_binary: include BINARY messages at this level.
        allow_intercom: include INTERCOM messages at this level.
        metadata: strategy for this level's metadata (default: JSON objects).
        inner_allow_binary: include BINARY in nested messages (default:
            ``allow_binary``). Nested messages always allow INTERCOM and any
            metadata.
    """
    meta = metadata if metadata is not None else json_objects(6)
    leaf_types = [t for t in _LEAF_TYPES if allow_intercom or t is not MessageType.INTERCOM]
    options = [_leaf(t, meta) for t in leaf_types]
    if allow_binary:
        options.append(_binary(meta))
    if max_depth > 0:
        inner_binary = allow_binary if inner_allow_binary is None else inner_allow_binary
        inner = st.deferred(
            lambda: hive_messages(max_depth=max_depth - 1, allow_binary=inner_binary)
        )
        options.append(
            st.builds(
                HiveMessage,
                msg_type=st.sampled_from(_WRAPPERS),
                payload=inner,
                metadata=meta,
                route=routes(),
                node=_optional_str,
                target_site_id=_optional_str,
                target_pubkey=_optional_str,
                source_peer=_optional_str,
            )
        )
    return st.one_of(options)


def json_messages(max_depth: int = 3) -> st.SearchStrategy[HiveMessage]:
    """Messages with a JSON form: no BINARY at any level."""
    return hive_messages(max_depth=max_depth, allow_binary=False)


def wire1_messages(max_depth: int = 3) -> st.SearchStrategy[HiveMessage]:
    """Messages ``encode_wire1`` accepts with any ``Compression``."""
    return hive_messages(
        max_depth=max_depth,
        allow_intercom=False,
        metadata=small_metadata(),
        inner_allow_binary=False,
    )

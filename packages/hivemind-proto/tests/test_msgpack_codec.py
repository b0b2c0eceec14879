"""The profile-N msgpack codec: layout, full-fidelity round trips and a
strict decoder that only ever raises CodecError."""

from __future__ import annotations

import msgpack
import pytest
from hivemind_proto._envelope import HiveMessage, RouteHop, bus_message
from hivemind_proto._errors import CodecError, LocalProtocolError
from hivemind_proto._msgpack_codec import MAX_NESTING, decode_msgpack, encode_msgpack
from hivemind_proto._types import BinaryType, MessageType
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from .strategies import hive_messages


def packb(obj) -> bytes:
    return msgpack.packb(obj, use_bin_type=True)


FULL = HiveMessage(
    MessageType.PROPAGATE,
    HiveMessage(
        MessageType.BUS,
        bus_message("speak", {"utterance": "hi"}, {"lang": "en"}),
        metadata={"q": 1},
        target_site_id="kitchen",
    ),
    metadata={"hop": True},
    route=(RouteHop("sat-1", ("hub-a", "hub-b")),),
    node="node-1",
    target_site_id="kitchen",
    target_pubkey="-----BEGIN PUBLIC KEY-----",
    source_peer="sat-1:127.0.0.1",
)


def test_layout_is_the_documented_map():
    assert msgpack.unpackb(encode_msgpack(FULL)) == {
        "t": "propagate",
        "p": {
            "t": "bus",
            "p": {"type": "speak", "data": {"utterance": "hi"}, "context": {"lang": "en"}},
            "m": {"q": 1},
            "s": "kitchen",
        },
        "m": {"hop": True},
        "r": [["sat-1", ["hub-a", "hub-b"]]],
        "n": "node-1",
        "s": "kitchen",
        "k": "-----BEGIN PUBLIC KEY-----",
        "f": "sat-1:127.0.0.1",
    }


def test_defaults_are_omitted():
    message = HiveMessage(MessageType.HELLO, {"a": 1})
    assert msgpack.unpackb(encode_msgpack(message)) == {"t": "hello", "p": {"a": 1}}


def test_binary_payload_travels_as_bin():
    message = HiveMessage(
        MessageType.BINARY,
        b"\x00\xff" * 10,
        metadata={"rate": 16000},
        bin_type=BinaryType.TTS_AUDIO,
    )
    data = encode_msgpack(message)
    assert b"\x00\xff" * 10 in data  # raw, not hex or base64
    assert msgpack.unpackb(data) == {
        "t": "bin",
        "p": b"\x00\xff" * 10,
        "b": 6,
        "m": {"rate": 16000},
    }
    assert decode_msgpack(data) == message


def test_full_message_round_trip():
    assert decode_msgpack(encode_msgpack(FULL)) == FULL


def test_intercom_and_binary_inside_wrappers_round_trip():
    inner = HiveMessage(MessageType.BINARY, b"abc", bin_type=BinaryType.FILE)
    for message in (
        HiveMessage(MessageType.ESCALATE, inner),
        HiveMessage(MessageType.INTERCOM, {"ciphertext": "00"}, target_pubkey="pk"),
    ):
        assert decode_msgpack(encode_msgpack(message)) == message


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(hive_messages())
def test_round_trip(message):
    assert decode_msgpack(encode_msgpack(message)) == message


def test_values_without_msgpack_form_are_refused():
    for message in (
        HiveMessage(MessageType.HELLO, {"x": object()}),
        HiveMessage(MessageType.HELLO, {"x": 2**64}),
        HiveMessage(MessageType.HELLO, {}, metadata={"x": {1, 2}}),
    ):
        with pytest.raises(LocalProtocolError):
            encode_msgpack(message)


def test_unknown_keys_are_ignored():
    data = packb({"t": "hello", "p": {}, "zz": [1, 2], "future": {"x": 1}})
    assert decode_msgpack(data) == HiveMessage(MessageType.HELLO, {})


def test_bus_payload_defaults_like_json():
    data = packb({"t": "bus", "p": {"type": "x"}})
    assert decode_msgpack(data) == HiveMessage(MessageType.BUS, bus_message("x"))


@pytest.mark.parametrize(
    "obj",
    [
        [],
        "bus",
        {},
        {"t": "nope", "p": {}},
        {"t": 1, "p": {}},
        {"t": "hello"},
        {"t": "hello", "p": []},
        {"t": "bus", "p": {"data": {}}},
        {"t": "bus", "p": {"type": "x", "data": []}},
        {"t": "broadcast", "p": {"type": "x"}},
        {"t": "broadcast", "p": b"x"},
        {"t": "bin", "p": {}},
        {"t": "bin", "p": "text"},
        {"t": "bin", "p": b"x", "b": 7},
        {"t": "bin", "p": b"x", "b": True},
        {"t": "bin", "p": b"x", "b": "1"},
        {"t": "hello", "p": {}, "b": 1},
        {"t": "hello", "p": {}, "m": []},
        {"t": "hello", "p": {}, "r": {}},
        {"t": "hello", "p": {}, "r": [["a"]]},
        {"t": "hello", "p": {}, "r": [["", ["b"]]]},
        {"t": "hello", "p": {}, "r": [["a", []]]},
        {"t": "hello", "p": {}, "r": [["a", [1]]]},
        {"t": "hello", "p": {}, "r": [[1, ["b"]]]},
        {"t": "hello", "p": {}, "n": 1},
        {"t": "hello", "p": {}, "s": b"x"},
        {"t": "hello", "p": {}, "k": []},
        {"t": "hello", "p": {}, "f": {}},
        {"t": "hello", "p": {b"bytes-key": 1}},
        {"t": "hello", "p": {"nested": {b"bytes-key": 1}}},
    ],
)
def test_wrong_shapes_are_refused(obj):
    with pytest.raises(CodecError):
        decode_msgpack(packb(obj))


def test_non_string_keys_are_refused():
    with pytest.raises(CodecError):
        decode_msgpack(packb({"t": "hello", "p": {1: 2}}))


def test_extension_types_are_refused():
    for ext in (msgpack.ExtType(5, b"abc"), msgpack.ExtType(5, b""), msgpack.Timestamp(1)):
        with pytest.raises(CodecError):
            decode_msgpack(packb({"t": "hello", "p": {"x": ext}}))


def test_trailing_bytes_are_refused():
    data = encode_msgpack(FULL)
    with pytest.raises(CodecError):
        decode_msgpack(data + b"\xc0")


def test_size_limit():
    data = encode_msgpack(FULL)
    assert decode_msgpack(data, max_size=len(data)) == FULL
    with pytest.raises(CodecError):
        decode_msgpack(data, max_size=len(data) - 1)


def test_lying_container_lengths_are_refused():
    # array32 / map32 / str32 / bin32 headers claiming 2**32-1 entries.
    for header in (b"\xdd", b"\xdf", b"\xdb", b"\xc6"):
        with pytest.raises(CodecError):
            decode_msgpack(b"\x82\xa1t\xa5hello\xa1p" + header + b"\xff\xff\xff\xff")


def test_nesting_is_bounded():
    message = HiveMessage(MessageType.HELLO, {})
    for _ in range(MAX_NESTING):
        message = HiveMessage(MessageType.BROADCAST, message)
    assert decode_msgpack(encode_msgpack(message)) == message
    deeper = HiveMessage(MessageType.BROADCAST, message)
    with pytest.raises(CodecError):
        decode_msgpack(encode_msgpack(deeper))


def test_deep_value_nesting_fails_cleanly():
    # {"t": "hello", "p": {"x": [[[...5000 levels...[1]...]]]}}
    data = b"\x82\xa1t\xa5hello\xa1p\x81\xa1x" + b"\x91" * 5000 + b"\x01"
    with pytest.raises(CodecError):
        decode_msgpack(data)


def test_every_truncation_is_refused():
    data = encode_msgpack(FULL)
    for cut in range(len(data)):
        with pytest.raises(CodecError):
            decode_msgpack(data[:cut])


@pytest.mark.parametrize("data", ["text", None, 1])
def test_non_bytes_are_refused(data):
    with pytest.raises(CodecError):
        decode_msgpack(data)


def _decode_or_codec_error(data: bytes) -> None:
    try:
        message = decode_msgpack(data)
    except CodecError:
        return
    assert isinstance(message, HiveMessage)


@settings(max_examples=500)
@given(st.binary(max_size=300))
@example(b"\xc1")
@example(b"\xd6\xff\x00\x00\x00\x00")
def test_arbitrary_bytes_only_raise_codec_error(data):
    _decode_or_codec_error(data)


_SEEDS = [
    encode_msgpack(FULL),
    encode_msgpack(HiveMessage(MessageType.BINARY, b"abcdef", bin_type=BinaryType.FILE)),
]


@settings(max_examples=500)
@given(
    st.sampled_from(_SEEDS),
    st.lists(st.tuples(st.integers(0, 300), st.integers(0, 255)), min_size=1, max_size=4),
)
def test_mutated_messages_only_raise_codec_error(seed, edits):
    data = bytearray(seed)
    for index, value in edits:
        data[index % len(data)] = value
    _decode_or_codec_error(bytes(data))

"""WIRE-1: the hub-protocol §5.3 vectors, round trips, compression choice and
a decoder that only ever raises CodecError."""

from __future__ import annotations

import hashlib
import json
import zlib

import pytest
from hivemind_proto._bits import BitWriter
from hivemind_proto._envelope import HiveMessage, RouteHop, bus_message
from hivemind_proto._errors import CodecError, LocalProtocolError
from hivemind_proto._types import WRAPPER_TYPES, BinaryType, MessageType
from hivemind_proto._wire1 import Compression, decode_wire1, encode_wire1
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from .strategies import wire1_messages

UTTERANCE = HiveMessage(
    MessageType.BUS, bus_message("recognizer_loop:utterance", {"utterances": ["hello"]})
)
UTTERANCE_C0 = (
    "82027b7d7b2274797065223a20227265636f676e697a65725f6c6f6f703a7574746572616e6365222c20"
    "2264617461223a207b227574746572616e636573223a205b2268656c6c6f225d7d2c2022636f6e746578"
    "74223a207b7d7d"
)
UTTERANCE_C1 = (
    "830a789cabae0500017500f9789cab562aa92c4855b252502a4a4dce4fcfcbac4a2d8acfc9cf2fb02a2d"
    "29492d4acc4b4e55d251504a492c49042aaa56828b1603b9d14a19a93939f94ab1b54025c9f97925a915"
    "252055b5b50044dc1e42"
)
JS_VECTOR = "82027b7d7b2274797065223a2274657374227d"
RAW_AUDIO = HiveMessage(
    MessageType.BINARY,
    bytes(range(8)),
    metadata={"sample_rate": 16000, "sample_width": 2},
    bin_type=BinaryType.RAW_AUDIO,
)
RAW_AUDIO_C0 = (
    "098297b2273616d706c655f72617465223a2031363030302c202273616d706c655f7769647468223a2032"
    "7d10001020304050607"
)


def craft(
    code: int,
    *,
    compressed: bool = False,
    meta: bytes = b"{}",
    body: bytes = b'{"type": "x"}',
    version: int | None = None,
    bin_type: int | None = None,
    extra_pad_bytes: int = 0,
) -> bytes:
    """Build a frame field by field, bypassing the encoder's checks."""
    writer = BitWriter()
    writer.write_uint(1, 1)
    writer.write_uint(version is not None, 1)
    if version is not None:
        writer.write_uint(version, 8)
    writer.write_uint(code, 5)
    writer.write_uint(compressed, 1)
    writer.write_uint(len(meta), 8)
    writer.write_bytes(meta)
    if bin_type is not None:
        writer.write_uint(bin_type, 4)
    writer.write_bytes(body)
    return b"\x00" * extra_pad_bytes + writer.getvalue()


def representable(message: HiveMessage) -> HiveMessage:
    """What a WIRE-1 frame keeps of ``message``.

    A frame carries msg_type, payload (nested messages whole), metadata and
    bin_type. The outer route, node, target_site_id, target_pubkey and
    source_peer are lost; for wrappers the decoder restores the outer route
    from the nested message.
    """
    route = message.inner.route if message.msg_type in WRAPPER_TYPES else ()
    return HiveMessage(
        message.msg_type,
        message.payload,
        metadata=message.metadata,
        route=route,
        bin_type=message.bin_type,
    )


# -- §5.3 vectors -------------------------------------------------------------------


def test_vector_bus_uncompressed_is_byte_identical():
    frame = encode_wire1(UTTERANCE, compression=Compression.NEVER)
    assert frame.hex() == UTTERANCE_C0
    assert len(frame) == 91


def test_vector_bus_compressed_is_byte_identical():
    frame = encode_wire1(UTTERANCE, compression=Compression.ALWAYS)
    assert frame.hex() == UTTERANCE_C1
    assert len(frame) == 94


def test_always_is_the_default():
    assert encode_wire1(UTTERANCE).hex() == UTTERANCE_C1


@pytest.mark.parametrize("hex_frame", [UTTERANCE_C0, UTTERANCE_C1])
def test_vector_bus_decodes(hex_frame):
    assert decode_wire1(bytes.fromhex(hex_frame)) == UTTERANCE


def test_js_vector_decodes():
    message = decode_wire1(bytes.fromhex(JS_VECTOR))
    assert message == HiveMessage(MessageType.BUS, bus_message("test"))


def test_versioned_prefix():
    message = HiveMessage(MessageType.BUS, bus_message("test"))
    frame = encode_wire1(message, compression=Compression.NEVER, versioned=True)
    assert frame.hex().startswith("c042027b7d")
    # The V=1 form of the upstream JS vector decodes to the same message.
    versioned_js = bytes.fromhex("c042027b7d" + JS_VECTOR[len("82027b7d") :])
    assert decode_wire1(versioned_js) == message
    assert decode_wire1(frame) == message


def test_vector_binary_raw_audio():
    frame = encode_wire1(RAW_AUDIO, compression=Compression.NEVER)
    assert frame.hex() == RAW_AUDIO_C0
    assert decode_wire1(frame) == RAW_AUDIO


def test_binary_payload_is_never_compressed():
    payload = b"\x00" * 4096
    message = HiveMessage(MessageType.BINARY, payload, bin_type=BinaryType.FILE)
    frame = encode_wire1(message, compression=Compression.ALWAYS)
    assert frame.endswith(payload)
    assert frame[0] == 0x09  # four pad bits, start bit, V=0, type 12 ...
    assert frame[1] >> 7 == 1  # ... and C=1 (the metadata block is zlib'd)
    assert decode_wire1(frame) == message


# -- encoder rules ------------------------------------------------------------------


def test_intercom_has_no_code():
    message = HiveMessage(MessageType.INTERCOM, {"ciphertext": "00", "signature": "00"})
    for compression in Compression:
        with pytest.raises(LocalProtocolError):
            encode_wire1(message, compression=compression)


def _pseudo_random_text(size: int) -> str:
    return hashlib.shake_256(b"wire1").hexdigest(size // 2)


def test_metadata_over_255_bytes_is_refused():
    noisy = HiveMessage(MessageType.BUS, bus_message("x"), metadata={"k": _pseudo_random_text(600)})
    for compression in Compression:
        with pytest.raises(LocalProtocolError):
            encode_wire1(noisy, compression=compression)


def test_metadata_limit_is_exact():
    # {"k": "..."} is 9 bytes of framing around the value.
    fits = HiveMessage(MessageType.HELLO, {}, metadata={"k": _pseudo_random_text(246)})
    frame = encode_wire1(fits, compression=Compression.NEVER)
    assert frame[1] == 255
    assert decode_wire1(frame) == fits
    over = HiveMessage(MessageType.HELLO, {}, metadata={"k": _pseudo_random_text(248)})
    with pytest.raises(LocalProtocolError):
        encode_wire1(over, compression=Compression.NEVER)


def test_auto_compresses_metadata_that_only_fits_compressed():
    message = HiveMessage(MessageType.BUS, bus_message("x"), metadata={"k": "a" * 400})
    with pytest.raises(LocalProtocolError):
        encode_wire1(message, compression=Compression.NEVER)
    frame = encode_wire1(message, compression=Compression.AUTO)
    assert frame == encode_wire1(message, compression=Compression.ALWAYS)
    assert decode_wire1(frame) == message


def test_auto_picks_the_shorter_frame():
    short = HiveMessage(MessageType.BUS, bus_message("x"))
    assert encode_wire1(short, compression=Compression.AUTO) == encode_wire1(
        short, compression=Compression.NEVER
    )
    long = HiveMessage(MessageType.BUS, bus_message("speak", {"utterance": "la " * 300}))
    auto = encode_wire1(long, compression=Compression.AUTO)
    assert auto == encode_wire1(long, compression=Compression.ALWAYS)
    assert len(auto) < len(encode_wire1(long, compression=Compression.NEVER))


def test_auto_ties_go_to_the_uncompressed_frame():
    # A payload whose compressed and plain frames have the same length.
    letters = "".join(chr(97 + (i * 7) % 26) for i in range(44))
    message = HiveMessage(MessageType.HELLO, {"t": letters})
    plain = encode_wire1(message, compression=Compression.NEVER)
    packed = encode_wire1(message, compression=Compression.ALWAYS)
    assert len(plain) == len(packed)
    assert plain != packed
    assert encode_wire1(message, compression=Compression.AUTO) == plain


@settings(suppress_health_check=[HealthCheck.too_slow])
@given(wire1_messages(max_depth=1))
def test_auto_property(message):
    plain = encode_wire1(message, compression=Compression.NEVER)
    packed = encode_wire1(message, compression=Compression.ALWAYS)
    expected = packed if len(packed) < len(plain) else plain
    assert encode_wire1(message, compression=Compression.AUTO) == expected


def test_metadata_uses_the_released_json_style():
    message = HiveMessage(MessageType.HELLO, {}, metadata={"a": "é", "b": [1, 2]})
    frame = encode_wire1(message, compression=Compression.NEVER)
    block = b'{"a": "\\u00e9", "b": [1, 2]}'
    assert frame[1] == len(block)
    assert frame[2 : 2 + len(block)] == block


def test_values_without_json_form_are_refused():
    message = HiveMessage(MessageType.HELLO, {"x": object()})
    with pytest.raises(LocalProtocolError):
        encode_wire1(message)
    message = HiveMessage(MessageType.HELLO, {}, metadata={"x": b"bytes"})
    with pytest.raises(LocalProtocolError):
        encode_wire1(message)
    message = HiveMessage(MessageType.HELLO, {"x": "\ud800"})
    with pytest.raises(LocalProtocolError):
        encode_wire1(message, compression=Compression.NEVER)


def test_wrapper_route_is_restored_from_the_nested_message():
    inner = HiveMessage(
        MessageType.BUS,
        bus_message("speak", {"utterance": "hi"}),
        route=(RouteHop("sat-1", ("hub",)),),
        target_site_id="kitchen",
    )
    outer = HiveMessage(
        MessageType.BROADCAST,
        inner,
        route=(RouteHop("someone-else", ("x",)),),
        target_site_id="lost",
        source_peer="lost-too",
    )
    decoded = decode_wire1(encode_wire1(outer))
    assert decoded.inner == inner
    assert decoded.route == inner.route
    assert decoded.target_site_id is None
    assert decoded.source_peer is None


# -- round trips --------------------------------------------------------------------


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(wire1_messages(), st.sampled_from(Compression), st.booleans())
def test_round_trip(message, compression, versioned):
    frame = encode_wire1(message, compression=compression, versioned=versioned)
    decoded = decode_wire1(frame, allow_legacy_thirdparty=True)
    assert decoded == representable(message)


# -- decoder strictness ---------------------------------------------------------------


def test_c_bit_is_honoured():
    plain = craft(1, body=b'{"type": "x"}')
    packed = craft(
        1, compressed=True, meta=zlib.compress(b"{}"), body=zlib.compress(b'{"type": "x"}')
    )
    assert (
        decode_wire1(plain)
        == decode_wire1(packed)
        == HiveMessage(MessageType.BUS, bus_message("x"))
    )
    # A plain frame claiming C=1 is not zlib: refused, not misread.
    with pytest.raises(CodecError):
        decode_wire1(craft(1, compressed=True))


def test_more_than_seven_pad_bits_is_refused():
    frame = encode_wire1(UTTERANCE)
    assert decode_wire1(frame) == UTTERANCE
    with pytest.raises(CodecError):
        decode_wire1(b"\x00" + frame)


@pytest.mark.parametrize("version", [0, 2, 255])
def test_only_version_1(version):
    assert decode_wire1(craft(1, version=1)) == HiveMessage(MessageType.BUS, bus_message("x"))
    with pytest.raises(CodecError):
        decode_wire1(craft(1, version=version))


@pytest.mark.parametrize("code", range(13, 32))
def test_unassigned_type_codes_are_refused(code):
    with pytest.raises(CodecError):
        decode_wire1(craft(code))


def test_thirdparty_code_needs_opt_in():
    frame = craft(11, body=b'{"anything": 1}')
    with pytest.raises(CodecError):
        decode_wire1(frame)
    message = decode_wire1(frame, allow_legacy_thirdparty=True)
    assert message == HiveMessage(MessageType.THIRDPRTY, {"anything": 1})


@pytest.mark.parametrize("meta", [b"[]", b"1", b"null", b"{", b"\xff\xfe", b""])
def test_metadata_must_be_a_json_object(meta):
    with pytest.raises(CodecError):
        decode_wire1(craft(1, meta=meta))


@pytest.mark.parametrize(
    ("code", "body"),
    [
        (1, b"{}"),  # BUS without a type
        (1, b'{"type": 3}'),
        (3, b"[1]"),  # wrapper payload not an object
        (3, b'{"msg_type": "nope"}'),
        (6, b"[]"),
        (6, b'{"a": '),
        (6, b"\xc3\x28"),  # not UTF-8
        (6, b'\xef\xbb\xbf{"a": 1}'),  # BOM
    ],
)
def test_bad_payloads_are_refused(code, body):
    with pytest.raises(CodecError):
        decode_wire1(craft(code, body=body))


@pytest.mark.parametrize("bin_type", range(7, 16))
def test_unknown_bin_type_is_refused(bin_type):
    assert decode_wire1(craft(12, body=b"\x01", bin_type=6)).bin_type is BinaryType.TTS_AUDIO
    with pytest.raises(CodecError):
        decode_wire1(craft(12, body=b"\x01", bin_type=bin_type))


def test_binary_without_bin_type_bits_is_refused():
    # The payload of a type-12 frame without the 4-bit field is not byte aligned.
    with pytest.raises(CodecError):
        decode_wire1(craft(12, body=b"\x01\x02"))


def test_decompression_is_bounded():
    body = json.dumps({"type": "x", "data": {"z": "0" * 100_000}}).encode()
    frame = craft(1, compressed=True, meta=zlib.compress(b"{}"), body=zlib.compress(body))
    assert len(frame) < 1000
    with pytest.raises(CodecError):
        decode_wire1(frame, max_decompressed=100_000)
    assert decode_wire1(frame, max_decompressed=len(body)).bus_type == "x"
    with pytest.raises(CodecError):
        decode_wire1(frame, max_decompressed=len(body) - 1)


def test_metadata_decompression_is_bounded():
    meta = zlib.compress(json.dumps({"k": " " * 50_000}).encode())
    assert len(meta) <= 255
    frame = craft(1, compressed=True, meta=meta, body=zlib.compress(b'{"type": "x"}'))
    assert decode_wire1(frame).metadata == {"k": " " * 50_000}
    with pytest.raises(CodecError):
        decode_wire1(frame, max_decompressed=1000)


def test_negative_bound_is_a_local_error():
    with pytest.raises(LocalProtocolError):
        decode_wire1(bytes.fromhex(UTTERANCE_C1), max_decompressed=-1)


@pytest.mark.parametrize(
    "body",
    [
        zlib.compress(b'{"type": "x"}')[:-3],  # truncated stream
        zlib.compress(b'{"type": "x"}') + b"junk",  # data after the stream
        b"x\x9c\xff\xff",  # garbage
    ],
)
def test_broken_zlib_is_refused(body):
    with pytest.raises(CodecError):
        decode_wire1(craft(1, compressed=True, meta=zlib.compress(b"{}"), body=body))


def test_deeply_nested_wrappers_fail_cleanly():
    inner = '{"msg_type": "bus", "payload": {"type": "x"}}'
    for _ in range(450):
        inner = '{"msg_type": "broadcast", "payload": ' + inner + "}"
    with pytest.raises(CodecError):
        decode_wire1(craft(3, body=inner.encode()))


def test_every_truncation_is_refused():
    for frame in (bytes.fromhex(UTTERANCE_C1), bytes.fromhex(RAW_AUDIO_C0)):
        for cut in range(len(frame) - (8 if frame[0] == 0x09 else 0)):
            with pytest.raises(CodecError):
                decode_wire1(frame[:cut])


@pytest.mark.parametrize("data", ["82027b7d", None, 5])
def test_non_bytes_are_refused(data):
    with pytest.raises(CodecError):
        decode_wire1(data)


def test_bytes_like_inputs_are_accepted():
    frame = bytes.fromhex(UTTERANCE_C1)
    assert decode_wire1(bytearray(frame)) == decode_wire1(memoryview(frame)) == UTTERANCE


def _decode_or_codec_error(data: bytes) -> None:
    try:
        message = decode_wire1(data, allow_legacy_thirdparty=True)
    except CodecError:
        return
    assert isinstance(message, HiveMessage)


@settings(max_examples=500)
@given(st.binary(max_size=300))
@example(b"")
@example(b"\x00")
@example(b"\x01")
@example(b"\x83\x00")
def test_arbitrary_bytes_only_raise_codec_error(data):
    _decode_or_codec_error(data)


@settings(max_examples=500)
@given(st.integers(0, 31), st.booleans(), st.binary(max_size=40), st.binary(max_size=80))
def test_arbitrary_fields_only_raise_codec_error(code, compressed, meta, body):
    _decode_or_codec_error(craft(code, compressed=compressed, meta=meta, body=body))


_SEEDS = [bytes.fromhex(h) for h in (UTTERANCE_C0, UTTERANCE_C1, RAW_AUDIO_C0, JS_VECTOR)]


@settings(max_examples=500)
@given(
    st.sampled_from(_SEEDS),
    st.lists(st.tuples(st.integers(0, 200), st.integers(0, 255)), min_size=1, max_size=4),
)
def test_mutated_frames_only_raise_codec_error(seed, edits):
    frame = bytearray(seed)
    for index, value in edits:
        frame[index % len(frame)] = value
    _decode_or_codec_error(bytes(frame))


def test_cached_metadata_still_honours_the_bound():
    meta = zlib.compress(json.dumps({"k": "v" * 500}).encode())
    frame = craft(1, compressed=True, meta=meta, body=zlib.compress(b'{"type": "x"}'))
    for _ in range(2):  # the second decode is served from the metadata cache
        assert decode_wire1(frame).metadata == {"k": "v" * 500}
        with pytest.raises(CodecError):
            decode_wire1(frame, max_decompressed=100)


def test_repeated_metadata_encodes_identically():
    message = HiveMessage(MessageType.BUS, bus_message("x"), metadata={"sample_rate": 16000})
    block = zlib.compress(b'{"sample_rate": 16000}')
    for _ in range(2):  # the second encode is served from the metadata cache
        frame = encode_wire1(message, compression=Compression.ALWAYS)
        assert frame[1] == len(block)
        assert frame[2 : 2 + len(block)] == block
        assert decode_wire1(frame) == message

"""The MSB-first bit packer: layout, front padding, alignment and bounds."""

from __future__ import annotations

import pytest
from hivemind_proto._bits import BitReader, BitWriter
from hivemind_proto._errors import CodecError, LocalProtocolError
from hypothesis import given
from hypothesis import strategies as st


def _as_bit_string(fields: list[tuple[int, int] | bytes]) -> str:
    """The reference: the same fields rendered one character per bit."""
    bits = ""
    for field in fields:
        if isinstance(field, bytes):
            bits += "".join(format(byte, "08b") for byte in field)
        else:
            value, width = field
            bits += format(value, f"0{width}b")
    return "0" * (-len(bits) % 8) + bits


def _bits_of(data: bytes) -> str:
    return "".join(format(byte, "08b") for byte in data)


def test_fields_are_msb_first_and_padded_at_the_front():
    writer = BitWriter()
    writer.write_uint(1, 1)
    writer.write_uint(0, 1)
    writer.write_uint(12, 5)
    writer.write_uint(0, 1)
    writer.write_uint(2, 8)
    writer.write_bytes(b"{}")
    writer.write_uint(1, 4)
    writer.write_bytes(b"\x00\x01")
    # 52 bits of fields: four zero bits are prepended, and the byte strings
    # straddle byte boundaries until the last one, which ends the frame.
    assert len(writer) == 52
    assert writer.getvalue().hex() == "098027b7d10001"


def test_byte_aligned_header_gets_no_padding():
    writer = BitWriter()
    writer.write_uint(0b10000010, 8)
    writer.write_bytes(b"\x02{}")
    assert writer.getvalue() == b"\x82\x02{}"


def test_empty_writer_renders_nothing():
    assert BitWriter().getvalue() == b""


@pytest.mark.parametrize(("value", "width"), [(2, 1), (-1, 4), (16, 4), (0, 0)])
def test_writer_refuses_values_that_do_not_fit(value, width):
    with pytest.raises(LocalProtocolError):
        BitWriter().write_uint(value, width)


_field = st.one_of(
    st.integers(min_value=1, max_value=70).flatmap(
        lambda width: st.tuples(st.integers(min_value=0, max_value=2**width - 1), st.just(width))
    ),
    st.binary(max_size=6),
)


@given(st.lists(_field, max_size=12))
def test_writer_matches_a_bit_by_bit_reference(fields):
    writer = BitWriter()
    for field in fields:
        if isinstance(field, bytes):
            writer.write_bytes(field)
        else:
            writer.write_uint(*field)
    assert _bits_of(writer.getvalue()) == _as_bit_string(fields)


@given(st.lists(_field, max_size=12))
def test_reader_reads_back_what_the_writer_wrote(fields):
    writer = BitWriter()
    for field in fields:
        if isinstance(field, bytes):
            writer.write_bytes(field)
        else:
            writer.write_uint(*field)
    data = writer.getvalue()
    reader = BitReader(data)
    pad = 8 * len(data) - len(writer)
    if pad:
        assert reader.read_uint(pad) == 0
    for field in fields:
        if isinstance(field, bytes):
            assert reader.read_bytes(len(field)) == field
        else:
            assert reader.read_uint(field[1]) == field[0]
    assert reader.remaining == 0


def test_skip_zeros_stops_at_the_first_set_bit():
    reader = BitReader(b"\x09\x80")
    assert reader.skip_zeros(7) == 4
    assert reader.position == 4
    assert reader.read_uint(1) == 1


def test_skip_zeros_refuses_too_many_zero_bits():
    with pytest.raises(CodecError):
        BitReader(b"\x00\x80").skip_zeros(7)
    with pytest.raises(CodecError):
        BitReader(b"\x01").skip_zeros(6)
    assert BitReader(b"\x01").skip_zeros(7) == 7


@pytest.mark.parametrize("data", [b"", b"\x00"])
def test_skip_zeros_without_a_start_bit(data):
    with pytest.raises(CodecError):
        BitReader(data).skip_zeros(8)


def test_reads_past_the_end_raise_codec_error():
    reader = BitReader(b"\xff")
    assert reader.read_uint(5) == 31
    with pytest.raises(CodecError):
        reader.read_uint(4)
    with pytest.raises(CodecError):
        reader.read_bytes(1)
    assert reader.read_uint(3) == 7
    with pytest.raises(CodecError):
        reader.read_uint(1)


def test_unaligned_bytes_and_aligned_rest():
    reader = BitReader(bytes.fromhex("0982977b2273"))
    reader.skip_zeros(7)
    assert reader.read_uint(16) == 0b1001100000101001
    assert reader.read_bytes(2) == bytes.fromhex("77b2")
    assert reader.read_uint(4) == 0x2
    assert reader.read_rest() == bytes.fromhex("73")
    assert reader.remaining == 0


def test_rest_must_be_byte_aligned():
    reader = BitReader(b"\xab\xcd")
    reader.read_uint(3)
    with pytest.raises(CodecError):
        reader.read_rest()

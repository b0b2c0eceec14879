"""Text encodings of encrypted JSON frames: vectors, round trips, strict decoding."""

from __future__ import annotations

import base64
import binascii

import pytest
from hivemind_proto._encodings import decode_text, encode_text
from hivemind_proto._errors import CodecError
from hivemind_proto._types import TextEncoding
from hypothesis import given
from hypothesis import strategies as st

E = TextEncoding
ALL = list(TextEncoding)
TEN = bytes(range(10))
N12 = bytes(range(12))
TAG = bytes.fromhex("d68c92cc35d78827cac775e42b3a73da")  # ChaCha20 tag of the spec vector
CT16 = bytes.fromhex("89f8e0d82d7efc8d28fbd86aadf05269")  # its first 16 ciphertext bytes


# --------------------------------------------------------------------------- pinned vectors


@pytest.mark.parametrize(
    ("encoding", "data", "text"),
    [
        (E.JSON_Z85B, TEN, "6Ge%0mt>l2hr0"),
        (E.JSON_B91, TEN, ":C#(:C?hVB$MA"),
        (E.JSON_Z85P, TEN, "\x02009c61o!#m2NHFh"),
        (E.JSON_Z85B, b"\x01", "10"),
        (E.JSON_B91, b"\x01", "BA"),
        (E.JSON_Z85P, b"\x01", "\x030rr91"),
        (E.JSON_B91, N12, ":C#(:C?hVB$MSiB"),
        (E.JSON_Z85B, N12, "6Ge%0mt>l2CgNK3"),
        (E.JSON_Z85P, N12, "\x00009c61o!#m2NH?C"),
        (E.JSON_B64, N12, "AAECAwQFBgcICQoL"),
        (E.JSON_B32, N12, "AAAQEAYEAUDAOCAJBIFQ===="),
        (E.JSON_HEX, N12, "000102030405060708090a0b"),
        (E.JSON_B64, TAG, "1oySzDXXiCfKx3XkKzpz2g=="),
        (E.JSON_B32, TAG, "22GJFTBV26ECPSWHOXSCWOTT3I======"),
        (E.JSON_B91, TAG, "Kk@M<l(x{G|KRynPI2ST"),
        (E.JSON_Z85B, TAG, "o}W-+iw3Yc=InA<9q/h*"),
        (E.JSON_Z85P, TAG, "\x00!@k^ohp)Ti+eXU=d(}+9"),
        (E.JSON_URLSAFE_B64, CT16, "ifjg2C1-_I0o-9hqrfBSaQ=="),
    ],
)  # fmt: skip
def test_pinned_vector(encoding, data, text):
    assert encode_text(data, encoding) == text
    assert decode_text(text, encoding) == data


@pytest.mark.parametrize("encoding", ALL)
def test_empty_input(encoding):
    text = encode_text(b"", encoding)
    assert text == ("\x00" if encoding is E.JSON_Z85P else "")
    assert decode_text(text, encoding) == b""


# --------------------------------------------------------------------------- round trips


@pytest.mark.parametrize("encoding", ALL)
@given(data=st.binary(max_size=300))
def test_round_trip(encoding, data):
    assert decode_text(encode_text(data, encoding), encoding) == data


@given(data=st.binary(max_size=300))
def test_rfc4648_encoders_match_the_stdlib(data):
    assert encode_text(data, E.JSON_HEX) == data.hex()
    assert encode_text(data, E.JSON_B64) == base64.b64encode(data).decode()
    assert encode_text(data, E.JSON_URLSAFE_B64) == base64.urlsafe_b64encode(data).decode()
    assert encode_text(data, E.JSON_B32) == base64.b32encode(data).decode()


@given(data=st.binary(max_size=64))
def test_z85_lengths(data):
    full, tail = divmod(len(data), 4)
    z85b = encode_text(data, E.JSON_Z85B)
    assert len(z85b) == 5 * full + (tail + 1 if tail else 0)
    z85p = encode_text(data, E.JSON_Z85P)
    assert ord(z85p[0]) == -len(data) % 4
    assert len(z85p) == 1 + 5 * (full + (1 if tail else 0))


@pytest.mark.parametrize("encoding", ALL)
@given(data=st.binary(max_size=64))
def test_encoded_text_is_ascii_and_json_safe_except_known_cases(encoding, data):
    text = encode_text(data, encoding)
    assert text.isascii()
    body = text[1:] if encoding is E.JSON_Z85P else text
    assert all(0x20 < ord(c) < 0x7F for c in body)
    assert "\\" not in text
    if encoding is not E.JSON_B91:
        assert '"' not in text


# --------------------------------------------------------------------------- strict decoders


@pytest.mark.parametrize("encoding", ALL)
@given(text=st.text(max_size=40))
def test_arbitrary_text_raises_only_codec_error(encoding, text):
    try:
        data = decode_text(text, encoding)
    except CodecError:
        return
    assert isinstance(data, bytes)


@pytest.mark.parametrize("encoding", ALL)
@given(
    text=st.text(
        alphabet=st.sampled_from(
            "0123456789abcdefABCDEF=+/-_ \n\x00\x01\x02\x03\x04" + '"#$%&()*,.:;<>?@[]^`{|}~!'
        ),
        max_size=40,
    )
)
def test_near_alphabet_text_raises_only_codec_error(encoding, text):
    try:
        data = decode_text(text, encoding)
    except CodecError:
        return
    assert isinstance(data, bytes)


_Z85_CHARS = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
_ALPHABETS = {
    E.JSON_HEX: "0123456789abcdefABCDEF",
    E.JSON_B64: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=",
    E.JSON_URLSAFE_B64: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_=",
    E.JSON_B32: "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567=",
    E.JSON_B91: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    '!#$%&()*+,./:;<=>?@[]^_`{|}~"',
    E.JSON_Z85B: _Z85_CHARS,
    E.JSON_Z85P: _Z85_CHARS,
}


def _candidate_text(encoding):
    alphabet = st.text(alphabet=_ALPHABETS[encoding], max_size=24)
    if encoding is E.JSON_Z85P:
        alphabet = st.tuples(st.sampled_from("\x00\x01\x02\x03"), alphabet).map("".join)
    return st.one_of(st.text(max_size=24), alphabet)


@pytest.mark.parametrize("encoding", ALL)
@given(data=st.data())
def test_alphabet_text_raises_only_codec_error(encoding, data):
    text = data.draw(_candidate_text(encoding))
    try:
        decoded = decode_text(text, encoding)
    except CodecError:
        return
    assert isinstance(decoded, bytes)


@pytest.mark.parametrize(
    "encoding", [e for e in ALL if e is not E.JSON_B91 and e is not E.JSON_HEX]
)
@given(data=st.data())
def test_accepted_text_is_canonical(encoding, data):
    """Whatever a strict decoder accepts re-encodes to the same text."""
    text = data.draw(_candidate_text(encoding))
    try:
        decoded = decode_text(text, encoding)
    except CodecError:
        return
    expected = text.strip(" \t\r\n\f\v") if encoding is E.JSON_Z85B else text
    assert encode_text(decoded, encoding) == expected


@given(text=st.text(max_size=40))
def test_accepted_hex_is_canonical_up_to_case(text):
    try:
        data = decode_text(text, E.JSON_HEX)
    except CodecError:
        return
    assert encode_text(data, E.JSON_HEX) == text.lower()


@given(data=st.data())
def test_accepted_base91_decodes_like_the_textbook_algorithm(data):
    """basE91 acceptance implies the textbook decoder yields the same bytes."""
    text = data.draw(_candidate_text(E.JSON_B91))
    try:
        decoded = decode_text(text, E.JSON_B91)
    except CodecError:
        return
    assert _textbook_b91_decode(text) == decoded


def _textbook_b91_decode(text: str) -> bytes:
    alphabet = (
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        '!#$%&()*+,./:;<=>?@[]^_`{|}~"'
    )
    out = bytearray()
    acc = nbits = 0
    pending = -1
    for char in text:
        digit = alphabet.index(char)
        if pending < 0:
            pending = digit
            continue
        value = pending + digit * 91
        pending = -1
        acc |= value << nbits
        nbits += 13 if (value & 8191) > 88 else 14
        while nbits > 7:
            out.append(acc & 0xFF)
            acc >>= 8
            nbits -= 8
    if pending >= 0:
        out.append((acc | pending << nbits) & 0xFF)
    return bytes(out)


@pytest.mark.parametrize(
    ("encoding", "text"),
    [
        (E.JSON_HEX, "0"),
        (E.JSON_HEX, "0g"),
        (E.JSON_HEX, "00 01"),
        (E.JSON_HEX, "é0"),
        (E.JSON_B64, "AQ="),
        (E.JSON_B64, "AR=="),  # non-zero bits under the padding
        (E.JSON_B64, "AQ"),  # padding is required
        (E.JSON_B64, "AQ==AQ=="),
        (E.JSON_B64, "AQ\n=="),
        (E.JSON_B64, "-_8="),
        (E.JSON_URLSAFE_B64, "+/8="),
        (E.JSON_URLSAFE_B64, "AQ"),
        (E.JSON_B32, "AE====="),
        (E.JSON_B32, "AF======"),  # non-zero bits under the padding
        (E.JSON_B32, "ae======"),
        (E.JSON_B32, "A======="),
        (E.JSON_B32, "AE======AE======"),
        (E.JSON_B32, "AA1AAAAA"),
        (E.JSON_B91, "A\x7f"),
        (E.JSON_B91, "B"),  # a lone symbol cannot start a byte
        (E.JSON_B91, "~~"),  # non-zero padding bits
        (E.JSON_B91, "AA A"),
        (E.JSON_Z85B, "1"),  # one leftover digit never happens
        (E.JSON_Z85B, "1 0"),
        (E.JSON_Z85B, "#####"),  # overflows 32 bits
        (E.JSON_Z85B, "~0"),
        (E.JSON_Z85B, "0b"),  # tail value above one byte
        (E.JSON_Z85P, ""),
        (E.JSON_Z85P, "00000"),  # missing pad count
        (E.JSON_Z85P, "\x04"),
        (E.JSON_Z85P, "\x010000"),
        (E.JSON_Z85P, "\x01"),
        (E.JSON_Z85P, "\x01#####"),
        (E.JSON_Z85P, "\x0100001"),  # non-zero pad byte
    ],
)
def test_invalid_text_is_refused(encoding, text):
    with pytest.raises(CodecError):
        decode_text(text, encoding)


@pytest.mark.parametrize("encoding", ALL)
@pytest.mark.parametrize("value", [None, 12, b"00", ["00"]])
def test_non_text_is_refused(encoding, value):
    with pytest.raises(CodecError):
        decode_text(value, encoding)


def test_codec_error_is_a_remote_error_with_unsupported_data_close_code():
    with pytest.raises(CodecError) as info:
        decode_text("zz", E.JSON_HEX)
    assert info.value.close_code == 1003


# --------------------------------------------------------------------------- leniency


def test_hex_accepts_upper_case():
    assert decode_text("DEADbeef", E.JSON_HEX) == bytes.fromhex("deadbeef")


@pytest.mark.parametrize("text", [" 6Ge%0mt>l2hr0", "6Ge%0mt>l2hr0\n", "\t6Ge%0mt>l2hr0 \r\n"])
def test_z85b_strips_surrounding_whitespace(text):
    assert decode_text(text, E.JSON_Z85B) == TEN


def test_b64_rejects_urlsafe_alphabet_and_vice_versa():
    data = bytes([0xFB, 0xFF])
    assert decode_text("+/8=", E.JSON_B64) == data
    assert decode_text("-_8=", E.JSON_URLSAFE_B64) == data


@given(data=st.binary(min_size=1, max_size=64))
def test_z85b_words_are_little_endian_lsb_digit_first(data):
    """Independent check of the Z85B layout on full 4-byte groups."""
    alphabet = _Z85_CHARS
    full = data[: len(data) // 4 * 4]
    text = encode_text(full, E.JSON_Z85B)
    for i in range(0, len(full), 4):
        word = int.from_bytes(full[i : i + 4], "little")
        chunk = text[i // 4 * 5 : i // 4 * 5 + 5]
        assert sum(alphabet.index(c) * 85**k for k, c in enumerate(chunk)) == word


def test_hex_decoder_matches_binascii_on_mixed_case():
    data = bytes(range(256))
    assert decode_text(binascii.hexlify(data).decode().upper(), E.JSON_HEX) == data

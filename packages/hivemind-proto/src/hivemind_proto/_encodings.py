"""Text encodings of the legacy encrypted JSON frames.

Theory of operation
-------------------
An encrypted JSON frame carries three byte strings (ciphertext, tag, nonce),
each turned into text by the negotiated ``TextEncoding``. Four encodings are
RFC 4648 and run on ``binascii``; three are HiveMind-specific:

* basE91 treats the input as one little-endian bit stream (byte 0 is bits
  0..7, byte 1 bits 8..15, ...). It repeatedly takes 13 bits; if their value
  is at most 88 it takes 14 bits instead, and writes the value as two symbols
  ``v % 91``, ``v // 91``. Leftover bits at the end become one symbol (when
  they fit) or two. Because the stream is little-endian we can add whole
  chunks of input to the accumulator at once with ``int.from_bytes``; the
  symbols only depend on bit positions, so batching gives the same output.
* Z85B splits the input into little-endian 32-bit words and writes each as
  five base-85 digits, least significant first. A short last word is zero
  padded and its high (last written) digits are dropped: 1, 2 or 3 leftover
  bytes give 2, 3 or 4 digits.
* Z85P writes one raw character ``chr(pad)`` (0..3 zero bytes appended), then
  classic Z85: big-endian words, most significant digit first.

Both base-85 codecs work on two digits at a time through a 7225-entry table
(85 * 85), so each word costs two divisions and three lookups.

Decoders are strict: they only accept what the matching encoder can produce
(plus upper-case hex and surrounding whitespace for Z85B, which released
peers may send) and raise ``CodecError`` for anything else, never another
exception type. basE91 is checked for invalid symbols and non-zero padding
bits; it is not a canonical-form check of every symbol pair.
"""

from __future__ import annotations

import binascii
import struct
from collections.abc import Callable

from ._errors import CodecError
from ._types import TextEncoding

__all__ = ["decode_text", "encode_text"]

# --------------------------------------------------------------------------- tables

_Z85 = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#"
_B91 = (
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    + "".join(chr(c) for c in b"!#$%&()*+,./:;<=>?@[]^_`{|}~")
    + '"'
)
assert len(set(_Z85)) == len(_Z85) == 85
assert len(set(_B91)) == len(_B91) == 91

_BAD = 0xFF  # marks a byte that is not a symbol of the alphabet


def _digit_table(alphabet: str) -> bytes:
    table = bytearray([_BAD]) * 256
    for value, char in enumerate(alphabet):
        table[ord(char)] = value
    return bytes(table)


_Z85_DIGITS = _digit_table(_Z85)
_B91_DIGITS = _digit_table(_B91)

# Two base-85 digits per lookup: value x -> digits (x % 85, x // 85) written
# least-significant first (Z85B) or most-significant first (Z85P).
_Z85_PAIR_LSB = [_Z85[x % 85] + _Z85[x // 85] for x in range(85 * 85)]
_Z85_PAIR_MSB = [_Z85[x // 85] + _Z85[x % 85] for x in range(85 * 85)]

# basE91 encoder: indexed by the next 14 bits of the stream, gives the two
# symbols to write and how many bits they consume (13, or 14 when the low 13
# bits are <= 88).
_B91_SYMBOLS: list[str] = []
_B91_WIDTH: list[int] = []
for _v in range(1 << 14):
    _low = _v & 0x1FFF
    _val, _width = (_low, 13) if _low > 88 else (_v, 14)
    _B91_SYMBOLS.append(_B91[_val % 91] + _B91[_val // 91])
    _B91_WIDTH.append(_width)
del _v, _low, _val, _width

# basE91 decoder: bits carried by the pair value v = d0 + 91 * d1 (0..8280).
_B91_PAIR_WIDTH = bytes(13 if (v & 0x1FFF) > 88 else 14 for v in range(91 * 91))

_Z85B_TAIL_DIGITS = {1: 2, 2: 3, 3: 4}  # leftover bytes -> digits written
_Z85B_TAIL_BYTES = {2: 1, 3: 2, 4: 3}  # digits in a short group -> bytes
_WHITESPACE = " \t\r\n\f\v"
_B32_PAD_OK = frozenset({0, 1, 3, 4, 6})  # legal counts of "=" in a Base32 block

# --------------------------------------------------------------------------- RFC 4648


def _hex_encode(data: bytes) -> str:
    return data.hex()


def _hex_decode(text: str) -> bytes:
    # unhexlify (unlike bytes.fromhex) refuses embedded whitespace.
    return binascii.unhexlify(text)


def _b64_encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _b64_decode(text: str) -> bytes:
    return _b64_decode_ascii(text.encode("ascii"))


# A url-safe text must not contain "+" or "/": map them to a byte the strict
# standard decoder refuses, and map "-" / "_" onto "+" / "/".
_URLSAFE_TO_STD = bytes.maketrans(b"-_+/", b"+/!!")
_STD_TO_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _urlsafe_b64_encode(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).translate(_STD_TO_URLSAFE).decode("ascii")


def _urlsafe_b64_decode(text: str) -> bytes:
    return _b64_decode_ascii(text.encode("ascii").translate(_URLSAFE_TO_STD))


def _b64_decode_ascii(raw: bytes) -> bytes:
    data = binascii.a2b_base64(raw, strict_mode=True)
    if raw.endswith(b"="):
        # Refuse non-zero bits hidden in the last symbol before the padding.
        tail = len(data) % 3
        if binascii.b2a_base64(data[len(data) - tail :], newline=False) != raw[-4:]:
            raise ValueError("non-canonical base64 padding bits")
    return data


# Base32 runs column-wise: a 5-byte block b0..b4 becomes eight 5-bit symbols,
# and each symbol is a fixed function of one or two of those bytes. Slicing
# every fifth byte, ``bytes.translate`` and one big-int OR per column do the
# bit work in C, then a last ``translate`` maps 0..31 onto the alphabet. The
# decoder maps the symbols onto the digits of Python's base-32 integer syntax
# and lets ``int(text, 32)`` assemble the bit string.


def _byte_map(fn: Callable[[int], int]) -> bytes:
    return bytes(fn(b) & 0xFF for b in range(256))


_B32_ALPHABET = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_B32_SYMBOLS = _B32_ALPHABET + bytes(256 - 32)
_B32_TO_INT_DIGITS = bytes(
    b"0123456789abcdefghijklmnopqrstuv"[_B32_ALPHABET.index(b)] if b in _B32_ALPHABET else 0x21
    for b in range(256)
)
# (column of the symbol, [(input byte index, byte -> partial symbol), ...])
_B32_COLUMNS = (
    (0, ((0, _byte_map(lambda b: b >> 3)),)),
    (1, ((0, _byte_map(lambda b: (b & 7) << 2)), (1, _byte_map(lambda b: b >> 6)))),
    (2, ((1, _byte_map(lambda b: (b >> 1) & 31)),)),
    (3, ((1, _byte_map(lambda b: (b & 1) << 4)), (2, _byte_map(lambda b: b >> 4)))),
    (4, ((2, _byte_map(lambda b: (b & 15) << 1)), (3, _byte_map(lambda b: b >> 7)))),
    (5, ((3, _byte_map(lambda b: (b >> 2) & 31)),)),
    (6, ((3, _byte_map(lambda b: (b & 3) << 3)), (4, _byte_map(lambda b: b >> 5)))),
    (7, ((4, _byte_map(lambda b: b & 31)),)),
)
_B32_KEEP = {1: 2, 2: 4, 3: 5, 4: 7}  # bytes in the last block -> symbols written


def _b32_encode(data: bytes) -> str:
    tail = len(data) % 5
    buf = data + b"\0" * ((5 - tail) % 5)
    rows = [buf[i::5] for i in range(5)]
    out = bytearray(len(buf) // 5 * 8)
    for column, parts in _B32_COLUMNS:
        if len(parts) == 1:
            ((row, table),) = parts
            out[column::8] = rows[row].translate(table)
        else:
            (row_a, table_a), (row_b, table_b) = parts
            merged = int.from_bytes(rows[row_a].translate(table_a), "little") | int.from_bytes(
                rows[row_b].translate(table_b), "little"
            )
            out[column::8] = merged.to_bytes(len(rows[0]), "little")
    text = out.translate(_B32_SYMBOLS)
    if tail:
        keep = _B32_KEEP[tail]
        text[len(text) - 8 + keep :] = b"=" * (8 - keep)
    return text.decode("ascii")


def _b32_decode(text: str) -> bytes:
    body = text.rstrip("=")
    if len(text) % 8 or len(text) - len(body) not in _B32_PAD_OK:
        raise ValueError("bad base32 length or padding")
    digits = body.encode("ascii").translate(_B32_TO_INT_DIGITS)
    if b"!" in digits:
        raise ValueError("character outside the base32 alphabet")
    if not digits:
        return b""
    nbytes, extra = divmod(5 * len(digits), 8)
    value = int(digits, 32)
    if value & ((1 << extra) - 1):
        raise ValueError("non-canonical base32 padding bits")
    return (value >> extra).to_bytes(nbytes, "big")


# --------------------------------------------------------------------------- Z85B / Z85P


def _z85b_encode(data: bytes) -> str:
    full, tail = divmod(len(data), 4)
    pad = (4 - tail) % 4
    words = struct.unpack(f"<{full + (1 if tail else 0)}I", data + b"\0" * pad)
    lo, mid = _Z85_PAIR_LSB, _Z85
    text = "".join([lo[w % 7225] + lo[w // 7225 % 7225] + mid[w // 52200625] for w in words])
    return text[: len(text) - pad] if pad else text


def _z85p_encode(data: bytes) -> str:
    pad = (4 - len(data) % 4) % 4
    padded = data + b"\0" * pad
    words = struct.unpack(f">{len(padded) // 4}I", padded)
    hi, top = _Z85_PAIR_MSB, _Z85
    body = "".join([top[w // 52200625] + hi[w // 7225 % 7225] + hi[w % 7225] for w in words])
    return chr(pad) + body


def _digits(text: str, table: bytes) -> bytes:
    """Map every character of ``text`` to its digit value, or raise."""
    digits = text.encode("ascii").translate(table)
    if _BAD in digits:
        raise ValueError("character outside the alphabet")
    return digits


def _z85b_decode(text: str) -> bytes:
    digits = _digits(text.strip(_WHITESPACE), _Z85_DIGITS)
    full, rest = divmod(len(digits), 5)
    if rest == 1:
        raise ValueError("bad Z85B length")
    tail_bytes = _Z85B_TAIL_BYTES.get(rest, 0)
    if rest:
        digits += b"\0" * (5 - rest)
    words = _words_lsb_first(digits)
    if tail_bytes and words[-1] >> (8 * tail_bytes):
        raise ValueError("non-canonical Z85B tail")
    data = struct.pack(f"<{len(words)}I", *words)
    return data[: 4 * full + tail_bytes]


def _z85p_decode(text: str) -> bytes:
    if not text or text[0] not in "\x00\x01\x02\x03":
        raise ValueError("missing Z85P pad count")
    pad = ord(text[0])
    digits = _digits(text[1:], _Z85_DIGITS)
    if len(digits) % 5 or (pad and not digits):
        raise ValueError("bad Z85P length")
    words = _words_msb_first(digits)
    data = struct.pack(f">{len(words)}I", *words)
    if pad:
        if any(data[-pad:]):
            raise ValueError("non-zero Z85P padding")
        return data[:-pad]
    return data


def _words_lsb_first(d: bytes) -> list[int]:
    words = [
        a + 85 * b + 7225 * c + 614125 * e + 52200625 * f
        for a, b, c, e, f in zip(d[0::5], d[1::5], d[2::5], d[3::5], d[4::5], strict=True)
    ]
    if words and max(words) > 0xFFFFFFFF:
        raise ValueError("Z85 group overflows 32 bits")
    return words


def _words_msb_first(d: bytes) -> list[int]:
    words = [
        52200625 * a + 614125 * b + 7225 * c + 85 * e + f
        for a, b, c, e, f in zip(d[0::5], d[1::5], d[2::5], d[3::5], d[4::5], strict=True)
    ]
    if words and max(words) > 0xFFFFFFFF:
        raise ValueError("Z85 group overflows 32 bits")
    return words


# --------------------------------------------------------------------------- basE91

_B91_CHUNK = 32  # input bytes added to the bit accumulator at once


def _b91_encode(data: bytes) -> str:
    symbols, widths = _B91_SYMBOLS, _B91_WIDTH
    out: list[str] = []
    append = out.append
    acc = nbits = 0
    for start in range(0, len(data), _B91_CHUNK):
        chunk = data[start : start + _B91_CHUNK]
        acc |= int.from_bytes(chunk, "little") << nbits
        nbits += 8 * len(chunk)
        while nbits > 13:
            v = acc & 0x3FFF
            append(symbols[v])
            width = widths[v]
            acc >>= width
            nbits -= width
    if nbits:
        append(_B91[acc % 91])
        if nbits > 7 or acc > 90:
            append(_B91[acc // 91])
    return "".join(out)


def _b91_decode(text: str) -> bytes:
    digits = _digits(text, _B91_DIGITS)
    widths = _B91_PAIR_WIDTH
    out = bytearray()
    acc = nbits = 0
    for v in [a + 91 * b for a, b in zip(digits[0::2], digits[1::2], strict=False)]:
        acc |= v << nbits
        nbits += widths[v]
        if nbits >= 64:
            out += (acc & 0xFFFFFFFFFFFFFFFF).to_bytes(8, "little")
            acc >>= 64
            nbits -= 64
    whole, nbits = divmod(nbits, 8)
    out += (acc & ((1 << (8 * whole)) - 1)).to_bytes(whole, "little")
    acc >>= 8 * whole
    if len(digits) % 2:
        # A lone last symbol completes a partial byte; it never starts one.
        acc |= digits[-1] << nbits
        if not nbits or acc > 0xFF:
            raise ValueError("bad basE91 final symbol")
        out.append(acc)
    elif acc:
        raise ValueError("non-zero basE91 padding bits")
    return bytes(out)


# --------------------------------------------------------------------------- dispatch

_ENCODERS: dict[TextEncoding, Callable[[bytes], str]] = {
    TextEncoding.JSON_HEX: _hex_encode,
    TextEncoding.JSON_B64: _b64_encode,
    TextEncoding.JSON_URLSAFE_B64: _urlsafe_b64_encode,
    TextEncoding.JSON_B32: _b32_encode,
    TextEncoding.JSON_B91: _b91_encode,
    TextEncoding.JSON_Z85B: _z85b_encode,
    TextEncoding.JSON_Z85P: _z85p_encode,
}

_DECODERS: dict[TextEncoding, Callable[[str], bytes]] = {
    TextEncoding.JSON_HEX: _hex_decode,
    TextEncoding.JSON_B64: _b64_decode,
    TextEncoding.JSON_URLSAFE_B64: _urlsafe_b64_decode,
    TextEncoding.JSON_B32: _b32_decode,
    TextEncoding.JSON_B91: _b91_decode,
    TextEncoding.JSON_Z85B: _z85b_decode,
    TextEncoding.JSON_Z85P: _z85p_decode,
}


def encode_text(data: bytes, encoding: TextEncoding) -> str:
    """Encode bytes as text with one of the legacy JSON frame encodings.

    Args:
        data: the bytes to encode (any bytes-like object).
        encoding: the negotiated text encoding.

    Returns:
        The encoded text. For ``JSON_Z85P`` it starts with a control
        character (the pad count), which JSON serialisation escapes.

    Raises:
        KeyError: ``encoding`` is not a ``TextEncoding``. Any other exception
            is a bug.
    """
    return _ENCODERS[encoding](bytes(data))


def decode_text(text: str, encoding: TextEncoding) -> bytes:
    """Decode text produced by a legacy JSON frame encoding.

    Args:
        text: the encoded text as received.
        encoding: the negotiated text encoding.

    Returns:
        The decoded bytes.

    Raises:
        CodecError: the text is not a valid encoding (bad character, length
            or padding, or not a string). Any other exception is a bug.
    """
    if not isinstance(text, str):
        raise CodecError(f"{encoding.value}: expected text")
    try:
        return _DECODERS[encoding](text)
    except (ValueError, UnicodeError, struct.error) as exc:
        raise CodecError(f"{encoding.value}: invalid encoded text") from exc

"""A small MSB-first bit packer for the WIRE-1 frame format.

Theory of operation: WIRE-1 is a bit string whose fields are not byte
aligned (a 5-bit type, a 1-bit flag, a 4-bit ``bin_type``) and whose zero
padding is *prepended*, so the last field always ends on the last byte.
That shape allows a cheap implementation without per-bit work:

* ``BitWriter`` keeps every fixed-width field in one Python ``int`` (shift
  left, OR in the value) and counts the bits. Byte strings are appended as a
  *tail* list; if another field follows them, the tail is folded into the int
  first. ``getvalue`` renders the int with ``int.to_bytes`` into just enough
  bytes, which puts the zero padding at the front for free, and then
  concatenates the tail. Because padding is at the front and the tail is made
  of whole bytes, the int part always ends on a byte boundary: the tail (the
  payload, possibly megabytes) is copied as bytes, never shifted.
* ``BitReader`` reads fields at a bit offset with one ``int.from_bytes`` over
  the few bytes that hold the field, and returns the aligned rest of the frame
  as a plain slice.

The reader only ever sees bytes from the wire, so running out of bits raises
``CodecError``; misusing the writer is a local bug and raises
``LocalProtocolError``.
"""

from __future__ import annotations

from typing import final

from ._errors import CodecError, LocalProtocolError


@final
class BitWriter:
    """Append unsigned fields and byte strings MSB-first."""

    __slots__ = ("_acc", "_nbits", "_tail")

    def __init__(self) -> None:
        self._acc = 0
        self._nbits = 0
        self._tail: list[bytes] = []

    def __len__(self) -> int:
        """Number of bits written so far (padding excluded)."""
        return self._nbits + 8 * sum(len(chunk) for chunk in self._tail)

    def write_uint(self, value: int, width: int) -> None:
        """Append ``value`` as a ``width``-bit unsigned field.

        Raises:
            LocalProtocolError: ``value`` does not fit in ``width`` bits.
        """
        if width <= 0 or value < 0 or value >> width:
            raise LocalProtocolError(f"{value} does not fit in {width} unsigned bits")
        if self._tail:
            self._fold_tail()
        self._acc = (self._acc << width) | value
        self._nbits += width

    def write_bytes(self, data: bytes) -> None:
        """Append a byte string (8 bits per byte, no length prefix)."""
        if data:
            self._tail.append(bytes(data))

    def getvalue(self) -> bytes:
        """Return the bits written so far, zero-padded at the front to whole bytes."""
        head_len = (self._nbits + 7) >> 3
        head = self._acc.to_bytes(head_len, "big")
        if not self._tail:
            return head
        return b"".join((head, *self._tail))

    def _fold_tail(self) -> None:
        tail = b"".join(self._tail)
        self._tail.clear()
        self._acc = (self._acc << (8 * len(tail))) | int.from_bytes(tail, "big")
        self._nbits += 8 * len(tail)


@final
class BitReader:
    """Read unsigned fields and byte strings MSB-first from a byte string."""

    __slots__ = ("_data", "_pos", "_total")

    def __init__(self, data: bytes) -> None:
        self._data = bytes(data)
        self._pos = 0
        self._total = 8 * len(self._data)

    @property
    def position(self) -> int:
        """The current bit offset from the start of the data."""
        return self._pos

    @property
    def remaining(self) -> int:
        """Number of bits not read yet."""
        return self._total - self._pos

    def skip_zeros(self, limit: int) -> int:
        """Skip zero bits up to the next set bit; return how many were skipped.

        Raises:
            CodecError: more than ``limit`` zero bits, or no set bit at all.
        """
        skipped = 0
        while True:
            if self._pos >= self._total:
                raise CodecError("no start bit")
            if self._peek_bit():
                return skipped
            if skipped == limit:
                raise CodecError(f"more than {limit} leading zero bits")
            self._pos += 1
            skipped += 1

    def read_uint(self, width: int) -> int:
        """Read a ``width``-bit unsigned field.

        Raises:
            CodecError: fewer than ``width`` bits remain.
        """
        end = self._pos + width
        if width <= 0 or end > self._total:
            raise CodecError("frame truncated")
        first, last = self._pos >> 3, (end + 7) >> 3
        chunk = int.from_bytes(self._data[first:last], "big")
        self._pos = end
        return (chunk >> ((last << 3) - end)) & ((1 << width) - 1)

    def read_bytes(self, count: int) -> bytes:
        """Read ``count`` whole bytes at the current (possibly unaligned) offset.

        Raises:
            CodecError: fewer than ``count`` bytes remain.
        """
        if count < 0 or self._pos + 8 * count > self._total:
            raise CodecError("frame truncated")
        if count == 0:
            return b""
        shift = self._pos & 7
        first = self._pos >> 3
        self._pos += 8 * count
        if not shift:
            return self._data[first : first + count]
        window = int.from_bytes(self._data[first : first + count + 1], "big")
        value = (window >> (8 - shift)) & ((1 << (8 * count)) - 1)
        return value.to_bytes(count, "big")

    def read_rest(self) -> bytes:
        """Read every remaining bit as bytes.

        Raises:
            CodecError: the remaining bits are not a whole number of bytes.
        """
        if self._pos & 7:
            raise CodecError("payload is not byte aligned")
        rest = self._data[self._pos >> 3 :]
        self._pos = self._total
        return rest

    def _peek_bit(self) -> int:
        return (self._data[self._pos >> 3] >> (7 - (self._pos & 7))) & 1

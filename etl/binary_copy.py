"""PostgreSQL's binary COPY format, laid out by Polars: no Python loop over rows or fields.

PostgreSQL ingests binary COPY faster than CSV because it parses no text (no float or timestamp
parsing), but the format is row-major: per row a 16-bit field count, then per field a 32-bit
length (-1 for null) and the value, big-endian. The bundle has no NumPy or PyArrow to lay that
out, so Polars does it with expressions:

- every fixed-width value becomes its big-endian bytes through Polars' row encoding of an
  unsigned integer (one validity byte, then the value big-endian: the byte is sliced off), its
  length word folded into the same integer (a `_Word`);
- adjacent words without nulls, the row's field count first, share one UInt128 up to 16 bytes
  (`_pieces`): fewer pieces to join, and no join at all for the field count;
- the pieces of a row are concatenated as `Binary` columns (`+`), in a balanced tree so that no
  row's bytes are copied once per piece;
- the rows leave Polars in one copy, as the values buffer of an Arrow IPC stream
  (`_ipc_values`): `Series.to_list()` would build a Python object per row.

`Expr._row_encode` is private to Polars: `tests/integration/test_binary_copy.py` pins the bytes
it gives for every type here and reads them back from a real PostgreSQL, and the loader's
integration tests load through it, so an upgrade that changes it fails the tests instead of a
load.

Types (`TYPES`) are Polars' for the clean schemas, each sent as the column type of taxi.trips it
is stored in (migration 0001): Int32 as integer, Int8/Int16 as smallint, Float64 as double
precision, Datetime as timestamp, Date as date, String as text. Binary COPY is strict: a
mismatch is an "incorrect binary data format" error from PostgreSQL, which the loader's tests
would show.
"""

from __future__ import annotations

import io
import struct
from collections.abc import Callable
from dataclasses import dataclass

import polars as pl

HEADER = b"PGCOPY\n\xff\r\n\x00" + struct.pack(">ii", 0, 0)
"""The file header: signature, flags (no OIDs), header-extension length."""
TRAILER = struct.pack(">h", -1)
"""The file trailer: a field count of -1."""

_PG_EPOCH_DAYS = 10_957
"""Days from 1970-01-01 (Polars) to 2000-01-01 (PostgreSQL's epoch for date and timestamp)."""
_PG_EPOCH_US = _PG_EPOCH_DAYS * 86_400 * 1_000_000
_NULL = pl.lit(struct.pack(">i", -1), dtype=pl.Binary)


@dataclass(frozen=True)
class _Word:
    """A fixed-width field, length word included, as the low `size` bytes of one unsigned
    integer (`value`, the narrowest of UInt64 and UInt128 that holds it: `_unsigned`)."""

    value: pl.Expr
    size: int

    def merged(self, after: _Word) -> _Word:
        """This word's bytes, then `after`'s, in one UInt128."""
        high = self.value.cast(pl.UInt128) * pl.lit(1 << (8 * after.size), dtype=pl.UInt128)
        return _Word(high | after.value.cast(pl.UInt128), self.size + after.size)

    def bytes(self) -> pl.Expr:
        """The word's bytes, big-endian: Polars' row encoding of the integer (one validity
        byte, then the value big-endian) minus the validity byte and the unused high bytes."""
        dtype = _unsigned(self.size)
        value = self.value.cast(dtype)  # a no-op unless a narrower integer was given
        skip = 1 + (8 if dtype == pl.UInt64 else 16) - self.size
        return value._row_encode().cast(pl.Binary).bin.slice(skip, self.size)


_WORD_BYTES = 16
"""The widest word: UInt128."""


def _unsigned(size: int) -> pl.DataType:
    """The narrowest unsigned integer holding a word of `size` bytes."""
    return pl.UInt64() if size <= 8 else pl.UInt128()


def _fixed(bits: pl.Expr, size: int) -> _Word:
    """Length word `size`, then the `size`-byte value whose bits are `bits` (unsigned), in the
    narrowest integer that holds both."""
    dtype = _unsigned(4 + size)
    return _Word(bits.cast(dtype) | pl.lit(size << (8 * size), dtype=dtype), 4 + size)


def _int16(value: pl.Expr) -> _Word:
    return _fixed(value.cast(pl.Int16).reinterpret(dtype=pl.UInt16), 2)


def _int32(value: pl.Expr) -> _Word:
    return _fixed(value.cast(pl.Int32).reinterpret(dtype=pl.UInt32), 4)


def _int64(value: pl.Expr) -> _Word:
    return _fixed(value.cast(pl.Int64).reinterpret(dtype=pl.UInt64), 8)


def _float64(value: pl.Expr) -> _Word:
    """The IEEE 754 bits (NaN and infinities included, as PostgreSQL's)."""
    return _fixed(value.reinterpret(dtype=pl.UInt64), 8)


def _timestamp(value: pl.Expr) -> _Word:
    """Microseconds since 2000-01-01, as a 64-bit value."""
    return _int64(value.dt.epoch("us") - _PG_EPOCH_US)


def _date(value: pl.Expr) -> _Word:
    """Days since 2000-01-01, as a 32-bit value."""
    return _int32(value.cast(pl.Int32) - _PG_EPOCH_DAYS)


def _text(value: pl.Expr) -> pl.Expr:
    """Length word (UTF-8 bytes), then the bytes."""
    length = _Word(value.str.len_bytes().cast(pl.UInt64), 4)
    return length.bytes() + value.cast(pl.Binary)


TYPES: dict[type[pl.DataType], Callable[[pl.Expr], _Word | pl.Expr]] = {
    pl.Int8: _int16,
    pl.Int16: _int16,
    pl.Int32: _int32,
    pl.Int64: _int64,
    pl.Float64: _float64,
    pl.Datetime: _timestamp,
    pl.Date: _date,
    pl.String: _text,
}
"""How each Polars type of the clean schemas is sent (see the module's docstring): a fixed-width
`_Word`, or the field's bytes."""


def _pieces(frame: pl.DataFrame) -> list[pl.Expr]:
    """The row's bytes in order, as few pieces as the packing allows: the field count and
    adjacent fixed-width fields without nulls share one word up to 16 bytes (a 2024 yellow
    row: 21 pieces for 23 fields); a field with nulls, or text, is a piece of its own."""
    pieces: list[pl.Expr] = []
    word: _Word | None = _Word(pl.lit(frame.width, dtype=pl.UInt64), 2)
    for (name, dtype), nulls in zip(frame.schema.items(), frame.null_count().row(0), strict=True):
        encode = TYPES.get(dtype.base_type())
        if encode is None:
            raise TypeError(f"column {name!r}: no binary COPY encoding for {dtype}")
        column = pl.col(name)
        encoded = encode(column)
        if isinstance(encoded, _Word) and nulls == 0:
            if word is not None and word.size + encoded.size <= _WORD_BYTES:
                word = word.merged(encoded)
                continue
            if word is not None:
                pieces.append(word.bytes())
            word = encoded
            continue
        if word is not None:
            pieces.append(word.bytes())
            word = None
        value = encoded.bytes() if isinstance(encoded, _Word) else encoded
        pieces.append(pl.when(column.is_null()).then(_NULL).otherwise(value) if nulls else value)
    if word is not None:
        pieces.append(word.bytes())
    return pieces


def _concatenated(parts: list[pl.Expr]) -> pl.Expr:
    while len(parts) > 1:
        pairs = [parts[i] + parts[i + 1] for i in range(0, len(parts) - 1, 2)]
        parts = pairs + parts[len(pairs) * 2 :]
    return parts[0]


def encode_rows(frame: pl.DataFrame) -> memoryview:
    """The rows of `frame`, every column in order, as binary COPY tuples (no header or
    trailer: `HEADER` goes before the first batch, `TRAILER` after the last)."""
    if frame.width == 0 or frame.height == 0:
        raise ValueError("binary COPY needs at least one row and one column")
    pieces = _pieces(frame)
    names = [f"piece_{index}" for index in range(len(pieces))]
    parts = frame.select(piece.alias(name) for piece, name in zip(pieces, names, strict=True))
    rows = parts.select(_concatenated([pl.col(name) for name in names]).alias("row"))
    return _ipc_values(rows)


def _ipc_values(rows: pl.DataFrame) -> memoryview:
    """The bytes of `rows`' only column (Binary, no nulls), all rows back to back.

    Written as an uncompressed Arrow IPC stream in the oldest layout, where Binary is
    large_binary: validity, 64-bit offsets, then one contiguous values buffer; this reads that
    buffer's place from the record batch's metadata (a flatbuffer, read by hand: the bundle has
    no PyArrow) and checks its size against the rows' own.
    """
    expected = int(rows.select(pl.first().bin.size().sum()).item())
    rows = rows.rechunk()
    stream = io.BytesIO()
    rows.write_ipc_stream(stream, compression="uncompressed", compat_level=pl.CompatLevel.oldest())
    data = stream.getbuffer()
    position = 0
    while position < len(data):
        continuation, length = struct.unpack_from("<Ii", data, position)
        if continuation != 0xFFFFFFFF or length <= 0:
            break
        meta_start = position + 8
        message = _Table(data, meta_start + _uoffset(data, meta_start))
        body_start = meta_start + length
        body_length = message.int64(3)
        if message.uint8(1) == _RECORD_BATCH:
            batch = message.table(2)
            if batch.has(3):
                raise ValueError("Arrow IPC: compressed record batch")
            offset, size = batch.struct_vector_item(2, 2, "<qq")
            if size != expected:
                raise ValueError(f"Arrow IPC: values buffer of {size} bytes, rows of {expected}")
            return data[body_start + offset : body_start + offset + size]
        position = body_start + body_length
    raise ValueError("Arrow IPC: no record batch in the stream")


_RECORD_BATCH = 3
"""`MessageHeader.RecordBatch` in Arrow's Message.fbs."""


def _uoffset(data: memoryview, at: int) -> int:
    return int(struct.unpack_from("<I", data, at)[0])


class _Table:
    """One flatbuffer table: fields by their index in the schema (vtable slot)."""

    def __init__(self, data: memoryview, at: int) -> None:
        self.data, self.at = data, at
        self.vtable = at - int(struct.unpack_from("<i", data, at)[0])
        self.vtable_size = int(struct.unpack_from("<H", data, self.vtable)[0])

    def _field(self, index: int) -> int:
        slot = 4 + 2 * index
        if slot >= self.vtable_size:
            return 0
        return int(struct.unpack_from("<H", self.data, self.vtable + slot)[0])

    def has(self, index: int) -> bool:
        return self._field(index) != 0

    def _required(self, index: int) -> int:
        offset = self._field(index)
        if offset == 0:
            raise ValueError(f"Arrow IPC: field {index} missing")
        return self.at + offset

    def _scalar(self, index: int, layout: str) -> int:
        """A scalar field; an absent one holds the default, 0 (flatbuffers omit defaults)."""
        offset = self._field(index)
        return int(struct.unpack_from(layout, self.data, self.at + offset)[0]) if offset else 0

    def uint8(self, index: int) -> int:
        return self._scalar(index, "<B")

    def int64(self, index: int) -> int:
        return self._scalar(index, "<q")

    def table(self, index: int) -> _Table:
        at = self._required(index)
        return _Table(self.data, at + _uoffset(self.data, at))

    def struct_vector_item(self, index: int, position: int, layout: str) -> tuple[int, ...]:
        """Item `position` of a vector of structs laid out as `layout` (a `struct` format)."""
        at = self._required(index)
        start = at + _uoffset(self.data, at)
        length = _uoffset(self.data, start)
        if not 0 <= position < length:
            raise ValueError(f"Arrow IPC: vector {index} has {length} items, not {position + 1}")
        item = start + 4 + position * struct.calcsize(layout)
        return tuple(int(value) for value in struct.unpack_from(layout, self.data, item))

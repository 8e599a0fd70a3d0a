"""A check of a Parquet file's page headers, before Polars decodes it.

Polars sizes its buffers from what each page header declares. A header that declares a negative
value count (one flipped bit in a varint does it) makes Polars ask for 2**61 bytes, and a failed
allocation aborts the whole process: no exception to catch, no quarantine, and in the processor a
crash that SQS redelivers until the message lands in the dead-letter queue. PyArrow refuses the
same file ("Invalid page header (negative number of values)"), but PyArrow is not in the Lambda
bundle and Polars exposes no page-level metadata, so this module reads the footer and the page
headers itself: a Thrift compact-protocol decoder of about sixty lines, reading only what the
check needs.

What is checked: every size and count a page header declares is non-negative, and every page lies
inside its column chunk. A footer this reader cannot decode is left to Polars, whose own reader
raises a catchable error for it; a page header inside a decodable footer that cannot be decoded is
corrupt.

The layout is the Parquet format's (parquet.thrift in apache/parquet-format): FileMetaData field 4
is the row groups, RowGroup field 1 the column chunks, ColumnChunk field 3 the ColumnMetaData,
whose fields 3, 7, 9 and 11 are the column's path, its total compressed size (page headers
included), and its first data and dictionary page offsets. PageHeader fields 2 and 3 are the
page's uncompressed and compressed sizes; fields 5, 7 and 8 the data, dictionary and data-v2
headers, each with its value count in field 1 (v2 adds null count, row count and the two level
lengths in fields 2, 3, 5 and 6).
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from etl.core.errors import UnprocessableInput

_MAGIC = b"PAR1"
_TAIL = 8  # footer length (4 bytes, little-endian) + magic
_MAX_DEPTH = 32
_HEADER_WINDOW = 1 << 16
"""Bytes first read for one page header: a header is tens of bytes, more with statistics."""

# Thrift compact-protocol type ids.
_TRUE, _FALSE, _BYTE, _I16, _I32, _I64, _DOUBLE, _BINARY = 1, 2, 3, 4, 5, 6, 7, 8
_LIST, _SET, _MAP, _STRUCT, _UUID = 9, 10, 11, 12, 13

# Field ids in parquet.thrift.
_ROW_GROUPS, _COLUMNS, _META_DATA = 4, 1, 3
_PATH, _TOTAL_COMPRESSED, _DATA_OFFSET, _DICTIONARY_OFFSET = 3, 7, 9, 11
_UNCOMPRESSED_SIZE, _COMPRESSED_SIZE = 2, 3
_PAGE_HEADERS = {5: (1,), 7: (1,), 8: (1, 2, 3, 5, 6)}
"""PageHeader field → the non-negative counts in that sub-header."""


class _Truncated(Exception):
    """The bytes end, or say something impossible, before the structure does."""


class _Reader:
    """Decodes Thrift compact-protocol structs into `{field id: value}` dicts."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.pos = 0

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise _Truncated
        self.pos += 1
        return self.data[self.pos - 1]

    def take(self, size: int) -> bytes:
        if size < 0 or self.pos + size > len(self.data):
            raise _Truncated
        self.pos += size
        return self.data[self.pos - size : self.pos]

    def varint(self) -> int:
        result = shift = 0
        while True:
            value = self.byte()
            result |= (value & 0x7F) << shift
            if not value & 0x80:
                return result
            shift += 7
            if shift > 63:
                raise _Truncated

    def zigzag(self) -> int:
        value = self.varint()
        return (value >> 1) ^ -(value & 1)

    def size(self, value: int) -> int:
        # Every element takes at least one byte: a larger count is corrupt, not a long loop.
        if value > len(self.data) - self.pos:
            raise _Truncated
        return value

    def value(self, kind: int, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise _Truncated
        if kind in (_TRUE, _FALSE):  # inside a list, a boolean is a byte of its own
            return self.byte() == _TRUE
        if kind == _BYTE:
            return self.byte()
        if kind in (_I16, _I32, _I64):
            return self.zigzag()
        if kind == _DOUBLE:
            return struct.unpack("<d", self.take(8))[0]
        if kind == _UUID:
            return self.take(16)
        if kind == _BINARY:
            return self.take(self.varint())
        if kind in (_LIST, _SET):
            header = self.byte()
            count = header >> 4 if header >> 4 != 15 else self.varint()
            return [self.value(header & 0x0F, depth + 1) for _ in range(self.size(count))]
        if kind == _MAP:
            count = self.size(self.varint())
            types = self.byte() if count else 0
            return [
                (self.value(types >> 4, depth + 1), self.value(types & 0x0F, depth + 1))
                for _ in range(count)
            ]
        if kind == _STRUCT:
            return self.struct(depth + 1)
        raise _Truncated

    def struct(self, depth: int = 0) -> dict[int, Any]:
        fields: dict[int, Any] = {}
        field_id = 0
        while True:
            header = self.byte()
            kind = header & 0x0F
            if kind == 0:
                return fields
            delta = header >> 4
            field_id = field_id + delta if delta else self.zigzag()
            if kind in (_TRUE, _FALSE):  # a boolean field carries its value in its type id
                fields[field_id] = kind == _TRUE
            else:
                fields[field_id] = self.value(kind, depth)


def check_page_headers(path: Path) -> None:
    """Raise `UnprocessableInput` if a page header of the Parquet file at `path` declares a
    negative size or count, or a page outside its column chunk."""
    with path.open("rb") as handle:
        handle.seek(0, 2)
        file_size = handle.tell()
        if file_size < len(_MAGIC) + _TAIL:
            return  # Polars refuses it cleanly
        handle.seek(file_size - _TAIL)
        tail = handle.read(_TAIL)
        footer_size = int.from_bytes(tail[:4], "little")
        footer_start = file_size - _TAIL - footer_size
        if tail[4:] != _MAGIC or not len(_MAGIC) <= footer_start < file_size:
            return
        handle.seek(footer_start)
        try:
            metadata = _Reader(handle.read(footer_size)).struct()
        except _Truncated:
            return
        for row_group in _structs(metadata.get(_ROW_GROUPS)):
            for chunk in _structs(row_group.get(_COLUMNS)):
                column = chunk.get(_META_DATA)
                if isinstance(column, dict):
                    _check_chunk(handle, column, footer_start)


def _structs(value: Any) -> list[dict[int, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _check_chunk(handle: Any, column: dict[int, Any], footer_start: int) -> None:
    offsets = [
        offset
        for offset in (column.get(_DATA_OFFSET), column.get(_DICTIONARY_OFFSET))
        if isinstance(offset, int) and offset > 0
    ]
    size = column.get(_TOTAL_COMPRESSED)
    if not offsets or not isinstance(size, int):
        return  # nothing to walk: Polars decides
    path = column.get(_PATH)
    parts = path if isinstance(path, list) else []
    name = ".".join(part.decode("utf-8", "replace") for part in parts if isinstance(part, bytes))
    position, end = min(offsets), min(offsets) + size
    if size < 0 or end > footer_start:
        raise _corrupt(name, "its column chunk lies outside the file")
    while position < end:
        reader, header = _page_header(handle, position, end)
        if header is None:
            raise _corrupt(name, f"a page header at byte {position} cannot be decoded")
        declared = [header.get(_UNCOMPRESSED_SIZE), header.get(_COMPRESSED_SIZE)]
        for field, counts in _PAGE_HEADERS.items():
            sub_header = header.get(field)
            if isinstance(sub_header, dict):
                declared += [sub_header.get(count) for count in counts]
        if any(isinstance(value, int) and value < 0 for value in declared):
            raise _corrupt(name, f"the page at byte {position} declares a negative size or count")
        compressed = header.get(_COMPRESSED_SIZE)
        if not isinstance(compressed, int):
            raise _corrupt(name, f"the page header at byte {position} has no size")
        if position + reader.pos + compressed > end:
            raise _corrupt(name, f"the page at byte {position} overruns its column chunk")
        position += reader.pos + compressed


def _page_header(handle: Any, position: int, end: int) -> tuple[_Reader, dict[int, Any] | None]:
    """The page header at `position`, read in a window that grows until it holds the header or
    reaches the chunk's end (statistics of long strings make some headers large)."""
    window = _HEADER_WINDOW
    while True:
        handle.seek(position)
        reader = _Reader(handle.read(min(end - position, window)))
        try:
            return reader, reader.struct()
        except _Truncated:
            if position + window >= end:
                return reader, None
            window *= 4


def _corrupt(column: str, what: str) -> UnprocessableInput:
    return UnprocessableInput(
        "unreadable", f"not a readable Parquet file (corrupt): in column {column!r}, {what}"
    )

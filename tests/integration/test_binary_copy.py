"""The binary COPY encoder (`etl.binary_copy`): the bytes it lays out, checked against an
independent row-at-a-time encoder written with `struct`, and what a real PostgreSQL reads back
from them for every type the clean schemas use."""

from __future__ import annotations

import math
import struct
import uuid
from datetime import date, datetime
from typing import Any

import polars as pl
import psycopg
import pytest

from dataplatform.demo.embedded import EmbeddedPostgres
from etl import binary_copy

PG_EPOCH = datetime(2000, 1, 1)

EDGES = pl.DataFrame(
    {
        "small": [0, -1, 127, None, -128],
        "hour": [0, 23, -5, 7, None],
        "count": [0, -1, 2**31 - 1, -(2**31), None],
        "big": [None, -(2**63), 2**63 - 1, 0, 42],
        "amount": [0.0, -0.0, math.inf, None, 12.345678901234567],
        "ratio": [math.nan, -math.inf, 1e-310, 5e-324, -2.5],
        "at": [
            datetime(2024, 1, 31, 23, 59, 59, 999_999),
            datetime(1999, 12, 31, 23, 59, 59, 1),
            datetime(2000, 1, 1),
            datetime(1970, 1, 1, 0, 0, 0, 5),
            None,
        ],
        "day": [date(2024, 2, 29), date(1999, 12, 31), None, date(1900, 1, 1), date(2000, 1, 1)],
        "flag": ["Y", "", None, "naïve ✓ 東京", "a" * 300],
    },
    schema={
        "small": pl.Int8,
        "hour": pl.Int16,
        "count": pl.Int32,
        "big": pl.Int64,
        "amount": pl.Float64,
        "ratio": pl.Float64,
        "at": pl.Datetime("us"),
        "day": pl.Date,
        "flag": pl.String,
    },
)
PG_TYPES = {
    "small": "smallint",
    "hour": "smallint",
    "count": "integer",
    "big": "bigint",
    "amount": "double precision",
    "ratio": "double precision",
    "at": "timestamp",
    "day": "date",
    "flag": "text",
}


def reference_field(value: Any, dtype: pl.DataType) -> bytes:
    """One field as PostgreSQL's documentation of COPY BINARY lays it out, one value at a time."""
    if value is None:
        return struct.pack(">i", -1)
    if dtype in (pl.Int8, pl.Int16):
        payload = struct.pack(">h", value)
    elif dtype == pl.Int32:
        payload = struct.pack(">i", value)
    elif dtype == pl.Int64:
        payload = struct.pack(">q", value)
    elif dtype == pl.Float64:
        payload = struct.pack(">d", value)
    elif dtype == pl.Date:
        payload = struct.pack(">i", (value - PG_EPOCH.date()).days)
    elif isinstance(dtype, pl.Datetime):
        delta = value - PG_EPOCH
        micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
        payload = struct.pack(">q", micros)
    else:
        payload = value.encode()
    return struct.pack(">i", len(payload)) + payload


def reference_rows(frame: pl.DataFrame) -> list[bytes]:
    """Every row of `frame` as one binary COPY tuple, in order."""
    dtypes = list(frame.schema.values())
    return [
        struct.pack(">h", frame.width)
        + b"".join(reference_field(v, t) for v, t in zip(row, dtypes, strict=True))
        for row in frame.iter_rows()
    ]


def tuples(encoded: memoryview) -> list[bytes]:
    """`encoded` split into its tuples, by their field count and length words."""
    data, position, rows = bytes(encoded), 0, []
    while position < len(data):
        start = position
        (fields,) = struct.unpack_from(">h", data, position)
        position += 2
        for _ in range(fields):
            (length,) = struct.unpack_from(">i", data, position)
            position += 4 + max(length, 0)
        rows.append(data[start:position])
    assert position == len(data)
    return rows


def same_rows(encoded: memoryview, frame: pl.DataFrame) -> bool:
    """Whether `encoded` holds exactly the rows of `frame` (the encoder groups rows by shape:
    their order is not kept)."""
    return sorted(tuples(encoded)) == sorted(reference_rows(frame))


def test_every_type_is_laid_out_as_postgresql_documents_it() -> None:
    assert same_rows(binary_copy.encode_rows(EDGES), EDGES)


def test_a_batch_without_nulls_is_laid_out_the_same() -> None:
    # Columns without nulls in a batch skip the null test: the bytes must not change.
    complete = EDGES.drop_nulls()
    assert complete.height == 1
    assert bytes(binary_copy.encode_rows(complete)) == b"".join(reference_rows(complete))
    first_row = EDGES.head(1).drop("big")
    assert bytes(binary_copy.encode_rows(first_row)) == b"".join(reference_rows(first_row))


def test_adjacent_fields_keep_their_own_bytes() -> None:
    # Fields are packed with no padding: extreme values show any bit of one field leaking
    # into its neighbour. One shape, so the rows keep their order.
    narrow = pl.DataFrame(
        {
            "a": [-1, 0, -(2**15), 2**15 - 1],
            "b": [-(2**31), 2**31 - 1, -1, 0],
            "c": [date(1900, 1, 1), date(2100, 12, 31), date(2000, 1, 1), date(1999, 12, 31)],
            "d": [-1, 1, -(2**7), 2**7 - 1],
            "e": [-(2**63), -1, 2**63 - 1, 0],
            "f": [-1, 0, 2**31 - 1, -(2**31)],
            "g": [-1, 0, -(2**15), 2**15 - 1],
        },
        schema={
            "a": pl.Int16,
            "b": pl.Int32,
            "c": pl.Date,
            "d": pl.Int8,
            "e": pl.Int64,
            "f": pl.Int32,
            "g": pl.Int16,
        },
    )
    assert bytes(binary_copy.encode_rows(narrow)) == b"".join(reference_rows(narrow))


def test_text_spanning_many_buffers_and_chunks_is_one_contiguous_run_of_rows() -> None:
    # Long values in several chunks: each shape's rows, gathered, hold their text in several of
    # Polars' data buffers, which the encoder must lay out as one run. Few rows keep the
    # row-at-a-time reference fast.
    long = pl.concat(EDGES.with_columns(pl.col("flag") + str(chunk) * 2**20) for chunk in range(8))
    assert long.n_chunks() == 8
    gathered = long.get_column("flag").gather(list(range(0, long.height, 5)))
    text = gathered.to_arrow(compat_level=pl.CompatLevel.newest())
    assert len(text.buffers()) > 3  # validity, views, then more than one data buffer
    assert same_rows(binary_copy.encode_rows(long), long)
    # One shape: the encoder takes the frame as it is, in its chunks.
    complete = long.drop_nulls()
    assert (complete.height, complete.n_chunks()) == (8, 8)
    assert bytes(binary_copy.encode_rows(complete)) == b"".join(reference_rows(complete))


def test_rows_are_grouped_by_shape_most_common_first_in_order_within_a_shape() -> None:
    frame = pl.DataFrame(
        {"id": [1, 2, 3, 4, 5, 6], "fare": [1.0, None, 3.0, None, 5.0, 6.0], "flag": list("YNYNYN")}
    )
    order = [1, 3, 5, 6, 2, 4]
    expected = frame.select(pl.all().gather([i - 1 for i in order]))
    assert bytes(binary_copy.encode_rows(frame)) == b"".join(reference_rows(expected))


def test_a_type_without_an_encoding_is_refused_by_name() -> None:
    with pytest.raises(TypeError, match="'flagged': no binary COPY encoding for Boolean"):
        binary_copy.encode_rows(pl.DataFrame({"flagged": [True]}))


def test_an_empty_batch_is_refused() -> None:
    with pytest.raises(ValueError, match="at least one row"):
        binary_copy.encode_rows(EDGES.clear())


def test_postgresql_reads_back_every_value(pg: EmbeddedPostgres) -> None:
    url = pg.create_database(f"b{uuid.uuid4().hex[:12]}")
    columns = ", ".join(f"{name} {PG_TYPES[name]}" for name in EDGES.columns)
    # Two batches, as the loader sends them: header, rows, rows, trailer. The position, sent
    # as a column, gives the rows back in order.
    numbered = EDGES.with_row_index("position").cast({"position": pl.Int32})
    halves = [numbered.head(2), numbered.tail(3)]
    with psycopg.connect(url) as conn:
        conn.execute(f"CREATE TABLE edges (position integer, {columns})")
        names = ", ".join(EDGES.columns)
        with (
            conn.cursor() as cursor,
            cursor.copy(f"COPY edges (position, {names}) FROM STDIN (FORMAT binary)") as copy,
        ):
            copy.write(binary_copy.HEADER)
            for half in halves:
                copy.write(binary_copy.encode_rows(half))
            copy.write(binary_copy.TRAILER)
        stored = conn.execute(f"SELECT {names} FROM edges ORDER BY position").fetchall()
    for expected, got in zip(EDGES.iter_rows(), stored, strict=True):
        for name, want, have in zip(EDGES.columns, expected, got, strict=True):
            if isinstance(want, float) and math.isnan(want):
                assert isinstance(have, float), name
                assert math.isnan(have), name
            elif isinstance(want, float):
                assert have == want, name
                assert math.copysign(1, have) == math.copysign(1, want), name
            else:
                assert have == want, name

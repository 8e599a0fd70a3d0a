"""Property test over mutated real files (issue 14): whatever is done to the July 2020 CSV sample
or a 2024-style Parquet file (byte flips, truncation, columns retyped, added, renamed,
duplicated or dropped, other line endings and encodings), processing it either succeeds with
every input row clean or rejected exactly once (exit 0), or quarantines the file with a reason
(exit 3). It never raises anything else, and never needs the `internal_error` catch-all.

The default run draws `DEFAULT_EXAMPLES` files; `uv run pytest -m slow` draws `SLOW_EXAMPLES`.
"""

from __future__ import annotations

import gzip
import io
import re
import tempfile
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dataplatform.demo.samples import YELLOW_2020_07
from etl.core.errors import UnprocessableInput
from etl.core.pipeline import ProcessResult, process_file
from tests.tlc import TLC_TYPES, yellow_trip

DEFAULT_EXAMPLES = 100
"""Per format: 200 files in the default run."""
SLOW_EXAMPLES = 1500

CSV_LINES = YELLOW_2020_07.read_text().splitlines()[:25]
"""The header and 24 real rows (two of them rejected as they are)."""


def _parquet_frame() -> pl.DataFrame:
    start = datetime(2024, 1, 10, 8)
    rows = [
        yellow_trip(
            tpep_pickup_datetime=start + timedelta(minutes=7 * i),
            tpep_dropoff_datetime=start + timedelta(minutes=7 * i + 5 + i % 4),
            PULocationID=1 + i * 13 % 265,
            fare_amount=5.0 + i,
            VendorID=(1, 2, 9)[i % 3] if i % 5 else 2,
        )
        for i in range(20)
    ]
    rows.append(rows[3])
    return pl.from_dicts(rows, schema={name: TLC_TYPES[name] for name in rows[0]})


PARQUET_FRAME = _parquet_frame()

QUARANTINE_CODES = {
    "empty_file",
    "unreadable",
    "bad_header",
    "missing_column",
    "unsupported_type",
}
# Names a mutation may give a column: the rejects' own, spec columns and aliases (which may now
# be claimed twice or by the wrong column), and anything else.
column_names = st.one_of(
    st.sampled_from(
        [
            "source_row",
            "raw_line",
            "reject_reason",
            "raw:VendorID",
            "VendorID",
            "vendor_name",
            "fare_amount",
            "Fare_Amt",
            "PULocationID",
            "pickup_longitude",
            "tpep_pickup_datetime",
            "",
        ]
    ),
    st.text(
        # No NUL: PyArrow cannot name a column with one (Polars' conversion panics).
        st.characters(codec="utf-8", exclude_characters=',"\r\n\x00'),
        min_size=1,
        max_size=10,
    ),
)
cell_text = st.one_of(
    st.sampled_from(["", "abc", "1", "-5", "1e400", "nan", "2020-07-01 00:00:00", "Y", "é"]),
    st.text(st.characters(codec="utf-8", exclude_characters=',"\r\n'), max_size=8),
)


def _flip_and_truncate(draw: st.DrawFn, data: bytes) -> bytes:
    if data and draw(st.booleans()):
        buffer = bytearray(data)
        for _ in range(draw(st.integers(1, 4))):
            position = draw(st.integers(0, len(buffer) - 1))
            buffer[position] ^= draw(st.integers(1, 255))
        data = bytes(buffer)
    if data and draw(st.integers(0, 3)) == 0:
        data = data[: draw(st.integers(0, len(data) - 1))]
    return data


@st.composite
def csv_files(draw: st.DrawFn) -> bytes:
    """The sample, mutated: columns, then line endings and encoding, then bytes."""
    rows = [line.split(",") for line in CSV_LINES]
    for _ in range(draw(st.integers(0, 3))):
        operation = draw(st.sampled_from(["retype", "extra", "rename", "duplicate", "drop"]))
        index = draw(st.integers(0, len(rows[0]) - 1))
        # A few drawn values, repeated down the column: as varied, and cheaper to draw.
        values = draw(st.lists(cell_text, min_size=1, max_size=3))
        if operation == "retype":
            for position, row in enumerate(rows[1:]):
                row[index] = values[position % len(values)]
        elif operation == "extra":
            rows[0].append(draw(column_names))
            for position, row in enumerate(rows[1:]):
                row.append(values[position % len(values)])
        elif operation == "rename":
            rows[0][index] = draw(column_names)
        elif operation == "duplicate":
            name = draw(st.one_of(st.just(rows[0][index]), column_names))
            for position, row in enumerate(rows):
                row.append(name if position == 0 else row[index])
        elif len(rows[0]) > 1:
            for row in rows:
                del row[index]
    lines = [",".join(row) for row in rows]
    ending = draw(st.sampled_from(["\n", "\r\n", "\r", "mixed"]))
    if ending == "mixed":
        text = "".join(line + draw(st.sampled_from(["\n", "\r\n", "\r"])) for line in lines)
    else:
        text = ending.join(lines) + draw(st.sampled_from(["", ending]))
    encoding = draw(st.sampled_from(["utf-8", "utf-8-sig", "utf-16", "latin-1", "gzip"]))
    if encoding == "gzip":
        data = gzip.compress(text.encode(), mtime=0)
    else:
        data = text.encode(encoding, errors="replace")
    return _flip_and_truncate(draw, data)


RETYPES: dict[str, Callable[[pl.Expr], pl.Expr]] = {
    "text": lambda column: column.cast(pl.String),
    "categorical": lambda column: column.cast(pl.String).cast(pl.Categorical),
    "binary": lambda column: column.cast(pl.String).cast(pl.Binary),
    "float32": lambda column: column.cast(pl.String).cast(pl.Float32, strict=False),
    "int8": lambda column: column.cast(pl.String).cast(pl.Int8, strict=False),
    "uint64": lambda column: column.cast(pl.String).cast(pl.UInt64, strict=False),
    "decimal": lambda column: column.cast(pl.String).cast(pl.Decimal(12, 2), strict=False),
    "date": lambda column: column.cast(pl.String).str.to_date(strict=False, exact=False),
    "boolean": lambda column: column.is_null(),
    "nulls": lambda column: pl.lit(None, dtype=pl.Null),
    "struct": lambda column: pl.struct(column),
    "list": lambda column: pl.concat_list(column),
}


@st.composite
def parquet_files(draw: st.DrawFn) -> bytes:
    """A 2024-style file, mutated: columns (in Polars, or with a repeated name through
    PyArrow, which Polars cannot hold), then bytes."""
    frame = PARQUET_FRAME
    repeated = ""
    for _ in range(draw(st.integers(0, 3))):
        operation = draw(st.sampled_from(["retype", "extra", "rename", "duplicate", "drop"]))
        name = draw(st.sampled_from(frame.columns))
        if operation in ("retype", "extra") and frame.schema[name].is_nested():
            continue  # the retypes start from a flat column
        if operation == "retype":
            retype = RETYPES[draw(st.sampled_from(list(RETYPES)))]
            frame = frame.with_columns(retype(pl.col(name)).alias(name))
        elif operation in ("extra", "rename", "duplicate"):
            new = draw(column_names)
            if new in frame.columns:
                repeated = repeated or name
                continue
            if operation == "extra":
                retype = RETYPES[draw(st.sampled_from(list(RETYPES)))]
                frame = frame.with_columns(retype(pl.col(name)).alias(new))
            elif operation == "rename":
                frame = frame.rename({name: new})
            else:
                frame = frame.with_columns(pl.col(name).alias(new))
        elif frame.width > 1:
            frame = frame.drop(name)
    buffer = io.BytesIO()
    if repeated in frame.columns and draw(st.booleans()):
        table = frame.to_arrow()
        table = table.append_column(repeated, table.column(repeated))
        pq.write_table(table, buffer)
    else:
        frame.write_parquet(buffer)
    return _flip_and_truncate(draw, buffer.getvalue())


# Rust's whitespace, which Polars strips to find blank lines (Python's also counts \x1c-\x1f).
_BLANK = "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
_BLANK += "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"


def csv_data_lines(data: bytes) -> int:
    """Data lines of a CSV that was read: non-blank lines after the first, with universal
    newlines, counted without the pipeline's code."""
    if data.startswith(b"\x1f\x8b"):
        data = gzip.decompress(data)
    utf16 = data.startswith((b"\xff\xfe", b"\xfe\xff"))
    text = data.decode("utf-16" if utf16 else "utf-8", errors="replace")
    lines = [line for line in re.split(r"\r\n|\r|\n", text) if line.strip(_BLANK)]
    return max(len(lines) - 1, 0)


def check(name: str, data: bytes, expected_rows: Callable[[bytes], int]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / name
        path.write_bytes(data)
        try:
            result: ProcessResult | None = process_file(path)
        except UnprocessableInput as error:  # exit 3
            result, quarantined = None, error
        if result is None:
            assert quarantined.code in QUARANTINE_CODES, quarantined.reason
            assert quarantined.reason
            assert "\n" not in quarantined.reason
            return
        report = result.report  # exit 0
        assert report["rows_in"] == expected_rows(data)
        assert report["rows_clean"] + report["rows_rejected"] == report["rows_in"]
        assert result.clean.height == report["rows_clean"]
        rejected = result.rejects.get_column("source_row").to_list()
        assert len(rejected) == len(set(rejected)) == report["rows_rejected"]
        assert all(0 <= row < report["rows_in"] for row in rejected)


PROPERTY = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}


def _parquet_rows(data: bytes) -> int:
    """The row count in the file's footer (PyArrow's reading; Polars' where PyArrow refuses a
    footer Polars accepted)."""
    try:
        return int(pq.ParquetFile(pa.BufferReader(data)).metadata.num_rows)
    except (OSError, pa.ArrowException):
        return int(pl.scan_parquet(io.BytesIO(data)).select(pl.len()).collect().item())


@settings(max_examples=DEFAULT_EXAMPLES, **PROPERTY)  # type: ignore[arg-type]
@given(data=csv_files())
def test_mutated_csv_is_processed_or_quarantined(data: bytes) -> None:
    check("yellow_tripdata_2020-07.csv", data, csv_data_lines)


@settings(max_examples=DEFAULT_EXAMPLES, **PROPERTY)  # type: ignore[arg-type]
@given(data=parquet_files())
def test_mutated_parquet_is_processed_or_quarantined(data: bytes) -> None:
    check("yellow_tripdata_2024-01.parquet", data, _parquet_rows)


@pytest.mark.slow
@settings(max_examples=SLOW_EXAMPLES, **PROPERTY)  # type: ignore[arg-type]
@given(data=st.one_of(csv_files(), parquet_files()))
def test_many_mutated_files_are_processed_or_quarantined(data: bytes) -> None:
    is_parquet = data.startswith(b"PAR1")
    name = "yellow_tripdata_2024-01.parquet" if is_parquet else "yellow_tripdata_2020-07.csv"
    check(name, data, _parquet_rows if is_parquet else csv_data_lines)

"""Reading inputs: the I/O edge of the pipeline.

Turns a file (Parquet, CSV or gzip-compressed CSV, told apart by content, not by name) into a
DataFrame of the columns as read, each prefixed with `raw:`, plus `source_row` and `raw_line`
(for CSV, the text of lines that did not split into the header's fields; otherwise null).
Anything that makes the whole file unreadable raises `UnprocessableInput`.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import polars as pl

from etl.core.errors import UnprocessableInput, first_line
from etl.core.parquet_pages import check_page_headers
from etl.core.rules import MALFORMED_LINE, ROW_INDEX, raw

PARQUET_MAGIC = b"PAR1"
GZIP_MAGIC = b"\x1f\x8b"
UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
"""Excel's "Unicode text" and some Windows tools write UTF-16 with a byte order mark."""


class InputFormat(StrEnum):
    """The container of an input file."""

    PARQUET = "parquet"
    CSV = "csv"
    CSV_GZ = "csv.gz"


@dataclass(frozen=True)
class RawInput:
    """An input read whole: the rows as read plus what reading learned."""

    frame: pl.DataFrame
    """`raw:<column>` per input column (CSV: strings), `source_row` and `raw_line`."""
    format: InputFormat
    columns: tuple[str, ...]
    """The input's column names, in file order."""
    blank_lines: int = 0
    """CSV only: empty lines skipped (they hold no data)."""

    @property
    def schema(self) -> pl.Schema:
        """The input's own schema: column names as in the file, types as read."""
        return pl.Schema({name: self.frame.schema[raw(name)] for name in self.columns})


def sniff_format(head: bytes) -> InputFormat:
    """The input's format from its first bytes (S3 keys and file names may lie or lack suffixes)."""
    if head.startswith(PARQUET_MAGIC):
        return InputFormat.PARQUET
    if head.startswith(GZIP_MAGIC):
        return InputFormat.CSV_GZ
    return InputFormat.CSV


def read_input(path: Path) -> RawInput:
    """Read a whole input file, or raise `UnprocessableInput` saying why it cannot be read."""
    with path.open("rb") as handle:
        head = handle.read(4)
    if not head:
        raise UnprocessableInput("empty_file", "empty file: 0 bytes")
    input_format = sniff_format(head)
    if input_format is InputFormat.PARQUET:
        return _read_parquet(path)
    if input_format is InputFormat.CSV_GZ:
        try:
            text = gzip.decompress(path.read_bytes())
        except (OSError, EOFError, zlib.error) as error:
            raise UnprocessableInput(
                "unreadable", f"not a readable gzip file (truncated or corrupt): {error}"
            ) from error
        return _read_csv(_as_utf8(text), InputFormat.CSV_GZ)
    if head.startswith(UTF16_BOMS):
        return _read_csv(_as_utf8(path.read_bytes()), InputFormat.CSV)
    return _read_csv(path, InputFormat.CSV)


def _as_utf8(text: bytes) -> io.BytesIO:
    """CSV bytes as UTF-8 for Polars: UTF-16 with a byte order mark is transcoded (rare, so
    in Python), anything else is passed through for the reader to judge."""
    if text.startswith(UTF16_BOMS):
        try:
            text = text.decode("utf-16").encode()
        except UnicodeDecodeError as error:
            raise UnprocessableInput(
                "unreadable", f"not readable UTF-16 text: {first_line(error)}"
            ) from error
    return io.BytesIO(text)


def _read_parquet(path: Path) -> RawInput:
    check_page_headers(path)  # a header Polars would abort on, not raise
    try:
        frame = pl.read_parquet(path)
    # A corrupt page can make Polars' decoder panic (a BaseException) rather than raise.
    except (pl.exceptions.PolarsError, pl.exceptions.PanicException, OSError) as error:
        raise UnprocessableInput(
            "unreadable",
            f"not a readable Parquet file (truncated or corrupt): {first_line(error)}",
        ) from error
    columns = tuple(frame.columns)
    frame = (
        frame.rename({name: raw(name) for name in columns})
        .with_row_index(ROW_INDEX)
        .with_columns(pl.lit(None, dtype=pl.String).alias(MALFORMED_LINE))
    )
    return RawInput(frame=frame, format=InputFormat.PARQUET, columns=columns)


def _read_csv(source: Path | io.BytesIO, input_format: InputFormat) -> RawInput:
    # Polars' CSV reader either fails the whole file on a ragged line or, with
    # truncate_ragged_lines, silently pads and truncates it. We must keep every line and say which
    # ones were malformed, so we read lines with Polars and split them ourselves: TLC CSVs are
    # unquoted, and the rare quoted line goes through Python's csv module.
    try:
        lines = pl.read_lines(source).get_column("line")
    except pl.exceptions.PolarsError as error:
        raise UnprocessableInput(
            "unreadable",
            f"not a text table (UTF-8, or UTF-16 with a BOM): {first_line(error)}",
        ) from error
    # Lines end at LF or CRLF (the reader drops the CR) or, as in old Mac files and universal
    # newline mode, at a lone CR: a CR still in a line splits it. Only files holding one pay.
    if lines.str.contains("\r", literal=True).any():
        lines = lines.str.strip_suffix("\r").str.split("\r").explode()
    non_blank = lines.str.strip_chars().str.len_bytes() > 0
    if not non_blank.any():
        raise UnprocessableInput("empty_file", "no header line: the file holds only blank lines")
    header_at = int(non_blank.arg_true()[0])
    header = _split_header(lines[header_at])
    data = (
        lines.slice(header_at + 1)
        .to_frame("line")
        .filter(pl.col("line").str.strip_chars().str.len_bytes() > 0)
        .with_row_index(ROW_INDEX)
    )
    blank_lines = len(lines) - header_at - 1 - data.height
    fields = pl.col("line").str.split(",")
    if data.get_column("line").str.contains('"', literal=True).any():
        fields = (
            pl.when(pl.col("line").str.contains('"', literal=True))
            .then(pl.col("line").map_elements(_split_quoted, return_dtype=pl.List(pl.String)))
            .otherwise(fields)
        )
    raw_names = [raw(name) for name in header]
    frame = (
        data.lazy()
        .with_columns(fields.alias("__fields"))
        # A line Python's csv module cannot split either has no fields: malformed.
        .with_columns(well_formed=(pl.col("__fields").list.len() == len(header)).fill_null(False))
        .select(
            ROW_INDEX,
            pl.when("well_formed")
            .then(pl.col("__fields"))
            .list.to_struct(fields=raw_names)
            .struct.unnest(),
            pl.when(~pl.col("well_formed")).then(pl.col("line")).alias(MALFORMED_LINE),
        )
        .with_columns(pl.col(raw_names).replace("", None))
        .collect()
    )
    return RawInput(frame=frame, format=input_format, columns=header, blank_lines=blank_lines)


def _split_header(line: str) -> tuple[str, ...]:
    fields = _split_quoted(line.lstrip("\ufeff"))
    if fields is None:
        raise UnprocessableInput("bad_header", "the header line is not valid CSV")
    names = tuple(name.strip().strip('"').strip() for name in fields)
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise UnprocessableInput(
            "bad_header",
            f"the header repeats column {duplicates[0]!r}: column names must be unique",
        )
    return names


def _split_quoted(line: str) -> list[str] | None:
    """The fields of one CSV line, or None where the csv module refuses it."""
    try:
        return next(csv.reader([line]))
    except (csv.Error, StopIteration):
        return None

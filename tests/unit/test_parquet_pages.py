"""The page-header check in front of Polars' Parquet reader: it refuses what would abort the
process, and passes every valid file whatever wrote it."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from polars._typing import ParquetCompression

from etl.core.errors import UnprocessableInput
from etl.core.parquet_pages import check_page_headers
from etl.core.pipeline import process_file
from tests.tlc import with_negative_value_count, write_parquet, yellow_trip

_I32 = 0x05


def _table(rows: int) -> pa.Table:
    return pa.table(
        {
            "fare_amount": pa.array([float(i) if i % 7 else None for i in range(rows)]),
            "flag": pa.array([("Y" if i % 2 else "N") for i in range(rows)]),
            "long_text": pa.array([("x" * 200_000 if i == 3 else "y") for i in range(rows)]),
            "tags": pa.array([[i, i + 1] if i % 3 else [] for i in range(rows)]),
            "point": pa.array([{"x": i, "y": None} for i in range(rows)]),
        }
    )


WRITERS: dict[str, dict[str, Any]] = {
    "pyarrow defaults": {},
    "data page v2": {"data_page_version": "2.0"},
    "no dictionary, uncompressed": {"use_dictionary": False, "compression": "none"},
    "many small pages and row groups": {"data_page_size": 256, "row_group_size": 300},
    "gzip, page index, page checksums": {
        "compression": "gzip",
        "write_page_index": True,
        "write_page_checksum": True,
    },
}


@pytest.mark.parametrize("options", WRITERS.values(), ids=WRITERS.keys())
def test_a_valid_file_passes_whatever_its_writer_options(
    tmp_path: Path, options: dict[str, Any]
) -> None:
    path = tmp_path / "valid.parquet"
    pq.write_table(_table(1_000), path, **options)
    check_page_headers(path)
    assert pl.read_parquet(path).height == 1_000


def test_a_header_longer_than_the_first_read_is_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Headers with statistics can outgrow the first read; a window of 8 bytes makes every one do.
    monkeypatch.setattr("etl.core.parquet_pages._HEADER_WINDOW", 8)
    path = tmp_path / "valid.parquet"
    pq.write_table(_table(1_000), path, data_page_size=256)
    check_page_headers(path)


@pytest.mark.parametrize("compression", ["zstd", "snappy", "lz4", "uncompressed"])
def test_a_file_polars_wrote_passes(tmp_path: Path, compression: ParquetCompression) -> None:
    path = tmp_path / "valid.parquet"
    pl.from_arrow(_table(1_000)).write_parquet(  # type: ignore[union-attr]
        path, compression=compression, row_group_size=256, statistics="full"
    )
    check_page_headers(path)


def test_a_negative_value_count_is_refused_before_polars_decodes_it(tmp_path: Path) -> None:
    # Without the check Polars asks for 2**61 bytes here and the allocation failure aborts the
    # process: this test would take pytest down with it.
    path = tmp_path / "yellow_tripdata_2024-01.parquet"
    path.write_bytes(with_negative_value_count(pa.table({"fare": [1.5, None, 2.5]})))
    with pytest.raises(UnprocessableInput) as raised:
        process_file(path)
    assert raised.value.code == "unreadable"
    assert raised.value.reason == (
        "not a readable Parquet file (corrupt): in column 'fare', the page at byte 4 declares a"
        " negative size or count"
    )


def test_a_page_running_past_its_column_chunk_is_refused(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    pq.write_table(pa.table({"fare": [1.5, 2.5]}), buffer, use_dictionary=False)
    data = bytearray(buffer.getvalue())
    # The compressed size is the page header's third field; make its one-byte varint 63.
    column = pq.ParquetFile(io.BytesIO(bytes(data))).metadata.row_group(0).column(0)
    size_at = column.data_page_offset + 5  # after type and uncompressed size, 2 bytes each
    assert data[size_at - 1] == _I32 | 0x10
    assert data[size_at] < 0x7E
    data[size_at] = 0x7E
    path = tmp_path / "file.parquet"
    path.write_bytes(bytes(data))
    with pytest.raises(UnprocessableInput, match="overruns its column chunk"):
        check_page_headers(path)


def test_a_footer_it_cannot_decode_is_left_to_polars(tmp_path: Path) -> None:
    path = write_parquet(tmp_path, "yellow_tripdata_2024-01.parquet", [yellow_trip()])
    data = bytearray(path.read_bytes())
    footer_size = int.from_bytes(data[-8:-4], "little")
    data[-8 - footer_size : -8] = b"\xff" * footer_size
    path.write_bytes(bytes(data))
    check_page_headers(path)  # no verdict of its own
    with pytest.raises(UnprocessableInput, match="not a readable Parquet file"):
        process_file(path)

"""Builders of TLC-shaped test inputs: one valid trip, then whatever the test changes."""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

YELLOW_2024_SCHEMA: dict[str, pl.DataType] = {
    "VendorID": pl.Int32(),
    "tpep_pickup_datetime": pl.Datetime("us"),
    "tpep_dropoff_datetime": pl.Datetime("us"),
    "passenger_count": pl.Int64(),
    "trip_distance": pl.Float64(),
    "RatecodeID": pl.Int64(),
    "store_and_fwd_flag": pl.String(),
    "PULocationID": pl.Int32(),
    "DOLocationID": pl.Int32(),
    "payment_type": pl.Int64(),
    "fare_amount": pl.Float64(),
    "extra": pl.Float64(),
    "mta_tax": pl.Float64(),
    "tip_amount": pl.Float64(),
    "tolls_amount": pl.Float64(),
    "improvement_surcharge": pl.Float64(),
    "total_amount": pl.Float64(),
    "congestion_surcharge": pl.Float64(),
    "Airport_fee": pl.Float64(),
}


TLC_TYPES: dict[str, pl.DataType] = {
    **YELLOW_2024_SCHEMA,
    "lpep_pickup_datetime": pl.Datetime("us"),
    "lpep_dropoff_datetime": pl.Datetime("us"),
    "ehail_fee": pl.Float64(),
    "trip_type": pl.Int64(),
    "cbd_congestion_fee": pl.Float64(),
    "airport_fee": pl.Float64(),
}
"""Input types of TLC columns as the 2024 Parquet files store them."""


def yellow_trip(**changes: Any) -> dict[str, Any]:
    """A valid January 2024 yellow trip (2.4 miles in 12 minutes, paid by card) with `changes`."""
    trip: dict[str, Any] = {
        "VendorID": 2,
        "tpep_pickup_datetime": datetime(2024, 1, 15, 8, 0, 0),
        "tpep_dropoff_datetime": datetime(2024, 1, 15, 8, 12, 0),
        "passenger_count": 1,
        "trip_distance": 2.4,
        "RatecodeID": 1,
        "store_and_fwd_flag": "N",
        "PULocationID": 161,
        "DOLocationID": 237,
        "payment_type": 1,
        "fare_amount": 14.2,
        "extra": 2.5,
        "mta_tax": 0.5,
        "tip_amount": 3.0,
        "tolls_amount": 0.0,
        "improvement_surcharge": 1.0,
        "total_amount": 23.7,
        "congestion_surcharge": 2.5,
        "Airport_fee": 0.0,
    }
    trip.update(changes)
    return trip


def green_trip(**changes: Any) -> dict[str, Any]:
    """A valid January 2024 green trip with `changes`."""
    trip: dict[str, Any] = {
        "VendorID": 2,
        "lpep_pickup_datetime": datetime(2024, 1, 10, 17, 30, 0),
        "lpep_dropoff_datetime": datetime(2024, 1, 10, 17, 50, 0),
        "store_and_fwd_flag": "N",
        "RatecodeID": 1,
        "PULocationID": 74,
        "DOLocationID": 42,
        "passenger_count": 1,
        "trip_distance": 3.1,
        "fare_amount": 17.0,
        "extra": 1.0,
        "mta_tax": 0.5,
        "tip_amount": 0.0,
        "tolls_amount": 0.0,
        "ehail_fee": None,
        "improvement_surcharge": 1.0,
        "total_amount": 19.5,
        "payment_type": 2,
        "trip_type": 1,
        "congestion_surcharge": 0.0,
    }
    trip.update(changes)
    return trip


def write_parquet(
    directory: Path,
    name: str,
    rows: list[dict[str, Any]],
    schema: dict[str, pl.DataType] | None = None,
) -> Path:
    """Write `rows` as a Parquet file called `name`. Column types come from `schema`, then from
    the 2024 TLC files (`TLC_TYPES`), else Float64."""
    columns = list(rows[0]) if rows else list(YELLOW_2024_SCHEMA)
    types = {**TLC_TYPES, **(schema or {})}
    frame = pl.from_dicts(rows, schema={c: types.get(c, pl.Float64()) for c in columns})
    path = directory / name
    frame.write_parquet(path)
    return path


def write_csv(directory: Path, name: str, lines: list[str]) -> Path:
    """Write text lines as a CSV file called `name`."""
    path = directory / name
    path.write_text("\n".join(lines) + "\n")
    return path


def with_negative_value_count(table: pa.Table) -> bytes:
    """The table written as Parquet, its first data page's value count made negative: one flipped
    bit in a varint, as a corrupt download or disk can flip it."""
    buffer = io.BytesIO()
    pq.write_table(table, buffer, use_dictionary=False, compression="none")
    data = bytearray(buffer.getvalue())
    column = pq.ParquetFile(io.BytesIO(bytes(data))).metadata.row_group(0).column(0)
    # In the page header, after the three leading i32 fields, the data-page header opens a struct
    # (field 5, byte 0x2C) whose first field is the value count (an i32, byte 0x15): a zigzag
    # varint, so its low bit is the sign.
    count = 2 * column.num_values
    assert count < 0x80, "a one-byte varint keeps the edit in place"
    pattern = bytes([0x2C, 0x15, count])
    at = data.index(pattern, column.data_page_offset) + 2
    data[at] ^= 1
    return bytes(data)

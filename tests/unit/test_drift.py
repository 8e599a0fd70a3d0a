"""Schema drift across TLC vintages: every variant yields the same clean schema and values."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from etl.core.pipeline import process_file
from etl.core.specs import GREEN, YELLOW
from etl.core.transform import plan_schema
from tests.tlc import YELLOW_2024_SCHEMA, green_trip, write_csv, write_parquet, yellow_trip
from tests.unit.conftest import ProcessRows, reasons_of

VARIANTS: list[tuple[str, dict[str, Any], dict[str, pl.DataType]]] = [
    ("2024 as published", {}, {}),
    (
        "2022-23 doubles for passenger_count and RatecodeID",
        {"passenger_count": 1.0, "RatecodeID": 1.0},
        {"passenger_count": pl.Float64(), "RatecodeID": pl.Float64()},
    ),
    (
        "int64 vendor and location IDs",
        {},
        {"VendorID": pl.Int64(), "PULocationID": pl.Int64(), "DOLocationID": pl.Int64()},
    ),
    (
        "nanosecond timestamps",
        {},
        {"tpep_pickup_datetime": pl.Datetime("ns"), "tpep_dropoff_datetime": pl.Datetime("ns")},
    ),
]


@pytest.mark.parametrize(
    ("changes", "types"), [(v[1], v[2]) for v in VARIANTS], ids=[v[0] for v in VARIANTS]
)
def test_vintage_gives_the_clean_schema_and_values(
    process_rows: ProcessRows, changes: dict[str, Any], types: dict[str, pl.DataType]
) -> None:
    # Per-file casts: every vintage's clean output equals the 2024 file's, schema and values.
    expected = process_rows([yellow_trip()], name="yellow_tripdata_2024-01.parquet").clean
    result = process_rows([yellow_trip(**changes)], **types)
    assert result.clean.schema == YELLOW.clean_schema
    assert result.clean.equals(expected)


def test_airport_fee_matched_case_insensitively(process_rows: ProcessRows) -> None:
    # 2024 files say airport_fee, earlier ones Airport_fee: both feed airport_fee.
    trip = yellow_trip(Airport_fee=None)
    del trip["Airport_fee"]
    trip["airport_fee"] = 1.75
    result = process_rows([trip])
    assert result.clean.get_column("airport_fee").to_list() == [1.75]
    assert result.report["schema"]["renamed"] == {
        "VendorID": "vendor_id",
        "tpep_pickup_datetime": "pickup_datetime",
        "tpep_dropoff_datetime": "dropoff_datetime",
        "RatecodeID": "rate_code_id",
        "PULocationID": "pu_location_id",
        "DOLocationID": "do_location_id",
    }


def test_absent_optional_column_becomes_null(process_rows: ProcessRows) -> None:
    # cbd_congestion_fee exists from 2025 only: absent before, null in clean, reported missing.
    result = process_rows([yellow_trip()])
    assert result.clean.get_column("cbd_congestion_fee").to_list() == [None]
    assert "cbd_congestion_fee" in result.report["schema"]["missing_optional"]


def test_present_optional_column_is_kept(process_rows: ProcessRows) -> None:
    # A 2025 file carries cbd_congestion_fee: its value reaches clean.
    result = process_rows(
        [yellow_trip(cbd_congestion_fee=0.75)], name="yellow_tripdata_2024-01.parquet"
    )
    assert result.clean.get_column("cbd_congestion_fee").to_list() == [0.75]


def test_unexpected_column_is_reported_not_fatal(process_rows: ProcessRows) -> None:
    # Extra columns are never fatal: reported, kept with rejects, absent from clean.
    result = process_rows([yellow_trip(surprise=1.0), yellow_trip(surprise=2.0, VendorID=3)])
    assert result.report["schema"]["unexpected"] == ["surprise"]
    assert "surprise" not in result.clean.columns
    assert result.rejects.get_column("surprise").to_list() == [2.0]


def test_casts_are_reported(process_rows: ProcessRows) -> None:
    # The report says which columns were cast and from what.
    result = process_rows([yellow_trip(passenger_count=1.0)], passenger_count=pl.Float64())
    assert result.report["schema"]["cast"]["passenger_count"].startswith("Float64 -> Int32")


def test_non_integral_passenger_count_is_unparseable(process_rows: ProcessRows) -> None:
    # 1.5 passengers cannot become an integer: the row is rejected, not silently truncated.
    result = process_rows([yellow_trip(passenger_count=1.5)], passenger_count=pl.Float64())
    assert reasons_of(result) == ["unparseable_value"]


def test_int64_value_beyond_int32_is_unparseable(process_rows: ProcessRows) -> None:
    # Int64 columns are narrowed to Int32: a value that does not fit is rejected, not wrapped.
    result = process_rows([yellow_trip(passenger_count=2**40)], passenger_count=pl.Int64())
    assert reasons_of(result) == ["unparseable_value"]


def test_int64_values_that_fit_keep_their_value_beside_one_that_does_not(
    process_rows: ProcessRows,
) -> None:
    # Both ends of Int32 fit; one past either end is rejected, and its neighbours are unchanged.
    counts = [2**31 - 1, 2**31, 3, -(2**31), -(2**31) - 1]
    rows = [yellow_trip(passenger_count=count) for count in counts]
    result = process_rows(rows, passenger_count=pl.Int64())
    assert reasons_of(result) == [None, "unparseable_value", None, None, "unparseable_value"]
    assert result.clean.get_column("passenger_count").to_list() == [2**31 - 1, 3, -(2**31)]


def test_only_conversions_that_can_fail_are_checked_for_lost_values() -> None:
    # A column already of its clean type (or text for a code) cannot lose a value converting:
    # `unparseable_value` checks only the others.
    schema = pl.Schema(
        {
            **YELLOW_2024_SCHEMA,
            "tpep_dropoff_datetime": pl.Datetime("ns"),
            "RatecodeID": pl.Float64(),
            "payment_type": pl.String(),
        }
    )
    plan = plan_schema(schema, YELLOW)
    assert plan.fallible(YELLOW) == {
        "dropoff_datetime",
        "passenger_count",
        "rate_code_id",
        "payment_type",
    }


def test_codes_are_matched_ignoring_case_and_spaces(process_rows: ProcessRows) -> None:
    # Codes as published pass untouched; any other spelling is stripped and upper-cased first.
    rows = [yellow_trip(store_and_fwd_flag=flag) for flag in ("N", " y ", "n", "Y", " X")]
    result = process_rows(rows)
    assert result.clean.get_column("store_and_fwd_flag").to_list() == ["N", "Y", "N", "Y"]
    assert reasons_of(result) == [None] * 4 + ["invalid_store_and_fwd_flag"]
    assert result.rejects.get_column("store_and_fwd_flag").to_list() == [" X"]


def test_timezone_aware_timestamps_become_new_york_local(process_rows: ProcessRows) -> None:
    # A file written with UTC timestamps is converted to the naive New York local time of TLC data.
    trip = yellow_trip(
        tpep_pickup_datetime=datetime(2024, 1, 15, 13, 0),
        tpep_dropoff_datetime=datetime(2024, 1, 15, 13, 12),
    )
    result = process_rows(
        [trip],
        tpep_pickup_datetime=pl.Datetime("us", "UTC"),
        tpep_dropoff_datetime=pl.Datetime("us", "UTC"),
    )
    assert result.clean.get_column("pickup_datetime").to_list() == [datetime(2024, 1, 15, 8, 0)]


def coordinate_trip(**changes: Any) -> dict[str, Any]:
    """A 2015-style yellow trip: coordinates instead of location IDs, RateCodeID spelling."""
    trip = yellow_trip()
    for name in (
        "PULocationID",
        "DOLocationID",
        "congestion_surcharge",
        "Airport_fee",
        "RatecodeID",
    ):
        del trip[name]
    trip.update(
        tpep_pickup_datetime=datetime(2015, 3, 15, 8, 0),
        tpep_dropoff_datetime=datetime(2015, 3, 15, 8, 12),
        RateCodeID=1,
        pickup_longitude=-73.9857,
        pickup_latitude=40.7484,
        dropoff_longitude=-73.9680,
        dropoff_latitude=40.7851,
    )
    trip.update(changes)
    return trip


COORDINATE_TYPES = {"RateCodeID": pl.Int64()}


def test_coordinate_era_file_is_clean(process_rows: ProcessRows) -> None:
    # Files until mid-2016 carry coordinates: valid ones pass, location IDs are null.
    result = process_rows(
        [coordinate_trip()], name="yellow_tripdata_2015-03.parquet", **COORDINATE_TYPES
    )
    assert reasons_of(result) == [None]
    assert result.report["schema"]["location_mode"] == "coordinates"
    assert result.clean.get_column("pu_location_id").to_list() == [None]
    assert result.clean.get_column("pickup_latitude").to_list() == [40.7484]
    assert result.clean.schema == YELLOW.clean_schema


@pytest.mark.parametrize(
    ("longitude", "latitude"),
    [(0.0, 0.0), (-200.0, 100.0), (-75.5, 40.7), (None, 40.7)],
    ids=["zero fix", "out of range", "Philadelphia", "missing"],
)
def test_invalid_coordinates_are_rejected(
    process_rows: ProcessRows, longitude: float | None, latitude: float
) -> None:
    # The seed's cases (0, 0) and (-200, 100), a point outside the NYC box, and a missing one.
    trip = coordinate_trip(pickup_longitude=longitude, pickup_latitude=latitude)
    result = process_rows(
        [coordinate_trip(), trip], name="yellow_tripdata_2015-03.parquet", **COORDINATE_TYPES
    )
    assert reasons_of(result) == [None, "invalid_coordinates"]


def test_csv_and_parquet_give_the_same_clean_rows(tmp_path: Path) -> None:
    # The same trips as CSV text and as Parquet produce identical clean output.
    trips = [yellow_trip(), yellow_trip(passenger_count=3, tip_amount=0.0, total_amount=20.7)]
    parquet = write_parquet(tmp_path, "yellow_tripdata_2024-01.parquet", trips)
    header = ",".join(trips[0])
    lines = [header] + [",".join("" if v is None else str(v) for v in t.values()) for t in trips]
    csv = write_csv(tmp_path, "yellow_tripdata_2024-01.csv", lines)
    assert process_file(csv).clean.equals(process_file(parquet).clean)


def test_green_file_has_its_own_schema(process_rows: ProcessRows) -> None:
    # Green: lpep_ timestamps, ehail_fee and trip_type; its clean schema is the green spec's.
    result = process_rows([green_trip()], name="green_tripdata_2024-01.parquet")
    assert reasons_of(result) == [None]
    assert result.clean.schema == GREEN.clean_schema
    assert result.clean.get_column("trip_type").to_list() == [1]


def test_clean_schemas_include_derived_columns() -> None:
    # Every dataset's clean schema carries the derived columns, with trip_duration_minutes exactly.
    for spec in (YELLOW, GREEN):
        assert {"trip_duration_minutes", "average_speed_mph", "pickup_date", "pickup_hour"} <= set(
            spec.clean_schema.names()
        )


OPTIONAL_FOR_A_TRIP = (
    "VendorID",
    "RatecodeID",
    "store_and_fwd_flag",
    "payment_type",
    "extra",
    "mta_tax",
    "tolls_amount",
)


def test_columns_no_rule_needs_to_identify_a_trip_may_be_absent(
    process_rows: ProcessRows,
) -> None:
    # Issue 14: a file without vendor, rate code, store-and-forward flag, payment type or a
    # surcharge is processed, those columns null and listed, not quarantined; no rule rejects a
    # row for a column its file lacks.
    rows = [
        {k: v for k, v in yellow_trip(**changes).items() if k not in OPTIONAL_FOR_A_TRIP}
        for changes in ({}, {"fare_amount": -5.0}, {"PULocationID": 999})
    ]
    result = process_rows(rows)
    assert reasons_of(result) == [None, "negative_amount", "unknown_location"]
    for name in ("vendor_id", "rate_code_id", "store_and_fwd_flag", "payment_type", "extra"):
        assert result.clean.get_column(name).to_list() == [None]
        assert name in result.report["schema"]["missing_optional"]


def test_a_pandas_tutorial_frame_processes(tmp_path: Path) -> None:
    # The shape of the classic pandas taxi-cleaning tutorials: times, coordinates, passengers,
    # distance and fare, nothing else; any name, given --dataset and --month.
    frame = pl.DataFrame(
        {
            "pickup_datetime": ["2015-03-15 08:00:00", "2015-03-15 09:00:00"],
            "dropoff_datetime": ["2015-03-15 08:12:00", "2015-03-15 08:59:00"],
            "pickup_longitude": [-73.9857, -73.9857],
            "pickup_latitude": [40.7484, 40.7484],
            "dropoff_longitude": [-73.9680, -73.9680],
            "dropoff_latitude": [40.7851, 40.7851],
            "passenger_count": [1, 2],
            "trip_distance": [2.4, 1.0],
            "fare_amount": [12.5, 7.0],
        }
    )
    source = tmp_path / "trips.csv"
    frame.write_csv(source)
    result = process_file(source, dataset="yellow", month="2015-03")
    assert reasons_of(result) == [None, "dropoff_not_after_pickup"]
    assert result.report["schema"]["location_mode"] == "coordinates"
    assert result.clean.schema == YELLOW.clean_schema
    assert result.clean.get_column("fare_amount").to_list() == [12.5]
    assert result.clean.get_column("total_amount").to_list() == [None]


YELLOW_2009 = {
    "vendor_name": "VTS",
    "Trip_Pickup_DateTime": "2009-01-04 02:52:00",
    "Trip_Dropoff_DateTime": "2009-01-04 03:02:00",
    "Passenger_Count": 1,
    "Trip_Distance": 2.63,
    "Start_Lon": -73.991957,
    "Start_Lat": 40.721567,
    "Rate_Code": None,
    "store_and_forward": None,
    "End_Lon": -73.993803,
    "End_Lat": 40.695922,
    "Payment_Type": "CASH",
    "Fare_Amt": 8.9,
    "surcharge": 0.5,
    "mta_tax": None,
    "Tip_Amt": 0.0,
    "Tolls_Amt": 0.0,
    "Total_Amt": 9.4,
}
YELLOW_2009_TYPES: dict[str, pl.DataType] = {
    "vendor_name": pl.String(),
    "Trip_Pickup_DateTime": pl.String(),
    "Trip_Dropoff_DateTime": pl.String(),
    "Passenger_Count": pl.Int64(),
    "Rate_Code": pl.Float64(),
    "store_and_forward": pl.Float64(),
    "Payment_Type": pl.String(),
    "mta_tax": pl.Float64(),
}
YELLOW_2010_NAMES = {
    "vendor_name": "vendor_id",
    "Trip_Pickup_DateTime": "pickup_datetime",
    "Trip_Dropoff_DateTime": "dropoff_datetime",
    "Passenger_Count": "passenger_count",
    "Trip_Distance": "trip_distance",
    "Start_Lon": "pickup_longitude",
    "Start_Lat": "pickup_latitude",
    "Rate_Code": "rate_code",
    "store_and_forward": "store_and_fwd_flag",
    "End_Lon": "dropoff_longitude",
    "End_Lat": "dropoff_latitude",
    "Payment_Type": "payment_type",
    "Fare_Amt": "fare_amount",
    "Tip_Amt": "tip_amount",
    "Tolls_Amt": "tolls_amount",
    "Total_Amt": "total_amount",
}


def test_yellow_2009_files_are_read(process_rows: ProcessRows) -> None:
    # TLC's oldest vintage: its own column names, text timestamps, vendors and payment types as
    # text labels (CMT and VTS are codes 1 and 2; DDS has no code and is kept as a reject).
    rows = [
        YELLOW_2009,
        {**YELLOW_2009, "vendor_name": "CMT", "Payment_Type": "Credit", "Tip_Amt": 2.0},
        {**YELLOW_2009, "vendor_name": "DDS"},
        {**YELLOW_2009, "Payment_Type": "Dispute", "Fare_Amt": -8.9, "Total_Amt": -9.4},
    ]
    result = process_rows(rows, name="yellow_tripdata_2009-01.parquet", **YELLOW_2009_TYPES)
    assert reasons_of(result) == [None, None, "unparseable_value", None]
    clean = result.clean
    assert clean.get_column("vendor_id").to_list() == [2, 1, 2]
    assert clean.get_column("payment_type").to_list() == [2, 1, 4]
    assert clean.get_column("extra").to_list() == [0.5, 0.5, 0.5]
    assert clean.get_column("pickup_longitude").to_list() == [-73.991957] * 3
    assert clean.get_column("trip_duration_minutes").to_list() == [10.0] * 3
    assert result.report["schema"]["location_mode"] == "coordinates"
    assert result.report["schema"]["unexpected"] == []


def test_yellow_2010_files_are_read(tmp_path: Path) -> None:
    # 2010: canonical-looking names, rate_code and surcharge, three-letter payment labels.
    trips = [
        {YELLOW_2010_NAMES.get(name, name): value for name, value in trip.items()}
        for trip in (
            {**YELLOW_2009, "vendor_name": "CMT", "Payment_Type": "CAS"},
            {**YELLOW_2009, "Payment_Type": "CRD", "Rate_Code": 1},
            {**YELLOW_2009, "Payment_Type": "NOC"},
        )
    ]
    header = ",".join(trips[0])
    lines = [",".join("" if v is None else str(v) for v in trip.values()) for trip in trips]
    result = process_file(write_csv(tmp_path, "yellow_tripdata_2009-01.csv", [header, *lines]))
    assert reasons_of(result) == [None, None, None]
    assert result.clean.get_column("vendor_id").to_list() == [1, 2, 2]
    assert result.clean.get_column("payment_type").to_list() == [2, 1, 3]
    assert result.clean.get_column("rate_code_id").to_list() == [None, 1, None]
    assert result.report["schema"]["unexpected"] == []

"""One test per validation rule: a valid trip changed in one way is rejected for that reason."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import polars as pl
import pytest

from etl.core.rules import NotInZones, RuleContext, is_not_finite, is_one_of
from etl.core.settings import EtlSettings
from etl.core.specs import ZONE_COLUMNS
from etl.core.transform import derive
from tests.tlc import green_trip, yellow_trip
from tests.unit.conftest import ProcessRows, reasons_of

PICKUP = datetime(2024, 1, 15, 8, 0, 0)


def test_valid_trip_is_clean(process_rows: ProcessRows) -> None:
    # The baseline every other case changes: it must pass every rule.
    result = process_rows([yellow_trip()])
    assert reasons_of(result) == [None]
    assert result.clean.height == 1


CASES: list[tuple[str, dict[str, Any], str]] = [
    ("pickup missing", {"tpep_pickup_datetime": None}, "missing_timestamp"),
    ("dropoff missing", {"tpep_dropoff_datetime": None}, "missing_timestamp"),
    ("dropoff equals pickup", {"tpep_dropoff_datetime": PICKUP}, "dropoff_not_after_pickup"),
    (
        "dropoff before pickup",
        {"tpep_dropoff_datetime": PICKUP - timedelta(minutes=5)},
        "dropoff_not_after_pickup",
    ),
    (
        "13 hour trip",
        {"tpep_dropoff_datetime": PICKUP + timedelta(hours=13), "trip_distance": 20.0},
        "duration_too_long",
    ),
    (
        "pickup in 2002",
        {
            "tpep_pickup_datetime": datetime(2002, 12, 31, 23, 0),
            "tpep_dropoff_datetime": datetime(2002, 12, 31, 23, 20),
        },
        "pickup_outside_month",
    ),
    (
        "pickup two days into the next month",
        {
            "tpep_pickup_datetime": datetime(2024, 2, 2, 9, 0),
            "tpep_dropoff_datetime": datetime(2024, 2, 2, 9, 20),
        },
        "pickup_outside_month",
    ),
    ("pickup zone 0", {"PULocationID": 0}, "unknown_location"),
    ("dropoff zone 266", {"DOLocationID": 266}, "unknown_location"),
    ("pickup zone missing", {"PULocationID": None}, "unknown_location"),
    ("vendor 3", {"VendorID": 3}, "invalid_vendor"),
    ("vendor missing", {"VendorID": None}, "invalid_vendor"),
    ("rate code 7", {"RatecodeID": 7}, "invalid_rate_code"),
    ("payment type 7", {"payment_type": 7}, "invalid_payment_type"),
    ("store_and_fwd X", {"store_and_fwd_flag": "X"}, "invalid_store_and_fwd_flag"),
    ("fare not a number", {"fare_amount": float("nan")}, "unparseable_value"),
    ("tip infinite", {"tip_amount": float("inf")}, "unparseable_value"),
    ("distance minus infinity", {"trip_distance": float("-inf")}, "unparseable_value"),
    ("fare missing", {"fare_amount": None}, "missing_fare"),
    ("total missing", {"total_amount": None}, "missing_fare"),
    (
        "negative fare paid by card",
        {"fare_amount": -14.2, "total_amount": -23.7},
        "negative_amount",
    ),
    ("negative tip paid in cash", {"payment_type": 2, "tip_amount": -1.0}, "negative_amount"),
    ("fare of 9999", {"fare_amount": 9999.0}, "absurd_amount"),
    ("negative distance", {"trip_distance": -1.0}, "distance_out_of_bounds"),
    ("distance of 300 miles", {"trip_distance": 300.0}, "distance_out_of_bounds"),
    ("distance missing", {"trip_distance": None}, "distance_out_of_bounds"),
    ("120 miles in 12 minutes", {"trip_distance": 120.0}, "implausible_speed"),
]


@pytest.mark.parametrize(
    ("change", "reason"), [(c[1], c[2]) for c in CASES], ids=[c[0] for c in CASES]
)
def test_rule_rejects_with_its_reason(
    process_rows: ProcessRows, change: dict[str, Any], reason: str
) -> None:
    # Rule under test: the one named by `reason`; the valid trip beside it stays clean.
    result = process_rows([yellow_trip(), yellow_trip(**change)])
    assert reasons_of(result) == [None, reason]


@pytest.mark.parametrize("payment_type", [3, 4, 6])
def test_refunds_may_carry_negative_amounts(process_rows: ProcessRows, payment_type: int) -> None:
    # Disputes, voids and no-charge trips carry negative amounts legitimately (documented decision).
    refund = yellow_trip(payment_type=payment_type, fare_amount=-14.2, total_amount=-23.7)
    assert reasons_of(process_rows([refund])) == [None]


def test_refund_still_rejected_when_absurd(process_rows: ProcessRows) -> None:
    # The refund exemption covers the sign only, not the size of the amount.
    refund = yellow_trip(payment_type=4, fare_amount=-9999.0)
    assert reasons_of(process_rows([refund])) == ["absurd_amount"]


@pytest.mark.parametrize("code", [None, 99])
def test_rate_code_null_and_99_pass(process_rows: ProcessRows, code: int | None) -> None:
    # Codes may be empty (Flex Fare rows from 2023 leave them null) and 99 means unknown.
    assert reasons_of(process_rows([yellow_trip(RatecodeID=code)])) == [None]


def test_payment_type_zero_is_flex_fare(process_rows: ProcessRows) -> None:
    # payment_type 0 is "Flex Fare trip" in the 2025 dictionary, not an error.
    assert reasons_of(process_rows([yellow_trip(payment_type=0)])) == [None]


def test_location_264_and_265_are_valid(process_rows: ProcessRows) -> None:
    # 264 (Unknown) and 265 (Outside of NYC) are zones of the lookup.
    assert reasons_of(process_rows([yellow_trip(PULocationID=264, DOLocationID=265)])) == [None]


def test_pickup_just_before_month_within_grace(process_rows: ProcessRows) -> None:
    # A trip that starts at 23:50 on the last day of the previous month belongs to this file.
    trip = yellow_trip(
        tpep_pickup_datetime=datetime(2023, 12, 31, 23, 50),
        tpep_dropoff_datetime=datetime(2024, 1, 1, 0, 5),
    )
    assert reasons_of(process_rows([trip])) == [None]


def test_month_grace_is_a_setting(process_rows: ProcessRows) -> None:
    # With no grace, the same trip falls outside the month.
    trip = yellow_trip(
        tpep_pickup_datetime=datetime(2023, 12, 31, 23, 50),
        tpep_dropoff_datetime=datetime(2024, 1, 1, 0, 5),
    )
    result = process_rows([trip], settings=EtlSettings(month_grace_hours=0))
    assert reasons_of(result) == ["pickup_outside_month"]


def test_max_duration_is_a_setting(process_rows: ProcessRows) -> None:
    # A 12-minute trip is too long when the maximum is 10 minutes.
    result = process_rows([yellow_trip()], settings=EtlSettings(max_trip_duration_minutes=10))
    assert reasons_of(result) == ["duration_too_long"]


def test_first_failing_rule_wins(process_rows: ProcessRows) -> None:
    # Rules run in the documented order: dropoff_not_after_pickup comes before invalid_vendor.
    trip = yellow_trip(VendorID=3, tpep_dropoff_datetime=PICKUP, fare_amount=None)
    assert reasons_of(process_rows([trip])) == ["dropoff_not_after_pickup"]


def test_null_fare_does_not_reach_clean(process_rows: ProcessRows) -> None:
    # The seed's case: a row with a null fare is rejected, never clean.
    result = process_rows([yellow_trip(fare_amount=None)])
    assert result.clean.height == 0
    assert result.rejects.get_column("reject_reason").to_list() == ["missing_fare"]


def test_seed_durations_30_and_45_minutes(process_rows: ProcessRows) -> None:
    # The seed's case: two trips of 30 and 45 minutes get exactly those durations.
    rows = [
        yellow_trip(tpep_dropoff_datetime=PICKUP + timedelta(minutes=30), trip_distance=6.0),
        yellow_trip(tpep_dropoff_datetime=PICKUP + timedelta(minutes=45), trip_distance=9.0),
    ]
    result = process_rows(rows)
    assert result.clean.get_column("trip_duration_minutes").to_list() == [30.0, 45.0]
    assert result.clean.get_column("average_speed_mph").to_list() == [12.0, 12.0]


def test_derived_pickup_date_and_hour(process_rows: ProcessRows) -> None:
    # pickup_date and pickup_hour come from the pickup time.
    clean = process_rows([yellow_trip()]).clean
    assert clean.get_column("pickup_date").to_list() == [PICKUP.date()]
    assert clean.get_column("pickup_hour").to_list() == [8]


@pytest.mark.parametrize(
    ("pickup", "date", "hour"),
    [
        (datetime(2024, 1, 1, 0, 0, 0), datetime(2024, 1, 1).date(), 0),
        (datetime(2024, 1, 31, 23, 59, 59), datetime(2024, 1, 31).date(), 23),
        (datetime(1969, 12, 31, 23, 30, 0), datetime(1969, 12, 31).date(), 23),
    ],
    ids=["midnight", "last second of a day", "before 1970"],
)
def test_pickup_date_and_hour_at_the_edges(pickup: datetime, date: object, hour: int) -> None:
    # Date and hour are computed by floor division of the timestamp: day edges and times
    # before the epoch must still give the calendar's answer.
    frame = pl.LazyFrame(
        {
            "pickup_datetime": [pickup],
            "dropoff_datetime": [pickup + timedelta(minutes=10)],
            "trip_distance": [1.0],
        }
    )
    derived = derive(frame).collect()
    assert derived.get_column("pickup_date").to_list() == [date]
    assert derived.get_column("pickup_hour").to_list() == [hour]


def test_green_invalid_trip_type(process_rows: ProcessRows) -> None:
    # Green's own code rule: trip_type is 1 (street-hail) or 2 (dispatch).
    result = process_rows(
        [green_trip(), green_trip(trip_type=3)], name="green_tripdata_2024-01.parquet"
    )
    assert reasons_of(result) == [None, "invalid_trip_type"]


def test_green_negative_ehail_fee(process_rows: ProcessRows) -> None:
    # Green's money columns include ehail_fee.
    result = process_rows([green_trip(ehail_fee=-2.0)], name="green_tripdata_2024-01.parquet")
    assert reasons_of(result) == ["negative_amount"]


@pytest.mark.parametrize(
    "zone_ids", [tuple(range(1, 266)), (1, 2, 3, 7, 265)], ids=["without gaps", "with gaps"]
)
def test_zone_rule_reads_the_lookup_with_or_without_gaps(zone_ids: tuple[int, ...]) -> None:
    # A lookup without gaps is checked as a range, any other as a set: the same answers.
    context = RuleContext(
        settings=EtlSettings(),
        month_start=datetime(2024, 1, 1),
        month_end=datetime(2024, 2, 1),
        present=frozenset(ZONE_COLUMNS),
        sources={},
        zone_ids=zone_ids,
    )
    rule = NotInZones("unknown_location", ZONE_COLUMNS, "")
    failing = rule.failing(context)
    assert failing is not None
    frame = pl.LazyFrame(
        {"pu_location_id": [1, 265, 0, 266, None, 5], "do_location_id": [3, 3, 3, 3, 3, 3]},
        schema={"pu_location_id": pl.Int32, "do_location_id": pl.Int32},
    )
    result = frame.select(failing.alias("failing")).collect().to_series().to_list()
    assert result == [False, False, True, True, True, 5 not in zone_ids]


@pytest.mark.parametrize(
    ("codes", "values", "expected"),
    [
        (("Y", "N"), ["Y", "N", "y", "X", None], [True, True, False, False, None]),
        ((1, 2, 99), [1, 99, 3, None], [True, True, False, None]),
    ],
    ids=["text codes", "number codes"],
)
def test_is_one_of(codes: tuple[Any, ...], values: list[Any], expected: list[Any]) -> None:
    # Text codes are compared one by one, numbers looked up: both give the same answers.
    result = pl.select(is_one_of(pl.lit(pl.Series(values)), codes)).to_series().to_list()
    assert result == expected


def test_is_not_finite_answers_like_is_finite() -> None:
    # NaN, both infinities and the largest floats, with a null: the same answers as ~is_finite().
    values = pl.Series(
        [1.5, -0.0, float("nan"), float("inf"), float("-inf"), 1.7976931348623157e308, None]
    )
    expected = pl.select(~pl.lit(values).is_finite()).to_series().to_list()
    assert pl.select(is_not_finite(pl.lit(values))).to_series().to_list() == expected
    assert expected == [False, False, True, True, True, False, None]

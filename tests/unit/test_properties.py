"""Property tests: whatever the rows, every row ends up clean or rejected, and clean rows obey
the rules."""

from __future__ import annotations

import tempfile
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from etl.core.master_data import zone_ids
from etl.core.pipeline import process_file
from etl.core.specs import YELLOW
from tests.tlc import write_csv, write_parquet, yellow_trip

MONTH_START = datetime(2024, 1, 1)

timestamps = st.one_of(
    st.none(),
    st.datetimes(min_value=datetime(2023, 12, 1), max_value=datetime(2024, 2, 15)),
    st.just(datetime(2002, 12, 31, 23, 0)),
)
money = st.one_of(st.none(), st.floats(-50, 5000, allow_nan=False), st.just(float("nan")))


@st.composite
def trips(draw: st.DrawFn) -> dict[str, Any]:
    pickup = draw(timestamps)
    minutes = draw(st.one_of(st.none(), st.floats(-30, 2000, allow_nan=False)))
    dropoff = pickup + timedelta(minutes=minutes) if pickup and minutes is not None else None
    return yellow_trip(
        VendorID=draw(st.one_of(st.none(), st.sampled_from([1, 2, 3, 6, 7]))),
        tpep_pickup_datetime=pickup,
        tpep_dropoff_datetime=dropoff,
        passenger_count=draw(st.one_of(st.none(), st.integers(0, 9))),
        trip_distance=draw(st.one_of(st.none(), st.floats(-5, 400, allow_nan=False))),
        RatecodeID=draw(st.one_of(st.none(), st.sampled_from([1, 2, 5, 6, 7, 99]))),
        store_and_fwd_flag=draw(st.sampled_from(["N", "Y", "n", "X", None])),
        PULocationID=draw(st.one_of(st.none(), st.integers(0, 270))),
        DOLocationID=draw(st.integers(1, 265)),
        payment_type=draw(st.one_of(st.none(), st.integers(0, 8))),
        fare_amount=draw(money),
        tip_amount=draw(money),
        total_amount=draw(money),
    )


PROPERTY_SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


@PROPERTY_SETTINGS
@given(
    rows=st.lists(trips(), min_size=1, max_size=40).flatmap(
        lambda rows: st.lists(st.sampled_from(rows), min_size=len(rows), max_size=len(rows) + 10)
    )
)
def test_rows_are_conserved_and_clean_rows_obey_the_rules(rows: list[dict[str, Any]]) -> None:
    # rows_in = rows_clean + rows_rejected, each input row exactly once; clean rows are valid.
    with tempfile.TemporaryDirectory() as directory:
        result = process_file(
            write_parquet(Path(directory), "yellow_tripdata_2024-01.parquet", rows)
        )
    report = result.report
    assert report["rows_in"] == len(rows)
    assert report["rows_clean"] + report["rows_rejected"] == len(rows)
    assert result.clean.height == report["rows_clean"]
    assert sorted(result.rejects.get_column("source_row").to_list()) == sorted(
        set(result.rejects.get_column("source_row").to_list())
    )
    assert set(result.rejects.get_column("reject_reason").to_list()) <= set(YELLOW.reasons)
    clean = result.clean
    zones = set(zone_ids())
    for trip in clean.iter_rows(named=True):
        assert trip["dropoff_datetime"] > trip["pickup_datetime"]
        assert trip["pu_location_id"] in zones
        assert trip["vendor_id"] in {1, 2, 6, 7}
        assert trip["fare_amount"] is not None
        assert 0 <= trip["trip_distance"] <= 250
        assert trip["trip_duration_minutes"] <= 720
        assert MONTH_START - timedelta(days=1) <= trip["pickup_datetime"] < datetime(2024, 2, 2)
    seen: set[str] = set()
    repeats = set()
    for index, row in enumerate(rows):
        key = repr(sorted(row.items()))  # repr makes NaN equal to NaN, as an exact copy should be
        if key in seen:
            repeats.add(index)
        seen.add(key)
    reasons = dict(
        zip(
            result.rejects.get_column("source_row").to_list(),
            result.rejects.get_column("reject_reason").to_list(),
            strict=True,
        )
    )
    assert {i for i, reason in reasons.items() if reason == "duplicate_row"} <= repeats
    assert repeats <= reasons.keys()


text_lines = st.lists(
    st.text(alphabet=st.sampled_from(list('0123456789,.-: NYabc"')), max_size=80), max_size=30
)


@PROPERTY_SETTINGS
@given(lines=text_lines)
def test_any_csv_text_is_conserved(lines: list[str]) -> None:
    # Arbitrary text lines under a valid header: every non-blank line is clean or rejected.
    header = ",".join(yellow_trip())
    with tempfile.TemporaryDirectory() as directory:
        result = process_file(
            write_csv(Path(directory), "yellow_tripdata_2024-01.csv", [header, *lines])
        )
    non_blank = [line for line in lines if line.strip()]
    assert result.report["rows_in"] == len(non_blank)
    assert result.clean.height + result.rejects.height == len(non_blank)

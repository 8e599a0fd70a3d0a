"""The quality report: what a data engineer reads to trust (or distrust) a load."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import polars as pl
import pytest

from etl.core.errors import UsageError
from etl.core.pipeline import process_file
from etl.core.settings import EtlSettings
from tests.tlc import yellow_trip
from tests.unit.conftest import ProcessRows


def test_report_counts_reasons_in_rule_order(process_rows: ProcessRows) -> None:
    # reasons holds {reason: count} and follows the documented rule order.
    rows = [
        yellow_trip(VendorID=3),
        yellow_trip(fare_amount=None),
        yellow_trip(VendorID=3),
        yellow_trip(),
    ]
    report = process_rows(rows).report
    assert report["reasons"] == {"invalid_vendor": 2, "missing_fare": 1}
    assert list(report["reasons"]) == [r for r in report["rule_order"] if r in report["reasons"]]


def test_null_rate_per_column(process_rows: ProcessRows) -> None:
    # null_rate is the share of null values per canonical column over all input rows.
    report = process_rows([yellow_trip(tip_amount=None), yellow_trip(tip_amount=1.0)]).report
    assert report["null_rate"]["tip_amount"] == 0.5
    assert report["null_rate"]["fare_amount"] == 0.0
    assert report["null_rate"]["cbd_congestion_fee"] == 1.0


def test_pickup_range_of_all_and_clean_rows(process_rows: ProcessRows) -> None:
    # The range shows the stray years real months contain, and what survived.
    stray = yellow_trip(
        tpep_pickup_datetime=datetime(2002, 12, 31, 23, 0),
        tpep_dropoff_datetime=datetime(2002, 12, 31, 23, 20),
    )
    later_day = yellow_trip(
        tpep_pickup_datetime=datetime(2024, 1, 20, 17, 30),
        tpep_dropoff_datetime=datetime(2024, 1, 20, 17, 45),
    )
    rejected_last = yellow_trip(
        VendorID=3,
        tpep_pickup_datetime=datetime(2024, 1, 25, 9, 0),
        tpep_dropoff_datetime=datetime(2024, 1, 25, 9, 20),
    )
    report = process_rows([later_day, yellow_trip(), stray, rejected_last]).report
    assert report["pickup_range"]["all_rows"] == {
        "min": "2002-12-31T23:00:00",
        "max": "2024-01-25T09:00:00",
    }
    assert report["pickup_range"]["clean_rows"] == {
        "min": "2024-01-15T08:00:00",
        "max": "2024-01-20T17:30:00",
    }


def test_pickup_range_of_clean_rows_is_empty_when_none_is_clean(
    process_rows: ProcessRows,
) -> None:
    report = process_rows([yellow_trip(VendorID=3)]).report
    assert report["pickup_range"]["clean_rows"] == {"min": None, "max": None}
    assert report["trips_per_day"] == {}


def test_timings_are_reported(process_rows: ProcessRows) -> None:
    # Read and transform timings are measured for every input.
    result = process_rows([yellow_trip()])
    assert set(result.timings_ms) == {"read", "transform"}
    assert all(value >= 0 for value in result.timings_ms.values())


@pytest.mark.parametrize(
    ("field", "make"),
    [
        ("max_trip_duration_minutes", lambda: EtlSettings(max_trip_duration_minutes=0)),
        ("month_grace_hours", lambda: EtlSettings(month_grace_hours=-1)),
        ("max_amount_usd", lambda: EtlSettings(max_amount_usd=0)),
    ],
)
def test_settings_out_of_range_are_refused(field: str, make: Callable[[], EtlSettings]) -> None:
    # A bad threshold stops before any data is touched, naming the setting.
    with pytest.raises(UsageError, match=field):
        make()


def test_a_pickup_beyond_year_9999_is_reported_not_a_crash(tmp_path: Path) -> None:
    # Found by the mutation property test: a flipped byte put a pickup in year 11157, and the
    # report's pickup range failed converting it to a Python datetime.
    year_11159 = pl.lit(290_000_000_000_000_000).cast(pl.Datetime("us"))
    frame = pl.DataFrame([yellow_trip(), yellow_trip()]).with_row_index("i")
    path = tmp_path / "yellow_tripdata_2024-01.parquet"
    frame.with_columns(
        tpep_pickup_datetime=pl.when(pl.col("i") == 1)
        .then(year_11159)
        .otherwise(pl.col("tpep_pickup_datetime"))
    ).drop("i").write_parquet(path)
    report = process_file(path).report
    assert report["pickup_range"]["all_rows"]["max"] == "+11159-09-26T11:33:20"
    assert report["pickup_range"]["all_rows"]["min"] == "2024-01-15T08:00:00"
    assert report["pickup_range"]["clean_rows"]["max"] == "2024-01-15T08:00:00"
    assert report["reasons"] == {"dropoff_not_after_pickup": 1}


def test_reject_samples_show_timestamps_polars_cannot_format(tmp_path: Path) -> None:
    # Found by the mutation property test: a raw millisecond timestamp far beyond year 262,000
    # made the reject samples' text conversion panic. It is shown as its number instead.
    frame = pl.DataFrame([yellow_trip(VendorID=9)]).with_columns(
        seen_at=pl.lit(10**18).cast(pl.Datetime("ms")), day=pl.lit(10**9).cast(pl.Date)
    )
    path = tmp_path / "yellow_tripdata_2024-01.parquet"
    frame.write_parquet(path)
    (sample,) = process_file(path).report["reject_samples"]
    assert (sample["seen_at"], sample["day"]) == (str(10**18), str(10**9))
    assert sample["reject_reason"] == "invalid_vendor"

"""The quality report: what a data engineer reads to trust (or distrust) a load."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import pytest

from etl.core.errors import UsageError
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

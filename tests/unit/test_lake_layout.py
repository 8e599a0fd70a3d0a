"""Where outputs go in the lake."""

from __future__ import annotations

from etl.core.naming import Month
from etl.lake import output_keys, quarantine_keys


def test_outputs_are_partitioned_by_dataset_year_and_month() -> None:
    keys = output_keys("green", Month(2019, 3), "green_tripdata_2019-03")

    assert keys.all() == (
        "processed/green/year=2019/month=03/green_tripdata_2019-03.parquet",
        "rejects/green/year=2019/month=03/green_tripdata_2019-03.parquet",
        "reports/green/year=2019/month=03/green_tripdata_2019-03.html",
        "reports/green/year=2019/month=03/green_tripdata_2019-03.json",
    )
    # The JSON report marks the set complete, so it is written last.
    assert keys.all()[-1] == keys.report


def test_quarantine_keeps_the_original_key_under_its_prefix() -> None:
    assert quarantine_keys("raw/yellow/yellow_tripdata_2024-01.parquet") == (
        "quarantine/raw/yellow/yellow_tripdata_2024-01.parquet",
        "quarantine/raw/yellow/yellow_tripdata_2024-01.parquet.error.json",
    )

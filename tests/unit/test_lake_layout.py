"""Where outputs go in the lake."""

from __future__ import annotations

import hashlib

from etl.core.naming import Month
from etl.lake import lake_stem, output_keys, quarantine_keys


def test_outputs_are_partitioned_by_dataset_year_and_month() -> None:
    # Glue-friendly Hive partitions; the name is the file's stem and a digest of its whole key.
    key = "raw/green/green_tripdata_2019-03.parquet"
    digest = hashlib.sha256(b"green/green_tripdata_2019-03.parquet").hexdigest()[:12]
    keys = output_keys("green", Month(2019, 3), key)

    stem = f"green/year=2019/month=03/green_tripdata_2019-03-{digest}"
    assert keys.all() == (
        f"processed/{stem}.parquet",
        f"rejects/{stem}.parquet",
        f"reports/{stem}.html",
        f"reports/{stem}.json",
    )
    # The JSON report marks the set complete, so it is written last.
    assert keys.all()[-1] == keys.report


def test_same_named_objects_under_different_prefixes_get_their_own_outputs() -> None:
    # Issue 14, case 7: raw/yellow/x and raw/yellow/corrected/x (or x.csv beside x.parquet)
    # wrote the same processed/, rejects/ and reports/ keys; the second replaced the first.
    month = Month(2024, 9)
    keys = [
        output_keys("yellow", month, key)
        for key in (
            "raw/yellow/yellow_tripdata_2024-09.parquet",
            "raw/yellow/corrected/yellow_tripdata_2024-09.parquet",
            "raw/yellow_tripdata_2024-09.parquet",
            "raw/yellow/yellow_tripdata_2024-09.csv",
        )
    ]
    outputs = [output for key_set in keys for output in key_set.all()]
    assert len(set(outputs)) == len(outputs) == 16


def test_output_names_are_stable_across_redeliveries_and_versions() -> None:
    # Derived from the key alone: a redelivery or a new version of the key replaces its outputs.
    key = "raw/yellow/corrected/yellow_tripdata_2024-09.parquet"
    assert output_keys("yellow", Month(2024, 9), key) == output_keys("yellow", Month(2024, 9), key)
    assert (
        lake_stem(key)
        == "yellow_tripdata_2024-09-"
        + hashlib.sha256(b"yellow/corrected/yellow_tripdata_2024-09.parquet").hexdigest()[:12]
    )


def test_quarantine_keeps_the_original_key_under_its_prefix() -> None:
    assert quarantine_keys("raw/yellow/yellow_tripdata_2024-01.parquet") == (
        "quarantine/raw/yellow/yellow_tripdata_2024-01.parquet",
        "quarantine/raw/yellow/yellow_tripdata_2024-01.parquet.error.json",
    )

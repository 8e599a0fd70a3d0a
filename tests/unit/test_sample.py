"""The real 266-row yellow sample of July 2020, end to end, checked against an independent
reading of the same file with Python's csv module."""

from __future__ import annotations

import csv
from datetime import datetime
from pathlib import Path

from etl.core.master_data import zone_ids
from etl.core.pipeline import process_file
from etl.core.settings import EtlSettings


def expected_reasons(path: Path, settings: EtlSettings) -> dict[int, str]:
    """Reasons the sample's rows deserve, computed row by row without Polars (only the rules the
    sample's rows can break; the rest are covered one by one elsewhere)."""
    reasons: dict[int, str] = {}
    zones = set(zone_ids())
    seen: set[tuple[str, ...]] = set()
    with path.open() as handle:
        for index, row in enumerate(csv.DictReader(handle)):
            pickup = datetime.fromisoformat(row["tpep_pickup_datetime"])
            dropoff = datetime.fromisoformat(row["tpep_dropoff_datetime"])
            minutes = (dropoff - pickup).total_seconds() / 60
            distance = float(row["trip_distance"])
            key = tuple(row.values())
            if dropoff <= pickup:
                reasons[index] = "dropoff_not_after_pickup"
            elif minutes > settings.max_trip_duration_minutes:
                reasons[index] = "duration_too_long"
            elif int(row["PULocationID"]) not in zones or int(row["DOLocationID"]) not in zones:
                reasons[index] = "unknown_location"
            elif not 0 <= distance <= settings.max_distance_miles:
                reasons[index] = "distance_out_of_bounds"
            elif distance / (minutes / 60) > settings.max_speed_mph:
                reasons[index] = "implausible_speed"
            elif key in seen:
                reasons[index] = "duplicate_row"
            seen.add(key)
    return reasons


def test_sample_end_to_end(sample_csv: Path) -> None:
    # Every row of the real sample lands where an independent reading says it should.
    settings = EtlSettings()
    result = process_file(sample_csv, settings=settings)
    expected = expected_reasons(sample_csv, settings)
    actual = dict(
        zip(
            result.rejects.get_column("source_row").to_list(),
            result.rejects.get_column("reject_reason").to_list(),
            strict=True,
        )
    )
    assert actual == expected
    assert result.report["rows_in"] == 266
    assert result.clean.height == 266 - len(expected)
    assert result.report["month"] == "2020-07"


def test_sample_durations_match_the_timestamps(sample_csv: Path) -> None:
    # trip_duration_minutes is dropoff minus pickup, in minutes, for every clean row.
    clean = process_file(sample_csv).clean
    for trip in clean.iter_rows(named=True):
        minutes = (trip["dropoff_datetime"] - trip["pickup_datetime"]).total_seconds() / 60
        assert abs(trip["trip_duration_minutes"] - minutes) < 1e-9

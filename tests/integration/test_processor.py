"""The processor end to end on moto's server and PostgreSQL: what lands in S3 and in the database,
and that redeliveries, concurrent deliveries and new versions leave exactly one copy of the rows."""

from __future__ import annotations

import csv
import io
import json
import threading
import time
from datetime import datetime
from typing import Any

import polars as pl
import psycopg
import pytest

from etl import handler as handler_module
from etl.core.naming import Month
from etl.core.pipeline import process_file
from etl.core.specs import YELLOW
from etl.handler import Runtime, handler
from etl.lake import INDEX_KEY, lake_stem, output_keys
from tests.integration.conftest import SAMPLE_CSV, Platform, parquet_bytes, s3_event, yellow_rows
from tests.tlc import green_trip

SAMPLE_KEY = "raw/yellow/yellow_tripdata_2020-07.csv"
SAMPLE_STEM = f"yellow/year=2020/month=07/{lake_stem(SAMPLE_KEY)}"


def log_lines(text: str) -> list[dict[str, Any]]:
    """The JSON log lines in captured output."""
    return [json.loads(line) for line in text.splitlines() if line.startswith("{")]


def trips_for(platform: Platform, key: str) -> int:
    """Rows of `key` in taxi.trips."""
    return int(platform.scalar("SELECT count(*) FROM taxi.trips WHERE source_key = %s", [key]))


def test_sample_file_flows_from_s3_through_sqs_to_postgres(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    # The production path: S3 notification -> SQS (with the s3:TestEvent S3 sends first) ->
    # handler -> lake outputs, trips, and an audit row; one JSON log line per object.
    platform.put_raw("yellow_tripdata_2020-07.csv", SAMPLE_CSV.read_bytes())
    version = platform.s3.head_object(Bucket=platform.bucket, Key=SAMPLE_KEY)["VersionId"]
    event = platform.receive_event()
    bodies = [json.loads(record["body"]) for record in event["Records"]]
    assert any(body.get("Event") == "s3:TestEvent" for body in bodies)

    assert handler(event, None) == {"batchItemFailures": []}

    expected = process_file(SAMPLE_CSV, source_name=SAMPLE_KEY)
    assert platform.keys("processed/") == [f"processed/{SAMPLE_STEM}.parquet"]
    assert platform.keys("rejects/") == [f"rejects/{SAMPLE_STEM}.parquet"]
    assert platform.keys("reports/") == [
        INDEX_KEY,
        f"reports/{SAMPLE_STEM}.html",
        f"reports/{SAMPLE_STEM}.json",
    ]
    processed = pl.read_parquet(io.BytesIO(platform.read(f"processed/{SAMPLE_STEM}.parquet")))
    rejects = pl.read_parquet(io.BytesIO(platform.read(f"rejects/{SAMPLE_STEM}.parquet")))
    report = json.loads(platform.read(f"reports/{SAMPLE_STEM}.json"))
    assert processed.schema == YELLOW.clean_schema
    assert processed.height == expected.clean.height
    assert rejects.height == expected.rejects.height == report["rows_rejected"]
    header = next(csv.reader(io.StringIO(SAMPLE_CSV.read_text())))
    assert {*header, "reject_reason"} <= set(rejects.columns)
    assert report["source_object"]["version_id"] == version

    # The rows in PostgreSQL are the processed Parquet's rows, value for value.
    columns = list(YELLOW.clean_schema.names())
    rows = platform.query(
        f"SELECT {', '.join(columns)} FROM taxi.trips WHERE source_key = %s", [SAMPLE_KEY]
    )
    assert sorted(rows, key=repr) == sorted(processed.rows(), key=repr)
    assert platform.query("SELECT DISTINCT dataset FROM taxi.trips") == [("yellow",)]

    load = platform.query(
        "SELECT status, version_id, dataset, month, rows_in, rows_clean, rows_rejected,"
        " load_count FROM taxi.loads WHERE source_key = %s",
        [SAMPLE_KEY],
    )
    assert load == [
        (
            "loaded",
            version,
            "yellow",
            datetime(2020, 7, 1).date(),
            266,
            expected.clean.height,
            expected.rejects.height,
            1,
        )
    ]

    lines = log_lines(capsys.readouterr().out)
    processed_lines = [line for line in lines if line.get("event") == "object_processed"]
    assert len(processed_lines) == 1
    line = processed_lines[0]
    assert (line["key"], line["status"], line["rows_clean"]) == (
        SAMPLE_KEY,
        "loaded",
        expected.clean.height,
    )
    assert {"download", "read", "transform", "write_s3", "load_db"} <= line["timings_ms"].keys()
    assert any(line.get("event") == "test_event" for line in lines)


def test_yellow_and_green_share_the_trips_table(platform: Platform) -> None:
    # One table for both datasets: each row carries its dataset, green keeps trip_type.
    green = [
        green_trip(
            lpep_pickup_datetime=datetime(2024, 1, 10, 17, minute),
            lpep_dropoff_datetime=datetime(2024, 1, 10, 18, minute),
        )
        for minute in range(3)
    ]
    platform.put_raw("yellow_tripdata_2024-01.parquet", parquet_bytes(yellow_rows(4)))
    platform.put_raw("green_tripdata_2024-01.parquet", parquet_bytes(green), dataset="green")

    assert handler(platform.receive_event(), None) == {"batchItemFailures": []}

    counts = platform.query(
        "SELECT dataset, count(*), count(trip_type), count(airport_fee) FROM taxi.trips"
        " GROUP BY dataset ORDER BY dataset"
    )
    assert counts == [("green", 3, 3, 0), ("yellow", 4, 0, 4)]


def test_same_named_objects_under_different_prefixes_keep_separate_outputs(
    platform: Platform,
) -> None:
    # Issue 14, case 7: the corrected file's processed/, rejects/ and report replaced the first
    # one's (the rows were right, the lake was not). Each now has its own, read back intact.
    first = platform.put_raw(
        "yellow_tripdata_2024-09.parquet",
        parquet_bytes(yellow_rows(3, start=datetime(2024, 9, 1, 8))),
    )
    corrected = platform.put_raw(
        "corrected/yellow_tripdata_2024-09.parquet",
        parquet_bytes(yellow_rows(5, start=datetime(2024, 9, 2, 8))),
    )
    event = platform.receive_event()
    assert handler(event, None) == {"batchItemFailures": []}
    assert handler(event, None) == {"batchItemFailures": []}  # a redelivery: same keys again

    month = Month(2024, 9)
    for key, rows in ((first, 3), (corrected, 5)):
        keys = output_keys("yellow", month, key)
        processed = pl.read_parquet(io.BytesIO(platform.read(keys.processed)))
        report = json.loads(platform.read(keys.report))
        assert (processed.height, report["source_object"]["key"]) == (rows, key)
        assert trips_for(platform, key) == rows
    assert len(platform.keys("processed/")) == 2
    assert len(platform.keys("reports/")) == 5  # each object's page and JSON, and the index


def test_same_object_delivered_twice_leaves_one_copy(platform: Platform) -> None:
    # SQS delivers at least once: the second delivery of the same version adds nothing (it is
    # acknowledged as already loaded, so the object was processed to completion once).
    key = platform.put_raw("yellow_tripdata_2024-01.parquet", parquet_bytes(yellow_rows(25)))
    event = platform.receive_event()

    assert handler(event, None) == {"batchItemFailures": []}
    assert handler(event, None) == {"batchItemFailures": []}

    assert trips_for(platform, key) == 25
    assert platform.query(
        "SELECT status, rows_clean, load_count FROM taxi.loads WHERE source_key = %s", [key]
    ) == [("loaded", 25, 1)]


def test_concurrent_deliveries_leave_one_copy(platform: Platform) -> None:
    # Two containers get the same object at the same time. The test holds the object's lock so
    # that both are provably inside the load at once, then lets them go.
    key = platform.put_raw("yellow_tripdata_2024-01.parquet", parquet_bytes(yellow_rows(40)))
    event = platform.receive_event()
    containers = [Runtime.from_environment(), Runtime.from_environment()]
    results: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def deliver(runtime: Runtime) -> None:
        try:
            results.append(runtime.handle(event))
        except BaseException as error:
            errors.append(error)

    with psycopg.connect(platform.database_url, autocommit=True) as holder:
        holder.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", [key])
        threads = [threading.Thread(target=deliver, args=(runtime,)) for runtime in containers]
        for thread in threads:
            thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            waiting = holder.execute(
                "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
                " AND (classid::bigint << 32 | objid::bigint) = hashtextextended(%s, 0)",
                [key],
            ).fetchone()
            if waiting and waiting[0] == 2:
                break
            time.sleep(0.02)
        else:
            pytest.fail("the two deliveries never both waited for the object's lock")
        holder.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", [key])
        for thread in threads:
            thread.join(timeout=60)
    for runtime in containers:
        runtime.close()

    assert errors == []
    assert results == [{"batchItemFailures": []}, {"batchItemFailures": []}]
    assert trips_for(platform, key) == 40
    assert platform.scalar("SELECT load_count FROM taxi.loads WHERE source_key = %s", [key]) == 2


def test_new_version_of_an_object_replaces_its_rows(platform: Platform) -> None:
    # Re-uploading a month (a corrected file) replaces its rows; other objects are untouched.
    other = platform.put_raw("yellow_tripdata_2024-02.parquet", parquet_bytes([]))
    key = platform.put_raw("yellow_tripdata_2024-01.parquet", parquet_bytes(yellow_rows(30)))
    assert handler(platform.receive_event(), None) == {"batchItemFailures": []}
    platform.put_raw("yellow_tripdata_2024-01.parquet", parquet_bytes(yellow_rows(12)))
    latest = platform.s3.head_object(Bucket=platform.bucket, Key=key)["VersionId"]

    assert handler(platform.receive_event(), None) == {"batchItemFailures": []}

    assert trips_for(platform, key) == 12
    assert platform.query(
        "SELECT version_id, rows_clean, load_count FROM taxi.loads WHERE source_key = %s", [key]
    ) == [(latest, 12, 2)]
    assert platform.scalar("SELECT status FROM taxi.loads WHERE source_key = %s", [other]) == (
        "loaded"
    )


def test_a_new_version_empties_every_partition_of_the_old_one(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    # An object's rows live in partitions of their own, one per month. A new version whose
    # pickups left a month empties that month's partition too; the count replaced is the one
    # recorded, kept across a quarantined version in between (whose rows_clean is null).
    rows = yellow_rows(4, start=datetime(2024, 2, 5, 9, 0))
    rows += yellow_rows(3, start=datetime(2024, 1, 31, 23, 30))
    key = platform.put_raw("yellow_tripdata_2024-02.parquet", parquet_bytes(rows))
    assert handler(platform.receive_event(), None) == {"batchItemFailures": []}
    platform.put_raw("yellow_tripdata_2024-02.parquet", b"not parquet at all")
    assert handler(platform.receive_event(), None) == {"batchItemFailures": []}
    assert trips_for(platform, key) == 7  # a bad upload does not erase data
    capsys.readouterr()

    later = yellow_rows(6, start=datetime(2024, 2, 10, 8, 0))
    platform.put_raw("yellow_tripdata_2024-02.parquet", parquet_bytes(later))
    assert handler(platform.receive_event(), None) == {"batchItemFailures": []}

    [line] = [line for line in log_lines(capsys.readouterr().out) if line.get("status") == "loaded"]
    per_month = platform.query(
        "SELECT date_trunc('month', pickup_datetime)::date, count(*) FROM taxi.trips"
        " WHERE source_key = %s GROUP BY 1 ORDER BY 1",
        [key],
    )
    assert per_month == [(datetime(2024, 2, 1).date(), 6)]
    assert line["rows_replaced"] == 7
    assert line["partitions_created"] == []
    assert len(platform.query("SELECT taxi.trips_object_partitions(%s)", [key])) == 2


def test_an_older_event_arriving_late_does_not_overwrite_a_newer_version(
    platform: Platform,
) -> None:
    # SQS does not keep order. S3's sequencer does: the older version's late event is skipped.
    key = "raw/yellow/yellow_tripdata_2024-01.parquet"
    old = platform.s3.put_object(
        Bucket=platform.bucket, Key=key, Body=parquet_bytes(yellow_rows(9))
    )["VersionId"]
    new = platform.s3.put_object(
        Bucket=platform.bucket, Key=key, Body=parquet_bytes(yellow_rows(4))
    )["VersionId"]
    newer_event = s3_event(platform.bucket, key, version_id=new, sequencer="00000000000000A2")
    older_event = s3_event(platform.bucket, key, version_id=old, sequencer="00000000000000A1")

    assert handler(newer_event, None) == {"batchItemFailures": []}
    assert handler(older_event, None) == {"batchItemFailures": []}

    assert trips_for(platform, key) == 4
    assert platform.query(
        "SELECT version_id, sequencer, load_count FROM taxi.loads WHERE source_key = %s", [key]
    ) == [(new, "00000000000000A2", 1)]
    report = json.loads(platform.read(output_keys("yellow", Month(2024, 1), key).report))
    assert report["source_object"]["version_id"] == new


@pytest.mark.parametrize(
    ("key", "reason"),
    [
        ("incoming/yellow_tripdata_2024-01.parquet", "key outside raw/"),
        ("raw/yellow/", "folder placeholder"),
    ],
)
def test_keys_that_are_not_raw_files_are_ignored_and_acknowledged(
    platform: Platform, capsys: pytest.CaptureFixture[str], key: str, reason: str
) -> None:
    # Only files under raw/ are input: anything else named by an event is logged and left alone.
    platform.s3.put_object(Bucket=platform.bucket, Key=key, Body=parquet_bytes(yellow_rows(3)))
    before = platform.keys()

    assert handler(s3_event(platform.bucket, key), None) == {"batchItemFailures": []}

    assert platform.keys() == before
    assert platform.scalar("SELECT count(*) FROM taxi.loads") == 0
    assert platform.scalar("SELECT count(*) FROM taxi.trips") == 0
    lines = [line for line in log_lines(capsys.readouterr().out) if line.get("key") == key]
    assert [(line["status"], line["reason"]) for line in lines] == [("ignored", reason)]


def test_object_deleted_before_processing_is_acknowledged(platform: Platform) -> None:
    # The event outlived its object: nothing to process, nothing to retry.
    event = s3_event(platform.bucket, "raw/yellow/yellow_tripdata_2024-03.parquet")

    assert handler(event, None) == {"batchItemFailures": []}

    assert platform.scalar("SELECT count(*) FROM taxi.loads") == 0


def test_pickups_in_the_previous_month_get_their_partition(platform: Platform) -> None:
    # A February file may hold pickups from the last hours of January (the month window's
    # grace): the object gets a partition in each month, and each row lands in its own.
    rows = yellow_rows(5, start=datetime(2024, 2, 5, 9, 0))
    rows += yellow_rows(2, start=datetime(2024, 1, 31, 23, 30))
    key = platform.put_raw("yellow_tripdata_2024-02.parquet", parquet_bytes(rows))

    assert handler(platform.receive_event(), None) == {"batchItemFailures": []}

    placed = platform.query(
        "SELECT month.relname, count(*) FROM taxi.trips AS t"
        " JOIN pg_inherits AS i ON i.inhrelid = t.tableoid"
        " JOIN pg_class AS month ON month.oid = i.inhparent"
        " WHERE t.source_key = %s GROUP BY 1 ORDER BY 1",
        [key],
    )
    leaves = platform.query("SELECT taxi.trips_object_partitions(%s)", [key])
    assert placed == [("trips_2024_01", 2), ("trips_2024_02", 5)]
    assert len(leaves) == 2


def test_runtime_is_created_once_per_container(platform: Platform) -> None:
    # Clients and the connection live across invocations of one container.
    platform.put_raw("yellow_tripdata_2024-01.parquet", parquet_bytes(yellow_rows(2)))
    handler(platform.receive_event(), None)
    first = handler_module.runtime()
    platform.put_raw("yellow_tripdata_2024-02.parquet", parquet_bytes([]))
    handler(platform.receive_event(), None)

    assert handler_module.runtime() is first
    assert first.database.connects == 1

"""Repeated deliveries of a version the processor has already processed: acknowledged with one
query, nothing written to S3 or PostgreSQL; a change of code or thresholds processes again."""

from __future__ import annotations

import json
from typing import Any

import pytest

from etl.core.settings import EtlSettings
from etl.handler import Runtime, handler
from tests.integration.conftest import Platform, parquet_bytes, yellow_rows
from tests.integration.test_processor import log_lines, trips_for

OUTPUT_PREFIXES = ("processed/", "rejects/", "reports/")


def output_versions(platform: Platform) -> list[str]:
    """Every version and delete marker under the output prefixes: a write adds one."""
    found = []
    for prefix in OUTPUT_PREFIXES:
        response = platform.s3.list_object_versions(Bucket=platform.bucket, Prefix=prefix)
        found += [item["VersionId"] for item in response.get("Versions", [])]
        found += [item["VersionId"] for item in response.get("DeleteMarkers", [])]
    return sorted(found)


def statuses(text: str) -> list[str]:
    return [line["status"] for line in log_lines(text) if line.get("event") == "object_processed"]


def load_count(platform: Platform, key: str) -> int:
    return int(platform.scalar("SELECT load_count FROM taxi.loads WHERE source_key = %s", [key]))


def test_a_repeat_of_a_loaded_version_writes_nothing(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    key = platform.put_raw("yellow_tripdata_2024-01.parquet", parquet_bytes(yellow_rows(25)))
    event = platform.receive_event()
    assert handler(event, None) == {"batchItemFailures": []}
    written = output_versions(platform)

    assert handler(event, None) == {"batchItemFailures": []}

    assert statuses(capsys.readouterr().out) == ["loaded", "already_loaded"]
    assert output_versions(platform) == written
    assert (trips_for(platform, key), load_count(platform, key)) == (25, 1)


def test_moto_notifies_twice_for_one_multipart_upload_and_it_is_loaded_once(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    # moto sends ObjectCreated:Put and ObjectCreated:CompleteMultipartUpload for one upload
    # (S3 sends only the second): the second is a repeat of the same bytes.
    key = "raw/yellow/yellow_tripdata_2024-01.parquet"
    upload = platform.s3.create_multipart_upload(Bucket=platform.bucket, Key=key)
    part = platform.s3.upload_part(
        Bucket=platform.bucket,
        Key=key,
        UploadId=upload["UploadId"],
        PartNumber=1,
        Body=parquet_bytes(yellow_rows(30)),
    )
    platform.s3.complete_multipart_upload(
        Bucket=platform.bucket,
        Key=key,
        UploadId=upload["UploadId"],
        MultipartUpload={"Parts": [{"ETag": part["ETag"], "PartNumber": 1}]},
    )
    event = platform.receive_event()
    assert sorted(_event_names(event)) == [
        "ObjectCreated:CompleteMultipartUpload",
        "ObjectCreated:Put",
    ]

    assert handler(event, None) == {"batchItemFailures": []}

    assert sorted(statuses(capsys.readouterr().out)) == ["already_loaded", "loaded"]
    assert (trips_for(platform, key), load_count(platform, key)) == (30, 1)


def test_a_repeat_of_a_quarantined_version_is_not_downloaded_again(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    key = platform.put_raw("yellow_tripdata_2024-01.parquet", b"PAR1 truncated")
    event = platform.receive_event()
    assert handler(event, None) == {"batchItemFailures": []}
    platform.s3.delete_object(Bucket=platform.bucket, Key=key)  # a download would now fail

    assert handler(event, None) == {"batchItemFailures": []}

    assert statuses(capsys.readouterr().out) == ["quarantined", "already_quarantined"]


def test_new_thresholds_process_a_loaded_version_again(platform: Platform) -> None:
    # What was loaded under other rules is not "already loaded": a backfill after a change of
    # code or thresholds reprocesses every object.
    key = platform.put_raw("yellow_tripdata_2024-01.parquet", parquet_bytes(yellow_rows(20)))
    event = platform.receive_event()
    assert handler(event, None) == {"batchItemFailures": []}
    stricter = Runtime.from_environment(EtlSettings(max_speed_mph=99))
    try:
        assert stricter.handle(event) == {"batchItemFailures": []}
    finally:
        stricter.close()

    assert load_count(platform, key) == 2


def _event_names(event: dict[str, Any]) -> list[str]:
    return [
        record["eventName"]
        for message in event["Records"]
        for record in json.loads(message["body"]).get("Records", [])
    ]

"""`dataplatform backfill` on moto's server: one message per raw object, processed like S3's own,
and a second backfill converging to the same rows."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dataplatform.backfill import s3_notification
from dataplatform.cli import app
from etl.events import messages
from etl.handler import handler
from tests.integration.conftest import SAMPLE_CSV, Platform, parquet_bytes, yellow_rows

runner = CliRunner()


def raw_files(platform: Platform) -> list[str]:
    """Two raw files (one with a space in its name), a folder marker and a file outside raw/."""
    keys = [
        platform.put_raw("yellow_tripdata_2024-01.parquet", parquet_bytes(yellow_rows(20))),
        platform.put_raw("yellow_tripdata_2020-07 sample.csv", SAMPLE_CSV.read_bytes()),
    ]
    platform.s3.put_object(Bucket=platform.bucket, Key="raw/yellow/", Body=b"")
    platform.s3.put_object(Bucket=platform.bucket, Key="reports/old.json", Body=b"{}")
    platform.receive_event()  # S3's own notifications of the uploads: consumed, not acknowledged
    return sorted(keys)


def backfill(platform: Platform, prefix: str = "raw/") -> str:
    result = runner.invoke(app, ["backfill", "--bucket", platform.bucket, "--prefix", prefix])
    assert result.exit_code == 0, result.output
    return result.output


def test_backfill_enqueues_one_message_per_raw_object(platform: Platform) -> None:
    # Every raw file once, found through the bucket's own notification setup; no folder marker,
    # nothing outside raw/.
    keys = raw_files(platform)
    platform.sqs.purge_queue(QueueUrl=platform.queue_url)
    output = backfill(platform)
    event = platform.receive_event()
    named = sorted(obj.key for message in messages(event) for obj in message.objects())
    assert named == keys
    assert f"enqueued 2 object(s) from s3://{platform.bucket}/raw/" in output


def test_backfilled_objects_load_once_however_often_they_run(platform: Platform) -> None:
    # The processor handles backfill messages like S3's; a second backfill replaces, not adds.
    keys = raw_files(platform)
    platform.sqs.purge_queue(QueueUrl=platform.queue_url)
    counts = []
    for _ in range(2):
        backfill(platform)
        response = handler(platform.receive_event(), None)
        assert response == {"batchItemFailures": []}
        counts.append(platform.query("SELECT source_key, count(*) FROM taxi.trips GROUP BY 1"))
    assert counts[0] == counts[1]
    assert sorted(key for key, _ in counts[0]) == keys


def test_prefix_narrows_the_backfill(platform: Platform) -> None:
    # Only the objects under the given prefix are enqueued.
    raw_files(platform)
    platform.sqs.purge_queue(QueueUrl=platform.queue_url)
    backfill(platform, "raw/yellow/yellow_tripdata_2024")
    event = platform.receive_event()
    assert [
        json.loads(r["body"])["Records"][0]["s3"]["object"]["key"] for r in event["Records"]
    ] == ["raw/yellow/yellow_tripdata_2024-01.parquet"]


def test_prefix_outside_raw_is_refused(platform: Platform) -> None:
    # Backfilling processed/ or reports/ makes no sense: a usage error, exit 2, nothing sent.
    platform.sqs.purge_queue(QueueUrl=platform.queue_url)
    result = runner.invoke(app, ["backfill", "--bucket", platform.bucket, "--prefix", "reports/"])
    assert result.exit_code == 2
    assert "outside raw/" in result.stderr
    assert platform.receive_event() == {"Records": []}


def test_notification_encodes_keys_as_s3_does() -> None:
    # A space becomes '+', a plus becomes %2B, slashes stay: the handler decodes it back.
    body = s3_notification("b", "raw/yellow/a b+c.csv", size=1, etag="e")
    assert body["Records"][0]["s3"]["object"]["key"] == "raw/yellow/a+b%2Bc.csv"
    event = {"Records": [{"eventSource": "aws:sqs", "messageId": "1", "body": json.dumps(body)}]}
    assert [o.key for m in messages(event) for o in m.objects()] == ["raw/yellow/a b+c.csv"]


def test_dry_run_lists_the_objects_and_sends_nothing(platform: Platform) -> None:
    keys = raw_files(platform)
    platform.sqs.purge_queue(QueueUrl=platform.queue_url)
    result = runner.invoke(app, ["backfill", "--bucket", platform.bucket, "--dry-run"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[:-1] == keys
    assert result.stdout.splitlines()[-1].startswith("would enqueue 2 object(s)")
    assert platform.receive_event() == {"Records": []}


def test_nothing_matched_is_a_warning_and_exit_4(platform: Platform) -> None:
    raw_files(platform)
    args = ["backfill", "--bucket", platform.bucket, "--prefix", "raw/green/", "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 4
    assert json.loads(result.stdout)["enqueued"] == 0
    assert result.stderr.startswith("warning: no object matched")


def fake_pulumi(directory: Path, monkeypatch: pytest.MonkeyPatch, outputs: str) -> None:
    """A `pulumi` first on PATH that prints `outputs` for `stack output --json`."""
    script = directory / "pulumi"
    script.write_text(f"#!/bin/sh\ncat <<'JSON'\n{outputs}\nJSON\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ['PATH']}")


def test_stack_gives_the_bucket(
    platform: Platform, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = raw_files(platform)
    platform.sqs.purge_queue(QueueUrl=platform.queue_url)
    fake_pulumi(tmp_path, monkeypatch, json.dumps({"bucketName": platform.bucket}))
    result = runner.invoke(app, ["backfill", "-s", "dev", "--json"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.stdout)
    assert (document["bucket"], document["enqueued"], document["keys"]) == (
        platform.bucket,
        2,
        keys,
    )


def test_stack_without_the_pulumi_cli_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    result = runner.invoke(app, ["backfill", "--stack", "dev"])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert result.stderr.startswith("error: --stack needs the Pulumi CLI")
    assert "--bucket" in result.stderr


def test_bucket_or_stack_is_required() -> None:
    result = runner.invoke(app, ["backfill"])
    assert result.exit_code == 2
    assert result.stderr == "error: backfill needs --bucket BUCKET or --stack STACK\n"

"""Faults and bad input, on moto's server and PostgreSQL: each test checks what S3 and the
database hold afterwards, and that the retry (SQS redelivering the same message) converges."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import psycopg
import pytest
from botocore.awsrequest import AWSResponse

from dataplatform.demo.embedded import EmbeddedPostgres
from etl import handler as handler_module
from etl.core.errors import DataplatformError
from etl.database import APPLICATION_NAME
from etl.handler import handler
from etl.lake import INDEX_KEY
from tests.integration.conftest import (
    Platform,
    TcpProxy,
    free_port,
    parquet_bytes,
    yellow_rows,
)

OUTPUT_PREFIXES = ("processed/", "rejects/", "reports/")


def object_message_ids(event: dict[str, Any]) -> list[str]:
    """Ids of the messages that carry object notifications (not S3's test event)."""
    return [
        record["messageId"]
        for record in event["Records"]
        if "Records" in json.loads(record["body"])
    ]


def outputs(platform: Platform) -> list[str]:
    """Every key under the output prefixes that an object's processing writes: all but the
    lake's reports index, which is rewritten after every committed outcome."""
    return [key for prefix in OUTPUT_PREFIXES for key in platform.keys(prefix) if key != INDEX_KEY]


def counts(platform: Platform) -> tuple[int, int]:
    """(rows in taxi.loads, rows in taxi.trips)."""
    return (
        int(platform.scalar("SELECT count(*) FROM taxi.loads")),
        int(platform.scalar("SELECT count(*) FROM taxi.trips")),
    )


def test_database_unreachable_fails_the_message_and_writes_nothing(
    platform: Platform, pg: EmbeddedPostgres
) -> None:
    # The database is down: the message goes back to SQS, and neither S3 outputs nor rows
    # exist. When it is back at the same address, the redelivered message loads once.
    port = free_port()
    secret = {**pg.processor_secret(platform.name), "port": port}
    platform.secrets.put_secret_value(SecretId=platform.secret_arn, SecretString=json.dumps(secret))
    key = platform.put_raw("yellow_tripdata_2024-01.parquet", parquet_bytes(yellow_rows(20)))
    event = platform.receive_event()

    result = handler(event, None)

    assert result == {
        "batchItemFailures": [{"itemIdentifier": mid} for mid in object_message_ids(event)]
    }
    assert outputs(platform) == []
    assert counts(platform) == (0, 0)

    proxy = TcpProxy(port, pg.port)
    proxy.start()
    try:
        assert handler(event, None) == {"batchItemFailures": []}
    finally:
        handler_module.runtime().close()
        proxy.stop()
    assert counts(platform) == (1, 20)
    assert platform.scalar("SELECT load_count FROM taxi.loads WHERE source_key = %s", [key]) == 1
    assert len(outputs(platform)) == 4


# SECURITY DEFINER: the trigger runs in the processor's load, and its role may use nothing in
# schema public.
STALL_TRIGGER = """
CREATE SEQUENCE public.stall_once;
CREATE FUNCTION public.stall_copy() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$
BEGIN
    IF NEW.fare_amount = 777 AND nextval('public.stall_once') = 1 THEN
        PERFORM pg_sleep(60);
    END IF;
    RETURN NEW;
END $$;
CREATE TRIGGER stall_copy BEFORE INSERT ON taxi.trips
    FOR EACH ROW EXECUTE FUNCTION public.stall_copy();
"""


def test_connection_killed_in_the_middle_of_a_copy_rolls_back_and_the_retry_converges(
    platform: Platform, pg: EmbeddedPostgres
) -> None:
    # A trigger holds the COPY after half the rows (the first time only); another connection
    # terminates the processor's backend right then. Nothing of the load may survive, and the
    # redelivered message must load exactly one copy.
    rows = yellow_rows(2000)
    rows[1000]["fare_amount"] = 777.0
    key = platform.put_raw("yellow_tripdata_2024-01.parquet", parquet_bytes(rows))
    with psycopg.connect(platform.database_url, autocommit=True) as admin:
        admin.execute(STALL_TRIGGER)
    event = platform.receive_event()
    killed: list[int] = []

    def kill_when_stalled() -> None:
        with psycopg.connect(platform.database_url, autocommit=True) as admin:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and not killed:
                row = admin.execute(
                    "SELECT pid FROM pg_stat_activity WHERE application_name = %s"
                    " AND wait_event = 'PgSleep' AND query LIKE 'COPY%%'",
                    [APPLICATION_NAME],
                ).fetchone()
                if row:
                    admin.execute("SELECT pg_terminate_backend(%s)", [row[0]])
                    killed.append(row[0])
                time.sleep(0.01)

    killer = threading.Thread(target=kill_when_stalled)
    killer.start()
    result = handler(event, None)
    killer.join()

    assert killed, "the COPY was never seen in flight"
    assert result == {
        "batchItemFailures": [{"itemIdentifier": mid} for mid in object_message_ids(event)]
    }
    assert counts(platform) == (0, 0)

    assert handler(event, None) == {"batchItemFailures": []}
    assert counts(platform) == (1, 2000)
    assert platform.scalar("SELECT load_count FROM taxi.loads WHERE source_key = %s", [key]) == 1


def test_poison_object_is_quarantined_once_and_acknowledged(platform: Platform) -> None:
    # A truncated Parquet file cannot be processed at all: it is copied byte for byte to
    # quarantine/ with an error document, the message is acknowledged, and a redelivery does
    # not quarantine it again.
    body = parquet_bytes(yellow_rows(50))[:300]
    key = platform.put_raw("yellow_tripdata_2024-01.parquet", body)
    event = platform.receive_event()

    assert handler(event, None) == {"batchItemFailures": []}
    assert handler(event, None) == {"batchItemFailures": []}

    quarantined, error_key = f"quarantine/{key}", f"quarantine/{key}.error.json"
    assert platform.keys("quarantine/") == [quarantined, error_key]
    assert platform.read(quarantined) == body
    error = json.loads(platform.read(error_key))
    assert {"source", "code", "reason", "quarantined_at"} <= error.keys()
    assert (error["source"], error["code"]) == (key, "unreadable")
    versions = platform.s3.list_object_versions(Bucket=platform.bucket, Prefix="quarantine/")
    assert len(versions.get("Versions", [])) == 2
    assert outputs(platform) == []
    assert platform.query(
        "SELECT status, error_code, load_count FROM taxi.loads WHERE source_key = %s", [key]
    ) == [("quarantined", "unreadable", 1)]  # the redelivery is acknowledged before download
    assert counts(platform)[1] == 0


def s3_error(url: str, status: int, code: str) -> AWSResponse:
    """An S3 error response, as the HTTP layer would hand it to botocore."""
    body = f"<Error><Code>{code}</Code><Message>{code}</Message><RequestId>1</RequestId></Error>"
    headers: Any = {"Content-Type": "application/xml"}
    return AWSResponse(url, status, headers, _Raw(body.encode()))


class _Raw:
    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def _deny_json_reports(request: Any, **_: Any) -> AWSResponse | None:
    # What S3 answers a PutObject that a bucket policy denies.
    if "/reports/" not in request.url or not request.url.endswith(".json"):
        return None
    return s3_error(request.url, 403, "AccessDenied")


# botocore's stubs type event handlers as returning None; before-send handlers may return a
# response, which botocore then uses instead of sending the request.
DENY_JSON_REPORTS: Any = _deny_json_reports


def test_s3_write_failure_leaves_no_partial_outputs_and_the_retry_converges(
    platform: Platform,
) -> None:
    # The last output write (the JSON report) is denied: the Parquet files and the HTML page
    # already written are removed, no rows are committed, and the message is retried.
    key = platform.put_raw("yellow_tripdata_2024-01.parquet", parquet_bytes(yellow_rows(15)))
    event = platform.receive_event()
    s3_events = handler_module.runtime().s3.meta.events
    s3_events.register("before-send.s3.PutObject", DENY_JSON_REPORTS)

    result = handler(event, None)

    assert result == {
        "batchItemFailures": [{"itemIdentifier": mid} for mid in object_message_ids(event)]
    }
    assert outputs(platform) == []
    assert counts(platform) == (0, 0)

    s3_events.unregister("before-send.s3.PutObject", DENY_JSON_REPORTS)
    assert handler(event, None) == {"batchItemFailures": []}
    assert len(outputs(platform)) == 4
    assert counts(platform) == (1, 15)
    assert platform.scalar("SELECT status FROM taxi.loads WHERE source_key = %s", [key]) == "loaded"


def test_s3_throttling_is_absorbed_by_botocore_retries(platform: Platform) -> None:
    # A SlowDown (503) on the download is retried inside the invocation.
    platform.put_raw("yellow_tripdata_2024-01.parquet", parquet_bytes(yellow_rows(5)))
    event = platform.receive_event()
    throttled: list[str] = []

    def slow_down_once(request: Any, **_: Any) -> AWSResponse | None:
        if throttled or "/raw/" not in request.url:
            return None
        throttled.append(request.url)
        return s3_error(request.url, 503, "SlowDown")

    hook: Any = slow_down_once
    handler_module.runtime().s3.meta.events.register("before-send.s3.GetObject", hook)

    assert handler(event, None) == {"batchItemFailures": []}
    assert len(throttled) == 1
    assert counts(platform) == (1, 5)


def test_malformed_message_is_failed_so_that_it_reaches_the_dlq(platform: Platform) -> None:
    # Not an S3 notification: retrying cannot help, but dropping it would hide a
    # misconfiguration, so it fails until SQS moves it to the DLQ (where the alarm is).
    event = {
        "Records": [
            {"messageId": "m-1", "body": "not json", "eventSource": "aws:sqs"},
            {"messageId": "m-2", "body": json.dumps({"hello": "world"}), "eventSource": "aws:sqs"},
        ]
    }

    assert handler(event, None) == {
        "batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-2"}]
    }
    assert counts(platform) == (0, 0)


def test_one_failing_object_fails_only_its_own_message(platform: Platform) -> None:
    # Partial batch failure: the good message is acknowledged, only the bad one comes back.
    platform.put_raw("yellow_tripdata_2024-01.parquet", parquet_bytes(yellow_rows(6)))
    good = platform.receive_event()["Records"]
    bad = {
        "messageId": "broken",
        "body": json.dumps(
            {
                "Records": [
                    {
                        "eventSource": "aws:s3",
                        "eventName": "ObjectCreated:Put",
                        "s3": {"bucket": {"name": "no-such-bucket"}, "object": {"key": "raw/x"}},
                    }
                ]
            }
        ),
        "eventSource": "aws:sqs",
    }

    result = handler({"Records": [*good, bad]}, None)

    assert result == {"batchItemFailures": [{"itemIdentifier": "broken"}]}
    assert counts(platform) == (1, 6)


@pytest.mark.parametrize("event", [{"action": "dance"}, {"Records": [{"eventSource": "aws:sns"}]}])
def test_unknown_event_fails_the_invocation(platform: Platform, event: dict[str, Any]) -> None:
    # Not SQS, not S3, not migrate: a wiring mistake, reported loudly.
    with pytest.raises(DataplatformError, match="unsupported event"):
        handler(event, None)


def test_a_failed_message_is_hidden_for_its_back_off(
    platform: Platform, pg: EmbeddedPostgres, capsys: pytest.CaptureFixture[str]
) -> None:
    # Issue 14: transient faults must not burn a message's receives within a minute. The
    # received messages are made visible again at once (visibility 0); the handler sets the
    # failed one's to the back-off of its first receive, 60 s, so it stays hidden.
    secret = {**pg.processor_secret(platform.name), "port": free_port()}
    platform.secrets.put_secret_value(SecretId=platform.secret_arn, SecretString=json.dumps(secret))
    platform.put_raw("yellow_tripdata_2024-01.parquet", parquet_bytes(yellow_rows(3)))
    event = platform.receive_event()
    platform.sqs.change_message_visibility_batch(
        QueueUrl=platform.queue_url,
        Entries=[
            {"Id": str(i), "ReceiptHandle": record["receiptHandle"], "VisibilityTimeout": 0}
            for i, record in enumerate(event["Records"])
        ],
    )
    failed = object_message_ids(event)

    assert handler(event, None) == {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}

    # Only the acknowledged test event is back (nothing deleted it: no Lambda poller here).
    visible = platform.sqs.receive_message(QueueUrl=platform.queue_url, MaxNumberOfMessages=10)
    visible_ids = [message["MessageId"] for message in visible.get("Messages", [])]
    assert len(visible_ids) == 1
    assert failed[0] not in visible_ids
    delayed = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if '"retry_delayed"' in line
    ]
    assert [(line["message_id"], line["delay_s"]) for line in delayed] == [(failed[0], 60)]

"""Parsing the processor's events: SQS-wrapped S3 notifications, plain S3 events, migrate."""

from __future__ import annotations

import json
from typing import Any

import pytest

from etl.events import MalformedEvent, SourceObject, is_migrate, messages, sequencer_order


def notification(key: str, **object_fields: Any) -> dict[str, Any]:
    return {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {"bucket": {"name": "lake"}, "object": {"key": key, **object_fields}},
            }
        ]
    }


def sqs(message_id: str, body: Any) -> dict[str, Any]:
    text = body if isinstance(body, str) else json.dumps(body)
    return {"messageId": message_id, "body": text, "eventSource": "aws:sqs"}


def test_sqs_message_carries_its_id_and_the_decoded_object() -> None:
    # S3 URL-encodes keys in notifications (spaces as +): the processor needs the real key.
    body = notification(
        "raw%2Fyellow%2Fmy+file%C3%A9.parquet", versionId="v1", eTag="abc", sequencer="0A"
    )
    [message] = messages({"Records": [sqs("m-1", body)]})

    assert message.message_id == "m-1"
    assert message.objects() == [
        SourceObject(
            bucket="lake",
            key="raw/yellow/my fileé.parquet",
            event_name="ObjectCreated:Put",
            version_id="v1",
            etag="abc",
            sequencer="0A",
        )
    ]


def test_s3_test_event_names_no_object() -> None:
    # S3 sends s3:TestEvent when a notification is configured: acknowledged, nothing to do.
    body = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": "lake"}
    [message] = messages({"Records": [sqs("m-1", body)]})

    assert message.objects() == []


@pytest.mark.parametrize("body", ["not json", "[1, 2]", {"hello": "world"}])
def test_body_that_is_not_a_notification_is_malformed(body: Any) -> None:
    [message] = messages({"Records": [sqs("m-1", body)]})

    with pytest.raises(MalformedEvent):
        message.objects()


def test_record_without_bucket_is_malformed() -> None:
    body = {"Records": [{"eventSource": "aws:s3", "s3": {"object": {"key": "raw/x"}}}]}
    [message] = messages({"Records": [sqs("m-1", body)]})

    with pytest.raises(MalformedEvent, match="bucket"):
        message.objects()


def test_plain_s3_event_has_one_message_per_record_without_id() -> None:
    event = notification("raw/yellow/a.csv")
    event["Records"].append(notification("raw/green/b.csv")["Records"][0])

    parsed = messages(event)

    assert [m.message_id for m in parsed] == [None, None]
    assert [m.objects()[0].key for m in parsed] == ["raw/yellow/a.csv", "raw/green/b.csv"]


def test_removal_events_are_not_creations() -> None:
    event = notification("raw/yellow/a.csv")
    event["Records"][0]["eventName"] = "ObjectRemoved:Delete"

    [obj] = messages(event)[0].objects()

    assert not obj.created


@pytest.mark.parametrize(
    "event", [{}, {"Records": "x"}, {"Records": [{"eventSource": "aws:sns"}]}, {"action": "x"}]
)
def test_unsupported_events_are_refused(event: dict[str, Any]) -> None:
    with pytest.raises(MalformedEvent, match="unsupported event"):
        messages(event)


def test_migrate_action_is_recognised() -> None:
    assert is_migrate({"action": "migrate"})
    assert not is_migrate({"action": "migrate-later"})
    assert not is_migrate({"Records": []})


def test_sequencers_of_different_lengths_compare_as_numbers() -> None:
    # S3's rule: left-pad the shorter hex string with zeros before comparing.
    assert sequencer_order("0A") > sequencer_order("9")
    assert sequencer_order("0000000000000100") > sequencer_order("FF")
    assert sequencer_order("ff") == sequencer_order("00FF")

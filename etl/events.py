"""The events the processor receives, parsed into plain objects (no AWS calls here).

- SQS events whose message bodies are S3 event notifications (the production path: S3 → SQS →
  Lambda). A body may also be the `s3:TestEvent` S3 sends when a notification is configured.
- Plain S3 events (S3 invoking the function directly, or a person replaying one).
- `{"action": "migrate"}` (deploy-time migrations).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote_plus

from etl.contract import MIGRATE_ACTION
from etl.core.errors import DataplatformError

TEST_EVENT = "s3:TestEvent"


class MalformedEvent(DataplatformError):
    """An event or message that is not one the processor understands."""


@dataclass(frozen=True)
class SourceObject:
    """One S3 object named by an event."""

    bucket: str
    key: str
    """Decoded key (S3 URL-encodes keys in notifications, spaces as `+`)."""
    event_name: str = "ObjectCreated:Put"
    version_id: str | None = None
    etag: str | None = None
    sequencer: str | None = None
    """Orders events for the same key: a later write has a greater sequencer."""
    size: int | None = None

    @property
    def created(self) -> bool:
        """Whether the event says the object was written (not removed, restored, ...)."""
        return self.event_name.startswith("ObjectCreated:")


@dataclass(frozen=True)
class Message:
    """One unit of acknowledgement: an SQS message (with its id) or a plain S3 event record."""

    message_id: str | None
    """The SQS message id, None for plain S3 events."""
    body: Mapping[str, Any]
    """The S3 notification (parsed from the SQS body, or the S3 record itself wrapped in one)."""
    receipt_handle: str | None = None
    """SQS only: what changes the message's visibility (its retry back-off)."""
    receive_count: int = 1
    """SQS only: how many times the message has been received, this time included."""
    queue_arn: str | None = None
    """SQS only: the queue it came from."""

    def objects(self) -> list[SourceObject]:
        """The objects the notification names; empty for `s3:TestEvent`. Raises `MalformedEvent`
        for anything else that is not an S3 notification."""
        if self.body.get("Event") == TEST_EVENT:
            return []
        records = self.body.get("Records")
        if not isinstance(records, list):
            raise MalformedEvent("message body is not an S3 event notification (no Records)")
        return [_source_object(record) for record in records]


def sqs_record(message: Mapping[str, Any], queue_arn: str) -> dict[str, Any]:
    """The record Lambda's event source mapping builds from an SQS message (a ReceiveMessage
    entry): what the demo and the tests hand to the handler in an SQS event."""
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {},
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }


def is_migrate(event: Mapping[str, Any]) -> bool:
    """Whether the event asks for database migrations."""
    return event.get("action") == MIGRATE_ACTION


def messages(event: Mapping[str, Any]) -> list[Message]:
    """Split an SQS or S3 event into messages. Raises `MalformedEvent` for other events."""
    records = event.get("Records")
    if not isinstance(records, list):
        raise MalformedEvent(
            'unsupported event: expected SQS or S3 records, or {"action": "migrate"}'
        )
    result: list[Message] = []
    for record in records:
        source = record.get("eventSource") if isinstance(record, Mapping) else None
        if source == "aws:sqs":
            result.append(
                Message(
                    str(record["messageId"]),
                    _sqs_body(record),
                    receipt_handle=record.get("receiptHandle"),
                    receive_count=_receive_count(record),
                    queue_arn=record.get("eventSourceARN"),
                )
            )
        elif source == "aws:s3":
            result.append(Message(None, {"Records": [record]}))
        else:
            raise MalformedEvent(f"unsupported event source {source!r}: expected aws:sqs or aws:s3")
    return result


def _receive_count(record: Mapping[str, Any]) -> int:
    attributes = record.get("attributes")
    count = attributes.get("ApproximateReceiveCount") if isinstance(attributes, Mapping) else None
    try:
        return max(int(count), 1) if count is not None else 1
    except (TypeError, ValueError):
        return 1


def _sqs_body(record: Mapping[str, Any]) -> Mapping[str, Any]:
    try:
        body = json.loads(record.get("body") or "")
    except json.JSONDecodeError:
        return {"Malformed": "body is not JSON"}
    return body if isinstance(body, Mapping) else {"Malformed": "body is not a JSON object"}


def _source_object(record: Any) -> SourceObject:
    try:
        s3 = record["s3"]
        obj = s3["object"]
        return SourceObject(
            bucket=str(s3["bucket"]["name"]),
            key=unquote_plus(str(obj["key"])),
            event_name=str(record.get("eventName", "ObjectCreated:Put")),
            version_id=obj.get("versionId") or None,
            etag=obj.get("eTag") or None,
            sequencer=obj.get("sequencer") or None,
            size=obj.get("size"),
        )
    except (KeyError, TypeError) as error:
        raise MalformedEvent(f"S3 event record lacks {error}") from None


def sequencer_order(sequencer: str) -> str:
    """A sort key for S3 sequencers: hex strings of varying length, compared after left-padding
    with zeros (as S3's documentation prescribes)."""
    return sequencer.upper().rjust(64, "0")

"""Backfill: enqueue every existing raw object again, one message per object.

The scale-out path for reprocessing (new rules, a fixed bug, a restored database): the queue fans
the messages out to as many function instances as the reserved concurrency allows, and each load
replaces its object's earlier rows, so a backfill converges however often it runs. Messages carry
the same S3 notification shape S3 itself sends, without a version or sequencer: the processor
reads the object's current version and never treats a replay as superseded.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

from etl.contract import RAW_PREFIX
from etl.core.errors import DataplatformError, UsageError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

SQS_BATCH = 10
"""SendMessageBatch's maximum number of entries."""


class BackfillError(DataplatformError):
    """The backfill cannot find its queue or objects."""


@dataclass(frozen=True)
class BackfillResult:
    """What a backfill enqueued."""

    queue_url: str
    enqueued: int


def s3_notification(bucket: str, key: str, *, size: int, etag: str) -> dict[str, Any]:
    """An S3 `ObjectCreated` notification for one object, as S3 writes it to a queue (keys are
    form-encoded: a space becomes `+`)."""
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "eventTime": datetime.now(UTC).isoformat(timespec="milliseconds"),
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "configurationId": "dataplatform-backfill",
                    "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
                    "object": {"key": quote_plus(key, safe="/"), "size": size, "eTag": etag},
                },
            }
        ]
    }


def raw_objects(s3: S3Client, bucket: str, prefix: str) -> Iterator[dict[str, Any]]:
    """Every object under `prefix` (which must lie in raw/), in key order, folders skipped."""
    if not prefix.startswith(RAW_PREFIX):
        raise UsageError(
            f"prefix {prefix!r} is outside {RAW_PREFIX}: only raw objects are processed"
        )
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            if not item["Key"].endswith("/"):
                yield dict(item)


def notification_queue_url(s3: S3Client, sqs: SQSClient, bucket: str) -> str:
    """The queue the bucket notifies about raw/ objects (read from its notification setup)."""
    configuration = s3.get_bucket_notification_configuration(Bucket=bucket)
    arns = [entry["QueueArn"] for entry in configuration.get("QueueConfigurations", [])]
    if len(arns) != 1:
        raise BackfillError(
            f"bucket {bucket} notifies {len(arns)} queues: pass --queue-url to choose one"
        )
    _, _, _, _, account, name = arns[0].split(":", 5)
    return sqs.get_queue_url(QueueName=name, QueueOwnerAWSAccountId=account)["QueueUrl"]


def backfill(
    s3: S3Client, sqs: SQSClient, bucket: str, prefix: str, queue_url: str | None = None
) -> BackfillResult:
    """Send one notification per raw object under `prefix` to the processor's queue."""
    queue = queue_url or notification_queue_url(s3, sqs, bucket)
    batch: list[SendMessageBatchRequestEntryTypeDef] = []
    enqueued = 0
    for item in raw_objects(s3, bucket, prefix):
        body = s3_notification(bucket, item["Key"], size=item["Size"], etag=item["ETag"].strip('"'))
        batch.append({"Id": str(len(batch)), "MessageBody": json.dumps(body)})
        if len(batch) == SQS_BATCH:
            enqueued += _send(sqs, queue, batch)
            batch = []
    if batch:
        enqueued += _send(sqs, queue, batch)
    return BackfillResult(queue_url=queue, enqueued=enqueued)


def _send(
    sqs: SQSClient, queue_url: str, entries: list[SendMessageBatchRequestEntryTypeDef]
) -> int:
    response = sqs.send_message_batch(QueueUrl=queue_url, Entries=entries)
    failed = response.get("Failed", [])
    if failed:
        raise BackfillError(
            f"{len(failed)} message(s) were not enqueued ({failed[0].get('Message', '')}): "
            "run the backfill again, loads are idempotent"
        )
    return len(entries)

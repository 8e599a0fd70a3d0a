"""Backfill: enqueue every existing raw object again, one message per object.

The scale-out path for reprocessing (new rules, a fixed bug, a restored database): the queue fans
the messages out to as many function instances as the reserved concurrency allows, and each load
replaces its object's earlier rows, so a backfill converges however often it runs. Messages carry
the same S3 notification shape S3 itself sends, without a version or sequencer: the processor
reads the object's current version and never treats a replay as superseded.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

from dataplatform.errors import PULUMI_INSTALL_HINT
from etl.contract import RAW_PREFIX
from etl.core.errors import DataplatformError, UsageError

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient
    from mypy_boto3_sqs.type_defs import SendMessageBatchRequestEntryTypeDef

SQS_BATCH = 10
"""SendMessageBatch's maximum number of entries."""


NOTHING_MATCHED_EXIT = 4
"""`dataplatform backfill`'s exit status when no raw object matched the prefix (a typo, or an
empty lake): nothing failed, but nothing will be processed either, and a script should notice."""


class BackfillError(DataplatformError):
    """The backfill cannot find its queue or objects."""


class StackOutputsError(DataplatformError):
    """The stack's outputs cannot be read (Pulumi CLI missing, stack not deployed)."""


@dataclass(frozen=True)
class BackfillResult:
    """What a backfill enqueued (or, in a dry run, would enqueue)."""

    queue_url: str
    enqueued: int
    dry_run: bool = False
    keys: list[str] = field(default_factory=list)
    """The raw objects' keys, in order."""

    def as_dict(self) -> dict[str, Any]:
        """The result as `--json` prints it."""
        return {
            "queue_url": self.queue_url,
            "enqueued": self.enqueued,
            "dry_run": self.dry_run,
            "keys": self.keys,
        }


def stack_outputs(stack: str, cwd: str | None = None) -> dict[str, Any]:
    """`pulumi stack output --json -s STACK`, run in `cwd` (the project directory)."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise StackOutputsError(
            f"--stack needs the Pulumi CLI (`pulumi`), which is not on PATH: {PULUMI_INSTALL_HINT}"
            " (or pass --bucket)"
        )
    result = subprocess.run(
        [pulumi, "stack", "output", "--json", "--stack", stack, "--non-interactive"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
        cwd=cwd,
    )
    if result.returncode != 0:
        lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        detail = lines[-1].strip() if lines else f"exit status {result.returncode}"
        raise StackOutputsError(
            f"cannot read the outputs of stack {stack!r}: {detail} "
            "(run from the project directory, logged in to its backend, or pass --bucket)"
        )
    try:
        outputs = json.loads(result.stdout or "{}")
    except json.JSONDecodeError:
        raise StackOutputsError(f"pulumi printed no JSON outputs for stack {stack!r}") from None
    return outputs if isinstance(outputs, dict) else {}


def bucket_of_stack(outputs: dict[str, Any], stack: str) -> str:
    """The lake bucket among a stack's outputs (`bucketName`, exported by __main__.py)."""
    bucket = outputs.get("bucketName")
    if not isinstance(bucket, str) or not bucket:
        raise StackOutputsError(
            f"stack {stack!r} has no bucketName output: deploy it first (`pulumi up -s {stack}`)"
        )
    return bucket


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
    s3: S3Client,
    sqs: SQSClient,
    bucket: str,
    prefix: str,
    queue_url: str | None = None,
    *,
    dry_run: bool = False,
) -> BackfillResult:
    """Send one notification per raw object under `prefix` to the processor's queue; with
    `dry_run`, only list the objects that would be sent."""
    queue = queue_url or notification_queue_url(s3, sqs, bucket)
    if dry_run:
        keys = [item["Key"] for item in raw_objects(s3, bucket, prefix)]
        return BackfillResult(queue_url=queue, enqueued=0, dry_run=True, keys=keys)
    batch: list[SendMessageBatchRequestEntryTypeDef] = []
    enqueued = 0
    keys = []
    for item in raw_objects(s3, bucket, prefix):
        keys.append(item["Key"])
        body = s3_notification(bucket, item["Key"], size=item["Size"], etag=item["ETag"].strip('"'))
        batch.append({"Id": str(len(batch)), "MessageBody": json.dumps(body)})
        if len(batch) == SQS_BATCH:
            enqueued += _send(sqs, queue, batch)
            batch = []
    if batch:
        enqueued += _send(sqs, queue, batch)
    return BackfillResult(queue_url=queue, enqueued=enqueued, keys=keys)


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

"""Back-off for messages the processor fails (the platform failed: S3, Secrets Manager or
PostgreSQL). A failed message is not left to reappear after the queue's full visibility
timeout, nor hammered: its visibility is set to `backoff_seconds(receive count)`, doubling from
`BASE_DELAY_SECONDS` up to `MAX_DELAY_SECONDS`. With the stacks' `processorMaxReceiveCount` of 5
a message is tried five times over at least 1 + 2 + 4 + 8 = 15 minutes before it moves to the
dead-letter queue: long enough for a database restart, a failover, an S3 brown-out or a password
rotation, which a burst of retries within one minute was not.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from etl.core.errors import first_line
from etl.events import Message

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

BASE_DELAY_SECONDS = 60
"""The wait after a message's first failed receive."""
MAX_DELAY_SECONDS = 900
"""The longest wait between two receives (SQS allows up to 12 hours)."""

_log = logging.getLogger("dataplatform.processor")


def backoff_seconds(receive_count: int) -> int:
    """How long a message that failed on its `receive_count`-th receive stays invisible."""
    exponent = min(max(receive_count, 1) - 1, 16)
    return min(BASE_DELAY_SECONDS << exponent, MAX_DELAY_SECONDS)


def queue_url(queue_arn: str) -> str:
    """The URL of the queue `arn:aws:sqs:<region>:<account>:<name>` (SQS reads the queue from
    the URL's path, so this also addresses moto's server and LocalStack)."""
    _, partition, _, region, account, name = queue_arn.split(":", 5)
    domain = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"
    return f"https://sqs.{region}.{domain}/{account}/{name}"


def delay_retries(sqs: SQSClient, failed: list[Message]) -> None:
    """Set each failed SQS message's visibility to its back-off. Best effort: if SQS refuses,
    the message reappears after the queue's visibility timeout instead."""
    for message in failed:
        if message.receipt_handle is None or message.queue_arn is None:
            continue
        delay = backoff_seconds(message.receive_count)
        fields = {"event": "retry_delayed", "message_id": message.message_id}
        try:
            sqs.change_message_visibility(
                QueueUrl=queue_url(message.queue_arn),
                ReceiptHandle=message.receipt_handle,
                VisibilityTimeout=delay,
            )
        except Exception as error:  # the retry still happens, only later
            _log.warning(
                "could not delay the retry; the queue's visibility timeout applies",
                extra={"fields": {**fields, "error": first_line(error)}},
            )
            continue
        _log.info(
            "message retry delayed",
            extra={"fields": {**fields, "receive_count": message.receive_count, "delay_s": delay}},
        )

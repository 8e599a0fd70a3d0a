"""Retry back-off for failed messages: the numbers docs/processor.md promises."""

from __future__ import annotations

import pytest

from etl.events import messages
from etl.retry import BASE_DELAY_SECONDS, MAX_DELAY_SECONDS, backoff_seconds, queue_url


@pytest.mark.parametrize(
    ("receive_count", "delay"),
    [(0, 60), (1, 60), (2, 120), (3, 240), (4, 480), (5, 900), (40, 900)],
)
def test_back_off_doubles_from_a_minute_up_to_fifteen(receive_count: int, delay: int) -> None:
    assert backoff_seconds(receive_count) == delay


def test_five_receives_span_at_least_fifteen_minutes() -> None:
    # With processorMaxReceiveCount 5 (dev and prod), four back-offs pass before the DLQ.
    assert sum(backoff_seconds(n) for n in range(1, 5)) == 15 * 60
    assert (BASE_DELAY_SECONDS, MAX_DELAY_SECONDS) == (60, 900)


@pytest.mark.parametrize(
    ("arn", "url"),
    [
        (
            "arn:aws:sqs:us-east-1:123456789012:dp-dev-processor",
            "https://sqs.us-east-1.amazonaws.com/123456789012/dp-dev-processor",
        ),
        (
            "arn:aws-cn:sqs:cn-north-1:123456789012:q",
            "https://sqs.cn-north-1.amazonaws.com.cn/123456789012/q",
        ),
    ],
)
def test_queue_url_from_its_arn(arn: str, url: str) -> None:
    assert queue_url(arn) == url


def test_sqs_records_carry_what_the_back_off_needs() -> None:
    record = {
        "eventSource": "aws:sqs",
        "messageId": "m-1",
        "receiptHandle": "handle",
        "body": "{}",
        "attributes": {"ApproximateReceiveCount": "3"},
        "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:q",
    }
    (message,) = messages({"Records": [record]})
    assert (message.receipt_handle, message.receive_count, message.queue_arn) == (
        "handle",
        3,
        "arn:aws:sqs:us-east-1:123456789012:q",
    )
    (without,) = messages({"Records": [{**record, "attributes": {}}]})
    assert without.receive_count == 1

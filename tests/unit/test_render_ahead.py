"""`etl.loader.ahead`: items computed by a thread a bounded number ahead of the consumer."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from etl.loader import ahead


def test_items_arrive_in_order_and_all_of_them() -> None:
    assert list(ahead(iter(range(1000)), 3)) == list(range(1000))


def test_the_producer_runs_at_most_depth_items_ahead() -> None:
    made: list[int] = []

    def items() -> Iterator[int]:
        for item in range(100):
            made.append(item)
            yield item

    consumer = ahead(items(), 2)
    assert next(consumer) == 0
    time.sleep(0.2)
    # One handed over, two queued, one made and waiting for a free slot.
    assert len(made) <= 4
    consumer.close()


def test_an_error_in_the_producer_is_raised_to_the_consumer() -> None:
    def items() -> Iterator[int]:
        yield 1
        raise ValueError("render failed")

    consumer = ahead(items(), 2)
    assert next(consumer) == 1
    with pytest.raises(ValueError, match="render failed"):
        next(consumer)


def test_a_consumer_that_stops_early_stops_the_producer() -> None:
    def items() -> Iterator[int]:
        yield from range(10_000_000)

    before = threading.active_count()
    consumer = ahead(items(), 2)
    assert next(consumer) == 0
    consumer.close()
    assert threading.active_count() == before

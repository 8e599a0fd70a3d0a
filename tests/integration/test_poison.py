"""Poison messages (issue 14): content that once crashed the ETL made the processor fail its
message, so SQS redelivered it until the DLQ, paying a Lambda run per receive. Every such input
is now acknowledged on its first delivery: loaded, or quarantined with a reason."""

from __future__ import annotations

import io
from collections.abc import Callable

import polars as pl
import pytest

from etl.core import transform
from etl.handler import handler
from tests.integration.conftest import SAMPLE_CSV, Platform, parquet_bytes, yellow_rows
from tests.tlc import with_negative_value_count


def _sample_with(change: Callable[[list[str]], list[str]]) -> bytes:
    return ("\n".join(change(SAMPLE_CSV.read_text().splitlines())) + "\n").encode()


def _parquet_with(**columns: pl.Expr) -> bytes:
    frame = pl.read_parquet(io.BytesIO(parquet_bytes(yellow_rows(3))))
    buffer = io.BytesIO()
    frame.with_columns(**columns).write_parquet(buffer)
    return buffer.getvalue()


def _collide(lines: list[str]) -> list[str]:
    return [lines[0] + ",source_row,raw_line,reject_reason"] + [
        line + ",1,x,mine" for line in lines[1:]
    ]


def _bare_cr(lines: list[str]) -> list[str]:
    return [lines[0], lines[1].replace(",N,", ',"N",').replace(",238,", ",2\r38,"), *lines[2:]]


CSV = "yellow_tripdata_2020-07.csv"
PARQUET = "yellow_tripdata_2024-01.parquet"
FARE_TEXT = pl.col("fare_amount").cast(pl.String)
CASES: dict[str, tuple[str, Callable[[], bytes], str | None]] = {
    # case: (file name, content, quarantine code or None for loaded)
    "cr-line-endings": (CSV, lambda: SAMPLE_CSV.read_bytes().replace(b"\n", b"\r"), None),
    "bare-cr-in-quoted-line": (CSV, lambda: _sample_with(_bare_cr), None),
    "own-column-names-csv": (CSV, lambda: _sample_with(_collide), None),
    "own-column-names-parquet": (
        PARQUET,
        lambda: _parquet_with(
            source_row=pl.lit(1), raw_line=pl.lit("x"), reject_reason=pl.lit("mine")
        ),
        None,
    ),
    "categorical-number": (
        PARQUET,
        lambda: _parquet_with(fare_amount=FARE_TEXT.cast(pl.Categorical)),
        None,
    ),
    "binary-number": (PARQUET, lambda: _parquet_with(fare_amount=FARE_TEXT.cast(pl.Binary)), None),
    "struct-number": (
        PARQUET,
        lambda: _parquet_with(fare_amount=pl.struct("fare_amount")),
        "unsupported_type",
    ),
    # Polars aborted the process on this one (a failed 2**61-byte allocation): no retry helps.
    "negative-page-value-count": (
        PARQUET,
        lambda: with_negative_value_count(pl.read_parquet(io.BytesIO(_parquet_with())).to_arrow()),
        "unreadable",
    ),
}


def _load(platform: Platform, key: str) -> tuple[str, str | None]:
    status, code = platform.query(
        "SELECT status, error_code FROM taxi.loads WHERE source_key = %s", [key]
    )[0]
    return status, code


def test_inputs_that_crashed_are_acknowledged_on_first_delivery(platform: Platform) -> None:
    # Each of the input classes, all in one batch as SQS would deliver them: no message
    # is failed, every object is loaded or quarantined the first time it is seen.
    keys = {
        case: platform.put_raw(f"poison/{case}/{name}", body())
        for case, (name, body, _) in CASES.items()
    }
    event = platform.receive_event()
    assert len(event["Records"]) == len(CASES) + 1  # and the s3:TestEvent

    assert handler(event, None) == {"batchItemFailures": []}

    for case, (_, _, code) in CASES.items():
        key = keys[case]
        if code is None:
            assert _load(platform, key) == ("loaded", None), case
            assert (
                int(platform.scalar("SELECT count(*) FROM taxi.trips WHERE source_key = %s", [key]))
                > 0
            ), case
        else:
            assert _load(platform, key) == ("quarantined", code), case
            assert platform.read(f"quarantine/{key}") == platform.read(key)


def test_an_unforeseen_etl_failure_is_quarantined_not_retried(
    platform: Platform, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Whatever else goes wrong inside the ETL is the content's doing as far as the processor
    # can tell: internal_error, quarantined, acknowledged; a retry would fail the same way.
    def broken(frame: pl.LazyFrame) -> pl.LazyFrame:
        raise ZeroDivisionError("a bug no rule names")

    monkeypatch.setattr(transform, "derive", broken)
    key = platform.put_raw(PARQUET, parquet_bytes(yellow_rows(3)))

    assert handler(platform.receive_event(), None) == {"batchItemFailures": []}

    assert _load(platform, key) == ("quarantined", "internal_error")
    error = platform.read(f"quarantine/{key}.error.json").decode()
    assert "ZeroDivisionError: a bug no rule names" in error
    assert platform.keys("processed/") == []

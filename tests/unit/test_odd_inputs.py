"""Odd inputs that used to crash the ETL (issue 14): each is processed, or quarantined with a
reason, and never raises anything but `UnprocessableInput`."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from etl.core import transform
from etl.core.errors import UnprocessableInput
from etl.core.pipeline import process_file
from tests.tlc import write_csv, write_parquet, yellow_trip

NAME = "yellow_tripdata_2024-01"
OWN_COLUMNS = ("source_row", "raw_line", "reject_reason")


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_input_columns_named_like_the_rejects_own_are_kept_as_input_names(
    tmp_path: Path, fmt: str
) -> None:
    # Issue 14, case 3: input columns called source_row, raw_line or reject_reason made the
    # rejects step raise DuplicateError. They are kept as input_<name> (input_input_<name> if
    # that is taken too), and the report says so.
    extra = {"source_row": 7, "raw_line": "x", "reject_reason": "mine", "input_source_row": 8}
    rows = [yellow_trip(**extra), yellow_trip(VendorID=9, **extra)]
    if fmt == "csv":
        header = ",".join(rows[0])
        lines = [",".join(str(value) for value in row.values()) for row in rows]
        source = write_csv(tmp_path, f"{NAME}.csv", [header, *lines])
    else:
        source = write_parquet(
            tmp_path,
            f"{NAME}.parquet",
            rows,
            schema={"raw_line": pl.String(), "reject_reason": pl.String()},
        )
    result = process_file(source)
    assert result.clean.height == 1
    rejects = result.rejects
    assert rejects.get_column("reject_reason").to_list() == ["invalid_vendor"]
    assert rejects.get_column("source_row").to_list() == [1]
    assert rejects.get_column("input_reject_reason").cast(pl.String).to_list() == ["mine"]
    assert rejects.get_column("input_raw_line").cast(pl.String).to_list() == ["x"]
    assert rejects.get_column("input_input_source_row").cast(pl.Int64).to_list() == [7]
    assert rejects.get_column("input_source_row").cast(pl.Int64).to_list() == [8]
    assert result.report["schema"]["renamed_in_rejects"] == {
        "source_row": "input_input_source_row",
        "raw_line": "input_raw_line",
        "reject_reason": "input_reject_reason",
    }


def _with_fare(tmp_path: Path, fare: pl.Expr) -> Path:
    frame = pl.DataFrame(
        [yellow_trip(), yellow_trip(fare_amount="abc")], schema_overrides={"fare_amount": pl.String}
    )
    path = tmp_path / f"{NAME}.parquet"
    frame.with_columns(fare.alias("fare_amount")).write_parquet(path)
    return path


@pytest.mark.parametrize(
    "fare",
    [
        pl.col("fare_amount").cast(pl.Categorical),
        pl.col("fare_amount").cast(pl.Enum(["14.2", "abc"])),
        pl.col("fare_amount").cast(pl.Binary),
    ],
    ids=["categorical", "enum", "binary"],
)
def test_numbers_stored_as_encoded_text_are_read_as_text(tmp_path: Path, fare: pl.Expr) -> None:
    # Issue 14, case 4: a numeric column stored as dictionary-encoded text or as bytes raised
    # InvalidOperationError/ComputeError. It is read like text: numbers parse, the rest is
    # unparseable_value, and the reject keeps the column as stored.
    result = process_file(_with_fare(tmp_path, fare))
    assert result.clean.get_column("fare_amount").to_list() == [14.2]
    assert result.rejects.get_column("reject_reason").to_list() == ["unparseable_value"]
    assert (
        result.rejects.schema["fare_amount"]
        == pl.read_parquet_schema(tmp_path / f"{NAME}.parquet")["fare_amount"]
    )


def test_bytes_that_are_not_utf8_are_unparseable_values(tmp_path: Path) -> None:
    result = process_file(_with_fare(tmp_path, pl.lit(pl.Series([b"14.2", b"\xff1"]))))
    assert result.clean.height == 1
    assert result.rejects.get_column("reject_reason").to_list() == ["unparseable_value"]


@pytest.mark.parametrize(
    "fare",
    [
        pl.struct(pl.col("fare_amount")),
        pl.concat_list(pl.col("fare_amount")),
        pl.col("fare_amount") == "abc",
    ],
    ids=["struct", "list", "boolean"],
)
def test_a_column_of_a_type_that_cannot_hold_its_values_quarantines_the_file(
    tmp_path: Path, fare: pl.Expr
) -> None:
    # Issue 14, case 5: a numeric column stored as a struct crashed. A type that cannot hold a
    # number at all is a fault of the whole file: quarantined, naming the column and its type.
    with pytest.raises(UnprocessableInput) as raised:
        process_file(_with_fare(tmp_path, fare))
    assert raised.value.code == "unsupported_type"
    assert raised.value.reason.startswith("column fare_amount is stored as ")
    assert "must be a number or text" in raised.value.reason


def test_unexpected_nested_columns_are_kept_in_the_rejects(tmp_path: Path) -> None:
    # A column no rule reads may have any type; it travels with its rows into the rejects.
    frame = pl.DataFrame([yellow_trip(), yellow_trip(), yellow_trip(VendorID=9)])
    path = tmp_path / f"{NAME}.parquet"
    frame.with_columns(
        tags=pl.concat_list(pl.col("VendorID")), notes=pl.struct(pl.col("VendorID"))
    ).write_parquet(path)
    result = process_file(path)
    assert result.clean.height == 1
    assert result.rejects.get_column("reject_reason").to_list() == [
        "duplicate_row",
        "invalid_vendor",
    ]
    assert result.rejects.get_column("tags").to_list() == [[2], [9]]


def test_an_unforeseen_failure_is_an_internal_error_with_its_first_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The boundary: whatever goes wrong while a file's content is processed ends as
    # UnprocessableInput (quarantine), code internal_error, carrying the error's first line.
    def broken(frame: pl.LazyFrame) -> pl.LazyFrame:
        raise ValueError("no rule for this\nsecond line of detail")

    monkeypatch.setattr(transform, "derive", broken)
    source = write_parquet(tmp_path, f"{NAME}.parquet", [yellow_trip()])
    with pytest.raises(UnprocessableInput) as raised:
        process_file(source)
    assert raised.value.code == "internal_error"
    assert "ValueError: no rule for this" in raised.value.reason
    assert "second line" not in raised.value.reason
    assert isinstance(raised.value.__cause__, ValueError)


def test_memory_errors_are_not_the_files_fault(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Running out of memory says nothing about the content: it is left for a retry.
    def exhausted(frame: pl.LazyFrame) -> pl.LazyFrame:
        raise MemoryError

    monkeypatch.setattr(transform, "derive", exhausted)
    with pytest.raises(MemoryError):
        process_file(write_parquet(tmp_path, f"{NAME}.parquet", [yellow_trip()]))

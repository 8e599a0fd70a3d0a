"""Odd inputs that used to crash the ETL (issue 14): each is processed, or quarantined with a
reason, and never raises anything but `UnprocessableInput`."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

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

"""`write_outputs`: what lands on disk is exactly the result, however it is streamed."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from dataplatform.demo.synthetic import yellow_month
from dataplatform.local_sink import write_outputs
from etl.core import transform
from etl.core.naming import Month
from etl.core.pipeline import CLEAN_WRITE_CHUNK_ROWS, process_file
from etl.core.specs import DERIVED_COLUMNS


def test_a_file_larger_than_a_write_chunk_is_written_whole_and_in_order(tmp_path: Path) -> None:
    # The clean rows stream to Parquet in chunks: every clean row arrives, in input order, and
    # the caller's Polars settings are as they were before.
    month = yellow_month(Month(2024, 1), rows=3 * CLEAN_WRITE_CHUNK_ROWS)
    path = tmp_path / "yellow_tripdata_2024-01.parquet"
    month.write_parquet(path)
    settings_before = pl.Config.state()
    result = process_file(path)
    paths = write_outputs(result, tmp_path / "out")
    written = pl.read_parquet(paths.clean)
    assert result.report["rows_clean"] > 2 * CLEAN_WRITE_CHUNK_ROWS
    assert written.equals(result.clean)
    assert pl.Config.state() == settings_before


def test_derived_columns_are_not_held_but_every_clean_output_has_them(tmp_path: Path) -> None:
    # The validated rows (held until the load ends) keep no derived column; the Parquet file,
    # the load's batches and `clean` derive them again, with the values `derive` gives.
    path = tmp_path / "yellow_tripdata_2024-01.parquet"
    yellow_month(Month(2024, 1), rows=5_000).write_parquet(path)
    result = process_file(path)
    assert not set(DERIVED_COLUMNS) & set(result.validated.columns)
    canonical = result.clean.drop(list(DERIVED_COLUMNS))
    expected = canonical.lazy().pipe(transform.derive).collect().select(result.clean.columns)
    assert result.clean.equals(expected)
    assert pl.concat(result.clean_batches(1_000)).equals(result.clean)
    written = pl.read_parquet(write_outputs(result, tmp_path / "out").clean)
    derived = list(DERIVED_COLUMNS)
    assert written.select(derived).equals(result.clean.select(derived))
    assert set(DERIVED_COLUMNS) <= set(result.populated_columns())

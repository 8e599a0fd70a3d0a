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


def test_code_columns_are_held_as_enums_and_written_as_the_text_they_were(tmp_path: Path) -> None:
    # A flag is held as one byte, not a 16-byte text view; the clean rows get their text back,
    # and a rejected row keeps the value it was read with, whatever the held column says.
    month = yellow_month(Month(2024, 1), rows=2_000).with_columns(
        pl.when(pl.int_range(pl.len()) % 3 == 0)
        .then(pl.lit("Y"))
        .when(pl.int_range(pl.len()) % 3 == 1)
        .then(pl.lit("N"))
        .otherwise(pl.lit(None, pl.String))
        .alias("store_and_fwd_flag")
    )
    month[7, "store_and_fwd_flag"] = "X"
    path = tmp_path / "yellow_tripdata_2024-01.parquet"
    month.write_parquet(path)
    result = process_file(path)
    assert isinstance(result.validated.schema["store_and_fwd_flag"], pl.Enum)
    assert result.clean.schema["store_and_fwd_flag"] == pl.String
    clean = result.validated.get_column(transform.REJECT_CODE).is_null()
    read = month.get_column("store_and_fwd_flag").filter(clean)
    assert result.clean.get_column("store_and_fwd_flag").equals(read)
    assert read.drop_nulls().n_unique() == 2
    rejected = result.rejects.filter(pl.col("store_and_fwd_flag") == "X")
    assert rejected.get_column("reject_reason").to_list() == ["invalid_store_and_fwd_flag"]
    written = pl.read_parquet(write_outputs(result, tmp_path / "out").clean)
    assert written.get_column("store_and_fwd_flag").equals(
        result.clean.get_column("store_and_fwd_flag")
    )

"""The catalog's tables match what the ETL writes: for every dataset and vintage in the test data,
the Parquet files of processed/, rejects/ and master/ against the Glue tables the program
registers (column names, order and the types Athena reads them as)."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from dataplatform import catalog
from dataplatform.demo.samples import YELLOW_2020_07
from dataplatform.mocks import ProgramRun
from etl.core.master_data import master_tables
from etl.core.pipeline import process_file
from etl.lake import Lake
from tests.infra.support import inputs
from tests.tlc import green_trip, write_parquet, yellow_trip
from tests.unit.test_drift import VARIANTS, YELLOW_2009, YELLOW_2009_TYPES

TABLE = "aws:glue/catalogTable:CatalogTable"


def athena_type(arrow: pa.DataType) -> str:
    """The type Athena (engine 3) reads a Parquet column of this Arrow type as (Athena User
    Guide, "Data types in Amazon Athena"; unsigned integers widen to the next signed type)."""
    if pa.types.is_timestamp(arrow):
        return "timestamp"
    names = {
        pa.bool_(): "boolean",
        pa.int8(): "tinyint",
        pa.int16(): "smallint",
        pa.int32(): "int",
        pa.int64(): "bigint",
        pa.uint8(): "smallint",
        pa.uint16(): "int",
        pa.uint32(): "bigint",
        pa.float32(): "float",
        pa.float64(): "double",
        pa.string(): "string",
        pa.large_string(): "string",
        pa.string_view(): "string",
        pa.date32(): "date",
    }
    return names[arrow]


def parquet_columns(path: Path) -> list[tuple[str, str]]:
    return [(field.name, athena_type(field.type)) for field in pq.read_schema(path)]


def table_columns(run: ProgramRun, name: str) -> list[tuple[str, str]]:
    table = run.one(TABLE, f"catalog-table-{name}")
    return [(c["name"], c["type"]) for c in inputs(table)["storageDescriptor"]["columns"]]


def _inputs(directory: Path) -> list[tuple[str, Path]]:
    """One file per dataset and vintage of the test data, each with a clean and a bad row."""
    bad_vendor = {"VendorID": 3}
    cases: list[tuple[str, str, list[dict[str, Any]], dict[str, Any] | None]] = [
        (
            f"yellow-{index}",
            "yellow_tripdata_2024-01.parquet",
            [yellow_trip(**changes), yellow_trip(**changes, **bad_vendor)],
            types or None,
        )
        for index, (_, changes, types) in enumerate(VARIANTS)
    ]
    cases.append(
        (
            "yellow-2009",
            "yellow_tripdata_2009-01.parquet",
            [YELLOW_2009, {**YELLOW_2009, "vendor_name": "DDS"}],
            YELLOW_2009_TYPES,
        )
    )
    cases.append(
        ("green", "green_tripdata_2024-01.parquet", [green_trip(), green_trip(**bad_vendor)], None)
    )
    files = [("yellow", YELLOW_2020_07)]
    for folder, name, rows, types in cases:
        (directory / folder).mkdir()
        files.append((name.split("_", 1)[0], write_parquet(directory / folder, name, rows, types)))
    return files


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, str, Path, Path]]:
    """(dataset, input name, clean Parquet, rejects Parquet) as the processor writes them."""
    directory = tmp_path_factory.mktemp("catalog-schema")
    outputs = []
    for dataset, path in _inputs(directory):
        result = process_file(path)
        assert result.clean.height, path
        assert result.rejects.height, path
        clean, rejects = path.with_suffix(".clean.parquet"), path.with_suffix(".rejects.parquet")
        # The two calls `etl.lake.Lake.write_outputs` makes.
        result.write_clean(clean)
        result.rejects.write_parquet(rejects)
        outputs.append((dataset, f"{path.parent.name}/{path.name}", clean, rejects))
    return outputs


def test_every_vintage_writes_exactly_its_dataset_tables_columns(
    dev_run: ProgramRun, written: list[tuple[str, str, Path, Path]]
) -> None:
    # Rule: Athena reads every clean file of a dataset with the table's schema, column for column.
    assert {dataset for dataset, *_ in written} == {"yellow", "green"}
    for dataset, name, clean, _ in written:
        assert parquet_columns(clean) == table_columns(dev_run, f"{dataset}_trips"), name


def test_every_rejects_file_holds_the_rejects_tables_columns(
    dev_run: ProgramRun, written: list[tuple[str, str, Path, Path]]
) -> None:
    # Rule: the columns the rejects table declares are in every rejects file, with its types
    # (the input columns beside them differ per vintage and are read by name, not declared).
    declared = table_columns(dev_run, "rejects")
    assert [name for name, _ in declared] == ["source_row", "raw_line", "reject_reason"]
    for _, name, _, rejects in written:
        found = dict(parquet_columns(rejects))
        assert [(column, found.get(column)) for column, _ in declared] == declared, name


class _Uploads:
    """An S3 client that keeps what `Lake.write_master_data` uploads."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.keys: dict[str, Path] = {}

    def upload_file(self, filename: str, bucket: str, key: str, **_: Any) -> None:
        target = self.directory / key.replace("/", "_")
        shutil.copyfile(filename, target)
        self.keys[key] = target


def test_master_data_files_match_their_tables(dev_run: ProgramRun, tmp_path: Path) -> None:
    # Rule: the migration's master data Parquet is what the zones and code tables declare,
    # at the prefix each table reads.
    uploads = _Uploads(tmp_path)
    work = tmp_path / "work"
    work.mkdir()
    written = Lake(uploads).write_master_data("lake", master_tables(), work)  # type: ignore[arg-type]
    assert set(written) == {"zones", "vendors", "rate_codes", "payment_types", "trip_types"}
    bucket = str(dev_run.one("aws:s3/bucket:Bucket", "lake-bucket").outputs["bucket"])
    for table, key in written.items():
        assert parquet_columns(uploads.keys[key]) == table_columns(dev_run, table), table
        location = inputs(dev_run.one(TABLE, f"catalog-table-{table}"))["storageDescriptor"]
        assert f"s3://{bucket}/{key}".startswith(location["location"]), table


def test_the_committed_table_document_is_generated_from_the_etl() -> None:
    # Rule: one source of truth: components/catalog_tables.json is what the ETL's specs give
    # (fix: uv run python -m dataplatform.catalog).
    assert catalog.DOCUMENT.read_text() == catalog.render()


def test_a_type_the_catalog_cannot_declare_is_refused() -> None:
    # The generator fails loudly rather than guessing a Glue type.
    with pytest.raises(ValueError, match="no Glue type"):
        catalog.hive_type(pl.List(pl.Int32))

"""The Glue Data Catalog's tables, generated from the ETL's own schemas.

The infrastructure may not import the ETL (it would load Polars into the Pulumi program), so the
table definitions reach it as data: `components/catalog_tables.json`, written by this module from
`etl.core.specs` (each dataset's clean schema), the rejects' own columns and
`etl.core.master_data`. A test regenerates the document and fails when the committed one differs,
and another writes Parquet through the ETL for every dataset and vintage and compares it with the
tables the program registers: the ETL stays the one source of truth.

Regenerate after changing a spec: `uv run python -m dataplatform.catalog`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import polars as pl

from etl.contract import MASTER_PREFIX, PROCESSED_PREFIX, REJECTS_PREFIX, master_data_key
from etl.core.master_data import master_tables
from etl.core.rules import MALFORMED_LINE, ROW_INDEX
from etl.core.specs import DATASETS
from etl.core.transform import REJECT_REASON

DOCUMENT = Path(__file__).resolve().parents[1] / "components" / "catalog_tables.json"
"""Where the generated document lives (read by `components/catalog.py`)."""

# Polars type -> the Hive type Athena reads that Parquet column as. Unsigned integers take the
# next wider signed type: Parquet stores them with an unsigned annotation, which Athena's engine
# reads into the wider type.
_HIVE_TYPES: tuple[tuple[pl.DataType, str], ...] = (
    (pl.Boolean(), "boolean"),
    (pl.Int8(), "tinyint"),
    (pl.Int16(), "smallint"),
    (pl.Int32(), "int"),
    (pl.Int64(), "bigint"),
    (pl.UInt8(), "smallint"),
    (pl.UInt16(), "int"),
    (pl.UInt32(), "bigint"),
    (pl.Float32(), "float"),
    (pl.Float64(), "double"),
    (pl.String(), "string"),
    (pl.Date(), "date"),
)


def hive_type(dtype: pl.DataType) -> str:
    """The Glue (Hive) column type of a Polars type; ValueError for one the catalog cannot
    declare (add it here, with the type Athena reads it as)."""
    if isinstance(dtype, pl.Datetime):
        return "timestamp"
    for polars_type, hive in _HIVE_TYPES:
        if dtype == polars_type:
            return hive
    raise ValueError(f"no Glue type for Polars type {dtype}")


def _columns(schema: pl.Schema) -> list[list[str]]:
    return [[name, hive_type(dtype)] for name, dtype in schema.items()]


def rejects_schema() -> pl.Schema:
    """The columns every rejects file has, whatever its input (which it keeps as read, so those
    columns differ per vintage and are not declared: Athena reads Parquet columns by name)."""
    index_type = pl.DataFrame().with_row_index(ROW_INDEX).schema[ROW_INDEX]
    return pl.Schema(
        [(ROW_INDEX, index_type), (MALFORMED_LINE, pl.String), (REJECT_REASON, pl.String)]
    )


PARTITION = "year=${year}/month=${month}/"
"""The Hive partition folders `etl.lake.output_keys` writes, as a projection template."""


def catalog_document() -> dict[str, Any]:
    """Every table of the catalog: name, lake prefix, columns, partition keys and the
    location template of a partition (relative to the bucket)."""
    tables: list[dict[str, Any]] = []
    for name, spec in sorted(DATASETS.items()):
        tables.append(
            {
                "name": f"{name}_trips",
                "description": f"Clean {name} trips (processed/), one folder per file month",
                "prefix": f"{PROCESSED_PREFIX}{name}/",
                "columns": _columns(spec.clean_schema),
                "partition_keys": [["year", "int"], ["month", "int"]],
                "location_template": f"{PROCESSED_PREFIX}{name}/{PARTITION}",
            }
        )
    tables.append(
        {
            "name": "rejects",
            "description": "Rejected rows of every dataset with their reject_reason (rejects/)",
            "prefix": REJECTS_PREFIX,
            "columns": _columns(rejects_schema()),
            "partition_keys": [["dataset", "string"], ["year", "int"], ["month", "int"]],
            "location_template": f"{REJECTS_PREFIX}${{dataset}}/{PARTITION}",
        }
    )
    for name, frame in sorted(master_tables().items()):
        key = master_data_key(name)
        assert key.startswith(MASTER_PREFIX)
        tables.append(
            {
                "name": name,
                "description": f"Master data: {name.replace('_', ' ')} (master/)",
                "prefix": key.rsplit("/", 1)[0] + "/",
                "columns": _columns(frame.schema),
                "partition_keys": [],
                "location_template": None,
            }
        )
    return {
        "generated_by": "uv run python -m dataplatform.catalog",
        "datasets": sorted(DATASETS),
        "tables": tables,
    }


def render() -> str:
    """The document's text, as committed."""
    return json.dumps(catalog_document(), indent=2) + "\n"


def main() -> None:
    """Write the document."""
    DOCUMENT.write_text(render())
    print(f"wrote {DOCUMENT}")


if __name__ == "__main__":
    main()

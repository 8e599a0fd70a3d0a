from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from dataplatform.demo.samples import YELLOW_2020_07
from etl.core.pipeline import ProcessResult, process_file
from etl.core.settings import EtlSettings
from tests.tlc import write_parquet

ProcessRows = Callable[..., ProcessResult]


@pytest.fixture
def sample_csv() -> Path:
    """The real 266-row yellow sample of July 2020 (CSV era), shipped as a fixture."""
    return YELLOW_2020_07


@pytest.fixture
def process_rows(tmp_path: Path) -> ProcessRows:
    """Write rows as a TLC Parquet file and process it."""

    def run(
        rows: list[dict[str, Any]],
        name: str = "yellow_tripdata_2024-01.parquet",
        settings: EtlSettings | None = None,
        **types: Any,
    ) -> ProcessResult:
        path = write_parquet(tmp_path, name, rows, schema=types or None)
        return process_file(path, settings=settings)

    return run


def reasons_of(result: ProcessResult) -> list[str | None]:
    """Each input row's reject reason (None for clean rows), in input order."""
    by_row = dict(
        zip(
            result.rejects.get_column("source_row").to_list(),
            result.rejects.get_column("reject_reason").to_list(),
            strict=True,
        )
    )
    return [by_row.get(row) for row in range(result.report["rows_in"])]

"""Process one TLC trip file: read, normalise, derive, validate, split into clean rows, rejects and
a quality report. The local CLI and the Lambda handler both call `process_file`; only where the
results are written differs (`write_outputs` here, S3 in the handler).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from functools import cached_property
from pathlib import Path
from typing import Any

import polars as pl

from etl.core import transform
from etl.core.errors import DataplatformError, UnprocessableInput
from etl.core.master_data import zone_ids
from etl.core.naming import Month, output_stem, resolve_dataset, resolve_month
from etl.core.report import build_report
from etl.core.rules import RuleContext
from etl.core.settings import EtlSettings
from etl.core.sources import RawInput, read_input
from etl.core.specs import DERIVED_COLUMNS, ColumnType, DatasetSpec

ROW_GROUP_ROWS = 131_072
"""Rows per Parquet row group of the clean output: a month of 3M trips in two dozen groups, each
with min/max statistics, so readers skip by pickup time. Half Polars' default: the row group
being encoded is most of the write's memory, and the handler's peak at 3M rows was 696-712 MB
against 714-755 MB with 262,144 (2 interleaved pairs of 3 rounds)."""
CLEAN_WRITE_CHUNK_ROWS = 20_000
"""Rows per streaming chunk while the clean rows are filtered and written. The Parquet encoder is
the slow stage and Polars filters chunks far ahead of it: a fifth of its default chunk size held
the write's extra memory on a 3M-row month to 94-100 MB instead of 164 MB at 50,000 rows (the
row group being encoded is most of the rest), in the same time within noise."""


@dataclass
class ProcessResult:
    """The outcome of processing one input. The clean rows are a query over `validated`:
    `write_clean` and the loader stream them without holding a second copy in memory, and
    `clean` computes them on first use; the rejects are few and computed with the report."""

    spec: DatasetSpec
    month: Month
    stem: str
    """Base name for the outputs, e.g. `yellow_tripdata_2024-01`."""
    validated: pl.DataFrame = field(repr=False)
    """Every input row: its canonical columns and `reject_code` (null: clean), code columns as
    Enums (`transform.held_codes`). The derived columns are computed again with the clean rows
    (`transform.clean_rows`)."""
    report: dict[str, Any]
    rejects: pl.DataFrame = field(repr=False)
    """The rejected rows: input columns as read, `source_row`, `raw_line`, `reject_reason`."""
    timings_ms: dict[str, float] = field(default_factory=dict)

    @property
    def clean_plan(self) -> pl.LazyFrame:
        """The clean rows, in the dataset's clean schema, as a query."""
        return transform.clean_rows(self.validated.lazy(), self.spec)

    @cached_property
    def clean(self) -> pl.DataFrame:
        """The clean rows, in the dataset's clean schema."""
        return self.clean_plan.collect()

    def populated_columns(self) -> list[str]:
        """The clean schema's columns that are not null in every row (a 2024 file has no
        coordinates, for instance): the others need not be written where null is the default."""
        height = self.validated.height
        return [
            name
            for name in self.spec.clean_schema.names()
            if name in DERIVED_COLUMNS or self.validated.get_column(name).null_count() < height
        ]

    def clean_batches(self, rows: int, month: date | None = None) -> Iterator[pl.DataFrame]:
        """The clean rows in order (only those picked up in `month`, if given), computed from
        `rows` validated rows at a time: a consumer that handles one batch before asking for
        the next never holds more than one."""
        for piece in self.validated.iter_slices(rows):
            plan = transform.clean_rows(piece.lazy(), self.spec)
            if month is not None:
                plan = plan.filter(pickup_month() == month)
            batch = plan.collect()
            if batch.height:
                yield batch

    def write_clean(self, path: Path) -> None:
        """Stream the clean rows to Parquet at `path`, never holding all of them in memory."""
        with pl.Config(streaming_chunk_size=CLEAN_WRITE_CHUNK_ROWS):
            self.clean_plan.sink_parquet(path, row_group_size=ROW_GROUP_ROWS)


def pickup_month() -> pl.Expr:
    """The first day of the month of a clean row's pickup: what the database partitions by."""
    return pl.col("pickup_datetime").dt.truncate("1mo").dt.date()


REJECT_SAMPLES_PER_REASON = 3
"""Rejected rows shown per reason in the report: enough to see what a reason looks like."""


def reject_samples(rejects: pl.DataFrame) -> list[dict[str, Any]]:
    """The first rejected rows of each reason (in input order), every value as text, so that a
    report can show what was rejected without opening the rejects file."""
    if rejects.is_empty():
        return []
    sample = (
        rejects.sort("source_row")
        .group_by("reject_reason", maintain_order=True)
        .head(REJECT_SAMPLES_PER_REASON)
        .sort("source_row")
    )
    # As text in Polars: a Python datetime cannot hold a corrupt file's year 11159, nor
    # Python's str() every type a file may carry.
    return sample.select(_as_text(name, dtype) for name, dtype in sample.schema.items()).to_dicts()


def _python_text(values: pl.Series) -> pl.Series:
    texts = [None if item is None else str(item) for item in values.to_list()]
    return pl.Series(values.name, texts, dtype=pl.String)


_FORMATTABLE_DAYS = 200_000 * 365
"""Polars formats dates and times only within about ±262,000 years of 1970 (and panics beyond);
a corrupt file's raw timestamps can lie anywhere."""
_PER_DAY = {"ms": 86_400_000, "us": 86_400_000_000}


def _as_text(name: str, dtype: pl.DataType) -> pl.Expr:
    value = pl.col(name)
    if dtype.is_nested() or dtype == pl.Binary:  # no cast to text: Python's str, a few rows
        return value.map_batches(_python_text, return_dtype=pl.String)
    if dtype == pl.Date or (isinstance(dtype, pl.Datetime) and dtype.time_unit in _PER_DAY):
        per_day = 1 if dtype == pl.Date else _PER_DAY[str(getattr(dtype, "time_unit", ""))]
        number = value.cast(pl.Int64)
        limit = _FORMATTABLE_DAYS * per_day
        formattable = pl.when(number.abs() <= limit).then(value).cast(pl.String)
        return pl.coalesce(formattable, number.cast(pl.String)).alias(name)
    return value.cast(pl.String)


def _later_copies(raw_input: RawInput, key_columns: tuple[str, ...]) -> pl.Series:
    """Per input row: whether it repeats an earlier row. Its own function so that the row
    hashes (16 MB per million rows) are freed as soon as the copies are known."""
    key_hashes = transform.hash_keys(raw_input.frame, raw_input.columns, key_columns)
    return transform.later_copies(raw_input.frame, raw_input.columns, key_hashes)


def process_file(
    path: Path,
    *,
    source_name: str | None = None,
    dataset: str | None = None,
    month: str | None = None,
    settings: EtlSettings | None = None,
) -> ProcessResult:
    """Process the file at `path`. `source_name` (default: the file's name) is what dataset and
    month are read from, e.g. the S3 key. Every row of a processable input ends up clean or
    rejected.

    Raises `UnprocessableInput` when the input cannot be processed as a whole, and for any other
    failure while reading, normalising or validating it (code `internal_error`): the file is
    local and the work deterministic, so whatever goes wrong here is the content's doing as far
    as a caller can tell, and retrying cannot help. Only `UsageError` (a bad `month` option) and
    `MemoryError` (the machine, not the file) pass through."""
    try:
        return _process_file(
            path, source_name=source_name, dataset=dataset, month=month, settings=settings
        )
    except (DataplatformError, MemoryError):
        raise
    # Polars reports a bug it caught as a PanicException, which is not an Exception.
    except (Exception, pl.exceptions.PanicException) as error:
        raise UnprocessableInput.internal(error) from error


def _process_file(
    path: Path,
    *,
    source_name: str | None,
    dataset: str | None,
    month: str | None,
    settings: EtlSettings | None,
) -> ProcessResult:
    settings = settings or EtlSettings()
    name = Path(source_name or path.name).name
    spec = resolve_dataset(name, dataset)
    period = resolve_month(name, month)

    started = time.perf_counter()
    raw_input = read_input(path)
    read_done = time.perf_counter()

    plan = transform.plan_schema(raw_input.schema, spec)
    context = RuleContext(
        settings=settings,
        month_start=period.start,
        month_end=period.end,
        present=plan.present,
        sources=plan.sources,
        zone_ids=zone_ids(),
        float_columns=tuple(c.name for c in spec.columns if c.type is ColumnType.FLOAT),
        fallible=plan.fallible(spec),
    )
    key_columns = tuple(plan.sources[name] for name in spec.trip_key if name in plan.sources)
    # The duplicate search runs before the row-by-row rules, not beside them: its hashes and
    # their sort are the largest part of the processor's peak memory when the rules' work
    # adds to them (3M-row month, 6 interleaved rounds each: 680 MB against 696, 14 ms more).
    copies = _later_copies(raw_input, key_columns)
    validated = (
        raw_input.frame.lazy()
        .pipe(transform.normalise, spec, plan)
        .pipe(transform.derive)
        .pipe(transform.validate, spec, context)
        .drop(list(DERIVED_COLUMNS))
        .collect()
    )
    validated = transform.reject_duplicates(validated, spec, copies)
    # The report and the rejects read the same rows and neither needs the other. Each leaves
    # part of the machine idle, so they run side by side (~10 ms less on a 2M-row month).
    with ThreadPoolExecutor(max_workers=1) as pool:
        rejected = pool.submit(
            lambda: transform.reject_rows(validated.lazy(), spec, raw_input.columns).collect()
        )
        report = build_report(
            source=name,
            spec=spec,
            month=str(period),
            raw_input=raw_input,
            plan=plan,
            validated=validated,
            context=context,
        )
        rejects = rejected.result()
    # From here on the clean rows are all that is computed from `validated`: its columns as
    # read (about 15 % of it on a 2024 yellow month) are dropped, and freed with the input, and
    # code columns are held as Enums (`transform.held_codes`).
    # (Series by Series: DataFrame.select would run a query and may copy every column.)
    validated = pl.DataFrame(
        [
            *(
                transform.held_codes(validated.get_column(column.name), column)
                for column in spec.columns
            ),
            validated.get_column(transform.REJECT_CODE),
        ]
    )
    done = time.perf_counter()
    timings = {
        "read": round((read_done - started) * 1000, 1),
        "transform": round((done - read_done) * 1000, 1),
    }
    report["reject_samples"] = reject_samples(rejects)
    stem = output_stem(name)
    if report["rows_clean"] + report["rows_rejected"] != report["rows_in"]:
        raise AssertionError("row conservation broken: rows_in != rows_clean + rows_rejected")
    if rejects.height != report["rows_rejected"]:
        raise AssertionError("row conservation broken: the rejects differ from rows_rejected")
    return ProcessResult(spec, period, stem, validated, report, rejects, timings)

"""Process one TLC trip file: read, normalise, derive, validate, split into clean rows, rejects and
a quality report. The local CLI and the Lambda handler both call `process_file`; only where the
results are written differs (`write_outputs` here, S3 in the handler).
"""

from __future__ import annotations

import json
import shutil
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any

import polars as pl

from etl import transform
from etl.errors import UnprocessableInput, UsageError
from etl.master_data import zone_ids
from etl.report import build_report
from etl.report_html import render_html
from etl.rules import RuleContext
from etl.settings import EtlSettings
from etl.sources import name_hints, read_input
from etl.specs import DATASETS, ColumnType, DatasetSpec

ROW_GROUP_ROWS = 262_144
"""Rows per Parquet row group of the clean output: a month of 3M trips in a dozen groups, each
with min/max statistics, so readers skip by pickup time; measured a little faster to write than
Polars' default too."""
CLEAN_WRITE_CHUNK_ROWS = 50_000
"""Rows per streaming chunk while the clean rows are filtered and written. The Parquet encoder is
the slow stage and Polars filters chunks far ahead of it; half its default chunk size keeps about
75 MB fewer filtered copies alive on a 2M-row month, and the fresh pages they no longer need
made the write ~15 ms faster."""


@dataclass(frozen=True)
class Month:
    """A calendar month, e.g. 2024-01."""

    year: int
    month: int

    @classmethod
    def parse(cls, text: str) -> Month:
        """Parse `YYYY-MM`; raise `UsageError` otherwise."""
        try:
            start = datetime.strptime(text, "%Y-%m")
        except ValueError:
            raise UsageError(f"month {text!r} is not YYYY-MM (for example 2024-01)") from None
        return cls(start.year, start.month)

    @property
    def start(self) -> datetime:
        """Midnight on the first day of the month (naive, New York local time like the data)."""
        return datetime(self.year, self.month, 1)

    @property
    def end(self) -> datetime:
        """Midnight on the first day of the next month."""
        return datetime(self.year + self.month // 12, self.month % 12 + 1, 1)

    def __str__(self) -> str:
        return f"{self.year:04d}-{self.month:02d}"


@dataclass
class ProcessResult:
    """The outcome of processing one input. `clean` is computed on first use, so a caller that
    only writes it to a file (`write_outputs`) streams the clean rows to Parquet without holding
    a second copy in memory; the rejects are few and computed with the report."""

    spec: DatasetSpec
    month: Month
    stem: str
    """Base name for the outputs, e.g. `yellow_tripdata_2024-01`."""
    validated: pl.DataFrame = field(repr=False)
    """Every input row: columns as read, canonical and derived columns, `reject_code`."""
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


def output_stem(source_name: str) -> str:
    """The base name of an input's outputs: its file name without suffixes
    (`yellow_tripdata_2024-01.csv.gz` -> `yellow_tripdata_2024-01`)."""
    return Path(source_name).name.split(".", 1)[0] or "input"


def resolve_dataset(source_name: str, dataset: str | None) -> DatasetSpec:
    """The dataset an input belongs to: the explicit option, else its TLC file name."""
    if dataset is not None:
        if dataset not in DATASETS:
            raise UnprocessableInput("unknown_dataset", _unknown_dataset(dataset))
        return DATASETS[dataset]
    prefix = name_hints(source_name).file_prefix
    for spec in DATASETS.values():
        if spec.file_prefix == prefix:
            return spec
    if prefix is not None:
        raise UnprocessableInput("unknown_dataset", _unknown_dataset(prefix.split("_")[0]))
    raise UnprocessableInput(
        "unknown_dataset",
        f"cannot tell the dataset from the name {source_name!r}: name it like "
        "yellow_tripdata_2024-01.parquet or pass --dataset",
    )


def _unknown_dataset(name: str) -> str:
    return f"unknown dataset {name!r}: known datasets are {', '.join(DATASETS)}"


def resolve_month(source_name: str, month: str | None) -> Month:
    """The month an input covers: the explicit option, else its TLC file name."""
    if month is not None:
        return Month.parse(month)
    hinted = name_hints(source_name).month
    if hinted is None:
        raise UnprocessableInput(
            "unknown_month",
            f"cannot tell the month from the name {source_name!r}: name it like "
            "yellow_tripdata_2024-01.parquet or pass --month YYYY-MM",
        )
    return Month.parse(hinted)


def process_file(
    path: Path,
    *,
    source_name: str | None = None,
    dataset: str | None = None,
    month: str | None = None,
    settings: EtlSettings | None = None,
) -> ProcessResult:
    """Process the file at `path`. `source_name` (default: the file's name) is what dataset and
    month are read from, e.g. the S3 key. Raises `UnprocessableInput` when the input cannot be
    processed as a whole; every row of a processable input ends up clean or rejected."""
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
    # The duplicate search spends most of its time in a one-thread sort: it runs beside the
    # row-by-row rules, which use the rest of the machine (~30 ms less on a 2M-row month).
    with ThreadPoolExecutor(max_workers=1) as pool:
        search = pool.submit(transform.hash_keys, raw_input.frame, raw_input.columns, key_columns)
        validated = (
            raw_input.frame.lazy()
            .pipe(transform.normalise, spec, plan)
            .pipe(transform.derive)
            .pipe(transform.validate, spec, context)
            .collect()
        )
        key_hashes = search.result()
    copies = transform.later_copies(raw_input.frame, raw_input.columns, key_hashes)
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
    done = time.perf_counter()
    timings = {
        "read": round((read_done - started) * 1000, 1),
        "transform": round((done - read_done) * 1000, 1),
    }
    stem = output_stem(name)
    if report["rows_clean"] + report["rows_rejected"] != report["rows_in"]:
        raise AssertionError("row conservation broken: rows_in != rows_clean + rows_rejected")
    if rejects.height != report["rows_rejected"]:
        raise AssertionError("row conservation broken: the rejects differ from rows_rejected")
    return ProcessResult(spec, period, stem, validated, report, rejects, timings)


@dataclass(frozen=True)
class OutputPaths:
    """Where `write_outputs` put a result."""

    clean: Path
    rejects: Path
    report: Path
    report_html: Path


def write_outputs(result: ProcessResult, out_dir: Path) -> OutputPaths:
    """Write clean/<stem>.parquet, rejects/<stem>.parquet, report.json and report.html."""
    started = time.perf_counter()
    paths = OutputPaths(
        clean=out_dir / "clean" / f"{result.stem}.parquet",
        rejects=out_dir / "rejects" / f"{result.stem}.parquet",
        report=out_dir / "report.json",
        report_html=out_dir / "report.html",
    )
    for path in (paths.clean, paths.rejects):
        path.parent.mkdir(parents=True, exist_ok=True)
    with pl.Config(streaming_chunk_size=CLEAN_WRITE_CHUNK_ROWS):
        result.clean_plan.sink_parquet(paths.clean, row_group_size=ROW_GROUP_ROWS)
    result.rejects.write_parquet(paths.rejects)
    timings = {**result.timings_ms, "write": round((time.perf_counter() - started) * 1000, 1)}
    timings["total"] = round(sum(timings.values()), 1)
    report = {**result.report, "timings_ms": timings}
    paths.report.write_text(json.dumps(report, indent=2) + "\n")
    paths.report_html.write_text(render_html(report))
    return paths


def quarantine(path: Path, out_dir: Path, error: UnprocessableInput, source_name: str) -> Path:
    """Copy the input byte for byte to quarantine/<name> with <name>.error.json beside it."""
    target_dir = out_dir / "quarantine"
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / source_name
    shutil.copyfile(path, target)
    details = {
        "source": source_name,
        "code": error.code,
        "reason": error.reason,
        "quarantined_at": datetime.now(UTC).isoformat(timespec="seconds"),
    }
    (target_dir / f"{source_name}.error.json").write_text(json.dumps(details, indent=2) + "\n")
    return target

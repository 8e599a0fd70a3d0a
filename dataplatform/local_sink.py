"""Where `dataplatform process` writes results on local disk, one set of files per input stem so
that any number of inputs (in one run or several) share an output directory without overwriting
each other:

    OUT/clean/<stem>.parquet     OUT/rejects/<stem>.parquet
    OUT/reports/<stem>.json      OUT/reports/<stem>.html
    OUT/quarantine/<name>        OUT/quarantine/<name>.error.json   (an unprocessable input)
    OUT/index.html               every report and quarantined file in OUT, with counts

The Lambda writes the same results to S3 (`etl.lake`).
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from etl.core.errors import QUARANTINE_ERROR_SUFFIX, UnprocessableInput
from etl.core.pipeline import ProcessResult
from etl.core.report_html import IndexEntry, render_html, render_index

REPORTS_DIR = "reports"
QUARANTINE_DIR = "quarantine"
INDEX_NAME = "index.html"


@dataclass(frozen=True)
class OutputPaths:
    """Where `write_outputs` put a result."""

    clean: Path
    rejects: Path
    report: Path
    report_html: Path


def output_paths(out_dir: Path, stem: str) -> OutputPaths:
    """The files one input's results go to."""
    return OutputPaths(
        clean=out_dir / "clean" / f"{stem}.parquet",
        rejects=out_dir / "rejects" / f"{stem}.parquet",
        report=out_dir / REPORTS_DIR / f"{stem}.json",
        report_html=out_dir / REPORTS_DIR / f"{stem}.html",
    )


def write_outputs(result: ProcessResult, out_dir: Path) -> OutputPaths:
    """Write clean/<stem>.parquet, rejects/<stem>.parquet, reports/<stem>.json and .html."""
    started = time.perf_counter()
    paths = output_paths(out_dir, result.stem)
    for path in (paths.clean, paths.rejects, paths.report):
        path.parent.mkdir(parents=True, exist_ok=True)
    result.write_clean(paths.clean)
    result.rejects.write_parquet(paths.rejects)
    timings = {**result.timings_ms, "write": round((time.perf_counter() - started) * 1000, 1)}
    timings["total"] = round(sum(timings.values()), 1)
    report = {**result.report, "timings_ms": timings}
    paths.report.write_text(json.dumps(report, indent=2) + "\n")
    paths.report_html.write_text(render_html(report))
    return paths


def quarantine(path: Path, out_dir: Path, error: UnprocessableInput, source_name: str) -> Path:
    """Copy the input byte for byte to quarantine/<name> with <name>.error.json beside it."""
    target_dir = out_dir / QUARANTINE_DIR
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / source_name
    shutil.copyfile(path, target)
    details = error.quarantine_document(source_name)
    (target_dir / f"{source_name}{QUARANTINE_ERROR_SUFFIX}").write_text(
        json.dumps(details, indent=2) + "\n"
    )
    return target


def write_index(out_dir: Path) -> Path:
    """OUT/index.html: every report under OUT/reports/ and every quarantined file, read from the
    directory itself, so that it also lists what earlier runs left there."""
    entries: list[IndexEntry] = []
    for report_path in sorted((out_dir / REPORTS_DIR).glob("*.json")):
        report = _read_json(report_path)
        if report is None:
            continue
        entries.append(
            IndexEntry(
                name=str(report.get("source", report_path.stem)),
                href=f"{REPORTS_DIR}/{report_path.stem}.html",
                dataset=str(report.get("dataset", "")),
                month=str(report.get("month", "")),
                rows_in=int(report.get("rows_in", 0)),
                rows_clean=int(report.get("rows_clean", 0)),
                rows_rejected=int(report.get("rows_rejected", 0)),
            )
        )
    for error_path in sorted((out_dir / QUARANTINE_DIR).glob(f"*{QUARANTINE_ERROR_SUFFIX}")):
        document = _read_json(error_path)
        name = error_path.name.removesuffix(QUARANTINE_ERROR_SUFFIX)
        entries.append(
            IndexEntry(
                name=name,
                href=f"{QUARANTINE_DIR}/{error_path.name}",
                quarantined=str((document or {}).get("reason", "quarantined")),
            )
        )
    index = out_dir / INDEX_NAME
    index.write_text(render_index(entries))
    return index


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        loaded = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None

"""Where `dataplatform process` writes a result on local disk: clean/, rejects/ and the reports,
or quarantine/ for an input that cannot be processed. The Lambda writes the same results to S3
(`etl.lake`)."""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from etl.core.errors import QUARANTINE_ERROR_SUFFIX, UnprocessableInput
from etl.core.pipeline import ProcessResult
from etl.core.report_html import render_html


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
    target_dir = out_dir / "quarantine"
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / source_name
    shutil.copyfile(path, target)
    details = error.quarantine_document(source_name)
    (target_dir / f"{source_name}{QUARANTINE_ERROR_SUFFIX}").write_text(
        json.dumps(details, indent=2) + "\n"
    )
    return target

"""`dataplatform process` on many inputs: expand files, directories and globs, process each into
one output directory, and say per file what happened (clean, rejected, quarantined and where)."""

from __future__ import annotations

import glob
import tomllib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataplatform.local_sink import (
    QUARANTINE_DIR,
    output_paths,
    quarantine,
    write_index,
    write_outputs,
)
from etl.core.errors import QUARANTINE_ERROR_SUFFIX, UnprocessableInput, UsageError
from etl.core.naming import output_stem
from etl.core.pipeline import process_file
from etl.core.settings import EtlSettings, settings_from_mapping

INPUT_SUFFIXES = (".parquet", ".csv", ".csv.gz", ".gz")
"""What a directory given to `process` contributes: TLC files by their usual suffixes (the
format itself is read from the content)."""
MOSTLY_OUTSIDE = 0.5
"""Share of a file's rows outside its month above which `process` warns that the month is
probably wrong."""
OUTSIDE_MONTH_REASON = "pickup_outside_month"


@dataclass
class FileOutcome:
    """What `process` did with one input."""

    source: Path
    stem: str
    dataset: str | None = None
    month: str | None = None
    rows_in: int = 0
    rows_clean: int = 0
    rows_rejected: int = 0
    report: Path | None = None
    report_html: Path | None = None
    quarantined_to: Path | None = None
    reason: str | None = None
    """Why the input was quarantined."""
    warnings: list[str] = field(default_factory=list)

    @property
    def quarantined(self) -> bool:
        """Whether the input could not be processed at all."""
        return self.quarantined_to is not None

    def as_dict(self) -> dict[str, Any]:
        """The outcome as `--json` prints it."""
        return {
            "source": str(self.source),
            "status": "quarantined" if self.quarantined else "processed",
            "dataset": self.dataset,
            "month": self.month,
            "rows_in": self.rows_in,
            "rows_clean": self.rows_clean,
            "rows_rejected": self.rows_rejected,
            "report": str(self.report) if self.report else None,
            "report_html": str(self.report_html) if self.report_html else None,
            "quarantined_to": str(self.quarantined_to) if self.quarantined_to else None,
            "reason": self.reason,
            "warnings": self.warnings,
        }


def expand_inputs(arguments: Sequence[str]) -> list[Path]:
    """Files named, files inside directories named (by INPUT_SUFFIXES, sorted), and files
    matching glob patterns the shell did not expand; each once, in the order given."""
    found: list[Path] = []
    for argument in arguments:
        path = Path(argument)
        if path.is_dir():
            found.extend(
                sorted(
                    child
                    for child in path.iterdir()
                    if child.is_file()
                    and not child.name.startswith(".")
                    and child.name.lower().endswith(INPUT_SUFFIXES)
                    and not child.name.endswith(QUARANTINE_ERROR_SUFFIX)
                )
            )
        elif path.is_file():
            found.append(path)
        elif glob.has_magic(argument):
            # glob.glob, not Path.glob: the pattern may be absolute or reach into parents.
            matched = glob.glob(argument)  # noqa: PTH207
            matches = sorted(Path(match) for match in matched if Path(match).is_file())
            if not matches:
                raise UsageError(f"no file matches {argument}")
            found.extend(matches)
        else:
            raise UsageError(f"no such file or directory: {argument}")
    unique = list(dict.fromkeys(path.resolve() for path in found))
    if not unique:
        raise UsageError(
            f"no trip files in {', '.join(arguments)} (looked for {', '.join(INPUT_SUFFIXES)})"
        )
    stems: dict[str, Path] = {}
    for path in unique:
        other = stems.setdefault(output_stem(path.name), path)
        if other != path:
            raise UsageError(
                f"{other.name} and {path.name} would write the same outputs "
                f"({output_stem(path.name)}): process them into different --out directories"
            )
    return unique


def load_settings(path: Path | None) -> EtlSettings:
    """The rule thresholds from a TOML file (docs/etl-settings.toml lists every key and its
    default), or the defaults."""
    if path is None:
        return EtlSettings()
    try:
        values = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise UsageError(f"cannot read --config {path}: {error.strerror or error}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
        raise UsageError(f"{path.name} is not valid TOML: {error}") from None
    return settings_from_mapping(values, path.name)


def process_inputs(
    inputs: Iterable[Path],
    out: Path,
    *,
    dataset: str | None = None,
    month: str | None = None,
    settings: EtlSettings | None = None,
    on_done: Callable[[FileOutcome], None] | None = None,
) -> list[FileOutcome]:
    """Process every input into `out`, then write `out/index.html`. A quarantined input does not
    stop the others."""
    out.mkdir(parents=True, exist_ok=True)
    outcomes = []
    for source in inputs:
        outcome = _process_one(source, out, dataset, month, settings)
        outcomes.append(outcome)
        if on_done is not None:
            on_done(outcome)
    write_index(out)
    return outcomes


def _process_one(
    source: Path, out: Path, dataset: str | None, month: str | None, settings: EtlSettings | None
) -> FileOutcome:
    stem = output_stem(source.name)
    try:
        result = process_file(source, dataset=dataset, month=month, settings=settings)
    except UnprocessableInput as error:
        copy = quarantine(source, out, error, source.name)
        stale = output_paths(out, stem)
        for path in (stale.report, stale.report_html):
            path.unlink(missing_ok=True)
        return FileOutcome(source, stem, quarantined_to=copy, reason=error.reason)
    for stale_path in (out / QUARANTINE_DIR / source.name,):
        stale_path.unlink(missing_ok=True)
        stale_path.with_name(stale_path.name + QUARANTINE_ERROR_SUFFIX).unlink(missing_ok=True)
    paths = write_outputs(result, out)
    report = result.report
    outcome = FileOutcome(
        source,
        stem,
        dataset=result.spec.name,
        month=str(result.month),
        rows_in=report["rows_in"],
        rows_clean=report["rows_clean"],
        rows_rejected=report["rows_rejected"],
        report=paths.report,
        report_html=paths.report_html,
    )
    outside = report["reasons"].get(OUTSIDE_MONTH_REASON, 0)
    if report["rows_in"] and outside / report["rows_in"] > MOSTLY_OUTSIDE:
        pickups = report["pickup_range"]["all_rows"]
        told = "--month" if month is not None else "the file name"
        outcome.warnings.append(
            f"{outside} of {report['rows_in']} rows of {source.name} pick up outside "
            f"{result.month} as {told} says (pickups from {pickups['min']} to "
            f"{pickups['max']}): is the month right?"
        )
    return outcome

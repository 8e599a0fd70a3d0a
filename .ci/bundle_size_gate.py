"""The Lambda bundle size gate: fail CI before AWS refuses the deploy.

Lambda refuses a function whose unzipped code (with its layers) exceeds 250 MB, and the
processor's bundle (Polars, psycopg, the ETL) is large enough to approach it. This reads the zip's
central directory, so it measures exactly what Lambda will unpack, and fails with the sizes and
the largest top-level entries when a budget is exceeded.

Usage: `python .ci/bundle_size_gate.py build/lambda/processor.zip [--max-unzipped-mb 250]`.
"""

from __future__ import annotations

import argparse
import os
import sys
import zipfile
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

MB = 1024 * 1024
LAMBDA_UNZIPPED_LIMIT_MB = 250
"""Lambda's quota for a function's unzipped deployment package, layers included."""


@dataclass(frozen=True)
class BundleSize:
    """What a bundle weighs, zipped and as Lambda unpacks it."""

    zipped_bytes: int
    unzipped_bytes: int
    files: int
    largest: list[tuple[str, int]]
    """The heaviest top-level entries (package directories), unzipped bytes, heaviest first."""


def measure(bundle: Path, top: int = 8) -> BundleSize:
    """The sizes of a zip bundle, from its central directory (nothing is extracted)."""
    per_top_level: Counter[str] = Counter()
    unzipped = files = 0
    with zipfile.ZipFile(bundle) as archive:
        for entry in archive.infolist():
            if entry.is_dir():
                continue
            files += 1
            unzipped += entry.file_size
            per_top_level[entry.filename.split("/", 1)[0]] += entry.file_size
    return BundleSize(
        zipped_bytes=bundle.stat().st_size,
        unzipped_bytes=unzipped,
        files=files,
        largest=per_top_level.most_common(top),
    )


def problems(size: BundleSize, *, max_unzipped_mb: float, max_zipped_mb: float | None) -> list[str]:
    """Why the bundle fails the gate; empty when it passes."""
    found = []
    if size.files == 0:
        found.append("the bundle holds no file")
    if size.unzipped_bytes > max_unzipped_mb * MB:
        found.append(
            f"unzipped {size.unzipped_bytes / MB:.1f} MB exceeds the budget of "
            f"{max_unzipped_mb:g} MB"
        )
    if max_zipped_mb is not None and size.zipped_bytes > max_zipped_mb * MB:
        found.append(
            f"zipped {size.zipped_bytes / MB:.1f} MB exceeds the budget of {max_zipped_mb:g} MB"
        )
    return found


def report(bundle: Path, size: BundleSize, found: Sequence[str]) -> str:
    """A short Markdown report: verdict, sizes, heaviest entries."""
    verdict = "failed" if found else "passed"
    lines = [
        f"### Bundle size gate {verdict}: `{bundle}`",
        "",
        f"- zipped: {size.zipped_bytes / MB:.1f} MB",
        f"- unzipped: {size.unzipped_bytes / MB:.1f} MB in {size.files} files",
        *(f"- **{problem}**" for problem in found),
        "",
        "| heaviest entries | MB |",
        "|---|---:|",
        *(f"| `{name}` | {weight / MB:.1f} |" for name, weight in size.largest),
    ]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Measure, report (also to the job summary when there is one), exit 1 on a violation."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--max-unzipped-mb", type=float, default=LAMBDA_UNZIPPED_LIMIT_MB)
    parser.add_argument("--max-zipped-mb", type=float, default=None)
    options = parser.parse_args(argv)
    if not options.bundle.is_file():
        print(f"error: no bundle at {options.bundle} (build it with dataplatform bundle)")
        return 2
    try:
        size = measure(options.bundle)
    except zipfile.BadZipFile as error:
        print(f"error: {options.bundle} is not a zip file: {error}")
        return 2
    found = problems(
        size, max_unzipped_mb=options.max_unzipped_mb, max_zipped_mb=options.max_zipped_mb
    )
    text = report(options.bundle, size, found)
    sys.stdout.write(text)
    summary = os.environ.get("GITHUB_STEP_SUMMARY")
    if summary:
        with Path(summary).open("a", encoding="utf-8") as handle:
            handle.write(text)
    return 1 if found else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Render the real July 2020 sample's quality report and index page in headless Chromium and save
screenshots to docs/images/, to look at what a user sees (the page uses no script, so the
browser's picture is the whole truth).

    apt-get install -y chromium          # Debian's package; any Chromium or Chrome works
    uv run python benchmarks/report_screenshot.py [--browser PATH] [--out docs/images]

Prints each screenshot's path and size.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from dataplatform.batch import process_inputs
from dataplatform.demo.samples import YELLOW_2020_07

ROOT = Path(__file__).resolve().parents[1]
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


def screenshot(browser: str, page: Path, target: Path, height: int) -> None:
    """One full-width screenshot of `page` (a local file) with headless Chromium."""
    subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",  # containers run as root, where Chromium's sandbox cannot start
            "--disable-gpu",
            "--hide-scrollbars",
            f"--window-size=1024,{height}",
            f"--screenshot={target}",
            page.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--browser", default=next(filter(shutil.which, BROWSERS), None))
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    options = parser.parse_args()
    if options.browser is None:
        print("error: no Chromium found: apt-get install -y chromium, or pass --browser PATH")
        return 1
    options.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch)
        [outcome] = process_inputs([YELLOW_2020_07], out)
        assert outcome.report_html is not None
        for page, name, height in (
            (outcome.report_html, "report.png", 2600),
            (out / "index.html", "index.png", 320),
        ):
            target = options.out / name
            screenshot(options.browser, page, target, height)
            print(f"{target.relative_to(ROOT)}: {target.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())

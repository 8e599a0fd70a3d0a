"""Render `dataplatform synth --format mermaid` with the real Mermaid renderer, to check that the
diagram reads as intended (components stacked, the data path drawn), and save it as a PNG.

    apt-get install -y chromium
    npm install --prefix /tmp/mmdc @mermaid-js/mermaid-cli   # PUPPETEER_SKIP_DOWNLOAD=1 is enough
    uv run python benchmarks/render_mermaid.py --mmdc /tmp/mmdc/node_modules/.bin/mmdc [-s prod]

Prints the PNG's path and pixel size.
"""

from __future__ import annotations

import argparse
import json
import shutil
import struct
import subprocess
import sys
import tempfile
from pathlib import Path

from dataplatform.synth import synth

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mmdc", default=shutil.which("mmdc"))
    parser.add_argument("--browser", default=shutil.which("chromium"))
    parser.add_argument("-s", "--stack", default="prod")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    options = parser.parse_args()
    if options.mmdc is None or options.browser is None:
        print("error: needs mmdc (@mermaid-js/mermaid-cli) and Chromium: see this script's help")
        return 1
    options.out.mkdir(parents=True, exist_ok=True)
    target = options.out / f"synth-{options.stack}.png"
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch) / "diagram.mmd"
        source.write_text(synth(options.stack, "mermaid"))
        puppeteer = Path(scratch) / "puppeteer.json"
        # Containers run as root, where Chromium's sandbox cannot start.
        puppeteer.write_text(
            json.dumps({"executablePath": options.browser, "args": ["--no-sandbox"]})
        )
        subprocess.run(
            [options.mmdc, "-p", puppeteer, "-i", source, "-o", target, "-w", "1600"],
            check=True,
            timeout=300,
        )
    width, height = struct.unpack(">II", target.read_bytes()[16:24])
    print(f"{target.relative_to(ROOT)}: {width}x{height} px, {target.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())

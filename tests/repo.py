"""The checkout the tests run in: what git holds, to compare the build's inputs with."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).parents[1]


def tracked_files(folder: str) -> set[str]:
    """The files git tracks under `folder`, with today's uncommitted additions and removals."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "--", folder],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {name for name in listed if (ROOT / name).is_file()}

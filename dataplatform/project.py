"""Finding the project's files (Pulumi.yaml, the stack files, uv.lock, etl/) for the commands
that need them (`synth`, `bundle`), wherever the CLI was installed: `--project-dir`, else the
current directory or one of its parents, else the source tree this package was loaded from."""

from __future__ import annotations

from pathlib import Path

from etl.core.errors import UsageError

PROJECT_FILE = "Pulumi.yaml"
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
"""The source tree of an editable install or a clone run with `uv run` (site-packages for a
tool install, where there is no Pulumi.yaml)."""


def find_project(explicit: Path | None = None, start: Path | None = None) -> Path:
    """The project directory: `explicit` if given (it must hold Pulumi.yaml), else the first of
    `start` (default: the current directory) and its parents that holds one, else the package's
    own source tree if it holds one."""
    if explicit is not None:
        if not (explicit / PROJECT_FILE).is_file():
            raise UsageError(
                f"--project-dir {explicit} has no {PROJECT_FILE}: point it at a clone of the "
                "dataplatform repository"
            )
        return explicit.resolve()
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        if (directory / PROJECT_FILE).is_file():
            return directory
    if (PACKAGE_ROOT / PROJECT_FILE).is_file():
        return PACKAGE_ROOT
    raise UsageError(
        f"no {PROJECT_FILE} in {here} or its parents: run this command inside a clone of the "
        "dataplatform repository, or pass --project-dir DIR"
    )

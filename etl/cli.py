"""The `dataplatform` command line.

Each command's signature is its contract; its body hands off to library code. The project's own
errors (`DataplatformError`) become one line on stderr and an exit code in `_Commands.invoke`, and
nowhere else, so no user ever sees a traceback for a problem they can fix.
"""

from __future__ import annotations

from typing import Any

import click
import typer
from typer.core import TyperGroup

from etl.errors import DataplatformError


class _Commands(TyperGroup):
    """The root command group: the one place where project errors become a line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except DataplatformError as error:
            typer.echo(f"error: {error}", err=True)
            raise typer.Exit(error.exit_code) from None


app = typer.Typer(
    name="dataplatform",
    cls=_Commands,
    help="Own an AWS data platform as code: run the taxi-trip ETL locally, inspect the "
    "infrastructure, operate the processor.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _root() -> None:
    """Own an AWS data platform as code (S3 data lake, Polars ETL on Lambda, RDS PostgreSQL)."""

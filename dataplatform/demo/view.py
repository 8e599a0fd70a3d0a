"""How `dataplatform demo` looks in a terminal: progress bars while it works, tables at the end."""

from __future__ import annotations

from functools import partial
from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from dataplatform.demo.run import DemoResult, Services


class DemoProgress:
    """A progress bar per demo step; `update` is the demo's progress callback."""

    def __init__(self, console: Console | None = None) -> None:
        self._progress = Progress(
            TextColumn("{task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        )
        self._tasks: dict[str, TaskID] = {}

    def __enter__(self) -> DemoProgress:
        self._progress.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def stop(self) -> None:
        """Remove the bars (idempotent)."""
        self._progress.stop()

    def update(self, step: str, done: int, total: int) -> None:
        """Show that `step` has done `done` of `total`."""
        if step not in self._tasks:
            self._tasks[step] = self._progress.add_task(step, total=total)
        self._progress.update(self._tasks[step], completed=done, total=total)


def print_summary(result: DemoResult, console: Console | None = None) -> None:
    """Per file, top reasons, rows per month in PostgreSQL, throughput, where the reports are."""
    console = console or Console()
    files = Table(title="Files delivered to raw/yellow/ and processed through the queue")
    for column in ("file", "status", "rows in", "clean", "rejected"):
        files.add_column(column, justify="left" if column in ("file", "status") else "right")
    for obj in result.objects:
        files.add_row(
            obj.key.rsplit("/", 1)[-1],
            f"[green]{obj.status}[/]" if obj.status == "loaded" else f"[red]{obj.status}[/]",
            _count(obj.rows_in),
            _count(obj.rows_clean),
            _count(obj.rows_rejected),
        )
    console.print(files)
    for obj in result.objects:
        if obj.error:
            console.print(f"[red]{obj.status}[/] {obj.key}: {obj.error}")
            console.print(f"  the file and its .error.json are under quarantine/{obj.key}")

    zones: dict[str, int] = {}
    for key in result.lake_keys:
        zone = key.split("/", 1)[0] + "/"
        zones[zone] = zones.get(zone, 0) + 1
    console.print("Objects in the lake: " + ", ".join(f"{z} {n}" for z, n in sorted(zones.items())))

    reasons: dict[str, int] = {}
    for obj in result.objects:
        for reason, count in obj.reasons.items():
            reasons[reason] = reasons.get(reason, 0) + count
    top = Table(title="Top reject reasons")
    top.add_column("reason")
    top.add_column("rows", justify="right")
    for reason, count in sorted(reasons.items(), key=lambda item: -item[1])[:5]:
        top.add_row(reason, f"{count:,}")
    console.print(top)

    months = Table(
        title="Rows in PostgreSQL (taxi.trips)",
        caption="By pickup month. A file keeps trips picked up within month_grace_hours (24 h) "
        "of its month, so a July file can add rows to June.",
    )
    for column in ("dataset", "month", "rows"):
        months.add_column(column, justify="right" if column == "rows" else "left")
    for dataset, month, count in result.trips_per_month:
        months.add_row(dataset, month, f"{count:,}")
    console.print(months)

    rate = result.rows_processed / result.processing_seconds if result.processing_seconds else 0.0
    console.print(
        f"Processed {result.rows_processed:,} rows in {result.processing_seconds:.1f} s "
        f"({rate:,.0f} rows/s end to end: S3, ETL, S3 outputs, COPY) over "
        f"{result.invocations} invocation(s)."
    )
    pages = [str(obj.report_html) for obj in result.objects if obj.report_html]
    console.print(f"Quality reports: {', '.join(pages)}")
    console.print(f"Processor log (JSON lines): {result.log_path}")


def _count(value: int | None) -> str:
    return "" if value is None else f"{value:,}"


EXAMPLE_QUERIES: tuple[tuple[str, str], ...] = (
    (
        "Trips per dataset and pickup month",
        "SELECT dataset, date_trunc('month', pickup_datetime)::date AS month, count(*) AS trips "
        "FROM taxi.trips GROUP BY 1, 2 ORDER BY 1, 2;",
    ),
    (
        "The ten busiest pickup zones, by name",
        "SELECT pickup_borough, pickup_zone, count(*) AS trips FROM taxi.trips_described "
        "GROUP BY 1, 2 ORDER BY trips DESC LIMIT 10;",
    ),
    (
        "What each raw file gave",
        "SELECT source_key, status, rows_in, rows_clean, rows_rejected, error_code "
        "FROM taxi.loads ORDER BY finished_at DESC;",
    ),
)
"""Queries `demo --keep` suggests; docs/queries.md holds them and more (a test keeps the two
in step)."""


def print_services(services: Services, console: Console | None = None) -> None:
    """How to reach the kept services: the psql URL, the S3 endpoint and bucket, example
    queries, and how to stop."""
    console = console or Console()
    # soft_wrap: URLs and commands stay on one line, whatever the terminal's width.
    say = partial(console.print, soft_wrap=True, highlight=False, markup=False)
    console.print("\n[bold]The demo's services keep running[/] (Ctrl-C stops and deletes them).")
    say(f"PostgreSQL: psql '{services.database_url}'")
    say(f"S3 (moto): endpoint {services.s3_endpoint}, bucket {services.bucket}")
    say(
        f"  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_DEFAULT_REGION=us-east-1 "
        f"aws --endpoint-url {services.s3_endpoint} s3 ls s3://{services.bucket}/ --recursive"
    )
    say("Example queries (more in docs/queries.md):")
    for description, query in EXAMPLE_QUERIES:
        say(f"  -- {description}")
        say(f"  {query}")

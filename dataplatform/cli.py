"""The `dataplatform` command line.

Each command's signature is its contract; its body hands off to library code. The project's own
errors (`DataplatformError`) and the anticipated failures of the libraries below (AWS credentials,
region, missing bucket or queue, unreachable endpoint, database URL, output directory, a missing
extra: `dataplatform.errors.explain`) become one line on stderr and an exit code in
`_Commands.invoke`, and nowhere else, so no user ever sees a traceback for a problem they can fix.
`--debug` (or DATAPLATFORM_DEBUG=1) shows the traceback instead.
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer
from typer.core import TyperGroup
from typer.exceptions import TyperException

from dataplatform.errors import check_database_url, debug_requested, explain
from dataplatform.local_sink import INDEX_NAME
from dataplatform.rotation import DEFAULT_LENGTH, MAX_LENGTH, MIN_LENGTH, next_steps, rotate
from etl.contract import DEFAULT_ARCHITECTURE, PYTHON_VERSION, Architecture
from etl.core.errors import QUARANTINE_ERROR_SUFFIX, UnprocessableInput, UsageError, first_line
from etl.core.naming import Month

if TYPE_CHECKING:
    from dataplatform.batch import FileOutcome

DatasetName = Literal["yellow", "green"]
"""The datasets `process --dataset` accepts: the keys of `etl.core.specs.DATASETS` (a test holds
them equal), spelled out so that --help lists them."""


class _Commands(TyperGroup):
    """The root command group: the one place where project errors become a line and an exit code."""

    def invoke(self, ctx: Any) -> Any:  # typer vendors click privately; Any avoids importing it
        try:
            return super().invoke(ctx)
        except (TyperException, typer.Exit, typer.Abort):
            raise
        except Exception as error:
            if ctx.params.get("debug") or debug_requested():
                raise
            known = explain(error)
            if known is None:
                typer.echo(
                    f"error: unexpected {type(error).__name__}: {first_line(error)} "
                    "(a bug: rerun with --debug for the traceback and report it)",
                    err=True,
                )
                raise typer.Exit(1) from None
            typer.echo(f"error: {known}", err=True)
            raise typer.Exit(known.exit_code) from None


app = typer.Typer(
    name="dataplatform",
    cls=_Commands,
    help="Own an AWS data platform as code: run the taxi-trip ETL locally, inspect the "
    "infrastructure, operate the processor.",
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"dataplatform {package_version()}")
        raise typer.Exit


def package_version() -> str:
    """The installed package's version (pyproject's `version`)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("dataplatform")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "unknown"


@app.callback()
def _root(
    *,
    show_version: Annotated[
        bool,
        typer.Option(
            "--version",
            help="Print the version and exit.",
            callback=_version,
            is_eager=True,
            expose_value=True,
        ),
    ] = False,
    debug: Annotated[
        bool,
        typer.Option(
            "--debug",
            help="Show the full traceback of a failure instead of one line (also: "
            "DATAPLATFORM_DEBUG=1).",
        ),
    ] = False,
) -> None:
    """Own an AWS data platform as code (S3 data lake, Polars ETL on Lambda, RDS PostgreSQL).

    Exit status: 0 done, 1 failed (one line on stderr says why and what to do), 2 bad usage,
    3 a file was quarantined (`process`), 4 nothing matched (`backfill`).
    """


# --- ETL -----------------------------------------------------------------------------------------


def _check_month(value: str | None) -> str | None:
    if value is not None:
        try:
            Month.parse(value)
        except UsageError as error:
            raise typer.BadParameter(str(error)) from None
    return value


@app.command()
def process(
    inputs: Annotated[
        list[str],
        typer.Argument(
            metavar="INPUT...",
            help="TLC trip files (Parquet, CSV or .csv.gz; the format is read from the content), "
            "directories of them, or glob patterns such as 'data/yellow_*.parquet'.",
            show_default=False,
        ),
    ],
    *,
    out: Annotated[
        Path,
        typer.Option(
            "--out",
            help="Output directory: clean/, rejects/, reports/ (one JSON and one HTML report "
            "per file), index.html, or quarantine/ for a bad file. Shared by any number of "
            "files and runs: nothing is overwritten but a file's own earlier outputs.",
            file_okay=False,
        ),
    ],
    dataset: Annotated[
        DatasetName | None,
        typer.Option(
            help="Dataset of the files. Default: read from a TLC file name like "
            "yellow_tripdata_2024-01.parquet.",
            show_default=False,
        ),
    ] = None,
    month: Annotated[
        str | None,
        typer.Option(
            help="Month the files cover, YYYY-MM. Default: read from the TLC file name.",
            callback=_check_month,
            show_default=False,
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="A TOML file of rule thresholds (docs/etl-settings.toml lists each with its "
            "default).",
            dir_okay=False,
            show_default=False,
        ),
    ] = None,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON document with every file's outcome."),
    ] = False,
) -> None:
    """Clean NYC TLC trip files: every row ends up in clean/ or in rejects/ with a reason.

    Prints a line per file and, for several, a summary table. A file that cannot be processed
    as a whole (empty, truncated, not a table, a required column missing, unknown dataset) is
    copied to OUT/quarantine/ with a .error.json saying why; the others go on, and the command
    exits with status 3 if any file was quarantined.

    Example: `dataplatform process data/ --out out/` (then open out/index.html)
    """
    from dataplatform.batch import expand_inputs, load_settings, process_inputs

    settings = load_settings(config)
    paths = expand_inputs(inputs)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file: choose a directory")

    def tell(outcome: FileOutcome) -> None:
        if outcome.quarantined:
            copy = outcome.quarantined_to
            typer.echo(
                f"error: {outcome.source.name}: {outcome.reason}; copied to {copy} "
                f"(why: {copy}{QUARANTINE_ERROR_SUFFIX})",
                err=True,
            )
        elif not as_json:
            typer.echo(
                f"{outcome.dataset} {outcome.month}: {outcome.rows_in} rows in, "
                f"{outcome.rows_clean} clean, {outcome.rows_rejected} rejected -> "
                f"{outcome.report_html}"
            )
        for warning in outcome.warnings:
            typer.echo(f"warning: {warning}", err=True)

    outcomes = process_inputs(
        paths, out, dataset=dataset, month=month, settings=settings, on_done=tell
    )
    index = out / INDEX_NAME
    quarantined = sum(outcome.quarantined for outcome in outcomes)
    if as_json:
        document = {
            "out": str(out),
            "index": str(index),
            "quarantined": quarantined,
            "files": [outcome.as_dict() for outcome in outcomes],
        }
        typer.echo(json.dumps(document, indent=2))
    elif len(outcomes) > 1:
        _summary_table(outcomes, index)
    if quarantined:
        raise typer.Exit(UnprocessableInput.exit_code)


def _summary_table(outcomes: list[FileOutcome], index: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{len(outcomes)} files -> {index}", title_justify="left")
    table.add_column("file", no_wrap=True)
    for column in ("dataset", "month"):
        table.add_column(column)
    for column in ("rows in", "clean", "rejected"):
        table.add_column(column, justify="right")
    table.add_column("status")
    for outcome in outcomes:
        table.add_row(
            outcome.source.name,
            outcome.dataset or "",
            outcome.month or "",
            *(
                ("", "", "")
                if outcome.quarantined
                else (
                    f"{outcome.rows_in:,}",
                    f"{outcome.rows_clean:,}",
                    f"{outcome.rows_rejected:,}",
                )
            ),
            "quarantined" if outcome.quarantined else "processed",
        )
    Console(soft_wrap=True).print(table)


# --- Infrastructure ------------------------------------------------------------------------------

PROJECT_DIR_OPTION = typer.Option(
    "--project-dir",
    help="The project (a clone, with Pulumi.yaml). Default: the current directory or the first "
    "parent with a Pulumi.yaml.",
    file_okay=False,
    show_default=False,
)


@app.command()
def synth(
    *,
    stack: Annotated[
        str,
        typer.Option(
            "--stack",
            "-s",
            help="The stack to synthesise: dev or prod (any stack with a Pulumi.STACK.yaml).",
        ),
    ],
    output_format: Annotated[
        Literal["json", "mermaid"],
        typer.Option(
            "--format",
            help="json: every resource with its inputs, secrets redacted. mermaid: a diagram of "
            "the components and their resources.",
        ),
    ] = "json",
    project_dir: Annotated[Path | None, PROJECT_DIR_OPTION] = None,
) -> None:
    """Print what `pulumi up -s STACK` would create, offline: no AWS account, CLI or network.

    Runs the real Pulumi program under Pulumi's mocks with the stack's config; secrets are
    replaced by placeholders and printed as [secret]. The output is deterministic, so it can be
    diffed between commits.

    Example: `dataplatform synth -s prod --format mermaid > prod.mmd`
    """
    from rich.console import Console

    from dataplatform.project import find_project

    root = find_project(project_dir)
    with Console(stderr=True).status(f"synthesising stack {stack} under Pulumi's mocks"):
        # Imported here so the ETL commands do not pay for loading Pulumi.
        from dataplatform.synth import synth as synthesise

        text = synthesise(stack, output_format, root=root)
    typer.echo(text, nl=False)


@app.command()
def doctor(
    *,
    stack: Annotated[
        str,
        typer.Option(
            "--stack",
            "-s",
            help="The stack about to be deployed: dev or prod (any Pulumi.STACK.yaml).",
        ),
    ],
    pulumi: Annotated[
        str, typer.Option(help="The Pulumi CLI to check (a name on PATH or a path).")
    ] = "pulumi",
    project_dir: Annotated[Path | None, PROJECT_DIR_OPTION] = None,
    json_output: Annotated[
        bool,
        typer.Option(
            "--json", help="Print one JSON document: every check with its name, ok and detail."
        ),
    ] = False,
) -> None:
    """Check, before the first `pulumi up`, what only a real account and machine can tell.

    Example: `dataplatform doctor --stack dev` (with the credentials `pulumi up` will use)

    One line per check, `ok` or `problem` with the fix: region and credentials; the Pulumi CLI
    against .pulumi-version; the state backend (PULUMI_BACKEND_URL) and the stack's secrets
    provider; the bundle and its target; the account's Lambda concurrency against what the
    stacks reserve plus the 100 Lambda keeps unreserved; the Availability Zone IDs the stack
    will use, Lambda's support for them and RDS's offer of the instance class in each.
    Exits 1 if there is any problem.
    """
    from dataplatform.doctor import diagnose, report
    from dataplatform.project import find_project

    checks = diagnose(stack, root=find_project(project_dir), pulumi=pulumi)
    if json_output:
        document = {"stack": stack, "ok": all(check.ok for check in checks)}
        document["checks"] = [asdict(check) for check in checks]
        typer.echo(json.dumps(document, indent=2))
    else:
        typer.echo(report(checks), nl=False)
    if not all(check.ok for check in checks):
        raise typer.Exit(1)


# --- Bundle ---------------------------------------------------------------------------------------


@app.command()
def bundle(
    *,
    out: Annotated[
        Path,
        typer.Option(
            "--out", help="Directory for processor.zip (and cached builds).", file_okay=False
        ),
    ] = Path("build/lambda"),
    python_version: Annotated[
        str, typer.Option(help="Python of the Lambda runtime, X.Y.")
    ] = PYTHON_VERSION,
    arch: Annotated[Architecture, typer.Option(help="Lambda architecture.")] = DEFAULT_ARCHITECTURE,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Rebuild from scratch instead of reusing a build.")
    ] = False,
    as_json: Annotated[
        bool,
        typer.Option(
            "--json",
            help="Print one JSON line (path, sha256, zipped and unzipped bytes, cached, "
            "bytecode, import_ms) instead of a summary.",
        ),
    ] = False,
    project_dir: Annotated[Path | None, PROJECT_DIR_OPTION] = None,
) -> None:
    """Build the Lambda bundle: the ETL and its dependencies from Lambda-platform wheels, as a
    deterministic zip (same inputs, same sha256), cached by a hash of the sources, the lock file
    and the target.

    Shows each step as it runs, then the path, sizes and sha256; warns when no interpreter of
    the target Python is installed (the bundle then ships no bytecode and cold starts are about
    3x slower: `uv python install 3.13`). Fails above Lambda's 262,144,000-byte unzipped limit.

    Example: `dataplatform bundle --arch x86_64 --json`
    """
    from rich.console import Console

    from dataplatform.bundle import BundleTarget, build_bundle
    from dataplatform.project import find_project

    target = BundleTarget(python_version=python_version, arch=arch)
    project_root = find_project(project_dir)
    console = Console(stderr=True)
    with console.status("building the bundle") as status:
        result = build_bundle(
            project_root,
            out,
            target,
            use_cache=not no_cache,
            progress=lambda step: status.update(f"bundle: {step}"),
        )
    if as_json:
        typer.echo(result.as_json())
    else:
        typer.echo(
            f"{result.path}: {result.zipped_bytes / 1e6:.1f} MB zipped, "
            f"{result.unzipped_bytes / 1e6:.1f} MB unzipped, sha256 {result.sha256}"
            + (" (from the cache)" if result.cached else "")
        )
    if not result.bytecode:
        typer.echo(
            f"warning: no Python {python_version} interpreter found, so the bundle ships no "
            "bytecode and cold starts are slower (about 3x): run "
            f"`uv python install {python_version}` and bundle again",
            err=True,
        )


# --- Processor -----------------------------------------------------------------------------------


@app.command()
def migrate(
    *,
    database_url: Annotated[
        str,
        typer.Option(
            "--database-url",
            envvar="DATABASE_URL",
            help="PostgreSQL to migrate, as postgresql://USER@HOST:PORT/DBNAME (add "
            "?sslmode=require for RDS). The password is read from PGPASSWORD or ~/.pgpass, which "
            "keeps it out of your shell history, or from the URL. Also read from DATABASE_URL.",
            show_default=False,
        ),
    ],
) -> None:
    """Create or upgrade the processor's tables (schema `taxi`) and refresh their master data.

    Applies the SQL files in etl/migrations/ that the database has not seen yet, in order, and
    upserts the zones, vendors, rate codes, payment and trip types. Safe to run any number of
    times, and concurrently. Deploys run the same migrations through the processor Lambda.

    Example: `dataplatform migrate --database-url postgresql://admin@localhost:5432/postgres`
    (the password in PGPASSWORD)
    """
    from etl.migrate import migrate_url  # psycopg loads only for the commands that need it

    result = migrate_url(check_database_url(database_url))
    applied = ", ".join(result.applied) if result.applied else "none (already up to date)"
    typer.echo(f"migrations applied: {applied}")
    if result.unknown:
        typer.echo(f"the database has migrations this code does not know: {result.unknown}")
    typer.echo(
        "master data: " + ", ".join(f"{table} {rows}" for table, rows in result.master_data.items())
    )


@app.command("rotate-db-password")
def rotate_db_password(
    *,
    stack: Annotated[
        str, typer.Option("--stack", "-s", help="Pulumi stack to rotate, e.g. dev or prod.")
    ],
    length: Annotated[
        int,
        typer.Option(
            help=f"Password length (RDS accepts {MIN_LENGTH} to {MAX_LENGTH}).",
            min=MIN_LENGTH,
            max=MAX_LENGTH,
        ),
    ] = DEFAULT_LENGTH,
) -> None:
    """Generate a new database password and store it as the stack's encrypted `dbPassword`.

    The password is handed to `pulumi config set --secret` on standard input and never printed.
    Nothing changes in AWS until `pulumi up`; the steps follow the command's output.

    Example: `dataplatform rotate-db-password -s dev`
    """
    rotate(stack, length)
    typer.echo(next_steps(stack))


# --- Demo and backfill ---------------------------------------------------------------------------


@app.command()
def demo(
    *,
    rows: Annotated[
        int, typer.Option(help="Rows of the generated month (about 3 % bad).", min=100)
    ] = 1_000_000,
    s3_endpoint: Annotated[
        str | None,
        typer.Option(
            "--s3-endpoint",
            help="Use an existing S3/SQS/Secrets Manager endpoint (e.g. LocalStack at "
            "http://localhost:4566) instead of starting moto's server.",
            show_default=False,
        ),
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            "--database-url",
            help="Use an existing PostgreSQL (postgresql://USER:PASSWORD@HOST:PORT/DB) instead of "
            "starting one, as a user who may create roles; the demo creates and fills its schema "
            "`taxi` and gives the processor's role (dataplatform_processor) a password.",
            show_default=False,
        ),
    ] = None,
    out: Annotated[
        Path,
        typer.Option(
            help="Where the HTML quality reports and the processor's log go.", file_okay=False
        ),
    ] = Path("demo-output"),
    keep: Annotated[
        bool,
        typer.Option(
            "--keep",
            help="After the summary, keep moto's server and PostgreSQL running, print how to "
            "connect and example queries, and stop everything on Ctrl-C.",
        ),
    ] = False,
) -> None:
    """Run the whole platform on this machine: S3, SQS and Secrets Manager from moto's server,
    PostgreSQL from pgserver, and the Lambda handler fed through the queue.

    Uploads a generated month, the real July 2020 sample and a corrupt file to raw/, processes
    them exactly as the deployed function would, and prints what landed where: rows clean and
    rejected per file, the quarantined file and why, the top reject reasons, rows in PostgreSQL per
    month, throughput. Needs nothing installed but uv; stops everything it started.

    Example: `dataplatform demo --rows 100000`, or `dataplatform demo --keep` to query the result
    """
    if database_url is not None:
        check_database_url(database_url)
    from dataplatform.demo.run import DemoOptions, DemoResult, Services, run_demo
    from dataplatform.demo.view import DemoProgress, print_services, print_summary

    options = DemoOptions(rows=rows, s3_endpoint=s3_endpoint, database_url=database_url, out=out)
    with DemoProgress() as progress:

        def hold(result: DemoResult, services: Services) -> None:
            progress.stop()
            print_summary(result)
            print_services(services)
            _wait_for_interrupt()
            typer.echo("Stopping the demo's services.", err=True)

        result = run_demo(options, progress.update, hold if keep else None)
    if not keep:
        print_summary(result)


def _wait_for_interrupt() -> None:
    """Block until Ctrl-C (SIGINT) or SIGTERM; the caller then stops what it started."""
    stop = threading.Event()
    previous = {
        signum: signal.signal(signum, lambda *_: stop.set())
        for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        # A timed wait: the signal handler runs between waits on every platform.
        while not stop.wait(0.2):
            pass
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


@app.command()
def backfill(
    *,
    bucket: Annotated[
        str | None,
        typer.Option(
            help="The lake bucket. Default: the stack's (with --stack).", show_default=False
        ),
    ] = None,
    stack: Annotated[
        str | None,
        typer.Option(
            "--stack",
            "-s",
            help="Read the bucket from this stack's outputs (`pulumi stack output --json`; needs "
            "the Pulumi CLI, run from the project directory).",
            show_default=False,
        ),
    ] = None,
    prefix: Annotated[
        str,
        typer.Option(
            help="Which raw objects: a key prefix inside raw/, e.g. raw/yellow/ or "
            "raw/yellow/yellow_tripdata_2024."
        ),
    ] = "raw/",
    queue_url: Annotated[
        str | None,
        typer.Option(
            help="The processor's queue. Default: the queue the bucket notifies.",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="List the objects that would be enqueued; send nothing."),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the result as one JSON document.")
    ] = False,
) -> None:
    """Process existing raw objects again: one queue message per object, as S3 would send it.

    The queue fans the messages out to as many function instances as the reserved concurrency
    allows; each load replaces its file's earlier rows, so running a backfill twice is safe.
    Uses your AWS credentials (or AWS_ENDPOINT_URL for a local endpoint). Exits with status 4,
    after a warning, when no object matched the prefix.

    Example: `dataplatform backfill -s dev --prefix raw/yellow/yellow_tripdata_2024 --dry-run`
    """
    import boto3
    from rich.console import Console

    from dataplatform.backfill import NOTHING_MATCHED_EXIT, bucket_of_stack, stack_outputs
    from dataplatform.backfill import backfill as enqueue

    if bucket is None:
        if stack is None:
            raise UsageError("backfill needs --bucket BUCKET or --stack STACK")
        bucket = bucket_of_stack(stack_outputs(stack), stack)
    elif stack is not None:
        raise UsageError("give --bucket or --stack, not both")
    with Console(stderr=True).status(f"listing s3://{bucket}/{prefix}"):
        result = enqueue(
            boto3.client("s3"), boto3.client("sqs"), bucket, prefix, queue_url, dry_run=dry_run
        )
    source = f"s3://{bucket}/{prefix}"
    if as_json:
        typer.echo(json.dumps({"bucket": bucket, "prefix": prefix, **result.as_dict()}))
    elif dry_run:
        for key in result.keys:
            typer.echo(key)
        typer.echo(
            f"would enqueue {len(result.keys)} object(s) from {source} to {result.queue_url}"
        )
    else:
        typer.echo(f"enqueued {result.enqueued} object(s) from {source} to {result.queue_url}")
    if not result.keys:
        typer.echo(
            f"warning: no object matched {source}: check --prefix (it must start with raw/)",
            err=True,
        )
        raise typer.Exit(NOTHING_MATCHED_EXIT)


@app.command("db-tunnel")
def db_tunnel(
    *,
    stack: Annotated[
        str,
        typer.Option(
            "--stack",
            "-s",
            help="The stack whose database to reach (its outputs are read with `pulumi stack "
            "output --json`; needs the Pulumi CLI, run from the project directory).",
        ),
    ],
    local_port: Annotated[
        int, typer.Option(help="The local port to forward.", min=1, max=65535)
    ] = 15432,
    user: Annotated[
        str | None,
        typer.Option(
            help="The database user in the printed URL. Default: the stack's master user; a "
            "read-only login is a member of taxi_analyst (docs/queries.md).",
            show_default=False,
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Print the tunnel command and the psql URL; open nothing."),
    ] = False,
) -> None:
    """Forward a local port to the stack's PostgreSQL through its EC2 Instance Connect Endpoint,
    with your AWS credentials; no port is open to the internet.

    Prints the psql URL (without a password) and runs `aws ec2-instance-connect ssh` with a
    local forwarding until you end it (Ctrl-C or `exit`). Needs the AWS CLI v2 and a stack
    deployed with dbTunnel true.

    Example: `dataplatform db-tunnel -s dev`, then `psql "postgresql://...@localhost:15432/..."`
    """
    from dataplatform.backfill import stack_outputs
    from dataplatform.tunnel import aws_cli, open_tunnel, tunnel_from_outputs

    tunnel = tunnel_from_outputs(stack_outputs(stack), stack, user=user, local_port=local_port)
    aws = "aws" if dry_run else aws_cli()
    command = tunnel.command(aws)
    typer.echo(f"psql URL (in another terminal, once connected): {tunnel.psql_url}")
    typer.echo("tunnel: " + " ".join(command))
    if dry_run:
        return
    typer.echo("Opening the tunnel; leave this terminal open (exit or Ctrl-C closes it).", err=True)
    status = open_tunnel(tunnel, aws)
    if status != 0:
        raise typer.Exit(status)


FAST_EXIT_COMMANDS = frozenset({"process"})
"""Commands that end without tearing down the interpreter: they start nothing that must be
stopped at exit, and everything they write is closed before they return."""


def main() -> None:
    """The `dataplatform` console script: `app`, then a fast exit after the commands above.

    Tearing down the interpreter frees every object one by one: after `process` on a month of
    trips that is several hundred MB of frames, about 30 ms spent after the work is done and
    written. Like mypy's fast exit, flush the standard streams and leave. Other commands (the
    demo stops servers, some libraries register exit handlers) exit normally.
    """
    try:
        app()
    except SystemExit as done:
        status = done.code
    else:
        status = 0
    if sys.argv[1:2] and sys.argv[1] in FAST_EXIT_COMMANDS and isinstance(status, int | None):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status or 0)
    raise SystemExit(status)

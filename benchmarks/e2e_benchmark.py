"""The processor end to end: one raw object through `etl.handler.handler`, as Lambda runs it.

    uv run python benchmarks/e2e_benchmark.py [--rows 1000000 3000000] [--rounds 5]
        [--bytecode warm|cold]

For each size, a realistic 2024-style yellow month (`dataplatform.demo.synthetic`, a few % bad
rows) is uploaded to moto's server; each round uploads it again (a new S3 version, so the round
replaces the previous round's rows, as a corrected file would) and invokes the handler in a fresh
process, a new container: imports, the secret, the connection and the first query all count. The
child reports the handler's own per-step timings and its peak RSS.

In the same run, on the same PostgreSQL, the bare load limit: the same clean rows copied in
PostgreSQL's binary format (prepared beforehand, so no client work is timed) into an unindexed,
unpartitioned table, exactly as the handler copies them (the same columns, defaults for the
others, FREEZE into a table new in the transaction). A checkpoint before every timed step keeps
one step's rows from being flushed while the next is timed. The ratio of the handler's rate to
it says how close the whole path comes to what the server can ingest at all (the handler loads
binary COPY too, encoded with NumPy: docs/processor.md). The same rows as CSV, copied the same
way, give the limit of a text load.

The ceiling is the ratio the handler would reach if its load-and-write step took exactly the bare
COPY's time, everything before it unchanged: the interpreter's start and imports, the secret and
the connection, the download, reading and validating (no row is known clean before the whole
file is validated: duplicates span it). It bounds what any faster load path could reach in the
same run.

The CPU seconds say where the machine's time went during an invocation: the handler's process
(every thread, imports included), PostgreSQL's processes, and moto's server (threads of the
benchmark's own process). When their sum comes close to the wall time times the cores, the
processes are taking turns on the CPUs, and the load cannot reach the bare COPY's rate. The CPU
bound turns that into a ratio: the one the invocation would reach if the same CPU seconds kept
every core busy from its start to its end, the bare COPY's time times the cores over their sum.
No schedule of the same work on this machine's cores does better.

Each child then handles the same event again, as SQS's at-least-once delivery may hand it to the
same container: that repeat is timed too (the idempotency fast path).

Rates are medians over the rounds with their range; this machine is shared, so compare ratios
from one run rather than absolute figures across runs.

Bytecode: `--bytecode warm` (the default) gives the children a bytecode cache of their own,
filled by one small untimed invocation first, as the deployed bundle ships its modules
precompiled (docs/architecture.md); `--bytecode cold` compiles everything each child imports,
as a bundle built without the target's Python would (and as any child here would by default:
this environment sets PYTHONDONTWRITEBYTECODE).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import psycopg
from psycopg import sql

from dataplatform.demo.embedded import EmbeddedPostgres, aws_environment, moto_server, postgres
from dataplatform.demo.synthetic import yellow_month
from etl.allocator import MALLOC_CONF_ENV
from etl.contract import DB_AUTH_ENV, DB_PROCESSOR_SECRET_ARN_ENV, DB_SECRET_ARN_ENV, DbAuth
from etl.core.naming import Month
from etl.migrate import migrate_url

BUCKET = "benchmark-lake"
KEY = "raw/yellow/yellow_tripdata_2024-01.parquet"

CHILD = """
import json, logging, resource, sys, time
def cpu_s():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime
def peak_rss_mb():
    # VmHWM: this process's own peak since exec. (ru_maxrss would count the pages a child
    # shared with this benchmark's parent when it was forked.)
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
started = time.perf_counter()
from etl import handler
imported = time.perf_counter()
lines = []
class Keep(logging.Handler):
    def emit(self, record):
        lines.append(getattr(record, "fields", {}))
handler.logs.configure()
logging.getLogger("dataplatform.processor").addHandler(Keep())
reports = []
for event in json.loads(sys.argv[1]):
    begun = time.perf_counter()
    result = handler.handler(event, None)
    reports.append({
        "result": result,
        "seconds": time.perf_counter() - begun,
        "line": [line for line in lines if line.get("event") == "object_processed"][-1],
        "peak_rss_mb": peak_rss_mb(),
        "cpu_s": cpu_s(),
    })
print(json.dumps({"import_s": imported - started, "invocations": reports}))
"""


def s3_event(bucket: str, key: str, version_id: str, etag: str, size: int) -> dict[str, Any]:
    """A plain S3 ObjectCreated event for one version, as S3 would send it."""
    return {
        "Records": [
            {
                "eventSource": "aws:s3",
                "eventName": "ObjectCreated:Put",
                "s3": {
                    "bucket": {"name": bucket},
                    "object": {"key": key, "versionId": version_id, "eTag": etag, "size": size},
                },
            }
        ]
    }


def invoke(events: list[dict[str, Any]], environment: dict[str, str]) -> dict[str, Any]:
    """Run the handler on `events`, one invocation each, in a new interpreter (one container);
    return what it reported, with `cpu`: the CPU seconds PostgreSQL's processes and moto's
    server (the threads of this process, which otherwise waits) spent meanwhile."""
    postgres = PostgresCpu()
    moto_before = _own_cpu_s()
    with postgres.sampled():
        completed = subprocess.run(
            [sys.executable, "-c", CHILD, json.dumps(events)],
            capture_output=True,
            text=True,
            check=False,
            env=environment,
        )
    if completed.returncode != 0:
        raise SystemExit(f"the handler failed:\n{completed.stderr[-3000:]}")
    report: dict[str, Any] = json.loads(completed.stdout.strip().splitlines()[-1])
    moto_s = _own_cpu_s() - moto_before - postgres.sampler_s
    report["cpu"] = {"postgres_s": postgres.seconds(), "moto_s": moto_s}
    return report


def _own_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class PostgresCpu:
    """CPU seconds of every `postgres` process while sampled, read from /proc (Linux; 0 where
    there is none). A backend exits with its connection, so its time is sampled every 50 ms
    while it lives: up to its last 50 ms may be missed."""

    def __init__(self) -> None:
        self._first: dict[int, float] = {}
        self._last: dict[int, float] = {}
        self.sampler_s = 0.0
        """The sampling's own CPU seconds (a thread of this process)."""

    @contextmanager
    def sampled(self) -> Iterator[None]:
        stop = threading.Event()

        def sample() -> None:
            while True:
                for pid, seconds in _postgres_cpu_s().items():
                    self._first.setdefault(pid, 0.0)  # started meanwhile: all of it counts
                    self._last[pid] = seconds
                if stop.wait(0.05):
                    self.sampler_s = time.thread_time()
                    return

        for pid, seconds in _postgres_cpu_s().items():  # processes older than the invocation
            self._first[pid] = seconds
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        try:
            yield
        finally:
            stop.set()
            sampler.join()

    def seconds(self) -> float:
        return sum(last - self._first.get(pid, 0.0) for pid, last in self._last.items())


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _postgres_cpu_s() -> dict[int, float]:
    found: dict[int, float] = {}
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            stat = entry.read_text()
        except OSError:  # the process has exited
            continue
        name, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :]
        if name == "postgres":
            user, system = fields.split()[11:13]
            found[int(entry.parent.name)] = (int(user) + int(system)) / _CLOCK_TICKS
    return found


@dataclass(frozen=True)
class LoadedRows:
    """What the handler loaded, as its COPY sent it: the row count, the columns it sent (those
    with a value in some row) and the values the leaf's defaults gave dataset and source_key."""

    rows: int
    columns: sql.Composable
    owner: tuple[str, str]

    @classmethod
    def read(cls, conn: psycopg.Connection[Any]) -> LoadedRows:
        names = [
            str(row[0])
            for row in conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = 'taxi'"
                " AND table_name = 'trips' AND column_name NOT IN ('dataset', 'source_key')"
                " ORDER BY ordinal_position"
            ).fetchall()
        ]
        counts = conn.execute(
            sql.SQL("SELECT count(*), {} FROM taxi.trips").format(
                sql.SQL(", ").join(sql.SQL("count({})").format(sql.Identifier(n)) for n in names)
            )
        ).fetchone()
        owner = conn.execute("SELECT dataset, source_key FROM taxi.trips LIMIT 1").fetchone()
        assert counts is not None
        assert owner is not None
        columns = sql.SQL(", ").join(
            sql.Identifier(name) for name, count in zip(names, counts[1:], strict=True) if count
        )
        return cls(int(counts[0]), columns, (str(owner[0]), str(owner[1])))


def bare_copy_seconds(conn: psycopg.Connection[Any], loaded: LoadedRows, form: str) -> float:
    """Seconds of the handler's COPY with no client work: the `loaded` rows, exported by the
    server itself beforehand in `form` (binary or csv), copied back into a new unindexed table
    in one transaction, as the handler copies into the leaf it truncated: the same columns, with
    defaults for dataset and source_key as the leaf's, with FREEZE. `conn`: autocommit."""
    buffer = io.BytesIO()
    export = sql.SQL("COPY (SELECT {} FROM taxi.trips) TO STDOUT (FORMAT {})").format(
        loaded.columns, sql.SQL(form)
    )
    with conn.cursor().copy(export) as out:
        for chunk in out:
            buffer.write(chunk)
    data = buffer.getbuffer()
    settle(conn)
    started = time.perf_counter()
    with conn.transaction():
        conn.execute("CREATE TABLE public.bare (LIKE taxi.trips)")
        conn.execute(
            sql.SQL(
                "ALTER TABLE public.bare ALTER dataset SET DEFAULT {},"
                " ALTER source_key SET DEFAULT {}"
            ).format(*map(sql.Literal, loaded.owner))
        )
        load = sql.SQL("COPY public.bare ({}) FROM STDIN (FORMAT {}, FREEZE)")
        with conn.cursor().copy(load.format(loaded.columns, sql.SQL(form))) as copy:
            for offset in range(0, len(data), 1 << 20):
                copy.write(data[offset : offset + (1 << 20)])
    seconds = time.perf_counter() - started
    conn.execute("DROP TABLE public.bare")
    return seconds


def settle(conn: psycopg.Connection[Any]) -> None:
    """Write out what the previous step left in memory (a checkpoint), so that no step is timed
    while the server flushes an earlier one's rows: each COPY leaves hundreds of MB behind."""
    conn.execute("CHECKPOINT")


@contextmanager
def platform(bytecode: str) -> Iterator[tuple[EmbeddedPostgres, str, dict[str, str]]]:
    """moto's server and a migrated PostgreSQL, and the environment a child handler needs
    (with a bytecode cache of its own if `bytecode` is `warm`)."""
    with ExitStack() as stack:
        endpoint = stack.enter_context(moto_server())
        stack.enter_context(aws_environment(endpoint))
        pg = stack.enter_context(postgres())
        dbname = "bench"
        migrate_url(pg.create_database(dbname))
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket=BUCKET)
        s3.put_bucket_versioning(Bucket=BUCKET, VersioningConfiguration={"Status": "Enabled"})
        secrets = boto3.client("secretsmanager")
        arn = secrets.create_secret(Name="bench", SecretString=json.dumps(pg.secret(dbname)))["ARN"]
        # Loads log in as the processor's role, with a password locally (IAM tokens on RDS).
        pg.enable_processor_login()
        processor_arn = secrets.create_secret(
            Name="bench-processor", SecretString=json.dumps(pg.processor_secret(dbname))
        )["ARN"]
        # A container's environment: not the allocator options this process's Polars set for
        # itself, which would otherwise be inherited and override the processor's own.
        inherited = {name: value for name, value in os.environ.items() if name != MALLOC_CONF_ENV}
        environment = {
            **inherited,
            DB_SECRET_ARN_ENV: arn,
            DB_AUTH_ENV: DbAuth.PASSWORD.value,
            DB_PROCESSOR_SECRET_ARN_ENV: processor_arn,
            "LOG_LEVEL": "INFO",
        }
        if bytecode == "warm":
            environment.pop("PYTHONDONTWRITEBYTECODE", None)
            environment["PYTHONPYCACHEPREFIX"] = stack.enter_context(
                tempfile.TemporaryDirectory(prefix="e2e-bytecode-")
            )
            warm_up(pg, dbname, environment)
        yield pg, dbname, environment


def warm_up(pg: EmbeddedPostgres, dbname: str, environment: dict[str, str]) -> None:
    """One untimed invocation on a small month, so that every module a load imports is in the
    children's bytecode cache; its rows are removed again."""
    invoke([upload(month_parquet(20_000))], environment)
    with psycopg.connect(pg.url(dbname), autocommit=True) as conn:
        conn.execute("TRUNCATE taxi.trips, taxi.loads")


def month_parquet(rows: int) -> bytes:
    """A 2024-style yellow month of `rows` rows, as a Parquet file's bytes."""
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "month.parquet"
        yellow_month(Month(2024, 1), rows).write_parquet(path)
        return path.read_bytes()


def upload(body: bytes) -> dict[str, Any]:
    """Upload `body` as a new version of the benchmark's key; the S3 event for that version."""
    put = boto3.client("s3").put_object(Bucket=BUCKET, Key=KEY, Body=body)
    return s3_event(BUCKET, KEY, put["VersionId"], put["ETag"].strip('"'), len(body))


BYTECODE = {
    "warm": "bytecode caches warm, as the deployed bundle's precompiled modules",
    "cold": "bytecode caches cold: every module compiled on import",
}


def run_size(
    rows: int, rounds: int, pg: EmbeddedPostgres, dbname: str, env: dict[str, str], bytecode: str
) -> None:
    body = month_parquet(rows)
    rates, rss, steps, bare_rates, csv_rates, repeats = [], [], [], [], [], []
    ceilings, before_load, walls, cpu_bounds = [], [], [], []
    cores = os.cpu_count() or 1
    cpu: dict[str, list[float]] = {"handler": [], "PostgreSQL": [], "moto's server": []}
    for _ in range(rounds):
        event = upload(body)
        with psycopg.connect(pg.url(dbname), autocommit=True) as conn:
            settle(conn)
        # The same event twice: a load, then the redelivery SQS may make to the same container.
        report = invoke([event, event], env)
        first, repeat = report["invocations"]
        statuses = (first["line"]["status"], repeat["line"]["status"])
        if statuses != ("loaded", "already_loaded"):
            raise SystemExit(f"unexpected outcome: {report}")
        total_s = report["import_s"] + first["seconds"]
        rates.append(rows / total_s)
        cpu["handler"].append(first["cpu_s"])  # since the interpreter started: imports count
        cpu["PostgreSQL"].append(report["cpu"]["postgres_s"])
        cpu["moto's server"].append(report["cpu"]["moto_s"])
        walls.append(total_s)
        rss.append(first["peak_rss_mb"])
        timed = first["line"]["timings_ms"]
        steps.append(timed)
        repeats.append(repeat["seconds"] * 1000)
        with psycopg.connect(pg.url(dbname), autocommit=True) as conn:
            loaded = LoadedRows.read(conn)
            bare = bare_copy_seconds(conn, loaded, "binary")
            csv = bare_copy_seconds(conn, loaded, "csv")
        bare_rates.append(loaded.rows / bare)
        csv_rates.append(loaded.rows / csv)
        before_s = total_s - (timed["load_and_write"] + timed.get("index", 0)) / 1000
        before_load.append(before_s)
        ceilings.append(bare / (before_s + bare))
        cpu_bounds.append(bare * cores / sum(seconds[-1] for seconds in cpu.values()))
    ratios = [rate / bare for rate, bare in zip(rates, bare_rates, strict=True)]
    print(f"\n{rows:,} rows, {rounds} rounds (fresh process each; {BYTECODE[bytecode]})")
    print(f"  end to end:   {_median_range(rates, ',.0f')} rows/s")
    print(f"  bare COPY:    {_median_range(bare_rates, ',.0f')} rows/s (binary, unindexed)")
    print(f"  ratio:        {_median_range(ratios, '.2f')} of the bare COPY")
    print(
        f"  ceiling:      {_median_range(ceilings, '.2f')}: the ratio if loading and writing took"
        f" only the bare COPY's time ({_median_range(before_load, '.2f')} s come before the load)"
    )
    print(
        f"  CPU bound:    {_median_range(cpu_bounds, '.2f')}: the ratio if the CPU seconds below"
        f" kept all {cores} cores busy from start to end"
    )
    of_csv = [rate / limit for rate, limit in zip(rates, csv_rates, strict=True)]
    print(f"  bare CSV:     {_median_range(csv_rates, ',.0f')} rows/s (CSV, unindexed)")
    print(f"  ratio:        {_median_range(of_csv, '.2f')} of the bare CSV COPY (the text limit)")
    per_million = statistics.median(rss) / rows * 1e6
    print(f"  peak RSS:     {_median_range(rss, '.0f')} MB ({per_million:.0f} MB per million rows)")
    print(f"  repeat:       {_median_range(repeats, '.1f')} ms (already_loaded, same container)")
    busy = ", ".join(f"{name} {_median_range(seconds, '.1f')}" for name, seconds in cpu.items())
    wall = statistics.median(walls)
    print(
        f"  CPU seconds:  {busy}; wall {wall:.1f} s x {cores} cores = {wall * cores:.1f} available"
    )
    keys = sorted({name for step in steps for name in step})
    print(
        "  steps (median ms): "
        + ", ".join(f"{k} {statistics.median(s.get(k, 0) for s in steps):,.0f}" for k in keys)
    )


def _median_range(values: list[float], spec: str) -> str:
    low, middle, high = (
        format(value, spec) for value in (min(values), statistics.median(values), max(values))
    )
    return f"{middle} ({low}-{high})"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, nargs="+", default=[1_000_000, 3_000_000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--bytecode", choices=sorted(BYTECODE), default="warm")
    options = parser.parse_args()
    with platform(options.bytecode) as (pg, dbname, env):
        for rows in options.rows:
            run_size(rows, options.rounds, pg, dbname, env, options.bytecode)
            with psycopg.connect(pg.url(dbname), autocommit=True) as conn:
                conn.execute("TRUNCATE taxi.trips, taxi.loads")


if __name__ == "__main__":
    main()

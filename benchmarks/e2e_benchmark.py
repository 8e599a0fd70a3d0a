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
unpartitioned table. The ratio of the handler's rate to it says how close the whole path comes to
what the server can ingest at all (the handler loads binary COPY too, encoded by Polars:
docs/processor.md). The same rows as CSV, copied the same way, give the limit of a text load.

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
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import boto3
import psycopg

from dataplatform.demo.embedded import EmbeddedPostgres, aws_environment, moto_server, postgres
from dataplatform.demo.synthetic import yellow_month
from etl.allocator import MALLOC_CONF_ENV
from etl.contract import DB_AUTH_ENV, DB_PROCESSOR_SECRET_ARN_ENV, DB_SECRET_ARN_ENV, DbAuth
from etl.core.naming import Month
from etl.migrate import migrate_url

BUCKET = "benchmark-lake"
KEY = "raw/yellow/yellow_tripdata_2024-01.parquet"

CHILD = """
import json, logging, sys, time
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
    return what it reported."""
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
    return report


def bare_copy_seconds(pg: EmbeddedPostgres, dbname: str, form: str) -> tuple[int, float]:
    """(rows, seconds) of a COPY in `form` (binary or csv) of the loaded rows into an unindexed
    plain table: the rows exported by the server itself beforehand, so no client work is timed."""
    with psycopg.connect(pg.url(dbname), autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS public.bare")
        conn.execute("CREATE TABLE public.bare (LIKE taxi.trips)")
        buffer = io.BytesIO()
        export = f"COPY (SELECT * FROM taxi.trips) TO STDOUT (FORMAT {form})"
        with conn.cursor().copy(export) as out:
            for chunk in out:
                buffer.write(chunk)
        rows = int(conn.execute("SELECT count(*) FROM taxi.trips").fetchone()[0])  # type: ignore[index]
        data = buffer.getbuffer()
        started = time.perf_counter()
        with (
            conn.transaction(),
            conn.cursor().copy(f"COPY public.bare FROM STDIN (FORMAT {form})") as copy,
        ):
            for offset in range(0, len(data), 1 << 20):
                copy.write(data[offset : offset + (1 << 20)])
        seconds = time.perf_counter() - started
        conn.execute("DROP TABLE public.bare")
    return rows, seconds


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
    for _ in range(rounds):
        event = upload(body)
        # The same event twice: a load, then the redelivery SQS may make to the same container.
        report = invoke([event, event], env)
        first, repeat = report["invocations"]
        statuses = (first["line"]["status"], repeat["line"]["status"])
        if statuses != ("loaded", "already_loaded"):
            raise SystemExit(f"unexpected outcome: {report}")
        rates.append(rows / (report["import_s"] + first["seconds"]))
        rss.append(first["peak_rss_mb"])
        steps.append(first["line"]["timings_ms"])
        repeats.append(repeat["seconds"] * 1000)
        loaded, bare = bare_copy_seconds(pg, dbname, "binary")
        bare_rates.append(loaded / bare)
        loaded, bare = bare_copy_seconds(pg, dbname, "csv")
        csv_rates.append(loaded / bare)
    ratios = [rate / bare for rate, bare in zip(rates, bare_rates, strict=True)]
    print(f"\n{rows:,} rows, {rounds} rounds (fresh process each; {BYTECODE[bytecode]})")
    print(f"  end to end:   {_median_range(rates, ',.0f')} rows/s")
    print(f"  bare COPY:    {_median_range(bare_rates, ',.0f')} rows/s (binary, unindexed)")
    print(f"  ratio:        {_median_range(ratios, '.2f')} of the bare COPY")
    of_csv = [rate / limit for rate, limit in zip(rates, csv_rates, strict=True)]
    print(f"  bare CSV:     {_median_range(csv_rates, ',.0f')} rows/s (CSV, unindexed)")
    print(f"  ratio:        {_median_range(of_csv, '.2f')} of the bare CSV COPY (the text limit)")
    per_million = statistics.median(rss) / rows * 1e6
    print(f"  peak RSS:     {_median_range(rss, '.0f')} MB ({per_million:.0f} MB per million rows)")
    print(f"  repeat:       {_median_range(repeats, '.1f')} ms (already_loaded, same container)")
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

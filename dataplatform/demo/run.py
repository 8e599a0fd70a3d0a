"""`dataplatform demo`: the whole platform on a laptop, through the code path Lambda runs.

Starts moto's server (S3, SQS, Secrets Manager) and a PostgreSQL (pgserver) unless existing ones
are given, lays out the lake the way the infrastructure does (a versioned bucket whose raw/
notifications go to a queue with a dead-letter queue, Secrets Manager secrets with the master
user's connection and the processor role's), runs the migrations through the handler's
`{"action": "migrate"}` as the master user, lets the processor's role (which they create) log in
with a password, as pgserver cannot check the IAM tokens it uses on RDS, uploads three
files to raw/ (a generated month with a few % bad rows, the real July 2020 sample, a truncated
file) and then plays the event source mapping: it receives the queue's messages in batches,
invokes `etl.handler.handler` with the SQS event Lambda would build, and deletes the messages the
handler did not report as failed. The summary comes from where a user would look: the audit
table, the trips table and the reports in S3.
"""

from __future__ import annotations

import json
import os
import secrets as secrets_module
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, redirect_stdout
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit, urlunsplit

import boto3
import psycopg
from psycopg.conninfo import conninfo_to_dict

from dataplatform.demo.embedded import (
    aws_environment,
    moto_server,
    postgres,
    processor_secret,
    set_processor_password,
)
from dataplatform.demo.samples import YELLOW_2020_07
from dataplatform.demo.synthetic import yellow_month
from etl import handler as processor
from etl.contract import (
    DB_AUTH_ENV,
    DB_PROCESSOR_SECRET_ARN_ENV,
    DB_SECRET_ARN_ENV,
    LAKE_BUCKET_ENV,
    RAW_PREFIX,
    DbAuth,
)
from etl.core.errors import DataplatformError
from etl.core.naming import Month, resolve_dataset, resolve_month
from etl.database import DbCredentials
from etl.events import sqs_record
from etl.lake import output_keys

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

GENERATED_MONTH = Month(2024, 1)
BATCH_SIZE = 10
"""Messages per invocation, as the event source mapping is configured."""
DRAIN_TIMEOUT_SECONDS = 300.0


class DemoError(DataplatformError):
    """The demo could not complete."""


@dataclass(frozen=True)
class DemoOptions:
    """What the demo runs against and with."""

    rows: int = 1_000_000
    """Rows of the generated month (about 3 % of them bad)."""
    s3_endpoint: str | None = None
    """An existing S3/SQS/Secrets Manager endpoint (e.g. LocalStack); default: moto's server."""
    database_url: str | None = None
    """An existing PostgreSQL (libpq URL); default: an embedded one."""
    out: Path = Path("demo-output")
    """Where the HTML quality reports and the processor's log are written."""


@dataclass
class ObjectSummary:
    """One uploaded object, as the audit table and the reports record it."""

    key: str
    status: str
    rows_in: int | None
    rows_clean: int | None
    rows_rejected: int | None
    error: str | None
    reasons: dict[str, int] = field(default_factory=dict)
    report_html: Path | None = None


@dataclass
class DemoResult:
    """What the demo did, for the summary and for tests."""

    bucket: str
    objects: list[ObjectSummary]
    trips_per_month: list[tuple[str, str, int]]
    """(dataset, YYYY-MM, rows in taxi.trips)."""
    processing_seconds: float
    invocations: int
    log_path: Path
    lake_keys: list[str] = field(default_factory=list)
    """Every key in the lake bucket after the run (the bucket itself is deleted on exit)."""

    @property
    def rows_processed(self) -> int:
        """Rows read from every processed object."""
        return sum(o.rows_in or 0 for o in self.objects)


Progress = Callable[[str, int, int], None]
"""progress(step, done, total): called as the demo advances."""


@dataclass(frozen=True)
class Services:
    """How to reach what the demo runs, while `--keep` holds it open."""

    database_url: str = field(repr=False)
    """The database, as a libpq URL: the embedded server's with its password (a throwaway
    local server on 127.0.0.1), a `--database-url` without its password."""
    s3_endpoint: str
    """moto's server (or the `--s3-endpoint` given)."""
    bucket: str
    """The demo's lake bucket."""


KeepOpen = Callable[[DemoResult, Services], None]
"""Called with the result while every service still runs; they stop when it returns."""


@dataclass
class _Lambda:
    """The parts of Lambda's context object the handler reads."""

    aws_request_id: str = field(default_factory=lambda: str(uuid.uuid4()))
    function_name: str = "dataplatform-demo-processor"


def run_demo(
    options: DemoOptions, progress: Progress | None = None, keep_open: KeepOpen | None = None
) -> DemoResult:
    """Run the demo end to end and return what it did. Everything it started is stopped, and
    every cloud resource it created is deleted, before it returns; with `keep_open`, only once
    `keep_open` has returned (`dataplatform demo --keep` waits there for Ctrl-C)."""
    report = progress or (lambda step, done, total: None)
    options.out.mkdir(parents=True, exist_ok=True)
    log_path = options.out / "processor.log"
    log_path.write_text("")
    if options.database_url:
        # A database of one's own is checked before anything starts: a wrong URL costs a second.
        psycopg.connect(options.database_url, connect_timeout=5).close()
    with ExitStack() as stack:
        report("starting local services", 0, 2)
        endpoint = options.s3_endpoint or stack.enter_context(moto_server())
        stack.enter_context(aws_environment(endpoint))
        if options.database_url:
            secret = _secret_from_url(options.database_url)
            password = secrets_module.token_urlsafe(24)
        else:
            server = stack.enter_context(postgres())
            secret, password = dict(server.secret()), server.processor_password
        report("starting local services", 2, 2)
        s3, sqs = boto3.client("s3"), boto3.client("sqs")
        lake = stack.enter_context(
            _lake(s3, sqs, json.dumps(secret), json.dumps(processor_secret(secret, password)))
        )
        stack.enter_context(_processor_environment(lake))

        report("migrating the database", 0, 1)
        with log_path.open("a") as log, redirect_stdout(log):
            processor.handler({"action": "migrate"}, _Lambda())
        # The role exists now; it loads with a password here, with IAM tokens on RDS.
        with _connect(secret) as admin:
            set_processor_password(admin, password)
        report("migrating the database", 1, 1)

        inputs = stack.enter_context(_inputs(options.rows, report))
        keys = []
        for index, path in enumerate(inputs):
            key = f"{RAW_PREFIX}yellow/{path.name}"
            # One PUT per file: S3 sends one notification for it. (upload_file goes multipart
            # above 8 MB, and moto then notifies twice, where S3 notifies once.)
            with path.open("rb") as body:
                s3.put_object(Bucket=lake.bucket, Key=key, Body=body)
            keys.append(key)
            report("uploading to raw/", index + 1, len(inputs))

        started = time.perf_counter()
        invocations = _drain(sqs, lake, keys, secret, log_path, report)
        processing_seconds = time.perf_counter() - started

        objects = _summaries(s3, lake.bucket, keys, secret, options.out)
        trips = _trips_per_month(secret)
        lake_keys = [
            item["Key"]
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=lake.bucket)
            for item in page.get("Contents", [])
        ]
        result = DemoResult(
            bucket=lake.bucket,
            objects=objects,
            trips_per_month=trips,
            processing_seconds=processing_seconds,
            invocations=invocations,
            log_path=log_path,
            lake_keys=sorted(lake_keys),
        )
        if keep_open is not None:
            url = (
                _without_password(options.database_url)
                if options.database_url
                else _url_from_secret(secret)
            )
            keep_open(result, Services(database_url=url, s3_endpoint=endpoint, bucket=lake.bucket))
    return result


@dataclass(frozen=True)
class _LakeResources:
    bucket: str
    queue_url: str
    queue_arn: str
    secret_arn: str
    """The master user's connection: for the migrate action."""
    processor_secret_arn: str
    """The processor role's connection, with its local password: for loads."""


@contextmanager
def _lake(
    s3: S3Client, sqs: SQSClient, secret_string: str, processor_secret_string: str
) -> Iterator[_LakeResources]:
    """The bucket, queues and secrets the infrastructure would create (the processor's secret
    standing in for IAM authentication); deleted on exit."""
    suffix = uuid.uuid4().hex[:8]
    bucket = f"dataplatform-demo-lake-{suffix}"
    s3.create_bucket(Bucket=bucket)
    secrets = boto3.client("secretsmanager")
    created: list[Callable[[], object]] = [lambda: _empty_and_delete(s3, bucket)]
    try:
        s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
        dlq = sqs.create_queue(QueueName=f"dataplatform-demo-dlq-{suffix}")["QueueUrl"]
        created.append(lambda: sqs.delete_queue(QueueUrl=dlq))
        dlq_arn = _queue_arn(sqs, dlq)
        queue = sqs.create_queue(
            QueueName=f"dataplatform-demo-queue-{suffix}",
            Attributes={
                "VisibilityTimeout": "60",
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": 3}),
            },
        )["QueueUrl"]
        created.append(lambda: sqs.delete_queue(QueueUrl=queue))
        queue_arn = notify_queue_of_raw_uploads(s3, sqs, bucket, queue)
        secret_arn = secrets.create_secret(
            Name=f"dataplatform-demo-db-{suffix}", SecretString=secret_string
        )["ARN"]
        created.append(
            lambda: secrets.delete_secret(SecretId=secret_arn, ForceDeleteWithoutRecovery=True)
        )
        processor_arn = secrets.create_secret(
            Name=f"dataplatform-demo-processor-{suffix}", SecretString=processor_secret_string
        )["ARN"]
        created.append(
            lambda: secrets.delete_secret(SecretId=processor_arn, ForceDeleteWithoutRecovery=True)
        )
        yield _LakeResources(bucket, queue, queue_arn, secret_arn, processor_arn)
    finally:
        for delete in reversed(created):
            delete()


def notify_queue_of_raw_uploads(s3: S3Client, sqs: SQSClient, bucket: str, queue_url: str) -> str:
    """Send the events of objects created under raw/ in `bucket` to the queue, as the lake's
    bucket notification does in AWS; return the queue's ARN."""
    queue_arn = _queue_arn(sqs, queue_url)
    s3.put_bucket_notification_configuration(
        Bucket=bucket,
        NotificationConfiguration={
            "QueueConfigurations": [
                {
                    "QueueArn": queue_arn,
                    "Events": ["s3:ObjectCreated:*"],
                    "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": RAW_PREFIX}]}},
                }
            ]
        },
    )
    return queue_arn


def _queue_arn(sqs: SQSClient, queue_url: str) -> str:
    attributes = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])
    return attributes["Attributes"]["QueueArn"]


def _empty_and_delete(s3: S3Client, bucket: str) -> None:
    paginator = s3.get_paginator("list_object_versions")
    for page in paginator.paginate(Bucket=bucket):
        entries = [
            {"Key": v["Key"], "VersionId": v["VersionId"]}
            for v in [*page.get("Versions", []), *page.get("DeleteMarkers", [])]
        ]
        if entries:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": entries})  # type: ignore[typeddict-item]
    s3.delete_bucket(Bucket=bucket)


@contextmanager
def _processor_environment(lake: _LakeResources) -> Iterator[None]:
    """The function's environment, and a fresh container: the handler keeps its clients and
    connection between invocations, as Lambda does, and closes them at the end."""
    environment = {
        DB_SECRET_ARN_ENV: lake.secret_arn,
        DB_AUTH_ENV: DbAuth.PASSWORD.value,
        DB_PROCESSOR_SECRET_ARN_ENV: lake.processor_secret_arn,
        LAKE_BUCKET_ENV: lake.bucket,
    }
    saved = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    try:
        yield
    finally:
        processor.reset_runtime()
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _url_from_secret(secret: dict[str, Any]) -> str:
    """A libpq URL from an RDS-style connection secret."""
    user, password = (
        quote(str(secret["username"]), safe=""),
        quote(str(secret["password"]), safe=""),
    )
    url = f"postgresql://{user}:{password}@{secret['host']}:{secret['port']}/{secret['dbname']}"
    return f"{url}?sslmode={secret['sslmode']}" if secret.get("sslmode") else url


def _without_password(url: str) -> str:
    """`url` with its password removed (libpq then asks, or reads PGPASSWORD)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{quote(user, safe='')}@{netloc}"))


@contextmanager
def _inputs(rows: int, report: Progress) -> Iterator[list[Path]]:
    """The three demo files: a generated month, the real sample, and a truncated copy."""
    with tempfile.TemporaryDirectory(prefix="dataplatform-demo-") as directory:
        folder = Path(directory)
        report("generating a month of trips", 0, 1)
        month = folder / f"yellow_tripdata_{GENERATED_MONTH}.parquet"
        yellow_month(GENERATED_MONTH, rows).write_parquet(month)
        report("generating a month of trips", 1, 1)
        sample = folder / YELLOW_2020_07.name
        shutil.copyfile(YELLOW_2020_07, sample)
        corrupt = folder / "yellow_tripdata_2024-02.parquet"
        data = month.read_bytes()
        corrupt.write_bytes(data[: len(data) // 2])
        yield [month, sample, corrupt]


def _drain(
    sqs: SQSClient,
    lake: _LakeResources,
    keys: list[str],
    secret: dict[str, Any],
    log_path: Path,
    report: Progress,
) -> int:
    """Deliver the queue's messages to the handler until every key is loaded or quarantined."""
    deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
    invocations = 0
    done = 0
    report("processing via the queue", 0, len(keys))
    while done < len(keys):
        if time.monotonic() > deadline:
            raise DemoError(
                f"only {done} of {len(keys)} objects were processed in "
                f"{DRAIN_TIMEOUT_SECONDS:.0f} s: see {log_path}"
            )
        received = sqs.receive_message(
            QueueUrl=lake.queue_url,
            MaxNumberOfMessages=BATCH_SIZE,
            WaitTimeSeconds=1,
            AttributeNames=["All"],
        ).get("Messages", [])
        if received:
            event = {"Records": [sqs_record(m, lake.queue_arn) for m in received]}
            with log_path.open("a") as log, redirect_stdout(log):
                response = processor.handler(event, _Lambda())
            invocations += 1
            failed = {item["itemIdentifier"] for item in response["batchItemFailures"]}
            for message in received:
                if message["MessageId"] not in failed:
                    sqs.delete_message(
                        QueueUrl=lake.queue_url, ReceiptHandle=message["ReceiptHandle"]
                    )
        done = _finished(secret, keys)
        report("processing via the queue", done, len(keys))
    return invocations


def _connect(secret: dict[str, Any]) -> psycopg.Connection[Any]:
    """A connection from an RDS-style secret: the master user's, for what an operator does
    around the processor (the summary reads trips, which the processor's role cannot)."""
    credentials = DbCredentials.from_secret_string(json.dumps(secret))
    return psycopg.connect(**credentials.connect_kwargs())


def _finished(secret: dict[str, Any], keys: list[str]) -> int:
    with _connect(secret) as conn:
        row = conn.execute(
            "SELECT count(*) FROM taxi.loads WHERE source_key = ANY(%s)"
            " AND status IN ('loaded', 'quarantined')",
            [keys],
        ).fetchone()
    return int(row[0]) if row else 0


def _summaries(
    s3: S3Client, bucket: str, keys: list[str], secret: dict[str, Any], out: Path
) -> list[ObjectSummary]:
    with _connect(secret) as conn:
        rows = conn.execute(
            "SELECT source_key, status, rows_in, rows_clean, rows_rejected, error"
            " FROM taxi.loads WHERE source_key = ANY(%s)",
            [keys],
        ).fetchall()
    by_key = {row[0]: row for row in rows}
    summaries = []
    for key in keys:
        _, status, rows_in, rows_clean, rows_rejected, error = by_key[key]
        summary = ObjectSummary(key, status, rows_in, rows_clean, rows_rejected, error)
        if status == "loaded":
            summary.reasons, summary.report_html = _report(s3, bucket, key, out)
        summaries.append(summary)
    return summaries


def _report(s3: S3Client, bucket: str, key: str, out: Path) -> tuple[dict[str, int], Path]:
    """The object's reasons from its JSON report in S3, and its HTML report saved to `out`."""
    name = key.rsplit("/", 1)[-1]
    outputs = output_keys(resolve_dataset(name, None).name, resolve_month(name, None), key)
    document = json.loads(s3.get_object(Bucket=bucket, Key=outputs.report)["Body"].read())
    page = out / Path(outputs.report_html).name
    page.write_bytes(s3.get_object(Bucket=bucket, Key=outputs.report_html)["Body"].read())
    return dict(document["reasons"]), page


def _trips_per_month(secret: dict[str, Any]) -> list[tuple[str, str, int]]:
    with _connect(secret) as conn:
        rows = conn.execute(
            "SELECT dataset, to_char(pickup_date, 'YYYY-MM') AS month, count(*)"
            " FROM taxi.trips GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
    return [(str(dataset), str(month), int(count)) for dataset, month, count in rows]


def _secret_from_url(url: str) -> dict[str, Any]:
    """The RDS-style secret for a libpq URL given on the command line."""
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError as error:
        raise DemoError(f"--database-url is not a PostgreSQL URL: {error}") from None
    return {
        "host": parts.get("host", "localhost"),
        "port": int(parts.get("port") or 5432),
        "username": parts.get("user", "postgres"),
        "password": parts.get("password", ""),
        "dbname": parts.get("dbname", "postgres"),
        "sslmode": parts.get("sslmode", "prefer"),
    }

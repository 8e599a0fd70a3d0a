"""The Lambda processor: raw objects in S3 → ETL → lake outputs and PostgreSQL, exactly once in
effect.

Per object: download (the event's version) → `process_file` → the object's partitions on demand
→ one transaction: lock the key, skip if a newer event was already loaded, replace the key's rows
(TRUNCATE its partitions, COPY) while processed/, rejects/ and the HTML report are written beside
it, then the JSON report (last), upsert its `taxi.loads` row → commit → acknowledge. An
unprocessable object is copied to quarantine/ with an `.error.json`, and acknowledged. Anything
else that fails (database down or refusing the password twice, S3 errors after botocore's own
retries) fails its SQS message alone (`batchItemFailures`), with its retry delayed by a doubling
back-off (`etl.retry`): SQS redelivers it and, after the queue's maxReceiveCount, moves it to the
DLQ. Failures while reading, normalising or validating a file's content never land there:
`process_file` turns them into `UnprocessableInput` (quarantine).

Configuration comes from the environment: `DB_AUTH` and what it needs to log in as the
processor's own database role (`iam`: `DB_HOST`, `DB_PORT`, `DB_NAME`, `DB_USER`, for an IAM
token; `password`: `DB_PROCESSOR_SECRET_ARN`, a secret with that role's password, for local
PostgreSQL), `DB_SECRET_ARN` (the master user's secret, read only by the migrate action),
`LOG_LEVEL`, `ETL_SETTINGS` (the stack's rule thresholds, JSON), `LAKE_BUCKET` (where the
migrate action writes the master data as Parquet), and the standard AWS variables,
`AWS_ENDPOINT_URL` included (boto3 reads it for every service), so moto's server or LocalStack
work without code changes.
"""

from __future__ import annotations

import logging
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import boto3
from botocore.config import Config

# First of the processor's modules: it configures Polars' allocator before the next ones load it.
from etl import allocator, logs  # noqa: F401  (allocator: imported for its effect)
from etl.contract import (
    DB_AUTH_ENV,
    DB_HOST_ENV,
    DB_NAME_ENV,
    DB_PORT_ENV,
    DB_PROCESSOR_SECRET_ARN_ENV,
    DB_SECRET_ARN_ENV,
    DB_USER_ENV,
    ETL_SETTINGS_ENV,
    LAKE_BUCKET_ENV,
    RAW_PREFIX,
    DbAuth,
)
from etl.core.errors import DataplatformError, UnprocessableInput, UsageError, first_line
from etl.core.master_data import master_tables
from etl.core.pipeline import process_file
from etl.core.settings import EtlSettings, settings_from_json
from etl.database import (
    CredentialSource,
    Database,
    IamTokenCredentials,
    SecretsManagerCredentials,
)
from etl.events import Message, SourceObject, is_migrate, messages
from etl.lake import Downloaded, Lake, ObjectGone, output_keys
from etl.loader import (
    COPY_BATCH_ROWS,
    LoadRecord,
    already_processed,
    already_quarantined,
    ensure_object_partitions,
    load_summaries,
    lock_object,
    pickup_months,
    processing_version,
    record_load,
    replace_rows,
    superseded_by,
)
from etl.migrate import migrate
from etl.retry import delay_retries

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

# botocore retries throttling and 5xx itself (standard mode, exponential backoff with jitter);
# what still fails after that is a transient failure of the message.
_AWS_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=60
)

_log = logging.getLogger("dataplatform.processor")


class ConfigurationError(DataplatformError):
    """The processor's environment lacks a setting it needs."""


class RecordsFailed(DataplatformError):
    """Some records of a plain S3 event failed (there is no partial-batch protocol for those:
    the invocation fails and Lambda's asynchronous retries take over)."""


@dataclass
class Outcome:
    """What happened to one object: the fields of its log line."""

    status: str
    """loaded, quarantined, already_loaded, already_quarantined, superseded, ignored or gone."""
    fields: dict[str, Any] = field(default_factory=dict)


class Runtime:
    """What a processor container keeps between invocations: its S3 client, the database
    connection (with its cached credentials) and the ETL settings."""

    def __init__(
        self,
        *,
        s3: S3Client,
        database: Database,
        admin: Database,
        settings: EtlSettings | None = None,
        sqs: SQSClient | None = None,
        lake_bucket: str | None = None,
    ) -> None:
        self.s3 = s3
        self.lake_bucket = lake_bucket
        """Where the migration writes the master data (`LAKE_BUCKET`); None: it does not."""
        self.lake = Lake(s3)
        self.database = database
        """The processor role's connection: every load."""
        self.admin = admin
        """The master user's connection: the migrate action only, closed after each run."""
        self.settings = settings or EtlSettings()
        self.processing_version = processing_version(self.settings)
        """What decides an object's outcome here (code and thresholds): a version of an object
        already processed with it is not processed again."""
        self.sqs = sqs
        """Delays the retry of failed SQS messages (`etl.retry`); None: no back-off."""

    @classmethod
    def from_environment(cls, settings: EtlSettings | None = None) -> Runtime:
        """Build the clients from the environment (see the module docstring), and the rule
        thresholds from `ETL_SETTINGS` unless `settings` are given."""
        if settings is None:
            try:
                settings = settings_from_json(
                    os.environ.get(ETL_SETTINGS_ENV, ""), ETL_SETTINGS_ENV
                )
            except UsageError as error:
                raise ConfigurationError(str(error)) from None
        secret_id = _required(
            DB_SECRET_ARN_ENV,
            "point it at the Secrets Manager secret holding the master user's connection (JSON "
            "with host, port, username, password, dbname)",
        )
        session = boto3.session.Session()
        s3 = session.client("s3", config=_AWS_CONFIG)
        secrets = session.client("secretsmanager", config=_AWS_CONFIG)
        sqs = session.client("sqs", config=_AWS_CONFIG)
        return cls(
            s3=s3,
            database=Database(_processor_credentials(session, secrets)),
            admin=Database(SecretsManagerCredentials(secrets, secret_id)),
            settings=settings,
            sqs=sqs,
            lake_bucket=os.environ.get(LAKE_BUCKET_ENV) or None,
        )

    def write_master_data(self) -> dict[str, str]:
        """Write the master data to the lake bucket `LAKE_BUCKET` names (none: nothing, e.g. a
        migration run against a database alone); return table -> key."""
        if not self.lake_bucket:
            return {}
        with tempfile.TemporaryDirectory(prefix="master-") as directory:
            return self.lake.write_master_data(self.lake_bucket, master_tables(), Path(directory))

    def close(self) -> None:
        """Close the database connections."""
        self.database.close()
        self.admin.close()

    def handle(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        """Handle one invocation; see the module docstring for the event kinds."""
        request_id = getattr(context, "aws_request_id", None)
        if is_migrate(event):
            started = time.perf_counter()
            # As the master user, which owns the schema; its connection is not kept for loads.
            try:
                result = migrate(self.admin.connection())
            finally:
                self.admin.close()
            summary = {**result.as_dict(), "lake_master_data": self.write_master_data()}
            fields = {"event": "migrated", **summary, "request_id": request_id}
            fields["duration_ms"] = logs.ms_since(started)
            _log.info("migrations applied", extra={"fields": fields})
            return {"action": "migrate", **summary}
        failed: list[Message] = []
        failed_plain = 0
        for message in messages(event):
            if not self._handle_message(message, request_id):
                if message.message_id is None:
                    failed_plain += 1
                else:
                    failed.append(message)
        if failed and self.sqs is not None:
            delay_retries(self.sqs, failed)
        failures = [{"itemIdentifier": str(message.message_id)} for message in failed]
        if failed_plain:
            raise RecordsFailed(f"{failed_plain} S3 event record(s) failed; see the logs")
        return {"batchItemFailures": failures}

    def _handle_message(self, message: Message, request_id: str | None) -> bool:
        """Process every object of a message; False if the message must be retried."""
        base = {"message_id": message.message_id, "request_id": request_id}
        try:
            objects = message.objects()
        except DataplatformError as error:
            _log.error(
                "message is not an S3 notification: left for redelivery and the DLQ",
                extra={"fields": {"event": "message_malformed", **base, "error": str(error)}},
            )
            return False
        if not objects:
            _log.info("S3 test event ignored", extra={"fields": {"event": "test_event", **base}})
        for obj in objects:
            started = time.perf_counter()
            identity = {"bucket": obj.bucket, "key": obj.key, "version_id": obj.version_id}
            try:
                outcome = self.process_object(obj)
            except Exception as error:
                _log.error(
                    "object failed: the message will be retried",
                    exc_info=True,
                    extra={
                        "fields": {
                            "event": "object_failed",
                            **base,
                            **identity,
                            "error_type": type(error).__name__,
                            "error": first_line(error),
                            "duration_ms": logs.ms_since(started),
                        }
                    },
                )
                return False
            level = logging.WARNING if outcome.status == "quarantined" else logging.INFO
            _log.log(
                level,
                f"object {outcome.status}",
                extra={
                    "fields": {
                        "event": "object_processed",
                        "status": outcome.status,
                        **base,
                        **identity,
                        **outcome.fields,
                        "duration_ms": logs.ms_since(started),
                    }
                },
            )
        return True

    def process_object(self, obj: SourceObject) -> Outcome:
        """Process one object to completion, or raise (transient failure: retry the message)."""
        if not obj.key.startswith(RAW_PREFIX):
            return Outcome("ignored", {"reason": f"key outside {RAW_PREFIX}"})
        if obj.key.endswith("/"):
            # The zero-byte "folder" the S3 console creates is not a file.
            return Outcome("ignored", {"reason": "folder placeholder"})
        if not obj.created:
            return Outcome("ignored", {"reason": f"event {obj.event_name}"})
        # At-least-once delivery (and moto's two events for one multipart upload, and every
        # backfill rerun) repeats events: a version this code already processed costs one query.
        done = already_processed(self.database.connection(), obj, self.processing_version)
        if done is not None:
            return Outcome(f"already_{done}", {"version_id": obj.version_id, "etag": obj.etag})
        started_at = datetime.now(UTC)
        timings: dict[str, float] = {}
        with tempfile.TemporaryDirectory(prefix="dataplatform-") as scratch:
            directory = Path(scratch)
            clock = time.perf_counter()
            try:
                downloaded = self.lake.download(obj, directory)
            except ObjectGone:
                return Outcome("gone", {"reason": "object or version no longer exists"})
            timings["download"] = logs.ms_since(clock)
            try:
                result = process_file(downloaded.path, source_name=obj.key, settings=self.settings)
            except UnprocessableInput as error:
                return self._quarantine(obj, downloaded, error, started_at, timings)
            timings.update(result.timings_ms)

            conn = self.database.connection()
            clock = time.perf_counter()
            leaves, partitions = ensure_object_partitions(
                conn, obj.key, result.spec.name, pickup_months(result.clean_plan)
            )
            timings["partitions"] = logs.ms_since(clock)
            keys = output_keys(result.spec.name, result.month, obj.key)
            report = {
                **result.report,
                "timings_ms": dict(timings),
                "source_object": {
                    "bucket": obj.bucket,
                    "key": obj.key,
                    "version_id": downloaded.version_id,
                    "etag": downloaded.etag,
                    "size": downloaded.size,
                },
                "outputs": {"processed": keys.processed, "rejects": keys.rejects},
            }
            clock = time.perf_counter()
            with conn.transaction():
                lock_object(conn, obj.key)
                newer = superseded_by(conn, obj.key, obj.sequencer)
                if newer is not None:
                    return Outcome("superseded", {"sequencer": obj.sequencer, "newer": newer})
                timings["lock"] = logs.ms_since(clock)

                def load() -> int | None:
                    started = time.perf_counter()
                    replaced = replace_rows(
                        conn,
                        obj.key,
                        leaves,
                        result.populated_columns(),
                        lambda month: result.clean_batches(COPY_BATCH_ROWS, month),
                    )
                    timings["load_db"] = logs.ms_since(started)
                    return replaced

                # The lake's writes run beside the load; the report is written after both.
                clock = time.perf_counter()
                replaced = self.lake.write_outputs(
                    obj.bucket,
                    keys,
                    result,
                    report,
                    directory,
                    _lineage(obj, downloaded),
                    alongside=load,
                    timings=timings,
                )
                timings["load_and_write"] = logs.ms_since(clock)
                rows_in = int(result.report["rows_in"])
                rows_clean = int(result.report["rows_clean"])
                rows_rejected = int(result.report["rows_rejected"])
                record_load(
                    conn,
                    self._load_record(
                        obj,
                        downloaded,
                        "loaded",
                        started_at,
                        timings,
                        dataset=result.spec.name,
                        month=result.month.start.date(),
                        rows_in=rows_in,
                        rows_clean=rows_clean,
                        rows_rejected=rows_rejected,
                    ),
                )
        timings["index"] = self._refresh_index(obj.bucket)
        return Outcome(
            "loaded",
            {
                "dataset": result.spec.name,
                "month": str(result.month),
                "version_id": downloaded.version_id,
                "rows_in": rows_in,
                "rows_clean": rows_clean,
                "rows_rejected": rows_rejected,
                "rows_replaced": replaced,
                "partitions_created": partitions,
                "reasons": result.report.get("reasons", {}),
                "outputs": list(keys.all()),
                "timings_ms": timings,
            },
        )

    def _quarantine(
        self,
        obj: SourceObject,
        downloaded: Downloaded,
        error: UnprocessableInput,
        started_at: datetime,
        timings: dict[str, float],
    ) -> Outcome:
        conn = self.database.connection()
        with conn.transaction():
            lock_object(conn, obj.key)
            newer = superseded_by(conn, obj.key, obj.sequencer)
            if newer is not None:
                return Outcome("superseded", {"sequencer": obj.sequencer, "newer": newer})
            # A redelivery of a message whose version is already quarantined writes nothing
            # again: the object is quarantined once.
            written = not already_quarantined(conn, obj.key, downloaded.version_id, downloaded.etag)
            if written:
                clock = time.perf_counter()
                self.lake.quarantine(obj, downloaded, error)
                timings["write_s3"] = logs.ms_since(clock)
            # Rows of an earlier, good version of the key stay: a bad upload does not erase data.
            record_load(
                conn,
                self._load_record(
                    obj,
                    downloaded,
                    "quarantined",
                    started_at,
                    timings,
                    error_code=error.code,
                    error=error.reason,
                ),
            )
        if written:
            timings["index"] = self._refresh_index(obj.bucket)
        return Outcome(
            "quarantined" if written else "already_quarantined",
            {"code": error.code, "reason": error.reason, "timings_ms": timings},
        )

    def _refresh_index(self, bucket: str) -> float:
        """Rewrite the lake's reports index from taxi.loads, after a commit; return the time it
        took in ms. Best effort: the object is already loaded, and the next load writes the
        index again, so a failure here is logged, not retried."""
        clock = time.perf_counter()
        try:
            self.lake.write_index(bucket, load_summaries(self.database.connection(), bucket))
        except Exception as error:  # the load is committed: nothing to retry it for
            _log.warning(
                "could not rewrite the reports index",
                extra={"fields": {"event": "index_failed", "error": first_line(error)}},
            )
        return logs.ms_since(clock)

    def _load_record(
        self,
        obj: SourceObject,
        downloaded: Downloaded,
        status: str,
        started_at: datetime,
        timings: dict[str, float],
        **outcome: Any,
    ) -> LoadRecord:
        """The object's `taxi.loads` row: which version it was, and `outcome` (counts or error)."""
        return LoadRecord(
            source_key=obj.key,
            bucket=obj.bucket,
            status=status,
            started_at=started_at,
            finished_at=datetime.now(UTC),
            version_id=downloaded.version_id,
            etag=downloaded.etag,
            sequencer=obj.sequencer,
            timings_ms=timings,
            processing_version=self.processing_version,
            **outcome,
        )


def _required(name: str, fix: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise ConfigurationError(f"{name} is not set: {fix}")
    return value


def _processor_credentials(
    session: boto3.session.Session, secrets: SecretsManagerClient
) -> CredentialSource:
    """How the processor's own database role logs in, as `DB_AUTH` says."""
    choices = ", ".join(mode.value for mode in DbAuth)
    mode = _required(DB_AUTH_ENV, f"set it to one of {choices}")
    try:
        auth = DbAuth(mode)
    except ValueError:
        raise ConfigurationError(f"{DB_AUTH_ENV} must be one of {choices}, got {mode!r}") from None
    if auth is DbAuth.PASSWORD:
        secret_id = _required(
            DB_PROCESSOR_SECRET_ARN_ENV,
            f"with {DB_AUTH_ENV}={auth.value}, point it at the Secrets Manager secret holding the "
            "processor role's connection (JSON with host, port, username, password, dbname)",
        )
        return SecretsManagerCredentials(secrets, secret_id)
    fix = f"with {DB_AUTH_ENV}={auth.value} the stack sets it"
    host = _required(DB_HOST_ENV, fix)
    port = _required(DB_PORT_ENV, fix)
    if not port.isdigit():
        raise ConfigurationError(f"{DB_PORT_ENV} must be a port number, got {port!r}")
    return IamTokenCredentials(
        session.client("rds", config=_AWS_CONFIG),
        host=host,
        port=int(port),
        user=_required(DB_USER_ENV, fix),
        dbname=_required(DB_NAME_ENV, fix),
    )


def _lineage(obj: SourceObject, downloaded: Downloaded) -> dict[str, str]:
    # S3 user metadata must be ASCII: keys are percent-encoded.
    return {
        "source-key": quote(obj.key, safe="/"),
        "source-version-id": downloaded.version_id or "",
        "source-etag": downloaded.etag or "",
    }


_runtime: Runtime | None = None


def runtime() -> Runtime:
    """The container's runtime, created on first use and kept for later invocations."""
    global _runtime
    if _runtime is None:
        _runtime = Runtime.from_environment()
    return _runtime


def reset_runtime() -> None:
    """Close and forget the container's runtime, so that the next invocation builds it again
    from the environment (as a new Lambda container would)."""
    global _runtime
    if _runtime is not None:
        _runtime.close()
        _runtime = None


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Lambda entry point (`etl.handler.handler`)."""
    logs.configure()
    return runtime().handle(event, context)

"""Loading one source object into PostgreSQL: partitions on demand, the per-object lock, replacing
the object's rows with COPY, and its `taxi.loads` audit row.

Within one transaction the caller takes `lock_object` (a transaction-scoped advisory lock keyed on
the S3 key, so two deliveries of the same object run one after the other, while different objects
load in parallel), then `replace_rows` (delete the object's earlier rows, COPY the new ones) and
`record_load`. Either all of it commits or none of it: a retry after any failure converges.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib import resources
from typing import Any

import polars as pl
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from etl.contract import DATABASE_SCHEMA
from etl.core.settings import EtlSettings
from etl.core.specs import DatasetSpec
from etl.events import SourceObject, sequencer_order

TRIPS = "trips"
PARTITION_FUNCTION = "create_trips_partition"
"""The SECURITY DEFINER function (migration 0004) that creates one month's partition."""
COPY_BATCH_ROWS = 20_000
"""Rows rendered to CSV per COPY write (about 3 MB): bounds memory on files with millions of
rows, and small enough that PostgreSQL parses one batch while Polars renders the next."""


def partition_name(month: date) -> str:
    """`trips_YYYY_MM`, the partition holding pickups of `month`."""
    return f"{TRIPS}_{month.year:04d}_{month.month:02d}"


def pickup_months(frame: pl.DataFrame | pl.LazyFrame) -> list[date]:
    """First days of the months the frame's pickups fall in (a file's month window may spill
    into the neighbouring months)."""
    months = (
        frame.lazy()
        .select(pl.col("pickup_datetime").dt.truncate("1mo").dt.date().unique().sort())
        .collect()
        .get_column("pickup_datetime")
        .drop_nulls()
    )
    return list(months.to_list())


def ensure_partitions(conn: psycopg.Connection[Any], months: Iterable[date]) -> list[str]:
    """Create the missing monthly partitions of taxi.trips; return the names created.

    Through `taxi.create_trips_partition` (migration 0004), which runs as the table's owner: the
    processor's role has no DDL rights of its own. Runs in its own short transaction, before the
    load's: an empty partition left behind by a failed load is harmless, and the load's
    transaction then never waits on DDL of others. The function serialises concurrent creators
    with an advisory lock and re-checks under it.
    """
    wanted = sorted(set(months))
    if not wanted:
        return []
    missing = _missing_partitions(conn, wanted)
    created: list[str] = []
    if not missing:
        return created
    with conn.transaction():
        for month in missing:
            row = conn.execute(
                sql.SQL("SELECT {}(%s)").format(
                    sql.Identifier(DATABASE_SCHEMA, PARTITION_FUNCTION)
                ),
                [month],
            ).fetchone()
            if row and row[0]:
                created.append(partition_name(month))
    return created


def _missing_partitions(conn: psycopg.Connection[Any], months: Sequence[date]) -> list[date]:
    # A query of pg_class under the statement's snapshot, not to_regclass: name lookups may use
    # a catalog cache that an advisory lock does not refresh, and would miss a partition another
    # loader has just committed.
    names = [partition_name(month) for month in months]
    rows = conn.execute(
        "SELECT c.relname FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace"
        " WHERE n.nspname = %s AND c.relname = ANY(%s)",
        [DATABASE_SCHEMA, names],
    ).fetchall()
    present = {row[0] for row in rows}
    return [month for month, name in zip(months, names, strict=True) if name not in present]


def lock_object(conn: psycopg.Connection[Any], key: str) -> None:
    """Wait for, then hold until the transaction ends, the lock of source object `key`."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", [key])


def superseded_by(conn: psycopg.Connection[Any], key: str, sequencer: str | None) -> str | None:
    """The sequencer of a newer event already recorded for `key`, if there is one.

    S3 sequencers grow with each write of a key; an older event arriving late (SQS does not keep
    order) must not replace the rows of a newer version. Events without a sequencer (manual
    replays) are never superseded.
    """
    if sequencer is None:
        return None
    row = conn.execute("SELECT sequencer FROM taxi.loads WHERE source_key = %s", [key]).fetchone()
    recorded = row[0] if row else None
    if recorded and sequencer_order(recorded) > sequencer_order(sequencer):
        return str(recorded)
    return None


def already_quarantined(
    conn: psycopg.Connection[Any], key: str, version_id: str | None, etag: str | None
) -> bool:
    """Whether taxi.loads records this very version of `key` as quarantined."""
    row = conn.execute(
        "SELECT 1 FROM taxi.loads WHERE source_key = %s AND status = 'quarantined'"
        " AND version_id IS NOT DISTINCT FROM %s AND etag IS NOT DISTINCT FROM %s",
        [key, version_id, etag],
    ).fetchone()
    return row is not None


def trips_columns(spec: DatasetSpec) -> list[str]:
    """Columns the loader writes for a dataset: dataset, source_key, then its clean columns."""
    return ["dataset", "source_key", *spec.clean_schema.names()]


def replace_rows(
    conn: psycopg.Connection[Any], key: str, spec: DatasetSpec, clean: Iterable[pl.DataFrame]
) -> int:
    """Delete the rows of `key`, then COPY the batches of `clean` in their place, one at a time;
    return the rows deleted. Call inside the object's transaction, after `lock_object`."""
    deleted = conn.execute("DELETE FROM taxi.trips WHERE source_key = %s", [key]).rowcount
    columns = trips_columns(spec)
    batches = (
        batch.select(
            pl.lit(spec.name).alias("dataset"),
            pl.lit(key).alias("source_key"),
            *spec.clean_schema.names(),
        )
        for batch in clean
    )
    copy_frames(conn, columns, batches)
    return deleted


def copy_frames(
    conn: psycopg.Connection[Any], columns: Sequence[str], frames: Iterable[pl.DataFrame]
) -> None:
    """COPY `frames` (each with `columns`, in order) into taxi.trips from CSV rendered by Polars,
    one batch of rows at a time.

    Polars writes each batch of rows as CSV bytes in native code; PostgreSQL parses them in bulk.
    Nulls are empty fields, empty strings are quoted (""), as COPY's CSV format expects.
    """
    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(
        sql.Identifier(DATABASE_SCHEMA, TRIPS),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
    )
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        for batch in (piece for frame in frames for piece in frame.iter_slices(COPY_BATCH_ROWS)):
            buffer = io.BytesIO()
            batch.write_csv(buffer, include_header=False, datetime_format="%Y-%m-%d %H:%M:%S%.f")
            copy.write(buffer.getbuffer())


@dataclass
class LoadRecord:
    """One row of taxi.loads: the latest outcome for a source object."""

    source_key: str
    bucket: str
    status: str
    """`loaded` or `quarantined`."""
    started_at: datetime
    finished_at: datetime
    version_id: str | None = None
    etag: str | None = None
    sequencer: str | None = None
    dataset: str | None = None
    month: date | None = None
    error_code: str | None = None
    error: str | None = None
    rows_in: int | None = None
    rows_clean: int | None = None
    rows_rejected: int | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    processing_version: str | None = None
    """What produced the outcome (`processing_version`): the ETL's code and thresholds."""


def processing_version(settings: EtlSettings) -> str:
    """A short hash of what decides an object's outcome: every file of the `etl` package (code,
    master data, migrations) and the rule thresholds. Equal hashes give equal outputs for equal
    input bytes."""
    digest = hashlib.sha256(repr(settings).encode())
    package = resources.files("etl")
    pending = [package]
    while pending:
        folder = pending.pop()
        for entry in sorted(folder.iterdir(), key=lambda item: item.name):
            if entry.is_dir():
                if entry.name != "__pycache__":
                    pending.append(entry)
            elif entry.name.endswith((".py", ".csv", ".sql")):
                digest.update(f"{entry.name}\0".encode() + entry.read_bytes())
    return digest.hexdigest()[:16]


def already_processed(conn: psycopg.Connection[Any], obj: SourceObject, version: str) -> str | None:
    """The recorded status (`loaded` or `quarantined`) when this very version of `obj` was
    already processed by the same code and thresholds (`version`), else None.

    The same version is the same version id; or, for events that carry none (moto's, backfill's),
    the same sequencer or the same ETag: the same bytes of the same key.
    """
    row = conn.execute(
        "SELECT status, version_id, etag, sequencer FROM taxi.loads"
        " WHERE source_key = %s AND processing_version = %s",
        [obj.key, version],
    ).fetchone()
    if row is None:
        return None
    status, version_id, etag, sequencer = row
    if obj.version_id is not None:
        same = obj.version_id == version_id
    elif obj.sequencer is not None:
        same = obj.sequencer == sequencer
    else:
        same = obj.etag is not None and obj.etag == etag
    return str(status) if same else None


@dataclass(frozen=True)
class LoadSummary:
    """One object's latest outcome, as the lake's reports index lists it."""

    source_key: str
    status: str
    dataset: str | None
    month: date | None
    rows_in: int | None
    rows_clean: int | None
    rows_rejected: int | None
    error: str | None


def load_summaries(conn: psycopg.Connection[Any], bucket: str) -> list[LoadSummary]:
    """The latest outcome of every object of `bucket`, by key."""
    rows = conn.execute(
        "SELECT source_key, status, dataset, month, rows_in, rows_clean, rows_rejected, error"
        " FROM taxi.loads WHERE bucket = %s ORDER BY source_key",
        [bucket],
    ).fetchall()
    return [LoadSummary(*row) for row in rows]


def record_load(conn: psycopg.Connection[Any], record: LoadRecord) -> None:
    """Insert or replace the object's taxi.loads row (counting completed loads)."""
    duration_ms = round((record.finished_at - record.started_at).total_seconds() * 1000, 1)
    conn.execute(
        """
        INSERT INTO taxi.loads (
            source_key, bucket, version_id, etag, sequencer, dataset, month, status,
            error_code, error, rows_in, rows_clean, rows_rejected, started_at, finished_at,
            duration_ms, timings_ms, processing_version
        ) VALUES (
            %(source_key)s, %(bucket)s, %(version_id)s, %(etag)s, %(sequencer)s, %(dataset)s,
            %(month)s, %(status)s, %(error_code)s, %(error)s, %(rows_in)s, %(rows_clean)s,
            %(rows_rejected)s, %(started_at)s, %(finished_at)s, %(duration_ms)s, %(timings_ms)s,
            %(processing_version)s
        )
        ON CONFLICT (source_key) DO UPDATE SET
            bucket = EXCLUDED.bucket,
            version_id = EXCLUDED.version_id,
            etag = EXCLUDED.etag,
            sequencer = COALESCE(EXCLUDED.sequencer, loads.sequencer),
            dataset = EXCLUDED.dataset,
            month = EXCLUDED.month,
            status = EXCLUDED.status,
            error_code = EXCLUDED.error_code,
            error = EXCLUDED.error,
            rows_in = EXCLUDED.rows_in,
            rows_clean = EXCLUDED.rows_clean,
            rows_rejected = EXCLUDED.rows_rejected,
            load_count = loads.load_count + 1,
            started_at = EXCLUDED.started_at,
            finished_at = EXCLUDED.finished_at,
            duration_ms = EXCLUDED.duration_ms,
            timings_ms = EXCLUDED.timings_ms,
            processing_version = EXCLUDED.processing_version
        """,
        {
            "source_key": record.source_key,
            "bucket": record.bucket,
            "version_id": record.version_id,
            "etag": record.etag,
            "sequencer": record.sequencer,
            "dataset": record.dataset,
            "month": record.month,
            "status": record.status,
            "error_code": record.error_code,
            "error": record.error,
            "rows_in": record.rows_in,
            "rows_clean": record.rows_clean,
            "rows_rejected": record.rows_rejected,
            "started_at": record.started_at,
            "finished_at": record.finished_at,
            "duration_ms": duration_ms,
            "timings_ms": Jsonb(record.timings_ms),
            "processing_version": record.processing_version,
        },
    )

"""Loading one source object into PostgreSQL: its partitions on demand, the per-object lock,
replacing the object's rows with COPY, and its `taxi.loads` audit row.

Each object has a leaf partition of taxi.trips of its own in every month its rows fall in
(migration 0006). Before the load's transaction the caller makes sure they exist
(`ensure_object_partitions`); within it, it takes `lock_object` (a transaction-scoped advisory
lock keyed on the S3 key, so two deliveries of the same object run one after the other, while
different objects load in parallel), then `replace_rows` (TRUNCATE the object's leaves, COPY the
new rows into them) and `record_load`. Either all of it commits or none of it: a retry after any
failure converges.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable, Generator, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from importlib import resources
from typing import Any, TypeVar

import polars as pl
import psycopg
from psycopg import sql
from psycopg.types.json import Jsonb

from etl.contract import DATABASE_SCHEMA
from etl.core.pipeline import pickup_month
from etl.core.settings import EtlSettings
from etl.core.specs import DatasetSpec
from etl.events import SourceObject, sequencer_order

TRIPS = "trips"
PARTITION_FUNCTION = "create_trips_partition"
"""The SECURITY DEFINER function (migrations 0004, 0006) that creates one month's partition."""
OBJECT_PARTITION_FUNCTION = "create_trips_object_partition"
"""The SECURITY DEFINER function (migration 0006) that creates one object's leaf in a month."""
OBJECT_PARTITIONS = "trips_object_partitions"
"""The function (migration 0006) listing the leaves of one object."""
COPY_BATCH_ROWS = 20_000
"""Rows encoded per COPY write (about 5 MB of binary COPY): bounds memory on files with
millions of rows, and small enough that PostgreSQL ingests one batch while Polars encodes the
next."""
RENDER_AHEAD = 3
"""Batches encoded ahead of the COPY (about 15 MB): enough to keep PostgreSQL busy."""


def partition_name(month: date) -> str:
    """`trips_YYYY_MM`, the partition holding pickups of `month`."""
    return f"{TRIPS}_{month.year:04d}_{month.month:02d}"


def pickup_months(frame: pl.DataFrame | pl.LazyFrame) -> list[date]:
    """First days of the months the frame's pickups fall in (a file's month window may spill
    into the neighbouring months)."""
    months = (
        frame.lazy()
        .select(pickup_month().unique().sort())
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


def object_partitions(conn: psycopg.Connection[Any], key: str) -> list[str]:
    """The leaves of taxi.trips that hold the rows of source object `key`, in any month."""
    rows = conn.execute(
        sql.SQL("SELECT {}(%s)").format(sql.Identifier(DATABASE_SCHEMA, OBJECT_PARTITIONS)),
        [key],
    ).fetchall()
    return [str(row[0]) for row in rows]


def ensure_object_partitions(
    conn: psycopg.Connection[Any], key: str, dataset: str, months: Iterable[date]
) -> tuple[dict[date, str], list[str]]:
    """The leaf of object `key` (of `dataset`) in each of `months`, created where missing (with
    the month's partition): (month -> leaf name, the names created).

    Through `taxi.create_trips_object_partition` (migration 0006), which runs as the table's
    owner and grants the processor INSERT and TRUNCATE on the leaf, nothing more. In its own
    short transaction, before the load's, as `ensure_partitions`.
    """
    wanted = sorted(set(months))
    if not wanted:
        return {}, []
    existing = set(object_partitions(conn, key))
    leaves: dict[date, str] = {}
    with conn.transaction():
        for month in wanted:
            row = conn.execute(
                sql.SQL("SELECT {}(%s, %s, %s)").format(
                    sql.Identifier(DATABASE_SCHEMA, OBJECT_PARTITION_FUNCTION)
                ),
                [month, key, dataset],
            ).fetchone()
            leaves[month] = str(row[0]) if row else ""
    return leaves, [name for name in leaves.values() if name not in existing]


def stored_rows(conn: psycopg.Connection[Any], key: str) -> int | None:
    """The rows of `key` in taxi.trips as its `taxi.loads` row records them (None: none)."""
    row = conn.execute("SELECT rows_stored FROM taxi.loads WHERE source_key = %s", [key]).fetchone()
    return None if row is None or row[0] is None else int(row[0])


def replace_rows(
    conn: psycopg.Connection[Any],
    key: str,
    leaves: Mapping[date, str],
    columns: Sequence[str],
    clean: Callable[[date], Iterable[pl.DataFrame]],
) -> int | None:
    """Empty every leaf of `key`, then COPY the clean rows of each month (`clean(month)`, in
    batches, with at least `columns`) into that month's leaf of `leaves`; return the rows
    replaced (as recorded).

    Only `columns` are sent: the leaves' own defaults fill in dataset and source_key, and a
    column left out is null in every row (`ProcessResult.populated_columns`). Call inside the
    object's transaction, after `lock_object`. TRUNCATE is transactional: until the commit,
    other sessions keep the earlier rows (and wait for them, see migration 0006). Truncating in
    this transaction is also what lets COPY FREEZE write the rows frozen.
    """
    replaced = stored_rows(conn, key)
    targets = sorted({*object_partitions(conn, key), *leaves.values()})
    if targets:
        conn.execute(
            sql.SQL("TRUNCATE {}").format(
                sql.SQL(", ").join(sql.Identifier(DATABASE_SCHEMA, name) for name in targets)
            )
        )
    for month, leaf in sorted(leaves.items()):
        batches = (batch.select(columns) for batch in clean(month))
        copy_frames(conn, leaf, columns, batches)
    return replaced


def copy_frames(
    conn: psycopg.Connection[Any],
    table: str,
    columns: Sequence[str],
    frames: Iterable[pl.DataFrame],
) -> None:
    """COPY `frames` (each with `columns`, in order) into `taxi.<table>`, a leaf truncated in
    this transaction, in PostgreSQL's binary format (`etl.binary_copy`), one batch at a time.

    The batches are computed and encoded in a thread (Polars releases the GIL), a few batches
    ahead of the COPY, so that PostgreSQL ingests one while the next is encoded. FREEZE writes
    the rows already frozen: no hint-bit rewrite or anti-wraparound VACUUM of them later.
    """
    # Imported at the first load, not with this module: NumPy and its OpenBLAS are 17 MB
    # resident, and the processor's peak comes before, while it validates the rows as read.
    from etl import binary_copy

    statement = sql.SQL("COPY {} ({}) FROM STDIN (FORMAT binary, FREEZE)").format(
        sql.Identifier(DATABASE_SCHEMA, table),
        sql.SQL(", ").join(map(sql.Identifier, columns)),
    )
    pieces = (piece for frame in frames for piece in frame.iter_slices(COPY_BATCH_ROWS))
    encoded = (binary_copy.encode_rows(piece) for piece in pieces if piece.height)
    with conn.cursor() as cursor, cursor.copy(statement) as copy:
        copy.write(binary_copy.HEADER)
        for chunk in ahead(encoded, RENDER_AHEAD):
            copy.write(chunk)
        copy.write(binary_copy.TRAILER)


_T = TypeVar("_T")


def ahead(items: Iterable[_T], depth: int) -> Generator[_T, None, None]:
    """Yield `items`, computed by a thread up to `depth` items ahead of the consumer.

    Hand-rolled, not psycopg's QueuedLibpqWriter: that one queues up to 1024 buffers of 128 KB
    (128 MB) when PostgreSQL is the slower side, which it is here. An exception in the thread is
    raised here; a consumer that stops early stops the thread.
    """
    slots: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        slots.put((True, item), timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            slots.put((False, None))
        except BaseException as error:  # handed to the consumer, which raises it
            slots.put((False, error))

    worker = threading.Thread(target=produce, name="copy-render", daemon=True)
    worker.start()
    try:
        while True:
            more, item = slots.get()
            if not more:
                if item is not None:
                    raise item
                return
            yield item
    finally:
        stop.set()
        while worker.is_alive():
            try:
                slots.get_nowait()
            except queue.Empty:
                worker.join(0.05)


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
    """Insert or replace the object's taxi.loads row (counting completed loads, and keeping
    the count of the object's rows in taxi.trips)."""
    duration_ms = round((record.finished_at - record.started_at).total_seconds() * 1000, 1)
    conn.execute(
        """
        INSERT INTO taxi.loads (
            source_key, bucket, version_id, etag, sequencer, dataset, month, status,
            error_code, error, rows_in, rows_clean, rows_rejected, started_at, finished_at,
            duration_ms, timings_ms, processing_version, rows_stored
        ) VALUES (
            %(source_key)s, %(bucket)s, %(version_id)s, %(etag)s, %(sequencer)s, %(dataset)s,
            %(month)s, %(status)s, %(error_code)s, %(error)s, %(rows_in)s, %(rows_clean)s,
            %(rows_rejected)s, %(started_at)s, %(finished_at)s, %(duration_ms)s, %(timings_ms)s,
            %(processing_version)s, %(rows_stored)s
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
            processing_version = EXCLUDED.processing_version,
            rows_stored = COALESCE(EXCLUDED.rows_stored, loads.rows_stored)
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
            # A quarantined version leaves the earlier version's rows (and their count) in place.
            "rows_stored": record.rows_clean if record.status == "loaded" else None,
        },
    )

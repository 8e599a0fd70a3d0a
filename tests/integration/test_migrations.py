"""Migrations against a real PostgreSQL: idempotent, serialised, guarded by checksums; the trips
table matches the ETL's clean schemas; partitions appear on demand, also under concurrency."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any, TypeVar

import psycopg
import pytest
from psycopg.conninfo import make_conninfo
from typer.testing import CliRunner

from dataplatform.cli import app
from dataplatform.demo.embedded import EmbeddedPostgres
from etl.core.master_data import PAYMENT_TYPES, RATE_CODES, TRIP_TYPES, VENDORS, zones
from etl.core.specs import DATASETS
from etl.loader import ensure_partitions
from etl.migrate import Migration, MigrationError, load_migrations, migrate

EXPECTED_MASTER = {
    "zones": zones().height,
    "vendors": len(VENDORS),
    "rate_codes": len(RATE_CODES),
    "payment_types": len(PAYMENT_TYPES),
    "trip_types": len(TRIP_TYPES),
}
WRONG = "Sup3r-wrong"
PG_TYPES = {
    "Int32": "integer",
    "Int8": "smallint",
    "Float64": "double precision",
    "Datetime(time_unit='us', time_zone=None)": "timestamp without time zone",
    "Date": "date",
    "String": "text",
}


@pytest.fixture
def empty_db(pg: EmbeddedPostgres) -> str:
    """URL of a fresh, empty database."""
    return pg.create_database(f"m{uuid.uuid4().hex[:12]}")


def connect(url: str) -> psycopg.Connection[Any]:
    return psycopg.connect(url, autocommit=True)


def test_migrate_twice_applies_each_migration_once(empty_db: str) -> None:
    # Idempotent: the second run finds everything applied and changes nothing.
    shipped = [migration.filename for migration in load_migrations()]
    with connect(empty_db) as conn:
        first = migrate(conn)
        second = migrate(conn)
        history = conn.execute(
            "SELECT version, name, checksum FROM taxi.schema_migrations ORDER BY version"
        ).fetchall()

    assert first.applied == shipped
    assert second.applied == []
    assert second.already_applied == shipped
    assert [(v, n, c) for v, n, c in history] == [
        (m.version, m.name, m.checksum) for m in load_migrations()
    ]
    assert first.master_data == second.master_data == EXPECTED_MASTER


def test_master_data_is_restored_and_kept_by_every_migrate(empty_db: str) -> None:
    # Master data is upserted from the code on every run: edits are put back, and a code that
    # left the dictionary stays (old trips may carry it).
    with connect(empty_db) as conn:
        migrate(conn)
        conn.execute("UPDATE taxi.vendors SET name = 'edited' WHERE vendor_id = 1")
        conn.execute("UPDATE taxi.zones SET zone = 'edited' WHERE location_id = 132")
        conn.execute("INSERT INTO taxi.vendors VALUES (99, 'retired vendor')")
        migrate(conn)
        vendor = conn.execute("SELECT name FROM taxi.vendors WHERE vendor_id = 1").fetchone()
        zone = conn.execute("SELECT zone FROM taxi.zones WHERE location_id = 132").fetchone()
        retired = conn.execute("SELECT name FROM taxi.vendors WHERE vendor_id = 99").fetchone()

    assert vendor == (VENDORS[1],)
    assert zone == (zones().filter(location_id=132).item(0, "zone"),)
    assert retired == ("retired vendor",)


def test_changed_migration_is_refused(empty_db: str) -> None:
    # An applied migration edited afterwards stops the run before anything else is applied.
    shipped = load_migrations()
    with connect(empty_db) as conn:
        migrate(conn, shipped[:1])
        edited = Migration(shipped[0].version, shipped[0].name, shipped[0].sql + "\n-- edited\n")
        with pytest.raises(MigrationError, match=shipped[0].filename):
            migrate(conn, [edited, *shipped[1:]])
        applied = conn.execute("SELECT count(*) FROM taxi.schema_migrations").fetchone()

    assert applied == (1,)


def test_concurrent_migrate_runs_apply_once(empty_db: str) -> None:
    # Two deploys at once: the advisory lock makes one wait, and it then finds nothing to do.

    def run() -> list[str]:
        with connect(empty_db) as conn:
            return migrate(conn).applied

    results = _at_once(run, times=2)
    assert sorted(results, key=len) == [[], [m.filename for m in load_migrations()]]


def test_trips_table_holds_every_clean_column_of_every_dataset(empty_db: str) -> None:
    # The migration and the specs agree: the union of the clean schemas, in matching types.
    expected = {"dataset": "text", "source_key": "text"}
    for spec in DATASETS.values():
        for name, dtype in spec.clean_schema.items():
            expected[name] = PG_TYPES[repr(dtype) if dtype == dtype.base_type() else str(dtype)]
    with connect(empty_db) as conn:
        migrate(conn)
        actual = dict(
            conn.execute(
                "SELECT column_name, data_type FROM information_schema.columns"
                " WHERE table_schema = 'taxi' AND table_name = 'trips'"
            ).fetchall()
        )

    assert actual == expected


def test_partitions_are_created_on_demand_for_several_months(empty_db: str) -> None:
    # Each month gets its own partition with the month's bounds; asking again creates nothing.
    months = [date(2023, 12, 1), date(2024, 1, 1), date(2024, 2, 1)]
    with connect(empty_db) as conn:
        migrate(conn)
        created = ensure_partitions(conn, months)
        again = ensure_partitions(conn, [*months, date(2024, 1, 1)])
        bounds = conn.execute(
            "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_inherits i"
            " JOIN pg_class c ON c.oid = i.inhrelid"
            " WHERE i.inhparent = 'taxi.trips'::regclass ORDER BY 1"
        ).fetchall()

    assert created == ["trips_2023_12", "trips_2024_01", "trips_2024_02"]
    assert again == []
    assert bounds == [
        ("trips_2023_12", "FOR VALUES FROM ('2023-12-01 00:00:00') TO ('2024-01-01 00:00:00')"),
        ("trips_2024_01", "FOR VALUES FROM ('2024-01-01 00:00:00') TO ('2024-02-01 00:00:00')"),
        ("trips_2024_02", "FOR VALUES FROM ('2024-02-01 00:00:00') TO ('2024-03-01 00:00:00')"),
    ]


def test_concurrent_partition_creation_does_not_collide(empty_db: str) -> None:
    # Several loaders needing the same new months at once: no duplicate_table error, each
    # partition exists once.
    months = [date(2019, month, 1) for month in range(1, 13)]
    with connect(empty_db) as conn:
        migrate(conn)
    barrier = threading.Barrier(4)

    def run() -> list[str]:
        with connect(empty_db) as conn:
            barrier.wait()
            return ensure_partitions(conn, months)

    created = _at_once(run, times=4)
    assert sorted(name for names in created for name in names) == [
        f"trips_2019_{month:02d}" for month in range(1, 13)
    ]


def test_cli_migrate_applies_and_reports(empty_db: str) -> None:
    # `dataplatform migrate --database-url URL`: what was applied, then nothing the second time.
    runner = CliRunner()

    first = runner.invoke(app, ["migrate", "--database-url", empty_db])
    second = runner.invoke(app, ["migrate", "--database-url", empty_db])

    assert first.exit_code == 0, first.output
    assert "0001_taxi_schema.sql" in first.stdout
    assert second.exit_code == 0
    assert "none (already up to date)" in second.stdout
    assert f"zones {EXPECTED_MASTER['zones']}" in second.stdout


def test_cli_migrate_unreachable_database_is_one_line_without_the_password(
    pg: EmbeddedPostgres,
) -> None:
    # A bad URL is the user's to fix: one line on stderr, exit 1, no traceback, no password.
    url = make_conninfo(
        host="127.0.0.1", port=pg.port, user="postgres", password=WRONG, dbname="nowhere"
    )

    result = CliRunner().invoke(app, ["migrate", "--database-url", url])

    assert result.exit_code == 1
    assert result.stderr.startswith("error: cannot connect to the database")
    assert len(result.stderr.strip().splitlines()) == 1
    assert WRONG not in result.output


T = TypeVar("T")


def _at_once(work: Callable[[], T], *, times: int) -> list[T]:
    """Run `work` on `times` threads at once and return what each returned; an error raised in
    any of them fails the test."""
    with ThreadPoolExecutor(max_workers=times) as pool:
        futures = [pool.submit(work) for _ in range(times)]
        return [future.result() for future in futures]


def test_object_partitions_migration_moves_every_row_into_its_objects_partition(
    empty_db: str,
) -> None:
    # Migration 0006 on a database loaded before it: every month partition becomes partitioned
    # by source_key, each row lands in its object's leaf, and nothing is lost or left behind.
    before, after = load_migrations()[:5], load_migrations()[:6]
    assert after[5].filename == "0006_object_partitions.sql"
    rows = [
        ("yellow", "raw/yellow/a.parquet", "2024-01-03 10:00"),
        ("yellow", "raw/yellow/a.parquet", "2024-01-04 11:00"),
        ("yellow", "raw/yellow/a.parquet", "2023-12-31 23:50"),
        ("green", "raw/green/b.parquet", "2024-01-05 12:00"),
    ]
    with connect(empty_db) as conn:
        migrate(conn, before)
        for month in ("2023-12-01", "2024-01-01"):
            conn.execute("SELECT taxi.create_trips_partition(%s)", [month])
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO taxi.trips (dataset, source_key, pickup_datetime) VALUES (%s, %s, %s)",
                rows,
            )
        conn.execute(
            "INSERT INTO taxi.loads (source_key, bucket, status, rows_clean, started_at,"
            " finished_at, duration_ms) VALUES ('raw/yellow/a.parquet', 'lake', 'loaded', 3,"
            " now(), now(), 1)"
        )

        result = migrate(conn, after)

        placed = conn.execute(
            "SELECT month.relname, t.source_key, count(*) FROM taxi.trips AS t"
            " JOIN pg_inherits AS i ON i.inhrelid = t.tableoid"
            " JOIN pg_class AS month ON month.oid = i.inhparent GROUP BY 1, 2 ORDER BY 1, 2"
        ).fetchall()
        leaves = {
            key: [row[0] for row in conn.execute("SELECT taxi.trips_object_partitions(%s)", [key])]
            for key in ("raw/yellow/a.parquet", "raw/green/b.parquet")
        }
        leftovers = conn.execute(
            "SELECT relname FROM pg_class WHERE relname LIKE '%before_0006'"
            " OR relname = 'trips_source_key_idx'"
        ).fetchall()
        stored = conn.execute("SELECT rows_stored FROM taxi.loads").fetchall()
    assert result.applied == ["0006_object_partitions.sql"]
    assert placed == [
        ("trips_2023_12", "raw/yellow/a.parquet", 1),
        ("trips_2024_01", "raw/green/b.parquet", 1),
        ("trips_2024_01", "raw/yellow/a.parquet", 2),
    ]
    assert len(leaves["raw/yellow/a.parquet"]) == 2
    assert [name[:14] for name in leaves["raw/green/b.parquet"]] == ["trips_2024_01_"]
    assert leftovers == []
    assert stored == [(3,)]

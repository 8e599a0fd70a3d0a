"""Versioned SQL migrations for schema `taxi`, and the master data they are filled with.

Migrations are the files `etl/migrations/NNNN_name.sql`, applied in version order, each in its own
transaction, under a session advisory lock (so two deploys cannot interleave), and recorded in
`taxi.schema_migrations` with a checksum. A migration that was edited after it was applied stops
the run: add a new migration instead. Master data (zones, vendors, rate codes, payment and trip
types) is upserted on every run, so changing `etl.core.master_data` reaches the database on the next
migrate.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import psycopg
from psycopg import sql

from etl.contract import DATABASE_SCHEMA
from etl.core.errors import DataplatformError, first_line
from etl.core.master_data import PAYMENT_TYPES, RATE_CODES, TRIP_TYPES, VENDORS, zones

_HISTORY = sql.Identifier(DATABASE_SCHEMA, "schema_migrations")
_MIGRATION_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")

# pg_advisory_lock key shared by every migrate run (any constant 64-bit number works).
MIGRATION_LOCK_KEY = 0x7461_7869_6D69_6772  # "taximigr"


class MigrationError(DataplatformError):
    """The database's migration history does not match the migrations shipped with the code."""


@dataclass(frozen=True)
class Migration:
    """One SQL file of `etl/migrations`."""

    version: int
    name: str
    sql: str = field(repr=False)

    @property
    def filename(self) -> str:
        """The file's name, e.g. `0001_taxi_schema.sql`."""
        return f"{self.version:04d}_{self.name}.sql"

    @property
    def checksum(self) -> str:
        """SHA-256 of the file's text: a changed file is a different migration."""
        return hashlib.sha256(self.sql.encode()).hexdigest()


@dataclass
class MigrationResult:
    """What a migrate run did."""

    applied: list[str] = field(default_factory=list)
    """Migrations applied by this run, by file name."""
    already_applied: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    """Versions recorded in the database that this code does not ship (a newer code version
    migrated the database; harmless while migrations only add)."""
    master_data: dict[str, int] = field(default_factory=dict)
    """Rows per master table after the upsert."""

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary (returned by the handler's migrate action)."""
        return {
            "applied": self.applied,
            "already_applied": self.already_applied,
            "unknown": self.unknown,
            "master_data": self.master_data,
        }


def load_migrations() -> list[Migration]:
    """The shipped migrations in version order; raise `MigrationError` on a malformed set."""
    folder = resources.files("etl").joinpath("migrations")
    migrations: list[Migration] = []
    for entry in folder.iterdir():
        if not entry.name.endswith(".sql"):
            continue
        match = _MIGRATION_NAME.match(entry.name)
        if match is None:
            raise MigrationError(
                f"migration file {entry.name!r} is misnamed: use NNNN_lower_snake_name.sql"
            )
        migrations.append(Migration(int(match["version"]), match["name"], entry.read_text()))
    migrations.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in migrations]
    duplicates = sorted({version for version in versions if versions.count(version) > 1})
    if duplicates:
        raise MigrationError(
            f"two migration files share version {duplicates[0]:04d}: renumber one of them"
        )
    return migrations


def fingerprint() -> str:
    """SHA-256 over every migration and the master data: what a deploy-time migration run should
    be keyed on, so that a change to either reaches the database."""
    digest = hashlib.sha256()
    for migration in load_migrations():
        digest.update(f"{migration.filename}\0{migration.checksum}\0".encode())
    for table, rows in sorted(_master_rows().items()):
        digest.update(f"{table}\0{rows!r}\0".encode())
    return digest.hexdigest()


def migrate(
    conn: psycopg.Connection[Any], migrations: list[Migration] | None = None
) -> MigrationResult:
    """Apply pending migrations and upsert master data over `conn` (an autocommit connection).

    Holds a session advisory lock for the whole run; a concurrent run waits, then finds nothing
    left to apply. Raises `MigrationError` if an applied migration's file has changed.
    """
    if not conn.autocommit:
        raise ValueError("migrate() needs an autocommit connection: it manages transactions")
    migrations = load_migrations() if migrations is None else migrations
    result = MigrationResult()
    conn.execute("SELECT pg_advisory_lock(%s)", [MIGRATION_LOCK_KEY])
    try:
        with conn.transaction():
            conn.execute(
                sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(DATABASE_SCHEMA))
            )
            conn.execute(
                sql.SQL(
                    """CREATE TABLE IF NOT EXISTS {} (
                        version    integer PRIMARY KEY,
                        name       text NOT NULL,
                        checksum   text NOT NULL,
                        applied_at timestamptz NOT NULL DEFAULT now()
                    )"""
                ).format(_HISTORY)
            )
        rows = conn.execute(
            sql.SQL("SELECT version, name, checksum FROM {} ORDER BY version").format(_HISTORY)
        ).fetchall()
        recorded = {version: (name, checksum) for version, name, checksum in rows}
        shipped = {migration.version: migration for migration in migrations}
        for version, (name, checksum) in recorded.items():
            migration = shipped.get(version)
            if migration is None:
                result.unknown.append(f"{version:04d}_{name}.sql")
            elif migration.checksum != checksum:
                raise MigrationError(
                    f"migration {migration.filename} was changed after it was applied "
                    f"(checksum {checksum[:12]} in the database, {migration.checksum[:12]} in "
                    "the code): restore the file and put the change in a new migration"
                )
            else:
                result.already_applied.append(migration.filename)
        for migration in migrations:
            if migration.version in recorded:
                continue
            with conn.transaction():
                conn.execute(migration.sql.encode())
                conn.execute(
                    sql.SQL("INSERT INTO {} (version, name, checksum) VALUES (%s, %s, %s)").format(
                        _HISTORY
                    ),
                    [migration.version, migration.name, migration.checksum],
                )
            result.applied.append(migration.filename)
        with conn.transaction():
            result.master_data = upsert_master_data(conn)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", [MIGRATION_LOCK_KEY])
    return result


def migrate_url(database_url: str) -> MigrationResult:
    """Connect to `database_url` and run `migrate`."""
    try:
        conn = psycopg.connect(database_url, autocommit=True, connect_timeout=15)
    except psycopg.OperationalError as error:
        raise DataplatformError(
            f"cannot connect to the database: {first_line(error)} "
            "(check --database-url, postgresql://USER@HOST:PORT/DBNAME, and PGPASSWORD)"
        ) from None
    with conn:
        return migrate(conn)


# Table → columns, key first, in the order of the rows `_master_rows` yields.
_MASTER_TABLES: dict[str, tuple[str, ...]] = {
    "zones": ("location_id", "borough", "zone", "service_zone"),
    "vendors": ("vendor_id", "name"),
    "rate_codes": ("rate_code_id", "description"),
    "payment_types": ("payment_type", "description"),
    "trip_types": ("trip_type", "description"),
}


def _master_rows() -> dict[str, list[tuple[Any, ...]]]:
    return {
        "vendors": sorted(VENDORS.items()),
        "rate_codes": sorted(RATE_CODES.items()),
        "payment_types": sorted(PAYMENT_TYPES.items()),
        "trip_types": sorted(TRIP_TYPES.items()),
        "zones": list(zones().sort("location_id").iter_rows()),
    }


def upsert_master_data(conn: psycopg.Connection[Any]) -> dict[str, int]:
    """Insert or update every master row from `etl.core.master_data`; return rows per table.

    Idempotent: unchanged rows are not rewritten. Codes no longer in the dictionary are kept,
    since trips loaded earlier may carry them.
    """
    rows = _master_rows()
    with conn.cursor() as cursor:
        for table, columns in _MASTER_TABLES.items():
            key, *values = columns
            target = sql.Identifier(DATABASE_SCHEMA, table)
            current = sql.SQL(", ").join(sql.Identifier(table, value) for value in values)
            incoming = sql.SQL(", ").join(sql.Identifier("excluded", value) for value in values)
            cursor.executemany(
                sql.SQL(
                    "INSERT INTO {target} ({columns}) VALUES ({placeholders}) "
                    "ON CONFLICT ({key}) DO UPDATE SET ({values}) = ROW({incoming}) "
                    "WHERE ROW({current}) IS DISTINCT FROM ROW({incoming})"
                ).format(
                    target=target,
                    columns=sql.SQL(", ").join(map(sql.Identifier, columns)),
                    placeholders=sql.SQL(", ").join(sql.Placeholder() * len(columns)),
                    key=sql.Identifier(key),
                    values=sql.SQL(", ").join(map(sql.Identifier, values)),
                    incoming=incoming,
                    current=current,
                ),
                rows[table],
            )
        counts: dict[str, int] = {}
        for table in _MASTER_TABLES:
            count = cursor.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(DATABASE_SCHEMA, table))
            ).fetchone()
            counts[table] = int(count[0]) if count else 0
    return counts

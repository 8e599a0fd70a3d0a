"""The read-only analyst role of migration 0005, on a real PostgreSQL: it may SELECT every table
and view of schema taxi, including partitions created later, and nothing else."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import date

import psycopg
import pytest
from psycopg import sql

from dataplatform.demo.embedded import EmbeddedPostgres
from etl.loader import ensure_partitions
from etl.migrate import migrate_url

ROLE = "taxi_analyst"
WRITES = ("INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


@pytest.fixture(scope="module")
def analyst(pg: EmbeddedPostgres) -> tuple[str, str]:
    """A migrated database with a later partition, and the URL of a login role in the analyst
    role."""
    name = f"a{uuid.uuid4().hex[:12]}"
    admin_url = pg.create_database(name)
    migrate_url(admin_url)
    migrate_url(admin_url)  # idempotent: the role exists already
    user, password = f"alice_{name}", uuid.uuid4().hex
    with psycopg.connect(admin_url, autocommit=True) as conn:
        ensure_partitions(conn, [date(2024, 1, 1)])
        conn.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {} IN ROLE {}").format(
                sql.Identifier(user), sql.Literal(password), sql.Identifier(ROLE)
            )
        )
    url = replace(pg, user=user, password=password).url(name)
    return admin_url, url


def test_analyst_reads_every_table_and_view_of_the_schema(analyst: tuple[str, str]) -> None:
    # Rule: SELECT on everything in taxi, partitions created after the migration included.
    admin_url, url = analyst
    with psycopg.connect(admin_url) as conn:
        relations = [
            row[0]
            for row in conn.execute(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'taxi' AND c.relkind IN ('r', 'v', 'p')"
            )
        ]
    assert {"trips", "trips_2024_01", "trips_described", "zones", "loads"} <= set(relations)
    with psycopg.connect(url) as conn:
        for relation in relations:
            statement = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier("taxi", relation))
            assert conn.execute(statement).fetchone() is not None, relation
        assert conn.execute("SELECT count(*) FROM taxi.zones").fetchone() == (265,)


def test_analyst_may_not_write_or_change_anything(analyst: tuple[str, str]) -> None:
    # Rule: no INSERT/UPDATE/DELETE/TRUNCATE on any table, no DDL in taxi or public.
    _, url = analyst
    with psycopg.connect(url) as conn:
        tables = [
            row[0]
            for row in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'taxi'")
        ]
        granted = [
            (table, privilege)
            for table in tables
            for privilege in WRITES
            if conn.execute(
                "SELECT has_table_privilege(%s, %s)", (f"taxi.{table}", privilege)
            ).fetchone()
            == (True,)
        ]
        assert granted == []
    attempts = [
        "INSERT INTO taxi.zones VALUES (999, 'x', 'x', 'x')",
        "UPDATE taxi.zones SET zone = 'x'",
        "DELETE FROM taxi.loads",
        "TRUNCATE taxi.trips",
        "CREATE TABLE taxi.mine (x int)",
        "CREATE TABLE public.mine (x int)",
        "CREATE TEMP TABLE mine (x int)",
        "DROP VIEW taxi.trips_described",
    ]
    for statement in attempts:
        with psycopg.connect(url) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)

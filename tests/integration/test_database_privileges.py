"""Who may connect to a migrated database (migration 0007), on a real PostgreSQL: the roles
granted it, not every role of the server."""

from __future__ import annotations

import uuid
from dataclasses import replace

import psycopg
import pytest
from psycopg import sql

from dataplatform.demo.embedded import EmbeddedPostgres
from etl.migrate import migrate_url


def _login_role(pg: EmbeddedPostgres) -> tuple[str, str]:
    """A new login role of the server, granted nothing: (name, password)."""
    name, password = f"stranger_{uuid.uuid4().hex[:8]}", uuid.uuid4().hex
    with psycopg.connect(pg.url(), autocommit=True) as admin:
        admin.execute(
            sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                sql.Identifier(name), sql.Literal(password)
            )
        )
    return name, password


def _url(pg: EmbeddedPostgres, user: str, password: str, dbname: str) -> str:
    return replace(pg, user=user, password=password).url(dbname)


def test_a_role_granted_nothing_cannot_connect_to_a_migrated_database(
    pg: EmbeddedPostgres,
) -> None:
    # PostgreSQL lets every role connect to a new database: the unmigrated one admits the
    # stranger, the migrated one refuses it.
    migrated, untouched = f"m{uuid.uuid4().hex[:12]}", f"u{uuid.uuid4().hex[:12]}"
    migrate_url(pg.create_database(migrated))
    pg.create_database(untouched)
    user, password = _login_role(pg)

    with psycopg.connect(_url(pg, user, password, untouched)) as conn:
        assert conn.execute("SELECT current_user").fetchone() == (user,)
    with pytest.raises(psycopg.OperationalError, match="permission denied for database"):
        psycopg.connect(_url(pg, user, password, migrated))


def test_only_the_processor_and_the_analysts_are_granted_anything_besides_the_owner(
    pg: EmbeddedPostgres,
) -> None:
    # Read from the catalog after two runs (the second applies nothing): PUBLIC holds nothing on
    # the database any more, CONNECT is all the processor and the analysts hold, and the owner
    # (the master user) keeps every right.
    name = f"g{uuid.uuid4().hex[:12]}"
    url = pg.create_database(name)
    migrate_url(url)
    migrate_url(url)
    with psycopg.connect(url) as conn:
        rights = {
            (str(grantee), str(privilege))
            for grantee, privilege in conn.execute(
                "SELECT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(a.grantee)"
                " END, a.privilege_type FROM pg_database AS d,"
                " aclexplode(coalesce(d.datacl, acldefault('d', d.datdba))) AS a"
                " WHERE d.datname = current_database()"
            ).fetchall()
        }
        owner = conn.execute(
            "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()"
        ).fetchone()
    assert owner is not None
    others = {(grantee, privilege) for grantee, privilege in rights if grantee != owner[0]}
    assert others == {("dataplatform_processor", "CONNECT"), ("taxi_analyst", "CONNECT")}
    assert {privilege for grantee, privilege in rights if grantee == owner[0]} == {
        "CONNECT",
        "CREATE",
        "TEMPORARY",
    }

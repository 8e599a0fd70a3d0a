"""Master password rotation against a real PostgreSQL and moto's Secrets Manager: the migrate
action keeps working through `ALTER ROLE ... PASSWORD` and a secret update, in the same
container; loads, which log in as the processor's own role, never notice; and no password ever
reaches the logs."""

from __future__ import annotations

import json
import time
import uuid
from datetime import datetime

import psycopg
import pytest
from psycopg import sql

from dataplatform.demo.embedded import EmbeddedPostgres
from dataplatform.rotation import generate_password
from etl import handler as handler_module
from etl.database import SecretsManagerCredentials
from etl.handler import handler
from etl.migrate import load_migrations
from tests.integration.conftest import Platform, parquet_bytes, yellow_rows

FEBRUARY = datetime(2024, 2, 10, 8, 0)


def test_migrations_survive_master_password_rotation_without_redeploy(
    platform: Platform,
    pg: EmbeddedPostgres,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Passwords from the rotation command's generator: RDS's whole alphabet, quotes and
    # backslashes included, must survive the secret and the connection. The master is not a
    # superuser (as on RDS): it owns the database and may create roles.
    master, database = f"master_{uuid.uuid4().hex[:8]}", f"r{uuid.uuid4().hex[:12]}"
    old_password, new_password = generate_password(), generate_password()
    admin = psycopg.connect(pg.url(), autocommit=True)
    admin.execute(
        sql.SQL("CREATE ROLE {} LOGIN CREATEROLE PASSWORD {}").format(
            sql.Identifier(master), sql.Literal(old_password)
        )
    )
    pg.create_database(database, owner=master)

    def set_master_secret(password: str) -> None:
        secret = {**pg.secret(database), "username": master, "password": password}
        platform.secrets.put_secret_value(
            SecretId=platform.admin_secret_arn, SecretString=json.dumps(secret)
        )

    set_master_secret(old_password)
    platform.secrets.put_secret_value(
        SecretId=platform.secret_arn, SecretString=json.dumps(pg.processor_secret(database))
    )

    # Deploy: migrations through the handler's action, as the deploy-time invocation runs them.
    migrated = handler({"action": "migrate"}, None)
    assert migrated["applied"] == [migration.filename for migration in load_migrations()]
    january = platform.put_raw("yellow_tripdata_2024-01.parquet", parquet_bytes(yellow_rows(3)))
    assert handler(platform.receive_event(), None) == {"batchItemFailures": []}
    container = handler_module.runtime()
    credentials = container.admin.credentials
    assert isinstance(credentials, SecretsManagerCredentials)
    assert credentials.reads == 1

    # `pulumi up` changes the password on the database first. Loads do not use it.
    admin.execute(
        sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(master), sql.Literal(new_password)
        )
    )
    february = platform.put_raw(
        "yellow_tripdata_2024-02.parquet", parquet_bytes(yellow_rows(4, FEBRUARY))
    )
    assert handler(platform.receive_event(), None) == {"batchItemFailures": []}

    # A migrate run before the secret has the new password: the processor re-reads the secret
    # once, still fails, and the invocation fails (the deploy reports it).
    with pytest.raises(psycopg.OperationalError):
        handler({"action": "migrate"}, None)
    assert credentials.reads == 2

    # The secret gets the new password: the next run succeeds in the same container.
    set_master_secret(new_password)
    assert handler({"action": "migrate"}, None)["applied"] == []
    assert handler_module.runtime() is container
    assert credentials.reads == 3

    # The master's connection is not kept between runs; the processor's is, as its own role.
    # A closed connection's server process leaves pg_stat_activity a moment after the client
    # hangs up (seen under load), so the master's may take that long to go; a kept one never.
    def sessions() -> list[tuple[str]]:
        query = "SELECT usename FROM pg_stat_activity WHERE datname = %s ORDER BY 1"
        return admin.execute(query, [database]).fetchall()

    deadline = time.monotonic() + 10
    while sessions() != [("dataplatform_processor",)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sessions() == [("dataplatform_processor",)]
    admin.close()
    with psycopg.connect(pg.url(database)) as conn:
        rows = conn.execute("SELECT source_key, count(*) FROM taxi.trips GROUP BY 1").fetchall()
    loaded: dict[str, int] = dict(rows)
    assert loaded == {january: 3, february: 4}

    captured = capsys.readouterr()
    everything = captured.out + captured.err + caplog.text + json.dumps(migrated)
    reconnects = [
        json.loads(line) for line in captured.out.splitlines() if '"db_reconnect"' in line
    ]
    assert [line["auth_failed"] for line in reconnects] == [True, True]
    for password in (old_password, new_password):
        assert password not in everything

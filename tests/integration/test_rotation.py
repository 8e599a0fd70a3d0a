"""Password rotation against a real PostgreSQL and moto's Secrets Manager: the processor keeps
working through `ALTER ROLE ... PASSWORD` and a secret update, in the same container, and no
password ever reaches the logs."""

from __future__ import annotations

import json
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

FEBRUARY, MARCH = datetime(2024, 2, 10, 8, 0), datetime(2024, 3, 10, 8, 0)


def test_processor_survives_password_rotation_without_redeploy(
    platform: Platform,
    pg: EmbeddedPostgres,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # Passwords from the rotation command's generator: RDS's whole alphabet, quotes and
    # backslashes included, must survive the secret and the connection.
    role, database = f"processor_{uuid.uuid4().hex[:8]}", f"r{uuid.uuid4().hex[:12]}"
    old_password, new_password = generate_password(), generate_password()
    admin = psycopg.connect(pg.url(), autocommit=True)
    admin.execute(
        sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
            sql.Identifier(role), sql.Literal(old_password)
        )
    )
    pg.create_database(database, owner=role)

    def set_secret(password: str) -> None:
        secret = {**pg.secret(database), "username": role, "password": password}
        platform.secrets.put_secret_value(
            SecretId=platform.secret_arn, SecretString=json.dumps(secret)
        )

    set_secret(old_password)

    # Deploy: migrations through the handler's action, as the deploy-time invocation runs them.
    migrated = handler({"action": "migrate"}, None)
    assert migrated["applied"] == [migration.filename for migration in load_migrations()]
    january = platform.put_raw("yellow_tripdata_2024-01.parquet", parquet_bytes(yellow_rows(3)))
    assert handler(platform.receive_event(), None) == {"batchItemFailures": []}
    container = handler_module.runtime()
    credentials = container.database.credentials
    assert isinstance(credentials, SecretsManagerCredentials)
    assert credentials.reads == 1

    # `pulumi up` changes the password on the database first. The open connection keeps working.
    admin.execute(
        sql.SQL("ALTER ROLE {} PASSWORD {}").format(sql.Identifier(role), sql.Literal(new_password))
    )
    february = platform.put_raw(
        "yellow_tripdata_2024-02.parquet", parquet_bytes(yellow_rows(4, FEBRUARY))
    )
    assert handler(platform.receive_event(), None) == {"batchItemFailures": []}

    # The connection goes away (failover, idle timeout) before the secret has the new password:
    # the processor re-reads the secret once, still fails, and leaves the message to SQS.
    admin.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = %s", [role]
    )
    march = platform.put_raw(
        "yellow_tripdata_2024-03.parquet", parquet_bytes(yellow_rows(5, MARCH))
    )
    event = platform.receive_event()
    failed = handler(event, None)
    assert failed == {
        "batchItemFailures": [
            {"itemIdentifier": record["messageId"]} for record in event["Records"]
        ]
    }
    assert credentials.reads == 2

    # The secret gets the new password: the redelivered message succeeds in the same container.
    set_secret(new_password)
    assert handler(event, None) == {"batchItemFailures": []}
    assert handler_module.runtime() is container
    assert credentials.reads == 3

    admin.close()
    with psycopg.connect(pg.url(database)) as conn:
        rows = conn.execute("SELECT source_key, count(*) FROM taxi.trips GROUP BY 1").fetchall()
    loaded: dict[str, int] = dict(rows)
    assert loaded == {january: 3, february: 4, march: 5}

    captured = capsys.readouterr()
    everything = captured.out + captured.err + caplog.text + json.dumps([migrated, failed])
    reconnects = [
        json.loads(line) for line in captured.out.splitlines() if '"db_reconnect"' in line
    ]
    assert [line["auth_failed"] for line in reconnects] == [True, True]
    for password in (old_password, new_password):
        assert password not in everything

"""The processor's database role on a real PostgreSQL: it can do a whole load and nothing else.

Migration 0004 creates `dataplatform_processor` (etl.contract.PROCESSOR_DB_USER); locally it logs
in with a password (pgserver cannot check IAM tokens), exactly as it is granted on RDS. One test
runs the deployed login path: a boto3 token, over TLS, as that role's password."""

from __future__ import annotations

import json
import select
import socket
import ssl
import struct
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import psycopg
import pytest
from psycopg import errors, sql

from dataplatform.demo.embedded import LOOPBACK, EmbeddedPostgres, set_processor_password
from etl.contract import PROCESSOR_DB_USER
from etl.database import Database, DbCredentials, IamTokenCredentials, SecretsManagerCredentials
from etl.handler import Runtime, handler
from etl.loader import ensure_partitions
from etl.migrate import migrate_url
from tests.integration.conftest import Platform, parquet_bytes, yellow_rows


def _as_processor(pg: EmbeddedPostgres, dbname: str) -> psycopg.Connection[Any]:
    credentials = DbCredentials.from_secret_string(json.dumps(pg.processor_secret(dbname)))
    return psycopg.connect(**credentials.connect_kwargs(), autocommit=True)


@pytest.fixture(scope="module")
def processor_db(pg: EmbeddedPostgres) -> Iterator[tuple[str, psycopg.Connection[Any]]]:
    """A migrated database with one partition, and a connection to it as the processor role."""
    name = f"role_{uuid.uuid4().hex[:12]}"
    migrate_url(pg.create_database(name))
    pg.enable_processor_login()
    with _as_processor(pg, name) as conn:
        ensure_partitions(conn, [date(2024, 1, 1)])
        yield name, conn


def test_a_whole_load_runs_as_the_processor_role(platform: Platform) -> None:
    # The handler's load (partition, lock, delete, COPY, audit row, index) logs in as the role,
    # and the partition it needed belongs to the table's owner, not to the processor.
    key = platform.put_raw("yellow_tripdata_2024-01.parquet", parquet_bytes(yellow_rows(5)))
    assert handler(platform.receive_event(), None) == {"batchItemFailures": []}
    again = platform.put_raw("yellow_tripdata_2024-01.parquet", parquet_bytes(yellow_rows(7)))
    assert handler(platform.receive_event(), None) == {"batchItemFailures": []}

    sessions = platform.query(
        "SELECT usename FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
        [platform.name, "dataplatform-processor"],
    )
    owner = platform.scalar(
        "SELECT pg_get_userbyid(relowner) FROM pg_class WHERE relname = 'trips_2024_01'"
    )
    assert key == again
    assert sessions == [(PROCESSOR_DB_USER,)]
    assert owner != PROCESSOR_DB_USER
    assert platform.scalar("SELECT count(*) FROM taxi.trips") == 7
    assert platform.scalar("SELECT load_count FROM taxi.loads") == 2


def test_the_role_has_no_attribute_beyond_login(pg: EmbeddedPostgres) -> None:
    with psycopg.connect(pg.url()) as conn:
        row = conn.execute(
            "SELECT rolcanlogin, rolsuper, rolcreatedb, rolcreaterole, rolreplication,"
            " rolbypassrls FROM pg_roles WHERE rolname = %s",
            [PROCESSOR_DB_USER],
        ).fetchone()
    assert row == (True, False, False, False, False, False)


def test_the_partition_function_creates_only_a_month_partition(
    processor_db: tuple[str, psycopg.Connection[Any]],
) -> None:
    # Any day names its month; the partition is bounded by that month; null is refused.
    _, conn = processor_db
    created = conn.execute("SELECT taxi.create_trips_partition('2031-05-17')").fetchone()
    again = conn.execute("SELECT taxi.create_trips_partition('2031-05-01')").fetchone()
    bound = conn.execute(
        "SELECT pg_get_expr(relpartbound, oid) FROM pg_class WHERE relname = 'trips_2031_05'"
    ).fetchone()

    assert (created, again) == ((True,), (False,))
    assert bound == ("FOR VALUES FROM ('2031-05-01 00:00:00') TO ('2031-06-01 00:00:00')",)
    with pytest.raises(errors.RaiseException, match="month must not be null"):
        conn.execute("SELECT taxi.create_trips_partition(NULL)")


def test_the_object_partition_function_gives_one_leaf_and_only_insert_and_truncate(
    processor_db: tuple[str, psycopg.Connection[Any]],
) -> None:
    # A leaf for one object in one month, under that month's partition, named by the key's
    # digest, its dataset and source_key by default the object's; the processor may fill and
    # empty it, not read, update or delete in it.
    _, conn = processor_db
    key = "raw/yellow/yellow_tripdata_2031-07.parquet"
    leaf = conn.execute(
        "SELECT taxi.create_trips_object_partition('2031-07-09', %s, 'yellow')", [key]
    ).fetchone()
    again = conn.execute(
        "SELECT taxi.create_trips_object_partition('2031-07-01', %s, 'yellow')", [key]
    ).fetchone()
    assert leaf is not None
    assert leaf == again
    [name] = leaf
    parent, bound = conn.execute(
        "SELECT p.relname, pg_get_expr(c.relpartbound, c.oid) FROM pg_class AS c"
        " JOIN pg_inherits AS i ON i.inhrelid = c.oid JOIN pg_class AS p ON p.oid = i.inhparent"
        " WHERE c.relname = %s",
        [name],
    ).fetchone() or (None, None)
    privileges = {
        privilege: conn.execute(
            "SELECT has_table_privilege(%s, %s, %s)", [PROCESSOR_DB_USER, f"taxi.{name}", privilege]
        ).fetchone()
        for privilege in ("INSERT", "TRUNCATE", "SELECT", "UPDATE", "DELETE")
    }

    assert name.startswith("trips_2031_07_")
    assert len(name) == len("trips_2031_07_") + 16
    assert (parent, bound) == ("trips_2031_07", f"FOR VALUES IN ('{key}')")
    assert privileges == {
        "INSERT": (True,),
        "TRUNCATE": (True,),
        "SELECT": (False,),
        "UPDATE": (False,),
        "DELETE": (False,),
    }
    defaults = conn.execute(
        "SELECT a.attname, pg_get_expr(d.adbin, d.adrelid) FROM pg_attrdef AS d"
        " JOIN pg_attribute AS a ON a.attrelid = d.adrelid AND a.attnum = d.adnum"
        " WHERE d.adrelid = %s::regclass ORDER BY 1",
        [f"taxi.{name}"],
    ).fetchall()
    assert defaults == [("dataset", "'yellow'::text"), ("source_key", f"'{key}'::text")]
    assert conn.execute("SELECT taxi.trips_object_partitions(%s)", [key]).fetchall() == [(name,)]
    with pytest.raises(errors.RaiseException, match="must not be null"):
        conn.execute("SELECT taxi.create_trips_object_partition('2031-07-01', NULL, 'yellow')")


FORBIDDEN = {
    "create a table in taxi": "CREATE TABLE taxi.evil (i integer)",
    "create a table in public": "CREATE TABLE public.evil (i integer)",
    "create a function": "CREATE FUNCTION taxi.evil() RETURNS integer LANGUAGE sql AS 'SELECT 1'",
    "create a view": "CREATE VIEW taxi.evil AS SELECT 1",
    "create a schema": "CREATE SCHEMA evil",
    "create a role": "CREATE ROLE evil",
    "alter its own role": f"ALTER ROLE {PROCESSOR_DB_USER} CREATEDB",
    "become another role": "SET ROLE postgres",
    "alter trips": "ALTER TABLE taxi.trips ADD COLUMN evil integer",
    "drop loads": "DROP TABLE taxi.loads",
    "drop a partition": "DROP TABLE taxi.trips_2024_01",
    "drop the partition function": "DROP FUNCTION taxi.create_trips_partition(date)",
    "replace the partition function": (
        "CREATE OR REPLACE FUNCTION taxi.create_trips_partition(month date) RETURNS boolean "
        "LANGUAGE sql AS 'SELECT true'"
    ),
    "create an index": "CREATE INDEX evil ON taxi.loads (bucket)",
    "truncate trips": "TRUNCATE taxi.trips",
    "truncate a month partition": "TRUNCATE taxi.trips_2024_01",
    "delete trips": "DELETE FROM taxi.trips",
    "truncate loads": "TRUNCATE taxi.loads",
    "truncate the history": "TRUNCATE taxi.schema_migrations",
    "delete audit rows": "DELETE FROM taxi.loads",
    "write a partition directly": (
        "INSERT INTO taxi.trips_2024_01 (dataset, source_key, pickup_datetime)"
        " VALUES ('yellow', 'k', '2024-01-02')"
    ),
    "read trip data": "SELECT fare_amount FROM taxi.trips",
    "read trips through the view": "SELECT * FROM taxi.trips_described",
    "copy trips out": "COPY taxi.trips TO STDOUT",
    "read master data": "SELECT * FROM taxi.zones",
    "write master data": "INSERT INTO taxi.vendors VALUES (99, 'evil')",
    "change master data": "UPDATE taxi.rate_codes SET description = 'evil'",
    "delete master data": "DELETE FROM taxi.payment_types",
    "read the migration history": "SELECT * FROM taxi.schema_migrations",
    "forge a migration": "INSERT INTO taxi.schema_migrations VALUES (99, 'evil', 'x')",
    "read password hashes": "SELECT rolpassword FROM pg_authid",
    "read pg_shadow": "SELECT passwd FROM pg_shadow",
    "read a server file": "SELECT pg_read_file('postgresql.conf')",
    "run a program": "COPY taxi.loads FROM PROGRAM 'true'",
    "read the server's settings file": "SHOW config_file",
    "change a server setting": "ALTER SYSTEM SET log_statement = 'none'",
    "create a database": "CREATE DATABASE evil",
    "create a temporary table": "CREATE TEMP TABLE evil (x integer)",
}


@pytest.mark.parametrize("statement", FORBIDDEN.values(), ids=FORBIDDEN.keys())
def test_the_role_may_not(
    processor_db: tuple[str, psycopg.Connection[Any]], statement: str
) -> None:
    # Autocommit: each statement alone, as CREATE DATABASE and ALTER SYSTEM must run.
    _, conn = processor_db
    with pytest.raises(errors.InsufficientPrivilege):
        conn.execute(statement)


def test_the_role_may_not_read_other_databases_objects(
    pg: EmbeddedPostgres, processor_db: tuple[str, psycopg.Connection[Any]]
) -> None:
    # Another database migrated on the same server grants the role there too, but a database
    # with its own tables grants it nothing.
    other = f"other_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg.create_database(other), autocommit=True) as admin:
        admin.execute("CREATE SCHEMA app; CREATE TABLE app.secrets (value text)")
    with _as_processor(pg, other) as conn, pytest.raises(errors.InsufficientPrivilege):
        conn.execute("SELECT * FROM app.secrets")


def test_rds_iam_is_granted_when_the_server_has_it(pg: EmbeddedPostgres) -> None:
    # On RDS the role rds_iam exists and its members log in with IAM tokens; a migration must
    # grant it there and skip it where it does not exist (every other test here).
    name = f"iam_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg.url(), autocommit=True) as admin:
        admin.execute("CREATE ROLE rds_iam NOLOGIN")
        try:
            migrate_url(pg.create_database(name))
            member = admin.execute(
                "SELECT pg_has_role(%s, 'rds_iam', 'MEMBER')", [PROCESSOR_DB_USER]
            ).fetchone()
        finally:
            admin.execute(
                sql.SQL("REVOKE rds_iam FROM {}").format(sql.Identifier(PROCESSOR_DB_USER))
            )
            admin.execute("DROP ROLE rds_iam")
    assert member == (True,)


SSL_REQUEST = struct.pack("!ii", 8, 80877103)
"""PostgreSQL's SSLRequest packet: what libpq sends first when sslmode asks for TLS."""


def _self_signed(directory: Path) -> tuple[Path, Path]:
    """A certificate for localhost and its key, valid for an hour."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(hours=1))
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "server.crt", directory / "server.key"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class TlsFront:
    """A PostgreSQL front end that speaks TLS, as RDS does, for pgserver, whose build has no
    TLS: it answers libpq's SSLRequest, completes the handshake, and relays the session in
    plaintext to the server. What each client sent in the clear before TLS is recorded."""

    def __init__(self, target_port: int, cert: Path, key: Path) -> None:
        self.target_port = target_port
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.listener = socket.create_server((LOOPBACK, 0))
        self.port: int = self.listener.getsockname()[1]
        self.cleartext: list[bytes] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        """Stop listening."""
        self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        first = client.recv(8)
        self.cleartext.append(first)
        if first != SSL_REQUEST:
            client.close()
            return
        client.sendall(b"S")
        secure = self.context.wrap_socket(client, server_side=True)
        upstream = socket.create_connection((LOOPBACK, self.target_port))
        with secure, upstream:
            while True:
                ready: list[socket.socket] = [secure] if secure.pending() else []
                if not ready:
                    ready, _, _ = select.select([secure, upstream], [], [], 30)
                    if not ready:
                        return
                for source in ready:
                    sink = upstream if source is secure else secure
                    try:
                        data = source.recv(65536)
                    except ssl.SSLWantReadError:
                        continue
                    except OSError:
                        return
                    if not data:
                        return
                    sink.sendall(data)


@pytest.fixture
def tls_front(pg: EmbeddedPostgres, tmp_path: Path) -> Iterator[TlsFront]:
    """TLS in front of the session's server, on a port of its own."""
    front = TlsFront(pg.port, *_self_signed(tmp_path))
    try:
        yield front
    finally:
        front.close()


def test_a_load_logs_in_with_an_iam_token_over_tls(
    platform: Platform,
    pg: EmbeddedPostgres,
    tls_front: TlsFront,
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The deployed path end to end, as far as it runs offline: boto3 signs a token (inside the
    # client: moto's endpoint sees no request), libpq sends it over TLS as the password of the
    # processor's role, and the load runs. PostgreSQL cannot verify a SigV4 signature the way
    # RDS does, so the role's password is set to the token, standing in for that check.
    credentials = IamTokenCredentials(
        boto3.client("rds"),
        host=LOOPBACK,
        port=tls_front.port,
        user=PROCESSOR_DB_USER,
        dbname=platform.name,
    )
    token = credentials.get().password
    secrets = boto3.client("secretsmanager")
    runtime = Runtime(
        s3=boto3.client("s3"),
        database=Database(credentials),
        admin=Database(SecretsManagerCredentials(secrets, platform.admin_secret_arn)),
    )
    with psycopg.connect(pg.url(), autocommit=True) as admin:
        set_processor_password(admin, token)
    try:
        platform.put_raw("yellow_tripdata_2024-01.parquet", parquet_bytes(yellow_rows(6)))
        result = runtime.handle(platform.receive_event())
        session = platform.query(
            "SELECT usename FROM pg_stat_activity WHERE datname = %s AND application_name = %s",
            [platform.name, "dataplatform-processor"],
        )
        runtime.close()
    finally:
        pg.enable_processor_login()

    assert result == {"batchItemFailures": []}
    assert session == [(PROCESSOR_DB_USER,)]
    # Every connection asked for TLS before anything else (the token went inside it).
    assert tls_front.cleartext == [SSL_REQUEST]
    assert credentials.tokens == 1
    assert platform.scalar("SELECT count(*) FROM taxi.trips") == 6
    captured = capsys.readouterr()
    assert token not in captured.out + captured.err + caplog.text

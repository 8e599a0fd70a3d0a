"""Local stand-ins for the AWS services and the database, for tests and `dataplatform demo`.

- `moto_server()`: moto's server over HTTP on 127.0.0.1 (S3, SQS, Secrets Manager, ...). Clients
  reach it through the standard `AWS_ENDPOINT_URL` (see `aws_environment`), exactly as they would
  reach LocalStack, so the code under test has no test-only switches.
- `postgres()`: a real PostgreSQL 16 from the pgserver wheel, in a temporary directory, listening
  on 127.0.0.1 with password (SCRAM) authentication, so that a wrong password fails as on RDS.

Both are context managers that stop their server and delete every file they created. moto and
pgserver are imported lazily: the Lambda bundle carries this module but neither package.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import psycopg
from psycopg import sql

from etl.contract import PROCESSOR_DB_USER
from etl.core.errors import DataplatformError

SUPERUSER = "postgres"
MAINTENANCE_DATABASE = "postgres"
DEFAULT_DATABASE = "dataplatform"
LOOPBACK = "127.0.0.1"

# Throwaway clusters need no crash safety; these make CREATE DATABASE and commits much faster.
# `postgres(durable=True)` keeps PostgreSQL's defaults (the benchmark uses it).
FAST_SETTINGS: dict[str, str] = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
}

# PostgreSQL refuses to run as root; pgserver runs it as this system user in that case.
_ROOT_RUN_AS = "pgserver"


class EmbeddedServiceError(DataplatformError):
    """A local service (moto's server or PostgreSQL) could not be started."""


@dataclass(frozen=True)
class EmbeddedPostgres:
    """A running local PostgreSQL server and how to reach it."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    dbname: str
    data_dir: Path
    processor_password: str = field(default_factory=lambda: secrets.token_urlsafe(24), repr=False)
    """The password the processor's role gets on this server (`enable_processor_login`)."""

    def url(self, dbname: str | None = None) -> str:
        """A libpq URL for `dbname` (default: the server's default database), password included."""
        return (
            f"postgresql://{quote(self.user, safe='')}:{quote(self.password, safe='')}"
            f"@{self.host}:{self.port}/{quote(dbname or self.dbname, safe='')}?sslmode=disable"
        )

    def secret(self, dbname: str | None = None) -> dict[str, str | int]:
        """The connection as an RDS-style Secrets Manager secret (no TLS locally)."""
        return {
            "host": self.host,
            "port": self.port,
            "username": self.user,
            "password": self.password,
            "dbname": dbname or self.dbname,
            "sslmode": "disable",
        }

    def processor_secret(self, dbname: str | None = None) -> dict[str, str | int]:
        """The processor role's connection as an RDS-style secret, with the server's
        `processor_password` (set on the role by `enable_processor_login`)."""
        return processor_secret(self.secret(dbname), self.processor_password)

    def enable_processor_login(self) -> None:
        """Give the processor's role (created by the migrations) the server's processor
        password: locally it logs in with one, where RDS takes an IAM token."""
        with psycopg.connect(self.url(MAINTENANCE_DATABASE), autocommit=True) as conn:
            set_processor_password(conn, self.processor_password)

    def create_database(self, name: str, owner: str | None = None) -> str:
        """Create database `name` (owned by `owner`, default the superuser); return its URL."""
        with psycopg.connect(self.url(MAINTENANCE_DATABASE), autocommit=True) as conn:
            statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
            if owner is not None:
                statement += sql.SQL(" OWNER {}").format(sql.Identifier(owner))
            conn.execute(statement)
        return self.url(name)


def processor_secret(admin_secret: Mapping[str, str | int], password: str) -> dict[str, str | int]:
    """The processor role's connection: the master user's secret with the role and its password
    in place of the master's."""
    return {**admin_secret, "username": PROCESSOR_DB_USER, "password": password}


def set_processor_password(admin: psycopg.Connection[Any], password: str) -> None:
    """Let the processor's role log in with `password` (over `admin`, a connection of a user
    allowed to alter roles). For local servers only: on RDS the role logs in with IAM tokens.
    Raise `EmbeddedServiceError` when the role does not exist (migrate first)."""
    exists = admin.execute(
        "SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = %s", [PROCESSOR_DB_USER]
    ).fetchone()
    if exists is None:
        raise EmbeddedServiceError(
            f"the database has no role {PROCESSOR_DB_USER}: run the migrations first"
        )
    admin.execute(
        sql.SQL("ALTER ROLE {} PASSWORD {}").format(
            sql.Identifier(PROCESSOR_DB_USER), sql.Literal(password)
        )
    )


@contextmanager
def postgres(
    *,
    dbname: str = DEFAULT_DATABASE,
    durable: bool = False,
    settings: Mapping[str, str] | None = None,
    parent: Path | None = None,
) -> Iterator[EmbeddedPostgres]:
    """Start a PostgreSQL 16 server (pgserver's binaries) in a fresh temporary directory (under
    `parent`, default the system's temporary directory).

    The server listens on 127.0.0.1 at a free port; the superuser `postgres` gets a random
    password and every connection must present it (SCRAM-SHA-256, for TCP and the Unix socket).
    A database `dbname` is created. Unless `durable`, crash safety is switched off for speed.
    `settings` are extra `postgresql.conf` parameters. On exit the server is stopped and the
    directory deleted.
    """
    bin_dir = _pgserver_bin_dir()
    root = Path(tempfile.mkdtemp(prefix="dataplatform-pg-", dir=parent))
    run_as = _postgres_os_user()
    if run_as is not None:
        shutil.chown(root, run_as, run_as)
    data_dir = root / "data"
    password = secrets.token_urlsafe(24)
    started = False
    try:
        password_file = root / "password"
        password_file.write_text(password + "\n")
        if run_as is not None:
            shutil.chown(password_file, run_as, run_as)
        _run(
            bin_dir / "initdb",
            [
                "-D",
                str(data_dir),
                "-U",
                SUPERUSER,
                f"--pwfile={password_file}",
                "--auth-host=scram-sha-256",
                "--auth-local=scram-sha-256",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
                "--no-instructions",
            ],
            run_as,
        )
        password_file.unlink()
        port = _free_port()
        conf = {
            "listen_addresses": LOOPBACK,
            "port": str(port),
            "unix_socket_directories": str(root),
            **({} if durable else FAST_SETTINGS),
            **(settings or {}),
        }
        with (data_dir / "postgresql.conf").open("a") as handle:
            handle.write("\n# dataplatform embedded server\n")
            for name, value in conf.items():
                handle.write(f"{name} = '{_conf_quote(value)}'\n")
        _run(
            bin_dir / "pg_ctl",
            ["-D", str(data_dir), "-l", str(root / "server.log"), "-w", "-t", "60", "start"],
            run_as,
        )
        started = True
        server = EmbeddedPostgres(LOOPBACK, port, SUPERUSER, password, dbname, data_dir)
        server.create_database(dbname)
        yield server
    finally:
        if started:
            _run(
                bin_dir / "pg_ctl",
                ["-D", str(data_dir), "-m", "immediate", "-w", "stop"],
                run_as,
                check=False,
            )
        shutil.rmtree(root, ignore_errors=True)


def _pgserver_bin_dir() -> Path:
    # Located without importing pgserver: its package import takes a lock file in the user's
    # runtime directory, which this module does not need.
    spec = importlib.util.find_spec("pgserver")
    if spec is None or not spec.submodule_search_locations:
        # As its import would fail: the CLI names the extra that installs it (MissingExtra).
        raise ModuleNotFoundError("No module named 'pgserver'", name="pgserver")
    return Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"


def _postgres_os_user() -> str | None:
    if os.name != "posix" or os.geteuid() != 0:
        return None
    import pwd

    try:
        pwd.getpwnam(_ROOT_RUN_AS)
    except KeyError:
        subprocess.run(["useradd", "--system", _ROOT_RUN_AS], check=True, capture_output=True)
    return _ROOT_RUN_AS


def _run(executable: Path, args: list[str], run_as: str | None, *, check: bool = True) -> None:
    result = subprocess.run(
        [str(executable), *args],
        user=run_as,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        stdin=subprocess.DEVNULL,
    )
    if check and result.returncode != 0:
        output = (result.stderr or result.stdout).strip().splitlines()
        raise EmbeddedServiceError(
            f"{executable.name} failed (exit {result.returncode}): "
            f"{output[-1] if output else 'no output'}"
        )


def _conf_quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace("'", "''")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((LOOPBACK, 0))
        port: int = probe.getsockname()[1]
        return port


@contextmanager
def moto_server() -> Iterator[str]:
    """Start moto's server on 127.0.0.1 at a free port; yield its endpoint URL.

    Every AWS service moto implements answers on this one endpoint, over real HTTP, so clients
    exercise their whole stack (serialisation, retries, error parsing). State lives in this
    process and is dropped when the server stops.
    """
    from moto.server import ThreadedMotoServer

    # werkzeug logs every request at INFO; the processor's own logs are what matter.
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    server = ThreadedMotoServer(ip_address=LOOPBACK, port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


DUMMY_AWS_ENVIRONMENT: dict[str, str] = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",  # pragma: allowlist secret
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}
"""Credentials and region for a local endpoint: moto accepts any; these reach nothing real."""

_CLEARED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE")


@contextmanager
def aws_environment(endpoint_url: str) -> Iterator[None]:
    """Point every boto3 client created inside the block at `endpoint_url`.

    Sets the standard `AWS_ENDPOINT_URL` (which botocore reads for every service) and dummy
    credentials and region, hides any profile or shared credentials file so that nothing can reach
    a real account, and restores the previous environment on exit.
    """
    saved = {
        name: os.environ.get(name)
        for name in (*DUMMY_AWS_ENVIRONMENT, *_CLEARED, "AWS_ENDPOINT_URL")
    }
    try:
        for name in _CLEARED:
            os.environ.pop(name, None)
        os.environ.update(DUMMY_AWS_ENVIRONMENT)
        os.environ["AWS_ENDPOINT_URL"] = endpoint_url
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

"""The processor's PostgreSQL connections: one per container, with credentials from one of two
sources behind one interface (`CredentialSource`), reconnecting with renewed credentials once when
a login fails.

- `IamTokenCredentials`: the deployed function logs in as its own role (`PROCESSOR_DB_USER`) with
  an RDS IAM authentication token, generated locally by boto3 from the function's role (a
  presigned request, no network call) and valid for 15 minutes.
- `SecretsManagerCredentials`: a Secrets Manager secret with the whole connection, password
  included: the master user's secret, read only by the migrate action, and locally (PostgreSQL
  cannot check IAM tokens) the processor role's password.

Rotation needs no redeploy: `pulumi up` changes the RDS password and the secret together;
connections already open keep working, and the next connection that fails authentication makes
`Database` renew its credentials (re-read the secret, or generate a new token) and try again,
once. A second failure is raised (the message is retried by SQS), so wrong credentials cannot turn
into a tight loop of logins. A connection that fails for another reason also renews them, but
retries only if the server's address changed (the database was replaced); otherwise the database
is down and the error is raised.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import psycopg

from etl.core.errors import DataplatformError

if TYPE_CHECKING:
    from mypy_boto3_rds import RDSClient
    from mypy_boto3_secretsmanager import SecretsManagerClient

_log = logging.getLogger("dataplatform.database")

# SQLSTATEs of authentication failures: invalid_password, invalid_authorization_specification.
AUTH_SQLSTATES = frozenset({"28P01", "28000"})
# libpq reports a failed login before any SQLSTATE exists, so the message is all there is.
_AUTH_MESSAGES = ("password authentication failed", "pam authentication failed")

APPLICATION_NAME = "dataplatform-processor"


class CredentialsError(DataplatformError):
    """The database secret is missing or malformed."""


@dataclass(frozen=True)
class DbCredentials:
    """How to reach the database: the RDS secret's JSON keys."""

    host: str
    port: int
    username: str
    password: str = field(repr=False)
    dbname: str
    sslmode: str = "require"
    """libpq sslmode. RDS enforces TLS (rds.force_ssl=1), hence `require` unless the secret says
    otherwise (`disable` for a local server without TLS)."""
    sslrootcert: str | None = None
    """CA certificates to verify the server with (libpq sslrootcert), for `verify-full`."""

    @property
    def address(self) -> tuple[str, int, str, str]:
        """Where and as whom these credentials log in: everything but the password."""
        return (self.host, self.port, self.dbname, self.username)

    @classmethod
    def from_secret_string(cls, text: str) -> DbCredentials:
        """Parse an RDS-style secret: JSON with host, port, username, password, dbname and an
        optional sslmode. Error messages name keys, never values."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            raise CredentialsError("the database secret is not JSON") from None
        if not isinstance(data, dict):
            raise CredentialsError("the database secret is not a JSON object")
        missing = [
            key for key in ("host", "port", "username", "password", "dbname") if not data.get(key)
        ]
        if missing:
            raise CredentialsError(f"the database secret lacks {', '.join(missing)}")
        try:
            port = int(data["port"])
        except (TypeError, ValueError):
            raise CredentialsError("the database secret's port is not a number") from None
        return cls(
            host=str(data["host"]),
            port=port,
            username=str(data["username"]),
            password=str(data["password"]),
            dbname=str(data["dbname"]),
            sslmode=str(data.get("sslmode") or "require"),
        )

    def connect_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `psycopg.connect` (the password travels as a parameter, so no
        character needs escaping)."""
        kwargs: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.username,
            "password": self.password,
            "dbname": self.dbname,
            "sslmode": self.sslmode,
        }
        if self.sslrootcert:
            kwargs["sslrootcert"] = self.sslrootcert
        return kwargs


class CredentialSource(Protocol):
    """Where credentials come from: `get` may answer from a cache, `refresh` must not."""

    def get(self) -> DbCredentials:
        """The current credentials (cached)."""
        ...

    def refresh(self) -> DbCredentials:
        """Re-read the credentials from their source."""
        ...


class SecretsManagerCredentials:
    """Credentials from a Secrets Manager secret, read once and cached until `refresh`."""

    def __init__(self, client: SecretsManagerClient, secret_id: str) -> None:
        self._client = client
        self._secret_id = secret_id
        self._cached: DbCredentials | None = None
        self.reads = 0
        """How many times the secret was fetched (visible in logs and tests)."""

    def get(self) -> DbCredentials:
        """The cached credentials, fetching them on first use."""
        if self._cached is None:
            return self.refresh()
        return self._cached

    def refresh(self) -> DbCredentials:
        """Fetch the secret's current version."""
        response = self._client.get_secret_value(SecretId=self._secret_id)
        self.reads += 1
        self._cached = DbCredentials.from_secret_string(response["SecretString"])
        return self._cached


TOKEN_LIFETIME_SECONDS = 900
"""How long RDS accepts an IAM authentication token (15 minutes); it is checked at login only,
so a connection outlives its token."""
TOKEN_REUSE_SECONDS = 600
"""A cached token is reused for new connections while younger than this, leaving it minutes of
validity for the login itself."""


class IamTokenCredentials:
    """Credentials for RDS IAM database authentication: a token in place of a password.

    `generate_db_auth_token` signs a `connect` request for `user` at `host:port` with the
    function's role (SigV4, service `rds-db`) entirely inside boto3: no call leaves the function,
    so the VPC needs no RDS endpoint. RDS checks the signature and that the role may
    `rds-db:connect` as that database user. The token is a bearer credential for 15 minutes: it
    is never logged (`DbCredentials` hides its password) and travels only over TLS.

    TLS is `require` by default: encrypted, but the server's certificate is not checked. Checking
    it (`verify-full`) needs the RDS CA bundle in the function's bundle; AWS rotates those CAs,
    and a stale copy would lock the processor out, so the bundle is not shipped and the choice is
    left to `sslrootcert`. What `require` leaves open is a host inside the VPC impersonating the
    database to collect a token; the database's subnets are private, with no internet route, and
    the stack's security groups let only the processor reach port 5432.
    """

    def __init__(
        self,
        client: RDSClient,
        *,
        host: str,
        port: int,
        user: str,
        dbname: str,
        sslrootcert: str | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._host = host
        self._port = port
        self._user = user
        self._dbname = dbname
        self._sslrootcert = sslrootcert
        self._clock = clock
        self._cached: DbCredentials | None = None
        self._generated_at = 0.0
        self.tokens = 0
        """How many tokens were generated (visible in tests)."""

    def get(self) -> DbCredentials:
        """A token generated less than `TOKEN_REUSE_SECONDS` ago, or a new one."""
        if self._cached is None or self._clock() - self._generated_at >= TOKEN_REUSE_SECONDS:
            return self.refresh()
        return self._cached

    def refresh(self) -> DbCredentials:
        """Generate a new token."""
        token = self._client.generate_db_auth_token(
            DBHostname=self._host,
            Port=self._port,
            DBUsername=self._user,
            Region=self._client.meta.region_name,
        )
        self.tokens += 1
        self._generated_at = self._clock()
        self._cached = DbCredentials(
            host=self._host,
            port=self._port,
            username=self._user,
            password=token,
            dbname=self._dbname,
            sslmode="verify-full" if self._sslrootcert else "require",
            sslrootcert=self._sslrootcert,
        )
        return self._cached


def is_auth_failure(error: psycopg.OperationalError) -> bool:
    """Whether a failed connection was refused for its credentials (wrong password, unknown
    role), as opposed to the server being down or unreachable."""
    if error.sqlstate in AUTH_SQLSTATES:
        return True
    message = str(error).lower()
    return any(fragment in message for fragment in _AUTH_MESSAGES)


class Database:
    """One autocommit connection, opened lazily and reopened when it is found dead.

    Transactions are explicit (`with conn.transaction():`). Not for sharing between threads:
    like a Lambda container, one `Database` serves one invocation at a time.
    """

    def __init__(self, credentials: CredentialSource, *, connect_timeout: int = 10) -> None:
        self.credentials = credentials
        """Where the connection's credentials come from."""
        self._connect_timeout = connect_timeout
        self._conn: psycopg.Connection[Any] | None = None
        self._lock = threading.Lock()
        self.connects = 0
        """Connections opened so far."""

    def connection(self) -> psycopg.Connection[Any]:
        """A live connection: the cached one if it answers, else a new one."""
        with self._lock:
            conn = self._conn
            if conn is not None and not conn.broken and not conn.closed and _answers(conn):
                return conn
            if conn is not None:
                conn.close()
                self._conn = None
            self._conn = self._connect()
            return self._conn

    def close(self) -> None:
        """Close the connection, if any."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def _connect(self) -> psycopg.Connection[Any]:
        credentials = self.credentials.get()
        try:
            return self._open(credentials)
        except psycopg.OperationalError as error:
            auth_failed = is_auth_failure(error)
            # Renew the credentials once. After a rotation the secret holds the new password;
            # after the database was replaced, its new address; an expired token is replaced.
            # If the address is the same and it was not the login, the database is down: fail
            # now and let SQS retry later.
            fresh = self.credentials.refresh()
            if not auth_failed and fresh.address == credentials.address:
                raise
        _log.warning(
            "database refused the connection: retrying once with renewed credentials",
            extra={"fields": {"event": "db_reconnect", "auth_failed": auth_failed}},
        )
        return self._open(fresh)

    def _open(self, credentials: DbCredentials) -> psycopg.Connection[Any]:
        conn = psycopg.connect(
            **credentials.connect_kwargs(),
            autocommit=True,
            connect_timeout=self._connect_timeout,
            application_name=APPLICATION_NAME,
        )
        self.connects += 1
        return conn


def _answers(conn: psycopg.Connection[Any]) -> bool:
    # A connection idle between invocations may have been closed by the server (failover,
    # restart, idle timeout); finding out now costs one round trip instead of a failed load.
    try:
        conn.execute("SELECT 1")
    except psycopg.Error:
        return False
    return True

"""The processor's PostgreSQL connection: credentials from Secrets Manager, one connection per
container, reconnecting (and re-reading the secret once) when the password has been rotated.

Rotation needs no redeploy: `pulumi up` changes the RDS password and the secret together;
connections already open keep working, and the next connection that fails authentication makes
`Database` re-read the secret and try again, once. A second failure is raised (the message is
retried by SQS), so a wrong secret cannot turn into a tight loop of logins. A connection that fails
for another reason also re-reads the secret, but retries only if the secret changed (the database
was replaced and has a new address); otherwise the database is down and the error is raised.
"""

from __future__ import annotations

import json
import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import psycopg

from etl.core.errors import DataplatformError

if TYPE_CHECKING:
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
        return {
            "host": self.host,
            "port": self.port,
            "user": self.username,
            "password": self.password,
            "dbname": self.dbname,
            "sslmode": self.sslmode,
        }


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
            # Re-read the secret once. After a rotation it holds the new password; after the
            # database was replaced, its new address. If nothing changed and it was not the
            # password, the database is down: fail now and let SQS retry later.
            fresh = self.credentials.refresh()
            if not auth_failed and fresh == credentials:
                raise
        _log.warning(
            "database refused the connection: retrying once with the secret re-read",
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

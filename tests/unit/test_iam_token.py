"""The IAM token path: boto3's `generate_db_auth_token` (a presigned request, computed inside
boto3, here under moto so nothing can reach AWS) becomes the password of the processor's role,
over TLS, renewed once on a refused login and never logged.

What cannot be proven offline: that RDS accepts the token (pgserver has no IAM plugin); the
token's shape and the arguments reaching libpq are what is checked here."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

import boto3
import psycopg
import pytest
from moto import mock_aws

from etl.contract import PROCESSOR_DB_USER
from etl.database import (
    TOKEN_LIFETIME_SECONDS,
    TOKEN_REUSE_SECONDS,
    Database,
    IamTokenCredentials,
)

if TYPE_CHECKING:
    from mypy_boto3_rds import RDSClient

HOST = "dataplatform-dev-db.abc123.us-east-1.rds.amazonaws.com"


@pytest.fixture
def rds(monkeypatch: pytest.MonkeyPatch) -> Iterator[RDSClient]:
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # pragma: allowlist secret
        "AWS_SESSION_TOKEN": "testing",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.client("rds", region_name="eu-west-1")


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _credentials(rds: RDSClient, clock: Clock | None = None) -> IamTokenCredentials:
    return IamTokenCredentials(
        rds,
        host=HOST,
        port=5432,
        user=PROCESSOR_DB_USER,
        dbname="dataplatform",
        clock=clock or Clock(),
    )


def test_token_is_a_signed_connect_request_for_the_processor_user(rds: RDSClient) -> None:
    # The token is SigV4 presigned `connect` for host:port and the user, service rds-db, in the
    # client's region, valid 15 minutes.
    credentials = _credentials(rds).get()

    url = urlsplit(f"https://{credentials.password}")
    query = {key: values[0] for key, values in parse_qs(url.query).items()}
    assert (url.hostname, url.port) == (HOST, 5432)
    assert query["Action"] == "connect"
    assert query["DBUser"] == PROCESSOR_DB_USER
    assert query["X-Amz-Algorithm"] == "AWS4-HMAC-SHA256"
    assert query["X-Amz-Credential"].endswith("/eu-west-1/rds-db/aws4_request")
    assert int(query["X-Amz-Expires"]) == TOKEN_LIFETIME_SECONDS
    assert query["X-Amz-Signature"]
    assert (credentials.username, credentials.host, credentials.port) == (
        PROCESSOR_DB_USER,
        HOST,
        5432,
    )
    assert credentials.sslmode == "require"


def test_token_is_reused_for_ten_minutes_then_renewed(rds: RDSClient) -> None:
    clock = Clock()
    source = _credentials(rds, clock)

    first = source.get()
    clock.now += TOKEN_REUSE_SECONDS - 1
    assert source.get() is first
    clock.now += 1
    renewed = source.get()

    assert renewed is not first
    assert source.tokens == 2


def test_token_is_not_in_the_representation(rds: RDSClient) -> None:
    credentials = _credentials(rds).get()

    assert credentials.password not in repr(credentials)
    assert credentials.password not in str(credentials)


def test_a_ca_bundle_turns_on_certificate_verification(rds: RDSClient) -> None:
    source = IamTokenCredentials(
        rds,
        host=HOST,
        port=5432,
        user=PROCESSOR_DB_USER,
        dbname="dataplatform",
        sslrootcert="/opt/rds-global-bundle.pem",
    )

    kwargs = source.get().connect_kwargs()

    assert (kwargs["sslmode"], kwargs["sslrootcert"]) == (
        "verify-full",
        "/opt/rds-global-bundle.pem",
    )


def test_a_refused_token_is_renewed_once_and_never_logged(
    rds: RDSClient,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # libpq gets the token as the password of the processor's role, over TLS. RDS refusing it
    # (PAM, as RDS reports a bad token) makes the database generate another and try once more.
    attempts: list[dict[str, Any]] = []

    def connect(**kwargs: Any) -> psycopg.Connection[Any]:
        attempts.append(kwargs)
        raise psycopg.OperationalError(
            f'connection to server at "{HOST}", port 5432 failed: FATAL:  PAM authentication '
            f'failed for user "{PROCESSOR_DB_USER}"'
        )

    monkeypatch.setattr(psycopg, "connect", connect)
    clock = Clock()
    source = _credentials(rds, clock)
    database = Database(source)

    with caplog.at_level(logging.DEBUG), pytest.raises(psycopg.OperationalError):
        database.connection()

    assert source.tokens == 2
    assert len(attempts) == 2
    for attempt in attempts:
        assert attempt["user"] == PROCESSOR_DB_USER
        assert attempt["host"] == HOST
        assert attempt["sslmode"] == "require"
        assert "X-Amz-Signature=" in attempt["password"]
        assert attempt["password"].startswith(f"{HOST}:5432/?")
    captured = capsys.readouterr()
    assert "retrying once with renewed credentials" in caplog.text
    for attempt in attempts:
        assert attempt["password"] not in caplog.text + captured.out + captured.err


def test_an_unreachable_server_is_not_retried_with_a_new_token(
    rds: RDSClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A new token for the same address cannot bring a database back: fail at once, SQS retries.
    attempts: list[dict[str, Any]] = []

    def connect(**kwargs: Any) -> psycopg.Connection[Any]:
        attempts.append(kwargs)
        raise psycopg.OperationalError(
            f'connection to server at "{HOST}", port 5432 failed: Connection refused'
        )

    monkeypatch.setattr(psycopg, "connect", connect)

    with pytest.raises(psycopg.OperationalError, match="Connection refused"):
        Database(_credentials(rds)).connection()

    assert len(attempts) == 1

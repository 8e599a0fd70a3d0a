"""The database secret: parsing RDS's JSON, hiding the password, telling auth failures apart."""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest

from etl.database import CredentialsError, DbCredentials, is_auth_failure

PASSWORD = "p@ss:w0rd'\\x"
SECRET: dict[str, Any] = {
    "host": "db.example.internal",
    "port": 5432,
    "username": "processor",
    "password": PASSWORD,
    "dbname": "dataplatform",
}


def test_rds_secret_is_parsed_with_tls_required_by_default() -> None:
    # RDS enforces TLS (rds.force_ssl=1): a secret without sslmode must not try plaintext.
    credentials = DbCredentials.from_secret_string(json.dumps(SECRET))

    assert credentials.connect_kwargs() == {
        "host": "db.example.internal",
        "port": 5432,
        "user": "processor",
        "password": PASSWORD,
        "dbname": "dataplatform",
        "sslmode": "require",
    }


def test_sslmode_and_string_port_from_the_secret_are_honoured() -> None:
    secret = {**SECRET, "port": "6543", "sslmode": "disable"}

    credentials = DbCredentials.from_secret_string(json.dumps(secret))

    assert (credentials.port, credentials.sslmode) == (6543, "disable")


def test_password_is_not_in_the_representation() -> None:
    credentials = DbCredentials.from_secret_string(json.dumps(SECRET))

    assert PASSWORD not in repr(credentials)
    assert PASSWORD not in str(credentials)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not JSON"),
        ("[]", "not a JSON object"),
        (json.dumps({**SECRET, "password": ""}), "lacks password"),
        (json.dumps({"password": PASSWORD}), "lacks host, port, username, dbname"),
        (json.dumps({**SECRET, "port": "fivefour"}), "port is not a number"),
    ],
)
def test_malformed_secret_errors_name_keys_never_values(text: str, message: str) -> None:
    with pytest.raises(CredentialsError, match=message) as raised:
        DbCredentials.from_secret_string(text)

    assert PASSWORD not in str(raised.value)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (
            'connection failed: connection to server at "10.0.0.5", port 5432 failed: FATAL:  '
            'password authentication failed for user "processor"',
            True,
        ),
        ('FATAL:  PAM authentication failed for user "processor"', True),
        (
            'connection failed: connection to server at "10.0.0.5", port 5432 failed: '
            "Connection refused",
            False,
        ),
        ("connection failed: timeout expired", False),
    ],
)
def test_auth_failures_are_told_from_an_unreachable_server(message: str, expected: bool) -> None:
    # libpq reports a failed login before any SQLSTATE exists: the message decides.
    assert is_auth_failure(psycopg.OperationalError(message)) is expected

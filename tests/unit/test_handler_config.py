"""The processor's configuration comes from the environment, and says what is missing."""

from __future__ import annotations

import pytest

from etl import handler as handler_module
from etl.contract import PROCESSOR_DB_USER
from etl.core.settings import CoordinateBounds, EtlSettings
from etl.database import IamTokenCredentials, SecretsManagerCredentials
from etl.handler import ConfigurationError, Runtime, handler

SECRET_ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:x"
IAM_ENVIRONMENT = {
    "DB_SECRET_ARN": SECRET_ARN,
    "DB_AUTH": "iam",
    "DB_HOST": "db.example.internal",
    "DB_PORT": "5432",
    "DB_NAME": "dataplatform",
    "DB_USER": PROCESSOR_DB_USER,
    "AWS_DEFAULT_REGION": "us-east-1",
}


def _environment(monkeypatch: pytest.MonkeyPatch, values: dict[str, str]) -> None:
    for name in ("DB_AUTH", "DB_HOST", "DB_PORT", "DB_NAME", "DB_USER", "DB_PROCESSOR_SECRET_ARN"):
        monkeypatch.delenv(name, raising=False)
    for name, value in values.items():
        monkeypatch.setenv(name, value)


def test_missing_secret_arn_fails_every_invocation_with_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DB_SECRET_ARN", raising=False)
    handler_module.reset_runtime()

    with pytest.raises(ConfigurationError, match="DB_SECRET_ARN is not set: point it at"):
        handler({"Records": []}, None)


def test_thresholds_come_from_etl_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # The stack's thresholds reach the ETL: ETL_SETTINGS is read once per container.
    _environment(monkeypatch, IAM_ENVIRONMENT)
    monkeypatch.setenv(
        "ETL_SETTINGS", '{"max_speed_mph": 90, "coordinate_bounds": {"min_latitude": 40.5}}'
    )
    runtime = Runtime.from_environment()
    assert runtime.settings == EtlSettings(
        max_speed_mph=90, coordinate_bounds=CoordinateBounds(min_latitude=40.5)
    )
    assert runtime.processing_version != Runtime.from_environment(EtlSettings()).processing_version


def test_bad_etl_settings_fail_every_invocation_with_the_key(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _environment(monkeypatch, IAM_ENVIRONMENT)
    monkeypatch.setenv("ETL_SETTINGS", '{"max_speed_mph": -1}')
    handler_module.reset_runtime()

    with pytest.raises(
        ConfigurationError, match=r"^ETL_SETTINGS: max_speed_mph=-1.0 is out of range"
    ):
        handler({"Records": []}, None)


def test_iam_auth_loads_as_the_processor_role_and_migrates_with_the_master_secret(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # The deployed function's environment: loads log in with a token as DB_USER; only the
    # migrate action reads the master secret.
    _environment(monkeypatch, IAM_ENVIRONMENT)

    runtime = Runtime.from_environment()

    assert isinstance(runtime.database.credentials, IamTokenCredentials)
    assert isinstance(runtime.admin.credentials, SecretsManagerCredentials)


def test_password_auth_reads_the_processor_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    # Local runs: the processor role's password comes from its own secret.
    _environment(
        monkeypatch,
        {
            "DB_SECRET_ARN": SECRET_ARN,
            "DB_AUTH": "password",
            "DB_PROCESSOR_SECRET_ARN": SECRET_ARN + "-processor",
            "AWS_DEFAULT_REGION": "us-east-1",
        },
    )

    runtime = Runtime.from_environment()

    assert isinstance(runtime.database.credentials, SecretsManagerCredentials)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"DB_AUTH": ""}, "DB_AUTH is not set: set it to one of iam, password"),
        ({"DB_AUTH": "token"}, "DB_AUTH must be one of iam, password, got 'token'"),
        ({"DB_HOST": ""}, "DB_HOST is not set: with DB_AUTH=iam the stack sets it"),
        ({"DB_PORT": "fivefour"}, "DB_PORT must be a port number, got 'fivefour'"),
        ({"DB_USER": ""}, "DB_USER is not set"),
        ({"DB_AUTH": "password"}, "DB_PROCESSOR_SECRET_ARN is not set: with DB_AUTH=password"),
    ],
)
def test_incomplete_database_settings_fail_with_the_variable(
    monkeypatch: pytest.MonkeyPatch, change: dict[str, str], message: str
) -> None:
    _environment(monkeypatch, {**IAM_ENVIRONMENT, **change})
    handler_module.reset_runtime()

    with pytest.raises(ConfigurationError, match=f"^{message}"):
        handler({"Records": []}, None)

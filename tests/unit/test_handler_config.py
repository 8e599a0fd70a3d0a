"""The processor's configuration comes from the environment, and says what is missing."""

from __future__ import annotations

import pytest

from etl import handler as handler_module
from etl.core.settings import CoordinateBounds, EtlSettings
from etl.handler import ConfigurationError, Runtime, handler


def test_missing_secret_arn_fails_every_invocation_with_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DB_SECRET_ARN", raising=False)
    handler_module.reset_runtime()

    with pytest.raises(ConfigurationError, match="DB_SECRET_ARN is not set: point it at"):
        handler({"Records": []}, None)


def test_thresholds_come_from_etl_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    # The stack's thresholds reach the ETL: ETL_SETTINGS is read once per container.
    monkeypatch.setenv("DB_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:x")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
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
    monkeypatch.setenv("DB_SECRET_ARN", "arn:aws:secretsmanager:us-east-1:123456789012:secret:x")
    monkeypatch.setenv("ETL_SETTINGS", '{"max_speed_mph": -1}')
    handler_module.reset_runtime()

    with pytest.raises(
        ConfigurationError, match=r"^ETL_SETTINGS: max_speed_mph=-1.0 is out of range"
    ):
        handler({"Records": []}, None)

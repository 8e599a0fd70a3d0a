"""The processor's configuration comes from the environment, and says what is missing."""

from __future__ import annotations

import pytest

from etl import handler as handler_module
from etl.handler import ConfigurationError, handler


def test_missing_secret_arn_fails_every_invocation_with_the_fix(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("DB_SECRET_ARN", raising=False)
    handler_module.reset_runtime()

    with pytest.raises(ConfigurationError, match="DB_SECRET_ARN is not set: point it at"):
        handler({"Records": []}, None)

"""Structured logs: one JSON object per line, fields at the top level."""

from __future__ import annotations

import json
import logging

import pytest

from etl import logs


def test_records_are_single_json_lines_with_their_fields(
    capsys: pytest.CaptureFixture[str],
) -> None:
    logger = logs.configure("DEBUG")
    child = logging.getLogger("dataplatform.test")

    child.info("object loaded", extra={"fields": {"key": "raw/a\nb", "rows_clean": 3}})
    try:
        raise ValueError("boom")
    except ValueError:
        child.error("failed", exc_info=True)

    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    first, second = (json.loads(line) for line in lines)
    assert (first["level"], first["logger"], first["message"]) == (
        "INFO",
        "dataplatform.test",
        "object loaded",
    )
    assert (first["key"], first["rows_clean"]) == ("raw/a\nb", 3)
    assert "ValueError: boom" in second["exception"]
    assert logger.propagate is False


def test_configuring_twice_adds_no_second_handler(capsys: pytest.CaptureFixture[str]) -> None:
    logs.configure()
    logs.configure()

    logging.getLogger("dataplatform.test").warning("once")

    assert len(capsys.readouterr().out.splitlines()) == 1


def test_level_comes_from_log_level(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("LOG_LEVEL", "warning")
    logs.configure()

    logging.getLogger("dataplatform.test").info("hidden")
    logging.getLogger("dataplatform.test").warning("shown")

    assert [json.loads(line)["message"] for line in capsys.readouterr().out.splitlines()] == [
        "shown"
    ]

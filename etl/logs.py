"""Structured logs: one JSON object per line on stdout (CloudWatch Logs Insights parses them).

Fields go in `extra={"fields": {...}}`. Nothing here knows about secrets: the rule is that no
caller passes one (credentials are never logged, and their `repr` hides the password).
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from datetime import UTC, datetime
from typing import Any

from etl.contract import LOG_LEVEL_ENV

LOGGER_NAME = "dataplatform"
_CONFIGURED = "_dataplatform_json"


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON line: time, level, logger, message, then its fields."""

    def format(self, record: logging.LogRecord) -> str:
        """The record as a single line of JSON."""
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            payload.update(fields)
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, separators=(",", ":"))


class _StdoutHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever `sys.stdout` is at the time of the call (test capture replaces it)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    def emit(self, record: logging.LogRecord) -> None:
        """Write the record to the current stdout."""
        self.stream = sys.stdout
        super().emit(record)


def configure(level: str | None = None) -> logging.Logger:
    """Set up the `dataplatform` logger once: JSON lines on stdout at `level` (default: the
    `LOG_LEVEL` environment variable, else INFO). Returns the logger."""
    logger = logging.getLogger(LOGGER_NAME)
    if not any(getattr(handler, _CONFIGURED, False) for handler in logger.handlers):
        handler = _StdoutHandler()
        handler.setFormatter(JsonFormatter())
        setattr(handler, _CONFIGURED, True)
        logger.addHandler(handler)
        # The Lambda runtime puts its own handler on the root logger; do not print twice.
        logger.propagate = False
    chosen = (level or os.environ.get(LOG_LEVEL_ENV) or "INFO").upper()
    logger.setLevel(chosen if chosen in logging.getLevelNamesMapping() else "INFO")
    return logger


def ms_since(start: float) -> float:
    """Milliseconds since `start` (a `time.perf_counter()` reading), to 0.1 ms: how durations
    appear in log fields and timings."""
    return round((time.perf_counter() - start) * 1000, 1)

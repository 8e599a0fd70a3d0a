"""The project's own errors: each becomes a single line on stderr and an exit code in the CLI."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

QUARANTINE_ERROR_SUFFIX = ".error.json"
"""The error document written beside a quarantined input: `<name>.error.json`."""
INTERNAL_ERROR = "internal_error"
"""The quarantine code of a content failure no specific rule names (see
`UnprocessableInput.internal`)."""


def first_line(error: BaseException) -> str:
    """An exception's first line of text (its type's name if it has none): enough for one log or
    report field, without a multi-line driver message."""
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


class DataplatformError(Exception):
    """An error a user can act on. The message is one line that says what to do next."""

    exit_code: int = 1


class UsageError(DataplatformError):
    """A command was given arguments it cannot work with."""

    exit_code = 2


class UnprocessableInput(DataplatformError):
    """An input that cannot be processed as a whole (empty, truncated, not a table, a required
    column missing, unknown dataset or month). Callers quarantine it with `code` and `reason`."""

    exit_code = 3

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        """Stable machine-readable cause, e.g. `missing_column`."""
        self.reason = reason
        """One line for people, naming the cause (for a missing column, the column)."""

    @classmethod
    def internal(cls, error: BaseException) -> UnprocessableInput:
        """An unforeseen failure while reading, normalising or validating a file's content. It
        is as deterministic as the content (a retry fails the same way), so the file is
        quarantined like any other unprocessable input, with the error's type and first line."""
        return cls(
            INTERNAL_ERROR,
            f"internal error while processing the file ({type(error).__name__}: "
            f"{first_line(error)}); please report it with the quarantined file",
        )

    def quarantine_document(self, source: str, **details: Any) -> dict[str, Any]:
        """The `.error.json` written beside the quarantined copy of `source`: why it was
        quarantined and when, plus `details` (where it came from)."""
        return {
            "source": source,
            "code": self.code,
            "reason": self.reason,
            "quarantined_at": datetime.now(UTC).isoformat(timespec="seconds"),
            **details,
        }

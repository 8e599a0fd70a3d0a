"""The project's own errors: each becomes a single line on stderr and an exit code in the CLI."""

from __future__ import annotations


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

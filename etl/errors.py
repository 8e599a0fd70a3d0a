"""The project's own errors: each one becomes a single line on stderr and an exit code in the CLI."""

from __future__ import annotations


class DataplatformError(Exception):
    """An error a user can act on. The message is one line that says what to do next."""

    exit_code: int = 1


class UsageError(DataplatformError):
    """A command was given arguments it cannot work with."""

    exit_code = 2

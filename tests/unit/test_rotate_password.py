"""`dataplatform rotate-db-password`: an RDS-valid password reaches `pulumi config set --secret`
on stdin only, never argv or output; a missing or failing Pulumi CLI is one clear line."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from typer.testing import CliRunner

from dataplatform.cli import app
from dataplatform.rotation import FORBIDDEN, generate_password
from etl.core.errors import UsageError

runner = CliRunner()

# Records its argv (one per line) and its stdin, then behaves like `pulumi config set`.
FAKE_PULUMI = """#!/bin/sh
printf '%s\\n' "$@" > "{record}/argv"
cat > "{record}/stdin"
exit {status}
"""


def install_pulumi(directory: Path, monkeypatch: pytest.MonkeyPatch, status: int = 0) -> Path:
    """Put a fake `pulumi` first on PATH; return where it records its argv and stdin."""
    bin_dir, record = directory / "bin", directory / "record"
    bin_dir.mkdir()
    record.mkdir()
    script = bin_dir / "pulumi"
    body = FAKE_PULUMI.format(record=record, status=status)
    if status:
        body = body.replace("exit", "echo 'error: no stack named \"dev\" found' >&2\nexit")
    script.write_text(body)
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return record


def test_password_goes_to_pulumi_on_stdin_and_nowhere_else(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = install_pulumi(tmp_path, monkeypatch)

    result = runner.invoke(app, ["rotate-db-password", "--stack", "dev"])

    assert result.exit_code == 0, result.output
    argv = (record / "argv").read_text().splitlines()
    password = (record / "stdin").read_text()
    assert argv == [
        "config",
        "set",
        "--secret",
        "dbPassword",
        "--stack",
        "dev",
        "--non-interactive",
    ]
    assert len(password) == 40
    assert not FORBIDDEN & set(password)
    assert password not in json.dumps(argv)
    assert password not in result.output
    assert "pulumi preview -s dev" in result.stdout
    assert "pulumi up -s dev" in result.stdout


def test_length_is_honoured_within_rds_limits(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = install_pulumi(tmp_path, monkeypatch)

    assert runner.invoke(app, ["rotate-db-password", "-s", "prod", "--length", "12"]).exit_code == 0
    assert len((record / "stdin").read_text()) == 12
    too_short = runner.invoke(app, ["rotate-db-password", "-s", "prod", "--length", "7"])
    too_long = runner.invoke(app, ["rotate-db-password", "-s", "prod", "--length", "129"])
    assert (too_short.exit_code, too_long.exit_code) == (2, 2)


def test_missing_pulumi_cli_is_one_line_saying_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))

    result = runner.invoke(app, ["rotate-db-password", "--stack", "dev"])

    assert result.exit_code == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "pulumi" in lines[0]
    assert "get.pulumi.com" in lines[0]


def test_pulumi_failure_is_reported_without_the_password(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = install_pulumi(tmp_path, monkeypatch, status=255)

    result = runner.invoke(app, ["rotate-db-password", "--stack", "dev"])

    assert result.exit_code == 1
    assert 'no stack named "dev" found' in result.stderr
    assert (record / "stdin").read_text() not in result.output
    assert "pulumi up" not in result.stdout


@given(st.integers(min_value=8, max_value=128))
def test_generated_passwords_are_what_rds_accepts(length: int) -> None:
    # RDS: 8-128 printable ASCII characters except '/', '@', '"' and space.
    password = generate_password(length)

    assert len(password) == length
    assert all(33 <= ord(char) <= 126 for char in password)
    assert not FORBIDDEN & set(password)


@pytest.mark.parametrize("length", [0, 7, 129])
def test_lengths_rds_refuses_are_refused(length: int) -> None:
    with pytest.raises(UsageError, match="8 to 128"):
        generate_password(length)


def test_passwords_differ_between_calls() -> None:
    assert len({generate_password() for _ in range(20)}) == 20

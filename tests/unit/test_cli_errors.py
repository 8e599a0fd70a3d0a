"""The CLI's one error path: every anticipated failure is one line naming the cause and the next
step, with a non-zero exit; `--debug` or DATAPLATFORM_DEBUG=1 shows the traceback instead."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from dataplatform.cli import app
from dataplatform.demo.samples import YELLOW_2020_07

runner = CliRunner()


def one_line_error(args: list[str], env: dict[str, str] | None = None) -> tuple[int, str]:
    result = runner.invoke(app, args, env=env)
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ")
    return result.exit_code, lines[0]


def test_unusable_output_directory_is_one_line(tmp_path: Path) -> None:
    # `process --out` under /proc (cannot be created) names the path and what to do.
    code, line = one_line_error(["process", str(YELLOW_2020_07), "--out", "/proc/nope"])
    assert code == 1
    assert "/proc/nope" in line
    assert "--out" in line


def test_unwritable_output_directory_is_one_line(tmp_path: Path) -> None:
    # A read-only directory (chmod has no effect on root: a file in the way is used instead).
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, line = one_line_error(["process", str(YELLOW_2020_07), "--out", str(blocker / "out")])
    assert code == 1
    assert str(blocker) in line
    assert "--out" in line


@pytest.mark.parametrize("url", ["mysql://x@y/z", "x@y/z", "http://db:5432/x"])
def test_migrate_refuses_a_non_postgresql_url(url: str) -> None:
    # Before connecting: the scheme is checked, and the line shows the expected shape.
    code, line = one_line_error(["migrate", "--database-url", url])
    assert code == 2
    assert "postgresql://USER@HOST:5432/DBNAME" in line


def test_demo_refuses_a_non_postgresql_url(tmp_path: Path) -> None:
    code, line = one_line_error(
        ["demo", "--database-url", "mysql://x@y/z", "--out", str(tmp_path / "d")]
    )
    assert code == 2
    assert "postgresql://" in line
    assert not (tmp_path / "d").exists()


def test_unreachable_database_is_one_line() -> None:
    # Port 1 refuses connections at once.
    code, line = one_line_error(["migrate", "--database-url", "postgresql://x@127.0.0.1:1/db"])
    assert code == 1
    assert "cannot connect to the database" in line
    assert "--database-url" in line


def test_demo_checks_its_database_before_starting_anything(tmp_path: Path) -> None:
    code, line = one_line_error(
        ["demo", "--database-url", "postgresql://x:y@127.0.0.1:1/db", "--out", str(tmp_path)]
    )
    assert code == 1
    assert "cannot connect to the database" in line


def test_pulumi_cli_missing_is_one_line(tmp_path: Path) -> None:
    code, line = one_line_error(["rotate-db-password", "-s", "dev"], env={"PATH": str(tmp_path)})
    assert code == 1
    assert "Pulumi CLI (`pulumi`) is not on PATH" in line
    assert "get.pulumi.com" in line


def test_debug_flag_and_variable_show_the_traceback() -> None:
    # The same failure, with --debug or DATAPLATFORM_DEBUG=1: the exception itself escapes.
    command = ["process", str(YELLOW_2020_07), "--out", "/proc/nope"]
    for args, env in ((["--debug", *command], {}), (command, {"DATAPLATFORM_DEBUG": "1"})):
        result = runner.invoke(app, args, env=env)
        assert result.exit_code == 1
        assert isinstance(result.exception, FileNotFoundError)


def test_an_unexpected_failure_says_it_is_a_bug(monkeypatch: pytest.MonkeyPatch) -> None:
    # Not anticipated: still one line, but it asks for --debug and a report instead of a fix.
    import etl.migrate

    def broken(url: str) -> None:
        raise KeyError("oops")

    monkeypatch.setattr(etl.migrate, "migrate_url", broken)
    code, line = one_line_error(["migrate", "--database-url", "postgresql://x@h/db"])
    assert code == 1
    assert "unexpected KeyError" in line
    assert "--debug" in line


def test_libpq_keyword_form_is_accepted() -> None:
    # `host=... dbname=...` is a valid libpq connection string: it reaches the connection.
    code, line = one_line_error(["migrate", "--database-url", "host=127.0.0.1 port=1 dbname=x"])
    assert code == 1
    assert "cannot connect to the database" in line

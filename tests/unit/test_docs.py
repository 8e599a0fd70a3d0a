"""The docs a newcomer follows: README sections in the order they are needed, its local commands
run as written (and print what it shows), every other `dataplatform` command in it parses, links
resolve, and the project files a serious repository has are there."""

from __future__ import annotations

import re
import shlex
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dataplatform.cli import app
from tests.repo import ROOT

README = (ROOT / "README.md").read_text()
runner = CliRunner()


def section(title: str) -> str:
    return README.split(f"\n## {title}\n", 1)[1].split("\n## ", 1)[0]


def console_lines(text: str) -> list[str]:
    blocks = re.findall(r"```console\n(.*?)```", text, re.S)
    return [line for block in blocks for line in block.splitlines()]


def dataplatform_commands(lines: list[str]) -> list[list[str]]:
    commands = []
    for line in lines:
        line = line.removeprefix("$ ").split("  #")[0].strip()
        if line.startswith("uv run dataplatform "):
            commands.append(shlex.split(line)[3:])
    return commands


def test_readme_sections_come_in_the_order_a_newcomer_needs() -> None:
    titles = re.findall(r"^## (.+)$", README, re.M)
    assert titles[:6] == [
        "Try it",
        "Clean your files",
        "Deploy",
        "Operate",
        "Look at the data",
        "Develop",
    ], titles


def test_the_local_commands_run_as_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Each `$ command` of "Clean your files" runs in a fresh directory (the sample reached as in
    # a clone) and prints the lines shown under it.
    (tmp_path / "dataplatform").symlink_to(ROOT / "dataplatform")
    monkeypatch.chdir(tmp_path)
    blocks = re.findall(r"```console\n(.*?)```", section("Clean your files"), re.S)
    ran = 0
    for block in blocks:
        lines = block.splitlines()
        for index, line in enumerate(lines):
            if not line.startswith("$ uv run dataplatform "):
                continue
            expected = []
            for follow in lines[index + 1 :]:
                if follow.startswith("$ "):
                    break
                expected.append(follow)
            result = runner.invoke(app, shlex.split(line[2:])[3:])
            assert result.exit_code == 0, (line, result.output)
            assert result.stdout.splitlines() == expected, line
            ran += 1
    assert ran >= 1


def test_every_dataplatform_command_in_the_readme_parses() -> None:
    # Options misspelt in the README fail here: --help is eager, an unknown option is not.
    commands = dataplatform_commands(console_lines(README))
    assert len(commands) >= 8
    for command in commands:
        result = runner.invoke(app, [*command, "--help"])
        assert result.exit_code == 0, (command, result.output)
    for option in ("--version", "--install-completion"):
        assert f"dataplatform {option}" in README


MARKDOWN = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]


@pytest.mark.parametrize("document", MARKDOWN, ids=lambda path: str(path.relative_to(ROOT)))
def test_relative_links_resolve(document: Path) -> None:
    text = re.sub(r"```.*?```", "", document.read_text(), flags=re.S)
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (document.parent / target).exists(), f"{document.name}: {target}"


def test_license_changelog_and_python_version() -> None:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    license_text = (ROOT / "LICENSE").read_text()
    assert pyproject["license"] == "Apache-2.0"
    assert "Apache License" in license_text
    assert "Version 2.0, January 2004" in license_text
    assert "END OF TERMS AND CONDITIONS" in license_text
    assert f"## [{pyproject['version']}]" in (ROOT / "CHANGELOG.md").read_text()
    major, minor = (ROOT / ".python-version").read_text().strip().split(".")[:2]
    assert (int(major), int(minor)) >= (3, 11)  # requires-python = ">=3.11"


def test_coming_from_terraform_covers_each_habit() -> None:
    text = (ROOT / "docs" / "coming-from-terraform.md").read_text()
    for habit in (
        "modules/",
        "environments/",
        ".tfvars",
        "TF_VAR_db_password",
        "terraform plan -out",
        "terraform apply",
        "dynamodb_table",
        "CloudFormation",
        "drift",
        "pulumi refresh",
        "--save-plan",
        "pulumi login s3://",
    ):
        assert habit in text, habit


def test_recovery_runbook_uses_backfill() -> None:
    text = (ROOT / "docs" / "runbooks" / "recovery.md").read_text()
    assert "dataplatform backfill -s dev" in text
    assert "--dry-run" in text


def test_etl_docs_are_split_into_rules_and_performance() -> None:
    rules = (ROOT / "docs" / "etl.md").read_text()
    performance = (ROOT / "docs" / "performance.md").read_text()
    assert "## Rules, in the order they are checked" in rules
    assert "## Performance" not in rules
    assert "benchmarks/etl_benchmark.py" in performance

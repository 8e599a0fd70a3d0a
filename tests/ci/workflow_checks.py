"""Pure checks over GitHub Actions workflows, shared by the workflow tests.

Each check takes a parsed workflow (or its text) and returns what it found wrong, so that the
tests can assert both that the real workflows are clean and that a regressed copy is caught.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOWS = ROOT / ".github" / "workflows"

Workflow = dict[str, Any]
Step = Mapping[str, Any]

USES_LINE = re.compile(r"^\s*(?:-\s+)?uses:\s*(?P<ref>\S+)(?P<comment>.*)$")
PINNED = re.compile(r"^[\w.-]+/[\w.-]+(?:/[\w./-]+)?@(?P<sha>[0-9a-f]{40})$")
VERSION_COMMENT = re.compile(r"^\s+#\s+(?P<version>v\d+\.\d+\.\d+)\s*$")
EXPRESSION = re.compile(r"\$\{\{")
# Long-lived AWS keys in any spelling a workflow could use them.
STATIC_KEY_MARKERS = (
    "aws-access-key-id",
    "aws-secret-access-key",
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws-session-token",
)


def load(path: Path) -> Workflow:
    """A workflow file parsed by PyYAML, with YAML 1.1's `on: -> True` key put back as "on"."""
    document = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert isinstance(document, dict), f"{path.name} is not a mapping"
    if True in document:
        document["on"] = document.pop(True)
    return document


def workflow_files() -> list[Path]:
    """Every workflow of the repository."""
    return sorted([*WORKFLOWS.glob("*.yml"), *WORKFLOWS.glob("*.yaml")])


def triggers(workflow: Workflow) -> dict[str, Any]:
    """The `on:` block as a mapping of event to its filter (None when unfiltered)."""
    on = workflow.get("on")
    if isinstance(on, str):
        return {on: None}
    if isinstance(on, list):
        return dict.fromkeys(on)
    assert isinstance(on, dict), "a workflow without triggers"
    return on


def jobs(workflow: Workflow) -> dict[str, dict[str, Any]]:
    """The workflow's jobs by id."""
    found = workflow.get("jobs")
    assert isinstance(found, dict)
    return found


def steps(job: Mapping[str, Any]) -> list[Step]:
    """A job's steps (empty for a reusable-workflow call)."""
    return list(job.get("steps") or [])


def action_of(step: Step) -> str | None:
    """`owner/repo` of the action a step uses, without the ref; None for a `run:` step."""
    uses = step.get("uses")
    return str(uses).split("@", 1)[0] if uses else None


def steps_using(job: Mapping[str, Any], action: str) -> list[Step]:
    """The job's steps that use `action` (`owner/repo`)."""
    return [step for step in steps(job) if action_of(step) == action]


def all_steps(workflow: Workflow) -> Iterator[tuple[str, Step]]:
    """(job id, step) for every step of every job."""
    for job_id, job in jobs(workflow).items():
        for step in steps(job):
            yield job_id, step


def unpinned_uses(text: str) -> list[str]:
    """`uses:` lines not pinned to a full commit SHA followed by a `# vX.Y.Z` comment."""
    found = []
    for number, line in enumerate(text.splitlines(), start=1):
        match = USES_LINE.match(line)
        if match is None:
            continue
        ref = match["ref"].strip("'\"")
        if ref.startswith("./"):
            continue  # a local action is the repository's own code at this commit
        if not PINNED.match(ref) or not VERSION_COMMENT.match(match["comment"]):
            found.append(f"line {number}: {line.strip()}")
    return found


def pins(text: str) -> dict[str, set[tuple[str, str]]]:
    """Action to the (sha, version comment) pairs it is pinned to in a workflow's text."""
    found: dict[str, set[tuple[str, str]]] = {}
    for line in text.splitlines():
        match = USES_LINE.match(line)
        if match is None:
            continue
        pinned = PINNED.match(match["ref"])
        version = VERSION_COMMENT.match(match["comment"])
        if pinned and version:
            action = match["ref"].split("@", 1)[0]
            found.setdefault(action, set()).add((pinned["sha"], version["version"]))
    return found


def template_injections(workflow: Workflow) -> list[str]:
    """`run:` scripts that expand `${{ }}` themselves instead of reading an env variable."""
    return [
        f"{job_id}: {step.get('name') or step['run'][:40]!r}"
        for job_id, step in all_steps(workflow)
        if "run" in step and EXPRESSION.search(str(step["run"]))
    ]


def write_scopes(permissions: Any) -> set[str]:
    """The scopes a `permissions:` value grants write on (`write-all` counts as every scope)."""
    if permissions in ("write-all",):
        return {"*"}
    if permissions in (None, "read-all", {}):
        return set()
    assert isinstance(permissions, dict), f"unexpected permissions {permissions!r}"
    return {scope for scope, level in permissions.items() if level == "write"}


def job_write_scopes(workflow: Workflow) -> dict[str, set[str]]:
    """Job id to the scopes it may write, for the jobs that may write anything.

    A job without its own `permissions:` inherits the workflow's, so it is reported with those.
    """
    inherited = workflow.get("permissions")
    return {
        job_id: scopes
        for job_id, job in jobs(workflow).items()
        if (scopes := write_scopes(job.get("permissions", inherited)))
    }


def checkouts_persisting_credentials(workflow: Workflow) -> list[str]:
    """Checkout steps that leave the token in .git/config for later steps to find."""
    return [
        job_id
        for job_id, step in all_steps(workflow)
        if action_of(step) == "actions/checkout"
        and (step.get("with") or {}).get("persist-credentials") is not False
    ]


def static_key_mentions(text: str) -> list[str]:
    """Lines that mention long-lived AWS access keys."""
    return [
        line.strip()
        for line in text.splitlines()
        if any(marker in line.lower() for marker in STATIC_KEY_MARKERS)
    ]


def cancellable_updates(workflow: Workflow) -> list[str]:
    """Jobs that run `pulumi up`/`destroy`/`refresh` outside a non-cancelling concurrency group."""
    updating = {"up", "update", "destroy", "refresh"}
    workflow_level = workflow.get("concurrency")
    found = []
    for job_id, job in jobs(workflow).items():
        commands = {
            str((step.get("with") or {}).get("command"))
            for step in steps_using(job, "pulumi/actions")
        }
        if not commands & updating:
            continue
        concurrency = job.get("concurrency")
        if not isinstance(concurrency, dict) or concurrency.get("cancel-in-progress") is not False:
            found.append(f"{job_id}: no concurrency group with cancel-in-progress: false")
        if (
            isinstance(workflow_level, dict)
            and workflow_level.get("cancel-in-progress") is not False
        ):
            found.append(f"{job_id}: the workflow's concurrency may cancel it")
    return found


def runs_when_needs_failed(job: Mapping[str, Any]) -> bool:
    """Whether a job with `needs:` still runs when one of them failed.

    Without a status function in its `if:`, GitHub adds `success()`: the job is skipped as soon
    as a job it needs fails. `always()` or `!cancelled()` lift that (the latter not on cancel).
    """
    condition = str(job.get("if", ""))
    return "always()" in condition or "!cancelled()" in condition


def steps_skipped_after_failure(job: Mapping[str, Any], names: set[str]) -> list[str]:
    """Steps among `names` that a failure earlier in the job would skip (their `if` demands it)."""
    found = []
    for step in steps(job):
        if step.get("name") not in names:
            continue
        condition = str(step.get("if", ""))
        if "success()" in condition or "failure()" in condition:
            found.append(str(step["name"]))
    return found


def bundle_builders(workflow: Workflow) -> list[str]:
    """Jobs that build the processor bundle (run `dataplatform bundle`)."""
    return sorted(
        {
            job_id
            for job_id, step in all_steps(workflow)
            if "dataplatform bundle" in str(step.get("run", ""))
        }
    )


def is_daily(cron: str) -> bool:
    """Whether a cron expression fires once a day, every day."""
    fields = cron.split()
    return (
        len(fields) == 5
        and fields[0].isdigit()
        and fields[1].isdigit()
        and fields[2:] == ["*", "*", "*"]
    )

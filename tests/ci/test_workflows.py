"""The workflows' security and behaviour contract (docs/ci-cd.md), asserted on the real files.

Every rule is checked on the real workflows and, where the check is a function, also on a
regressed copy, so a test cannot pass by checking nothing.
"""

from __future__ import annotations

import copy
import re
import tomllib
from typing import Any

import pytest

from tests.ci.workflow_checks import (
    ROOT,
    Workflow,
    action_of,
    all_steps,
    cancellable_updates,
    checkouts_persisting_credentials,
    job_write_scopes,
    jobs,
    load,
    pins,
    static_key_mentions,
    steps,
    steps_using,
    template_injections,
    triggers,
    unpinned_uses,
    workflow_files,
)

WORKFLOWS = {path.name: load(path) for path in workflow_files()}
TEXTS = {path.name: path.read_text(encoding="utf-8") for path in workflow_files()}
STACKS = ["dev", "prod"]

# The inputs of pulumi/actions v7.0.0, read from action.yml at the pinned commit
# (8e5e406f4007fca908480587cb9893c07090f58d). An input that is not there is silently ignored by
# the action, so a typo would disable, say, the PR comment without any error.
PULUMI_ACTION_INPUTS = frozenset(
    {
        "command", "stack-name", "pulumi-version", "pulumi-version-file", "work-dir",
        "comment-on-pr", "comment-on-pr-number", "comment-on-summary", "github-token",
        "cloud-url", "secrets-provider", "parallel", "message", "config-map",
        "expect-no-changes", "diff", "replace", "exclude", "exclude-dependents", "target",
        "target-dependents", "policyPacks", "policyPackConfigs", "refresh", "upsert", "remove",
        "edit-pr-comment", "color", "exclude-protected", "plan", "suppress-outputs",
        "suppress-progress", "always-include-summary", "continue-on-error", "log-verbosity",
        "log-flow", "debug",
    }
)  # fmt: skip


def pulumi_steps(workflow_name: str) -> list[tuple[str, dict[str, Any]]]:
    """(job id, inputs) of every pulumi/actions step of a workflow."""
    return [
        (job_id, dict(step.get("with") or {}))
        for job_id, step in all_steps(WORKFLOWS[workflow_name])
        if action_of(step) == "pulumi/actions"
    ]


def run_scripts(workflow_name: str) -> str:
    """Every `run:` script of a workflow, joined."""
    return "\n".join(
        str(step["run"]) for _, step in all_steps(WORKFLOWS[workflow_name]) if "run" in step
    )


def test_the_three_workflows_exist() -> None:
    assert {"ci.yml", "preview.yml", "deploy.yml"} <= set(WORKFLOWS)


# --- triggers --------------------------------------------------------------------------------


def test_ci_runs_on_pull_requests_and_pushes_to_main() -> None:
    on = triggers(WORKFLOWS["ci.yml"])
    assert set(on) == {"pull_request", "push"}
    assert on["push"]["branches"] == ["main"]


def test_preview_runs_on_pull_requests_only() -> None:
    assert set(triggers(WORKFLOWS["preview.yml"])) == {"pull_request"}


def test_deploy_runs_on_pushes_to_main_only() -> None:
    on = triggers(WORKFLOWS["deploy.yml"])
    assert set(on) == {"push"}
    assert on["push"] == {"branches": ["main"]}


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_no_privileged_pull_request_triggers(name: str) -> None:
    # pull_request_target and workflow_run run fork code with the base repository's secrets.
    assert not {"pull_request_target", "workflow_run"} & set(triggers(WORKFLOWS[name]))
    assert "pull_request_target" not in TEXTS[name]


# --- permissions -----------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_top_level_permissions_grant_nothing_writable(name: str) -> None:
    permissions = WORKFLOWS[name].get("permissions", "missing")
    assert permissions == {} or permissions == {"contents": "read"}, permissions


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_every_job_declares_its_own_permissions(name: str) -> None:
    assert [job for job, spec in jobs(WORKFLOWS[name]).items() if "permissions" not in spec] == []


def test_only_the_pulumi_jobs_may_write_and_only_what_they_need() -> None:
    granted = {
        (name, job_id): scopes
        for name, workflow in WORKFLOWS.items()
        for job_id, scopes in job_write_scopes(workflow).items()
    }
    assert granted == {
        ("preview.yml", "preview"): {"id-token", "pull-requests"},
        ("deploy.yml", "dev"): {"id-token"},
        ("deploy.yml", "prod"): {"id-token"},
    }


def test_a_job_inheriting_write_permissions_is_reported() -> None:
    regressed = copy.deepcopy(WORKFLOWS["ci.yml"])
    regressed["permissions"] = "write-all"
    del regressed["jobs"]["test"]["permissions"]
    assert job_write_scopes(regressed) == {"test": {"*"}}


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_oidc_tokens_only_where_aws_credentials_are_configured(name: str) -> None:
    for job_id, job in jobs(WORKFLOWS[name]).items():
        uses_oidc = bool(steps_using(job, "aws-actions/configure-aws-credentials"))
        grants = (job.get("permissions") or {}).get("id-token") == "write"
        assert uses_oidc == grants, f"{name}:{job_id}"


# --- pinning and supply chain ----------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_every_action_is_pinned_to_a_commit_with_its_version(name: str) -> None:
    assert unpinned_uses(TEXTS[name]) == []
    assert any(action_of(step) for _, step in all_steps(WORKFLOWS[name]))


@pytest.mark.parametrize(
    "line",
    [
        "      - uses: actions/checkout@v7",
        "      - uses: actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1",
        "      - uses: actions/checkout@3d3c42e5 # v7.0.1",
        "      - uses: actions/checkout@main # v7.0.1",
    ],
)
def test_an_unpinned_or_uncommented_action_is_reported(line: str) -> None:
    assert unpinned_uses(f"steps:\n{line}\n") != []


def test_each_action_has_one_pin_and_one_version_across_workflows() -> None:
    merged: dict[str, set[tuple[str, str]]] = {}
    for text in TEXTS.values():
        for action, pairs in pins(text).items():
            merged.setdefault(action, set()).update(pairs)
    assert {action: len(pairs) for action, pairs in merged.items()} == dict.fromkeys(merged, 1)
    assert merged["pulumi/actions"] == {("8e5e406f4007fca908480587cb9893c07090f58d", "v7.0.0")}


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_checkouts_do_not_persist_the_token(name: str) -> None:
    assert checkouts_persisting_credentials(WORKFLOWS[name]) == []


def test_a_checkout_keeping_its_token_is_reported() -> None:
    regressed = copy.deepcopy(WORKFLOWS["ci.yml"])
    del regressed["jobs"]["test"]["steps"][0]["with"]["persist-credentials"]
    assert checkouts_persisting_credentials(regressed) == ["test"]


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_no_expression_is_expanded_inside_a_script(name: str) -> None:
    assert template_injections(WORKFLOWS[name]) == []


def test_an_expression_in_a_script_is_reported() -> None:
    regressed = copy.deepcopy(WORKFLOWS["preview.yml"])
    regressed["jobs"]["route"]["steps"][0]["run"] = (
        'echo "${{ github.event.pull_request.head.ref }}"'
    )
    assert len(template_injections(regressed)) == 1


@pytest.mark.parametrize("name", sorted(WORKFLOWS))
def test_no_long_lived_aws_keys_anywhere(name: str) -> None:
    assert static_key_mentions(TEXTS[name]) == []


def test_a_static_key_is_reported() -> None:
    assert static_key_mentions("env:\n  AWS_SECRET_ACCESS_KEY: ${{ secrets.KEY }}\n") != []


def test_uv_is_the_same_pinned_version_everywhere() -> None:
    versions = {workflow["env"]["UV_VERSION"] for workflow in WORKFLOWS.values()}
    assert len(versions) == 1
    assert re.fullmatch(r"\d+\.\d+\.\d+", versions.pop())
    for name, workflow in WORKFLOWS.items():
        for job_id, step in all_steps(workflow):
            if action_of(step) == "astral-sh/setup-uv":
                assert step["with"]["version"] == "${{ env.UV_VERSION }}", f"{name}:{job_id}"


def test_the_pulumi_cli_version_matches_the_locked_sdk() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    sdk = next(package["version"] for package in lock["package"] if package["name"] == "pulumi")
    assert (ROOT / ".pulumi-version").read_text(encoding="utf-8").strip() == sdk
    for _, inputs in [*pulumi_steps("preview.yml"), *pulumi_steps("deploy.yml")]:
        assert inputs["pulumi-version-file"] == ".pulumi-version"


# --- ci.yml ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command",
    [
        "uv sync --frozen",
        "uv run ruff check .",
        "uv run ruff format --check .",
        "uv run mypy",
        "uv run pytest --cov",
        "uv run dataplatform bundle --out build/lambda",
        "uv run python .ci/bundle_size_gate.py build/lambda/processor.zip",
        "uv run zizmor",
        "uv run check-jsonschema --builtin-schema vendor.github-workflows",
        ".ci/actionlint.sh",
        'uv run dataplatform synth --stack "$STACK"',
    ],
)
def test_ci_runs_every_gate(command: str) -> None:
    assert command in run_scripts("ci.yml")


def test_ci_synthesises_both_stacks() -> None:
    assert jobs(WORKFLOWS["ci.yml"])["synth"]["strategy"]["matrix"]["stack"] == STACKS


# --- preview.yml -------------------------------------------------------------------------------


def test_preview_runs_once_per_stack() -> None:
    job = jobs(WORKFLOWS["preview.yml"])["preview"]
    assert job["strategy"]["matrix"]["stack"] == STACKS
    [(_, inputs)] = pulumi_steps("preview.yml")
    assert inputs["stack-name"] == "${{ matrix.stack }}"


def test_preview_posts_one_edited_comment_per_stack_with_diff_and_policies() -> None:
    [(job_id, inputs)] = pulumi_steps("preview.yml")
    assert job_id == "preview"
    assert set(inputs) <= PULUMI_ACTION_INPUTS
    assert inputs["command"] == "preview"
    for flag in ("comment-on-pr", "edit-pr-comment", "always-include-summary", "diff"):
        assert inputs[flag] is True, flag
    assert inputs["policyPacks"] == "policy"
    assert inputs["cloud-url"] == "${{ vars.PULUMI_BACKEND_URL }}"


def test_preview_assumes_the_read_only_role_from_a_variable() -> None:
    job = jobs(WORKFLOWS["preview.yml"])["preview"]
    [credentials] = steps_using(job, "aws-actions/configure-aws-credentials")
    assert credentials["with"] == {
        "role-to-assume": "${{ vars.AWS_PREVIEW_ROLE_ARN }}",
        "aws-region": "${{ vars.AWS_REGION }}",
    }
    # No environment: the OIDC subject stays `...:pull_request`, which is all the preview role
    # trusts; an environment would turn it into a deploy role's subject.
    assert "environment" not in job


def test_preview_gets_no_secret() -> None:
    # Pull request workflows run the pull request's code; no repository secret reaches them.
    assert "secrets." not in TEXTS["preview.yml"]


def test_fork_pull_requests_are_routed_to_the_offline_synth_diff() -> None:
    preview_jobs = jobs(WORKFLOWS["preview.yml"])
    route = preview_jobs["route"]
    [step] = steps(route)
    assert step["env"]["HEAD_REPO"] == "${{ github.event.pull_request.head.repo.full_name }}"
    assert step["env"]["BASE_REPO"] == "${{ github.repository }}"
    assert '[ "$HEAD_REPO" != "$BASE_REPO" ]' in step["run"]
    assert route["permissions"] == {}
    assert preview_jobs["preview"]["if"] == "needs.route.outputs.mode == 'preview'"
    synth = preview_jobs["synth-diff"]
    assert synth["if"] == "needs.route.outputs.mode == 'synth'"
    assert synth["permissions"] == {"contents": "read"}
    commands = "\n".join(str(s.get("run", "")) for s in steps(synth))
    assert "synth-both.sh base head" in commands
    assert '--summary "$GITHUB_STEP_SUMMARY"' in commands


def test_the_synth_diff_compares_the_base_commit_with_the_pull_request() -> None:
    checkouts = steps_using(jobs(WORKFLOWS["preview.yml"])["synth-diff"], "actions/checkout")
    assert [c["with"].get("ref") for c in checkouts] == [
        "${{ github.event.pull_request.base.sha }}",
        None,  # the default: the pull request merged into the base
    ]
    assert [c["with"]["path"] for c in checkouts] == ["base", "head"]


# --- deploy.yml --------------------------------------------------------------------------------


def test_deploy_goes_through_dev_then_prod_environments() -> None:
    deploy = jobs(WORKFLOWS["deploy.yml"])
    assert deploy["dev"]["environment"] == "dev"
    assert deploy["prod"]["environment"] == "prod"
    assert deploy["prod"]["needs"] == "dev"
    assert {job: inputs["stack-name"] for job, inputs in pulumi_steps("deploy.yml")} == {
        "dev": "dev",
        "prod": "prod",
    }


def test_deploy_runs_pulumi_up_with_the_policy_pack() -> None:
    for _, inputs in pulumi_steps("deploy.yml"):
        assert set(inputs) <= PULUMI_ACTION_INPUTS
        assert inputs["command"] == "up"
        assert inputs["policyPacks"] == "policy"
        assert inputs["cloud-url"] == "${{ vars.PULUMI_BACKEND_URL }}"


def test_deploy_roles_come_from_environment_variables() -> None:
    for job_id in ("dev", "prod"):
        [credentials] = steps_using(
            jobs(WORKFLOWS["deploy.yml"])[job_id], "aws-actions/configure-aws-credentials"
        )
        assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_DEPLOY_ROLE_ARN }}"


def test_each_stack_deploys_in_its_own_never_cancelled_group() -> None:
    deploy = jobs(WORKFLOWS["deploy.yml"])
    for stack in STACKS:
        assert deploy[stack]["concurrency"] == {
            "group": f"pulumi-{stack}",
            "cancel-in-progress": False,
        }
    for name, workflow in WORKFLOWS.items():
        assert cancellable_updates(workflow) == [], name


def test_a_cancellable_update_is_reported() -> None:
    regressed: Workflow = copy.deepcopy(WORKFLOWS["deploy.yml"])
    regressed["jobs"]["prod"]["concurrency"]["cancel-in-progress"] = True
    regressed["concurrency"] = {"group": "deploy", "cancel-in-progress": True}
    assert len(cancellable_updates(regressed)) == 3


def test_prod_deploys_the_bundle_dev_deployed() -> None:
    deploy = jobs(WORKFLOWS["deploy.yml"])
    for job_id in ("dev", "prod"):
        [download] = steps_using(deploy[job_id], "actions/download-artifact")
        assert download["with"] == {"name": "processor-bundle", "path": "build/lambda"}
    [upload] = steps_using(deploy["bundle"], "actions/upload-artifact")
    assert upload["with"]["name"] == "processor-bundle"


def test_pulumi_yaml_defaults_the_bundle_to_where_workflows_put_it() -> None:
    project = (ROOT / "Pulumi.yaml").read_text(encoding="utf-8")
    assert "default: build/lambda/processor.zip" in project
    assert "build/lambda/processor.zip" in run_scripts("deploy.yml")


def test_the_docs_list_every_pin_the_workflows_use() -> None:
    docs = (ROOT / "docs" / "ci-cd.md").read_text(encoding="utf-8")
    for text in TEXTS.values():
        for action, pairs in pins(text).items():
            for sha, version in pairs:
                assert f"| {action} | {version} | `{sha}` |" in docs, action

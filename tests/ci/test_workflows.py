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
    bundle_builders,
    cancellable_updates,
    checkouts_persisting_credentials,
    is_daily,
    job_write_scopes,
    jobs,
    load,
    pins,
    runs_when_needs_failed,
    static_key_mentions,
    steps,
    steps_skipped_after_failure,
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


def test_the_four_workflows_exist() -> None:
    assert {"ci.yml", "preview.yml", "deploy.yml", "drift.yml"} <= set(WORKFLOWS)


# --- triggers --------------------------------------------------------------------------------


def test_ci_runs_on_pull_requests_and_pushes_to_main() -> None:
    on = triggers(WORKFLOWS["ci.yml"])
    assert set(on) == {"pull_request", "push"}
    assert on["push"]["branches"] == ["main"]


def test_preview_runs_on_pull_requests_only_and_again_when_labels_change() -> None:
    on = triggers(WORKFLOWS["preview.yml"])
    assert set(on) == {"pull_request"}
    assert set(on["pull_request"]["types"]) == {
        "opened",
        "synchronize",
        "reopened",
        "labeled",
        "unlabeled",
    }


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
        # The jobs that hold AWS credentials write nothing on GitHub; the jobs that write on
        # GitHub hold no AWS credentials.
        ("preview.yml", "preview"): {"id-token"},
        ("preview.yml", "review"): {"pull-requests"},
        ("deploy.yml", "dev"): {"id-token"},
        ("deploy.yml", "prod"): {"id-token"},
        ("drift.yml", "check"): {"id-token"},
        ("drift.yml", "report"): {"issues"},
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
    every = [*pulumi_steps("preview.yml"), *pulumi_steps("deploy.yml"), *pulumi_steps("drift.yml")]
    assert len(every) == 4
    for _, inputs in every:
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

PREVIEW_SCRIPT = (ROOT / ".ci" / "preview.sh").read_text(encoding="utf-8")


def test_preview_runs_pulumi_preview_json_itself_once_per_stack() -> None:
    job = jobs(WORKFLOWS["preview.yml"])["preview"]
    assert job["strategy"]["matrix"]["stack"] == STACKS
    assert job["env"]["STACK"] == "${{ matrix.stack }}"
    [(_, inputs)] = pulumi_steps("preview.yml")
    # The action only installs the CLI (no command): it would comment only on success.
    assert inputs == {"pulumi-version-file": ".pulumi-version"}
    [run] = [s for s in steps(job) if ".ci/preview.sh" in str(s.get("run", ""))]
    assert run["run"] == '.ci/preview.sh "$STACK" "build/review/$STACK"'
    assert run["env"] == {"PULUMI_BACKEND_URL": "${{ vars.PULUMI_BACKEND_URL }}"}
    for flag in ("--json", "--event-log", "--policy-pack policy", "--non-interactive"):
        assert flag in PREVIEW_SCRIPT, flag


def test_each_stack_uploads_its_preview_even_when_it_failed() -> None:
    job = jobs(WORKFLOWS["preview.yml"])["preview"]
    [upload] = steps_using(job, "actions/upload-artifact")
    assert upload["if"] == "${{ !cancelled() }}"
    assert upload["with"]["name"] == "preview-${{ matrix.stack }}"
    names = [str(s.get("name") or s.get("uses")) for s in steps(job)]
    assert names.index("upload what the preview left, passed or failed") == len(names) - 1
    redact = steps(job)[-2]
    assert redact["run"] == 'python3 .ci/review.py redact "build/review/$STACK"'
    assert redact["if"] == "${{ !cancelled() }}"
    # The bundle's line (sha256, sizes) is saved where the review reads it.
    assert any(
        'dataplatform bundle --out build/lambda > "build/review/$STACK/bundle.json"'
        in str(s.get("run"))
        for s in steps(job)
    )


def test_the_review_comment_is_updated_when_a_preview_fails() -> None:
    review = jobs(WORKFLOWS["preview.yml"])["review"]
    assert set(review["needs"]) == {"route", "preview", "synth-diff"}
    assert runs_when_needs_failed(review)
    rendering = {
        "render the review",
        "post or update the review comment",
        "upload the whole report and the raw previews",
    }
    assert steps_skipped_after_failure(review, rendering) == []
    names = [s.get("name") for s in steps(review)]
    # The job fails only after the comment is posted.
    assert names[-1] == "fail when a stack failed, or prod loses data without the label"
    assert names.index("post or update the review comment") < len(names) - 1
    scripts = {s.get("name"): str(s.get("run", "")) for s in steps(review)}
    assert "python3 .ci/review.py render" in scripts["render the review"]
    assert (
        'python3 .ci/sticky.py comment --repo "$REPO" --pr "$PR" --body build/report/comment.md'
        in scripts["post or update the review comment"]
    )
    assert "python3 .ci/review.py check build/report/verdict.json" in scripts[names[-1]]
    # Even a renderer crash replaces the last comment with a red one.
    fallback = next(s for s in steps(review) if "could not be rendered" in str(s.get("name")))
    assert fallback["if"].startswith("failure() && steps.render.outcome == 'failure'")
    assert "<!-- dataplatform-preview -->" in fallback["run"]


def test_a_review_that_waits_for_green_previews_is_caught() -> None:
    regressed = copy.deepcopy(WORKFLOWS["preview.yml"])
    review = regressed["jobs"]["review"]
    review["if"] = "needs.route.result == 'success'"
    assert not runs_when_needs_failed(review)
    post = next(s for s in review["steps"] if s.get("name") == "post or update the review comment")
    assert steps_skipped_after_failure(review, {post["name"]}) == []
    post["if"] = "success() && needs.route.outputs.comment == 'true'"
    assert steps_skipped_after_failure(review, {post["name"]}) == [post["name"]]


def test_no_step_comments_on_its_own_and_only_the_review_may() -> None:
    for name in WORKFLOWS:
        for _, inputs in pulumi_steps(name):
            assert not {"comment-on-pr", "edit-pr-comment"} & set(inputs), name
    granted = job_write_scopes(WORKFLOWS["preview.yml"])
    assert [job for job, scopes in granted.items() if "pull-requests" in scopes] == ["review"]
    review = jobs(WORKFLOWS["preview.yml"])["review"]
    assert not steps_using(review, "aws-actions/configure-aws-credentials")
    assert review["env"]["GH_TOKEN"] == "${{ github.token }}"


def test_the_review_reads_the_labels_at_run_time() -> None:
    review = jobs(WORKFLOWS["preview.yml"])["review"]
    scripts = "\n".join(str(s.get("run", "")) for s in steps(review))
    assert (
        'python3 .ci/sticky.py labels --repo "$REPO" --pr "$PR" --out build/labels.txt' in scripts
    )
    assert "--labels-file build/labels.txt" in scripts


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
    assert "comment=false" in step["run"]
    assert route["permissions"] == {}
    assert preview_jobs["preview"]["if"] == "needs.route.outputs.mode == 'preview'"
    synth = preview_jobs["synth-diff"]
    assert synth["if"] == "needs.route.outputs.mode == 'synth'"
    assert synth["permissions"] == {"contents": "read"}
    commands = "\n".join(str(s.get("run", "")) for s in steps(synth))
    assert "synth-both.sh base head" in commands
    # The same review renders the manifests, into the job summary; a fork gets no comment.
    review = preview_jobs["review"]
    render = next(s for s in steps(review) if s.get("name") == "render the review")
    assert "input=(--synth build/synth)" in render["run"]
    assert '>> "$GITHUB_STEP_SUMMARY"' in render["run"]
    post = next(s for s in steps(review) if s.get("name") == "post or update the review comment")
    assert post["if"] == "needs.route.outputs.comment == 'true'"


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
    assert deploy["prod"]["needs"] == ["bundle", "dev"]
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


def test_the_bundle_is_built_once_per_commit_and_checked_everywhere() -> None:
    deploy = jobs(WORKFLOWS["deploy.yml"])
    assert bundle_builders(WORKFLOWS["deploy.yml"]) == ["bundle"]
    assert deploy["bundle"]["concurrency"]["group"] == "deploy-bundle-${{ github.sha }}"
    assert deploy["bundle"]["outputs"]["sha256"] == "${{ steps.digest.outputs.sha256 }}"
    for job_id in ("dev", "prod"):
        assert "bundle" in ([deploy[job_id]["needs"]] if isinstance(deploy[job_id]["needs"], str)
                            else deploy[job_id]["needs"])  # fmt: skip
        names = [s.get("name") or s.get("uses") for s in steps(deploy[job_id])]
        check = "the downloaded bundle is the one built and checked for this commit"
        verify = next(s for s in steps(deploy[job_id]) if s.get("name") == check)
        assert verify["env"] == {"SHA256": "${{ needs.bundle.outputs.sha256 }}"}
        assert "sha256sum --check --strict" in verify["run"]
        pulumi = next(i for i, n in enumerate(names) if str(n).startswith("pulumi/actions"))
        assert names.index(check) < pulumi


def test_a_bundle_rebuilt_in_a_deploy_job_is_caught() -> None:
    regressed = copy.deepcopy(WORKFLOWS["deploy.yml"])
    regressed["jobs"]["prod"]["steps"].insert(0, {"run": "uv run dataplatform bundle"})
    assert bundle_builders(regressed) == ["bundle", "prod"]


def test_deploy_refuses_a_bundle_the_merged_pr_did_not_preview() -> None:
    job = jobs(WORKFLOWS["deploy.yml"])["bundle"]
    names = [s.get("name") or s.get("uses") for s in steps(job)]
    check = "the bundle is the one the merged PR's preview reported"
    step = next(s for s in steps(job) if s.get("name") == check)
    assert "python3 .ci/sticky.py check-bundle" in step["run"]
    assert '--sha "$SHA"' in step["run"]
    assert step["env"]["SHA"] == "${{ github.sha }}"
    upload = next(i for i, n in enumerate(names) if str(n).startswith("actions/upload-artifact"))
    assert names.index(check) < upload  # no artifact, so no deploy, unless it passed
    assert job["permissions"] == {"contents": "read", "pull-requests": "read"}


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


# --- drift.yml -----------------------------------------------------------------------------------


def test_drift_runs_daily_and_on_demand_only() -> None:
    on = triggers(WORKFLOWS["drift.yml"])
    assert set(on) == {"schedule", "workflow_dispatch"}
    [schedule] = on["schedule"]
    assert is_daily(schedule["cron"])


@pytest.mark.parametrize(
    ("cron", "daily"),
    [("23 5 * * *", True), ("0 * * * *", False), ("0 5 * * 1", False), ("0 5 1 * *", False)],
)
def test_is_daily(cron: str, daily: bool) -> None:
    assert is_daily(cron) is daily


def test_drift_checks_each_stack_read_only() -> None:
    drift = jobs(WORKFLOWS["drift.yml"])
    check = drift["check"]
    assert check["strategy"]["matrix"]["stack"] == STACKS
    assert check["permissions"] == {"contents": "read", "id-token": "write"}
    [credentials] = steps_using(check, "aws-actions/configure-aws-credentials")
    assert credentials["with"]["role-to-assume"] == "${{ vars.AWS_PREVIEW_ROLE_ARN }}"
    assert check["environment"] == "drift"  # the subject the preview role trusts besides PRs
    [(_, inputs)] = pulumi_steps("drift.yml")
    assert inputs == {"pulumi-version-file": ".pulumi-version"}  # installs the CLI, nothing else
    [run] = [s for s in steps(check) if ".ci/preview.sh" in str(s.get("run", ""))]
    assert run["run"] == (
        '.ci/preview.sh "$STACK" "build/drift/$STACK" --refresh --expect-no-changes '
        '--exclude "$CONNECTION_VALUE" --exclude "$BUNDLE_OBJECT"'
    )
    text = TEXTS["drift.yml"]
    assert "secrets." not in text
    assert "AWS_DEPLOY_ROLE_ARN" not in text
    assert not re.search(r"pulumi (up|refresh|destroy|import)\b", text + PREVIEW_SCRIPT)


def test_drift_issues_are_written_by_a_job_without_aws() -> None:
    report = jobs(WORKFLOWS["drift.yml"])["report"]
    assert report["permissions"] == {"contents": "read", "issues": "write"}
    assert not steps_using(report, "aws-actions/configure-aws-credentials")
    assert runs_when_needs_failed(report)  # drift makes the check red; the issue still follows
    scripts = "\n".join(str(s.get("run", "")) for s in steps(report))
    assert "python3 .ci/review.py render --kind drift" in scripts
    assert 'python3 .ci/sticky.py drift-issue --repo "$REPO" --stack "$STACK"' in scripts

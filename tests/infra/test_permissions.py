"""Permission coverage: the bootstrap's roles allow every call the provider makes for the stacks.

bootstrap/permissions.toml lists, per resource type, the IAM actions the provider calls on
create, read, update, delete and tagging and the ARN each applies to, with its source. Every row
is rendered for every resource the stack program registers under the mocks and evaluated against
the deploy role's policy (and the stack's key policies, for its keys) with dataplatform/iam.py;
the read rows against the preview role's too. A type or invoke without a row fails here.
"""

from __future__ import annotations

from collections.abc import Callable

import platform_bootstrap as bootstrap
import pytest

from components.kms import deploy_role_name
from dataplatform.iam import Decision
from dataplatform.mocks import ACCOUNT_ID, ProgramRun, run_program
from dataplatform.permissions import Need, decide, key_policies, load_table, needs
from tests.infra.support import PROJECT, ROOT, STACKS, region

TABLE, SOURCES = load_table()
STATE_BUCKET = "arn:aws:s3:::dataplatform-pulumi-state-0a1b2c3d"
STATE_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/00000000-0000-4000-8000-000000000001"
SECRETS_KEY = f"arn:aws:kms:us-east-1:{ACCOUNT_ID}:key/00000000-0000-4000-8000-000000000002"


@pytest.fixture(scope="module")
def bootstrap_run() -> ProgramRun:
    """The bootstrap program's run (the types it creates need rows too)."""
    return run_program(
        ROOT / "bootstrap" / "__main__.py",
        project="dataplatform-bootstrap",
        stack="bootstrap",
        config={
            "aws:region": "us-east-1",
            "dataplatform-bootstrap:githubOwner": "acme",
            "dataplatform-bootstrap:githubRepo": "dataplatform",
        },
    )


def deploy_role_needs(run: ProgramRun) -> list[Need]:
    role = deploy_role_name(PROJECT, run.stack)
    principal = f"arn:aws:iam::{ACCOUNT_ID}:role/{role}"
    return list(
        needs(run, TABLE, principal=principal, region=region(run.stack), account=ACCOUNT_ID)
    )


def test_every_row_cites_a_known_source() -> None:
    # Rule: a row says where its actions come from: the provider's source or AWS's reference.
    for row in TABLE:
        for source in row.source:
            name = source.split(":", 1)[0] if source.startswith("tf:") else source
            assert name in SOURCES or source.startswith("https://"), (row.type, source)
        assert all(":" in action for action in row.actions), row


@pytest.mark.parametrize("stack", STACKS)
def test_every_resource_type_and_invoke_of_the_stack_has_rows(
    runs: Callable[[str], ProgramRun], stack: str
) -> None:
    # Rule: a new resource type (or data source) cannot be deployed without its permissions.
    run = runs(stack)
    covered = {row.type for row in TABLE}
    used = {r.type for r in run.resources if r.custom} | set(run.invokes)
    assert sorted(used - covered) == []


def test_every_resource_type_of_the_bootstrap_has_rows(bootstrap_run: ProgramRun) -> None:
    covered = {row.type for row in TABLE}
    used = {r.type for r in bootstrap_run.resources if r.custom} | set(bootstrap_run.invokes)
    assert sorted(used - covered) == []


def test_the_check_fails_for_a_type_without_rows(runs: Callable[[str], ProgramRun]) -> None:
    # The coverage rule above is not vacuous: dropping one type's rows is noticed.
    run = runs("dev")
    covered = {row.type for row in TABLE if row.type != "aws:sqs/queue:Queue"}
    used = {r.type for r in run.resources if r.custom}
    assert used - covered == {"aws:sqs/queue:Queue"}


def stack_deploy_policy(stack: str) -> str:
    """The bootstrap's deploy-role policy for `stack`, in the test account and state bucket."""
    return bootstrap.deploy_policy(
        account=ACCOUNT_ID,
        region=region(stack),
        project=PROJECT,
        stack=stack,
        bucket_arn=STATE_BUCKET,
        state_key_arn=STATE_KEY,
        secrets_key_arn=SECRETS_KEY,
        replica_region="us-west-2",
    )


@pytest.mark.parametrize("stack", STACKS)
def test_the_deploy_role_may_make_every_call_of_its_stack(
    runs: Callable[[str], ProgramRun], stack: str
) -> None:
    # Rule: the first `pulumi up` through CI's role meets no AccessDenied, including the calls
    # right after a key is created, before its tags count (they must not depend on them).
    run = runs(stack)
    policy = stack_deploy_policy(stack)
    keys = key_policies(run, ACCOUNT_ID)
    found = deploy_role_needs(run)
    assert len(found) > 300, len(found)
    denied = sorted({n.describe() for n in found if decide(n, policy, keys) is not Decision.ALLOW})
    assert denied == []


@pytest.mark.parametrize("stack", STACKS)
def test_the_deploy_role_of_one_stack_may_not_touch_the_other(
    runs: Callable[[str], ProgramRun], stack: str
) -> None:
    # Rule: the table's requests are specific enough to tell the stacks apart.
    other = next(s for s in STACKS if s != stack)
    run = runs(other)
    policy = stack_deploy_policy(stack)
    keys = key_policies(run, ACCOUNT_ID)
    principal = f"arn:aws:iam::{ACCOUNT_ID}:role/{deploy_role_name(PROJECT, stack)}"
    found = list(needs(run, TABLE, principal=principal, region=region(other), account=ACCOUNT_ID))
    allowed = {n.request.action for n in found if decide(n, policy, keys) is Decision.ALLOW}
    for action in ("s3:PutBucketPolicy", "lambda:UpdateFunctionCode", "kms:PutKeyPolicy"):
        assert action not in allowed, action


@pytest.mark.parametrize("stack", STACKS)
def test_the_preview_role_may_read_every_resource_of_the_stack(
    runs: Callable[[str], ProgramRun], stack: str
) -> None:
    # Rule: `pulumi preview --refresh` of a pull request reads every resource's metadata, and
    # nothing the table marks as data (secret values, objects).
    run = runs(stack)
    policy = bootstrap.preview_policy(
        account=ACCOUNT_ID,
        region=region(stack),
        project=PROJECT,
        bucket_arn=STATE_BUCKET,
        state_key_arn=STATE_KEY,
        secrets_key_arn=SECRETS_KEY,
        replica_region="us-west-2",
    )
    keys = key_policies(run, ACCOUNT_ID)
    principal = f"arn:aws:iam::{ACCOUNT_ID}:role/{PROJECT}-github-preview"
    found = list(needs(run, TABLE, principal=principal, region=region(stack), account=ACCOUNT_ID))
    reads = [n for n in found if n.permission.operation == "read" and n.permission.preview]
    data = [n for n in found if n.permission.operation == "read" and not n.permission.preview]
    assert reads
    assert data
    denied = sorted({n.describe() for n in reads if decide(n, policy, keys) is not Decision.ALLOW})
    assert denied == []
    leaked = sorted({n.describe() for n in data if decide(n, policy, keys) is Decision.ALLOW})
    assert leaked == []


def test_the_table_is_the_one_the_docs_point_to() -> None:
    assert (ROOT / "bootstrap" / "permissions.toml").is_file()
    assert "bootstrap/permissions.toml" in (ROOT / "docs" / "ci-cd.md").read_text()


def test_the_table_covers_every_operation_of_the_stateful_types() -> None:
    # The stateful resources are the ones a missing update or delete permission would strand.
    for type_ in ("aws:s3/bucket:Bucket", "aws:rds/instance:Instance", "aws:kms/key:Key"):
        operations = {row.operation for row in TABLE if row.type == type_}
        assert operations == {"create", "read", "update", "delete", "tag"} - (
            {"update"} if type_ == "aws:s3/bucket:Bucket" else set()
        ), type_

"""What only a real first `pulumi up` would otherwise reveal (issue 12), pinned under the mocks:
zones chosen by ID, the poller leaving room for the migration, the migration re-run for a new
database and waiting for the network, prod's stateful resources protected, keys that do not
depend on their own tags."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from components.kms import deploy_role_name
from components.network import LAMBDA_UNSUPPORTED_ZONE_IDS, choose_zone_ids
from dataplatform.iam import Decision, Request, evaluate_kms
from dataplatform.mocks import ACCOUNT_ID, ProgramRun, RecordingMocks
from tests.infra.support import PROJECT, inputs, region, run_stack, setting_int

STATEFUL = {
    "aws:s3/bucket:Bucket": "lake-bucket",
    "aws:rds/instance:Instance": "database-instance",
    "aws:kms/key:Key": None,
    "aws:secretsmanager/secret:Secret": "database-secret",
}


def test_zones_are_chosen_by_id_and_never_one_lambda_lacks(bundle: Path) -> None:
    # Rule: in an account where us-east-1a is use1-az3 (about one in three), the subnets must
    # not land there: Lambda cannot place the function's interfaces in use1-az3.
    mocks = RecordingMocks(
        zones=[("us-east-1a", "use1-az3"), ("us-east-1b", "use1-az1"), ("us-east-1c", "use1-az2")]
    )
    run = run_stack("dev", bundle, mocks)
    subnets = [inputs(s) for s in run.by_type("aws:ec2/subnet:Subnet")]
    assert sorted(s["availabilityZoneId"] for s in subnets) == ["use1-az1", "use1-az2"]
    assert all("availabilityZone" not in s for s in subnets), subnets


def test_zone_choice_is_by_id_order_and_refuses_too_few() -> None:
    assert choose_zone_ids(["use1-az6", "use1-az3", "use1-az1", "use1-az2"]) == [
        "use1-az1",
        "use1-az2",
    ]
    assert "use1-az3" in LAMBDA_UNSUPPORTED_ZONE_IDS
    with pytest.raises(ValueError, match="Lambda supports"):
        choose_zone_ids(["use1-az3", "use1-az1"])


def test_the_poller_leaves_an_execution_for_the_migration(stack_run: ProgramRun) -> None:
    # Rule: the mapping's maximum concurrency is at least 2 (SQS's minimum) and below the
    # reservation, so neither the poller nor a deploy-time migration is throttled by the other.
    reserved = setting_int(stack_run.stack, "processorReservedConcurrency")
    function = inputs(stack_run.one("aws:lambda/function:Function"))
    assert function["reservedConcurrentExecutions"] == reserved
    mapping = inputs(stack_run.one("aws:lambda/eventSourceMapping:EventSourceMapping"))
    maximum = mapping["scalingConfig"]["maximumConcurrency"]
    assert 2 <= maximum < reserved, (maximum, reserved)


def test_the_migration_reruns_for_a_new_database_instance(stack_run: ProgramRun) -> None:
    # Rule: the trigger is the instance's DbiResourceId, which a re-created instance changes;
    # the endpoint address survives a re-create under the same identifier.
    instance = stack_run.one("aws:rds/instance:Instance")
    invocation = inputs(stack_run.one("aws:lambda/invocation:Invocation"))
    assert invocation["triggers"]["database"] == instance.outputs["resourceId"]
    assert instance.outputs["address"] not in json.dumps(invocation["triggers"])


def test_a_database_replacement_deletes_the_old_instance_first(stack_run: ProgramRun) -> None:
    # Rule: the identifier is fixed, so create-before-delete could never succeed.
    instance = stack_run.one("aws:rds/instance:Instance")
    assert instance.options["deleteBeforeReplace"] is True, instance.urn


def test_the_migration_waits_for_the_network_paths_it_uses(stack_run: ProgramRun) -> None:
    # Rule: the migrate invocation reads its secret through the Secrets Manager endpoint over
    # the 443 rules; it must not race them.
    invocation = stack_run.one("aws:lambda/invocation:Invocation")
    names = {urn.rsplit("::", 1)[-1] for urn in invocation.dependencies}
    assert {
        "network-secretsmanager-endpoint",
        "network-s3-endpoint",
        "network-endpoints-from-processor",
        "network-processor-to-endpoints",
        "network-processor-to-s3",
        "database-instance",
    } <= names, sorted(names)


@pytest.mark.parametrize(("type_", "name"), STATEFUL.items())
def test_prod_protects_and_retains_what_holds_data(
    prod_run: ProgramRun, type_: str, name: str | None
) -> None:
    # Rule: in prod Pulumi refuses to delete or replace these, and a destroy leaves them.
    found = [r for r in prod_run.by_type(type_) if name in (None, r.name)]
    assert found
    for resource in found:
        assert resource.options["protect"] is True, resource.urn
        assert resource.options["retainOnDelete"] is True, resource.urn


@pytest.mark.parametrize(("type_", "name"), STATEFUL.items())
def test_dev_stays_disposable(dev_run: ProgramRun, type_: str, name: str | None) -> None:
    for resource in (r for r in dev_run.by_type(type_) if name in (None, r.name)):
        assert resource.options["protect"] is False, resource.urn
        assert resource.options["retainOnDelete"] is False, resource.urn


def test_every_key_admits_the_stack_deploy_role_by_its_own_policy(stack_run: ProgramRun) -> None:
    # Rule: right after CreateKey, with no tag in effect and no IAM statement for it, the deploy
    # role may enable rotation and read the key back; another stack's role may not.
    role = deploy_role_name(PROJECT, stack_run.stack)
    other = deploy_role_name(PROJECT, "prod" if stack_run.stack == "dev" else "dev")
    for key in stack_run.by_type("aws:kms/key:Key"):
        policy = inputs(key)["policy"]
        arn = key.outputs["arn"]
        for principal, expected in ((role, Decision.ALLOW), (other, Decision.IMPLICIT_DENY)):
            request = Request(
                "kms:EnableKeyRotation",
                arn,
                f"arn:aws:iam::{ACCOUNT_ID}:role/{principal}",
                {"kms:CallerAccount": ACCOUNT_ID, "aws:RequestedRegion": region(stack_run.stack)},
            )
            assert evaluate_kms(policy, [], request) is expected, (key.urn, principal)


def test_the_deploy_role_uses_a_key_only_through_the_platforms_services(
    stack_run: ProgramRun,
) -> None:
    # Rule: the deploy role may decrypt through S3 (the code fetch), never by calling KMS itself.
    principal = f"arn:aws:iam::{ACCOUNT_ID}:role/{deploy_role_name(PROJECT, stack_run.stack)}"
    base = {"kms:CallerAccount": ACCOUNT_ID}
    for key in stack_run.by_type("aws:kms/key:Key"):
        policy = inputs(key)["policy"]
        arn = key.outputs["arn"]
        key_region = arn.split(":")[3]
        via_s3 = {**base, "kms:ViaService": f"s3.{key_region}.amazonaws.com"}
        # The log key is CloudWatch Logs' alone: the deploy role never encrypts log data.
        expected = Decision.IMPLICIT_DENY if key.name == "logs-key" else Decision.ALLOW
        assert evaluate_kms(policy, [], Request("kms:Decrypt", arn, principal, via_s3)) is (
            expected
        ), key.urn
        assert evaluate_kms(policy, [], Request("kms:Decrypt", arn, principal, base)) is (
            Decision.IMPLICIT_DENY
        ), key.urn

"""The program's shape: its components, their children, and what it may call."""

from __future__ import annotations

from pathlib import Path

from dataplatform.mocks import ProgramRun, run_program

COMPONENTS = {
    "dataplatform:index:Network": "network",
    "dataplatform:index:DataLake": "lake",
    "dataplatform:index:Database": "database",
    "dataplatform:index:Processor": "processor",
    "dataplatform:index:Catalog": "catalog",
    "dataplatform:index:DatabaseAccess": "access",
    "dataplatform:index:LogKey": "logs",
}
NESTED = {
    # The lake's guards, children of the DataLake; prod alone has a replica (dev by design not).
    "dev": {"dataplatform:index:AccessLogBucket": "lake-access-logs"},
    "prod": {
        "dataplatform:index:AccessLogBucket": "lake-access-logs",
        "dataplatform:index:BucketReplica": "lake-replica",
    },
}
ALLOWED_INVOKES = {
    "aws:index/getCallerIdentity:getCallerIdentity",
    "aws:index/getRegion:getRegion",
    "aws:index/getPartition:getPartition",
    "aws:index/getAvailabilityZones:getAvailabilityZones",
    "aws:ssm/getParameter:getParameter",
}


def test_seven_components_with_project_type_tokens(stack_run: ProgramRun) -> None:
    # Rule: the program is composed of exactly seven dataplatform:index components, and the
    # lake of its access-log bucket (and in prod its replica).
    found = {r.type: r.name for r in stack_run.resources if not r.custom and r.parent is None}
    assert found == COMPONENTS, found
    nested = {r.type: r.name for r in stack_run.resources if not r.custom and r.parent}
    assert nested == NESTED[stack_run.stack], nested


def test_every_cloud_resource_is_parented_to_its_component(stack_run: ProgramRun) -> None:
    # Rule: children are created with parent=self and named "<component>-<role>".
    components = {r.urn: r.name for r in stack_run.resources if not r.custom}
    strays = [
        r.urn
        for r in stack_run.resources
        if r.custom
        and (r.parent not in components or not r.name.startswith(f"{components[r.parent]}-"))
    ]
    assert strays == [], strays


def test_no_deprecated_resource_or_argument_is_used(stack_run: ProgramRun) -> None:
    # Rule: pulumi-aws logs a warning for every deprecated class or input; there must be none.
    assert stack_run.warnings == [], stack_run.warnings


def test_only_the_usual_invokes_are_called(stack_run: ProgramRun) -> None:
    # Rule: no data sources beyond identity, region, partition, AZs and the jump host's AMI
    # parameter (no get_policy_document).
    assert set(stack_run.invokes) <= ALLOWED_INVOKES, stack_run.invokes


def test_the_deprecation_detector_sees_a_deprecated_resource(tmp_path: Path) -> None:
    # Rule: the warnings check above can fail - a BucketV2 (deprecated in pulumi-aws 7) is seen.
    program = tmp_path / "__main__.py"
    program.write_text('import pulumi_aws as aws\naws.s3.BucketV2("old")\n')
    run = run_program(program, project="probe", stack="probe", config={})
    assert any("BucketV2 is deprecated" in warning for warning in run.warnings), run.warnings


def test_exports_are_what_users_need(stack_run: ProgramRun) -> None:
    # Rule: the stack exports bucket, queues, function, database endpoint and secret ARN, and
    # where analysts query (Glue database, Athena workgroup, analyst role).
    assert sorted(stack_run.exports) == [
        "analystRoleArn",
        "athenaWorkgroup",
        "bucketName",
        "databaseEndpoint",
        "databaseName",
        "databaseSecretArn",
        "databaseUsername",
        "dbTunnelEndpointId",
        "dbTunnelInstanceId",
        "deadLetterQueueUrl",
        "functionName",
        "glueDatabase",
        "queueUrl",
    ], sorted(stack_run.exports)


def test_every_kms_key_rotates(stack_run: ProgramRun) -> None:
    # Rule: customer-managed keys rotate yearly (lake, database, logs; prod: the replica's).
    keys = stack_run.by_type("aws:kms/key:Key")
    expected = {"lake-key", "database-key", "logs-key"}
    if stack_run.stack == "prod":
        expected.add("lake-replica-key")
    assert {key.name for key in keys} == expected, [k.urn for k in keys]
    unrotated = [key.urn for key in keys if key.inputs.get("enableKeyRotation") is not True]
    assert unrotated == [], unrotated

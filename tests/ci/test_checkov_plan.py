"""The Terraform plan `.ci/checkov.py` hands checkov: types, names and references as Terraform's."""

from __future__ import annotations

from dataplatform import checkov_scan as scan
from dataplatform.mocks import ProgramRun, RecordedResource


def resource(
    type_: str,
    name: str,
    inputs: dict[str, object],
    outputs: dict[str, object],
    deps: tuple[str, ...] = (),
) -> RecordedResource:
    return RecordedResource(
        urn=f"urn:{name}",
        type=type_,
        name=name,
        parent=None,
        custom=True,
        inputs=inputs,
        outputs=outputs,
        dependencies=deps,
    )


def test_types_follow_terraform_names_including_the_exceptions() -> None:
    # Checkov knows resources by their Terraform type, which Pulumi's token spells differently.
    assert (
        scan.terraform_type("aws:s3/bucketVersioning:BucketVersioning")
        == "aws_s3_bucket_versioning"
    )
    assert scan.terraform_type("aws:ec2/vpc:Vpc") == "aws_vpc"
    assert scan.terraform_type("aws:rds/instance:Instance") == "aws_db_instance"
    assert scan.terraform_type("random:index/randomId:RandomId") is None


def test_values_are_snake_case_with_repeated_blocks_singular_and_tags_untouched() -> None:
    values = scan.terraform_values(
        {
            "rules": [{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "aws:kms"}}],
            "subnetIds": ["a"],
            "tags": {"ManagedBy": "pulumi"},
        }
    )
    assert values == {
        "rule": [{"apply_server_side_encryption_by_default": {"sse_algorithm": "aws:kms"}}],
        "subnet_ids": ["a"],
        "tags": {"ManagedBy": "pulumi"},
    }


def test_an_input_holding_a_dependency_id_references_it() -> None:
    # Graph checks (a VPC's flow log) join resources through configuration references.
    vpc = resource("aws:ec2/vpc:Vpc", "net-vpc", {"cidrBlock": "10.0.0.0/16"}, {"id": "vpc-1234"})
    flow = resource(
        "aws:ec2/flowLog:FlowLog",
        "net-flow",
        {"vpcId": "vpc-1234", "trafficType": "ALL"},
        {},
        deps=(vpc.urn,),
    )
    plan = scan.terraform_plan(ProgramRun(stack="dev", resources=[vpc, flow], exports={}))
    [_, config] = plan["configuration"]["root_module"]["resources"]
    assert config["expressions"] == {
        "vpc_id": {"references": ["aws_vpc.net_vpc.id", "aws_vpc.net_vpc"]}
    }
    assert [r["address"] for r in plan["planned_values"]["root_module"]["resources"]] == [
        "aws_vpc.net_vpc",
        "aws_flow_log.net_flow",
    ]


def test_accepted_failures_are_per_stack_and_per_resource() -> None:
    # Dev's by-design gaps are dev's only; a guard's exemption does not cover the lake itself.
    assert scan.accepted_reason("dev", "CKV_AWS_144", "aws_s3_bucket.lake_bucket")
    assert scan.accepted_reason("prod", "CKV_AWS_144", "aws_s3_bucket.lake_bucket") is None
    assert scan.accepted_reason("prod", "CKV_AWS_145", "aws_s3_bucket.lake_access_logs_bucket")
    assert scan.accepted_reason("prod", "CKV_AWS_145", "aws_s3_bucket.lake_bucket") is None

"""Issue 13's controls, as both stacks register them (checkov ids in each rule's comment)."""

from __future__ import annotations

import json
from fnmatch import fnmatchcase

from dataplatform.mocks import ProgramRun, RecordedResource
from tests.infra.support import inputs, policy_document, region, setting, setting_int, statements

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
BUCKET = "aws:s3/bucket:Bucket"
REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"


def _arn(run: ProgramRun, type_: str, name: str) -> str:
    return str(run.one(type_, name).outputs["arn"])


def _function(run: ProgramRun) -> dict[str, object]:
    return inputs(run.one("aws:lambda/function:Function", "processor-function"))


def _trust(role: RecordedResource) -> dict[str, object]:
    [statement] = json.loads(inputs(role)["assumeRolePolicy"])["Statement"]
    assert isinstance(statement, dict)
    return statement


def test_the_vpc_logs_all_flows_to_an_encrypted_group(stack_run: ProgramRun) -> None:
    # Rule: CKV2_AWS_11 - a flow log of ALL traffic, to the stack's encrypted log group, through
    # a role only VPC Flow Logs of this account may assume.
    vpc = stack_run.one("aws:ec2/vpc:Vpc")
    flow = inputs(stack_run.one("aws:ec2/flowLog:FlowLog"))
    group = stack_run.one(LOG_GROUP, "network-flow-logs")
    assert (flow["vpcId"], flow["trafficType"]) == (vpc.outputs["id"], "ALL"), flow
    assert flow["logDestination"] == group.outputs["arn"], flow
    role = stack_run.one("aws:iam/role:Role", "network-flow-logs-role")
    assert flow["iamRoleArn"] == role.outputs["arn"], flow
    trust = _trust(role)
    assert trust["Principal"] == {"Service": "vpc-flow-logs.amazonaws.com"}, role.urn
    assert "aws:SourceAccount" in json.dumps(trust["Condition"]), role.urn
    grants = statements(
        policy_document(stack_run.one("aws:iam/rolePolicy:RolePolicy", "network-flow-logs-policy"))
    )
    assert all(group.outputs["arn"] in r for s in grants for r in s["Resource"]), grants


def test_every_log_group_is_encrypted_with_the_log_key(stack_run: ProgramRun) -> None:
    # Rule: CKV_AWS_158 - every log group under the customer-managed log key.
    key = _arn(stack_run, "aws:kms/key:Key", "logs-key")
    groups = stack_run.by_type(LOG_GROUP)
    assert len(groups) == 4, [g.name for g in groups]
    assert {g.name: inputs(g).get("kmsKeyId") for g in groups} == {g.name: key for g in groups}


def test_the_log_key_admits_cloudwatch_logs_for_these_groups_only(stack_run: ProgramRun) -> None:
    # Rule: CKV_AWS_158/CKV2_AWS_64 - logs.<region> may use the key only with the encryption
    # context of one of the stack's log groups; nobody else may use it directly.
    key = stack_run.one("aws:kms/key:Key", "logs-key")
    found = {s["Sid"]: s for s in policy_document(key)["Statement"]}
    logs = found["CloudWatchLogsEncryptsStackLogGroups"]
    assert logs["Principal"] == {"Service": f"logs.{region(stack_run.stack)}.amazonaws.com"}
    patterns = logs["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    for group in stack_run.by_type(LOG_GROUP):
        assert any(fnmatchcase(group.outputs["arn"], p) for p in patterns), group.urn
    assert not fnmatchcase("arn:aws:logs:us-east-1:123456789012:log-group:/other", patterns[0])
    assert set(found) == {
        "AccountAdministersThroughIam",
        "DeployRoleManagesKey",
        "CloudWatchLogsEncryptsStackLogGroups",
    }, sorted(found)


def test_the_lake_logs_its_requests_to_a_dedicated_bucket(stack_run: ProgramRun) -> None:
    # Rule: CKV_AWS_18 - server access logs of the lake to a private, versioned, SSE-S3 bucket
    # that only S3's logging service (for the lake, in this account) may write to.
    lake = stack_run.one(BUCKET, "lake-bucket")
    logs = stack_run.one(BUCKET, "lake-access-logs-bucket")
    logging = inputs(stack_run.one("aws:s3/bucketLogging:BucketLogging", "lake-logging"))
    assert (logging["bucket"], logging["targetBucket"]) == (
        lake.outputs["bucket"],
        logs.outputs["bucket"],
    ), logging
    encryption = inputs(
        stack_run.one(
            "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
            "lake-access-logs-encryption",
        )
    )
    assert encryption["rules"][0]["applyServerSideEncryptionByDefault"] == {
        "sseAlgorithm": "AES256"
    }
    versioning = inputs(
        stack_run.one("aws:s3/bucketVersioning:BucketVersioning", "lake-access-logs-versioning")
    )
    assert versioning["versioningConfiguration"] == {"status": "Enabled"}
    block = inputs(
        stack_run.one(
            "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
            "lake-access-logs-public-access",
        )
    )
    assert all(block[flag] is True for flag in ("blockPublicAcls", "restrictPublicBuckets"))
    policy = {
        s["Sid"]: s
        for s in policy_document(
            stack_run.one("aws:s3/bucketPolicy:BucketPolicy", "lake-access-logs-policy")
        )["Statement"]
    }
    delivery = policy["S3ServerAccessLogsDelivery"]
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Condition"]["ArnLike"]["aws:SourceArn"] == [lake.outputs["arn"]]
    assert "DenyInsecureTransport" in policy


def test_the_database_has_enhanced_monitoring(stack_run: ProgramRun) -> None:
    # Rule: CKV_AWS_118 - enhanced monitoring at the configured interval, through a role only
    # RDS monitoring may assume, carrying AWS's enhanced-monitoring policy alone.
    instance = inputs(stack_run.one("aws:rds/instance:Instance"))
    role = stack_run.one("aws:iam/role:Role", "database-monitoring-role")
    assert instance["monitoringInterval"] == setting_int(
        stack_run.stack, "dbMonitoringIntervalSeconds"
    )
    assert instance["monitoringRoleArn"] == role.outputs["arn"]
    assert _trust(role)["Principal"] == {"Service": "monitoring.rds.amazonaws.com"}
    attachment = inputs(
        stack_run.one(
            "aws:iam/rolePolicyAttachment:RolePolicyAttachment", "database-monitoring-policy"
        )
    )
    assert attachment["policyArn"].endswith(":policy/service-role/AmazonRDSEnhancedMonitoringRole")
    assert attachment["role"] == role.outputs["name"]


def test_the_parameter_group_logs_ddl_slow_statements_and_connections(
    stack_run: ProgramRun,
) -> None:
    # Rule: the query logging checkov cannot see: DDL, statements over the threshold, sessions.
    group = inputs(stack_run.one("aws:rds/parameterGroup:ParameterGroup"))
    values = {p["name"]: p["value"] for p in group["parameters"]}
    assert values["log_statement"] == "ddl", values
    assert values["log_min_duration_statement"] == setting(stack_run.stack, "dbLogMinDurationMs")
    assert values["log_connections"] == values["log_disconnections"] == "1", values


def test_the_function_is_traced_and_its_environment_under_the_database_key(
    stack_run: ProgramRun,
) -> None:
    # Rule: CKV_AWS_50 X-Ray active tracing; CKV_AWS_173 the environment under a CMK.
    function = _function(stack_run)
    assert function["tracingConfig"] == {"mode": "Active"}, function
    assert function["kmsKeyArn"] == _arn(stack_run, "aws:kms/key:Key", "database-key")


def test_the_function_runs_only_code_signed_by_its_profile(stack_run: ProgramRun) -> None:
    # Rule: CKV_AWS_272 - a code-signing config naming the stack's Signer profile; prod
    # refuses unsigned code (Enforce), dev deploys it with a warning (Warn).
    function = _function(stack_run)
    config = stack_run.one("aws:lambda/codeSigningConfig:CodeSigningConfig")
    profile = stack_run.one("aws:signer/signingProfile:SigningProfile")
    assert function["codeSigningConfigArn"] == config.outputs["arn"]
    values = inputs(config)
    assert values["allowedPublishers"] == {
        "signingProfileVersionArns": [profile.outputs["versionArn"]]
    }
    expected = "Enforce" if stack_run.stack == "prod" else "Warn"
    assert values["policies"] == {"untrustedArtifactOnDeployment": expected}
    assert inputs(profile)["platformId"] == "AWSLambda-SHA384-ECDSA"


def test_prod_replicates_raw_to_the_replica_region(prod_run: ProgramRun) -> None:
    # Rule: CKV_AWS_144 - raw/ replicated to a bucket in replicaRegion, under a key there,
    # deletes not replicated; the role reads raw/ and writes the replica only.
    replica_region = setting("prod", "replicaRegion")
    assert replica_region != region("prod")
    replica = prod_run.one(BUCKET, "lake-replica-bucket")
    key = prod_run.one("aws:kms/key:Key", "lake-replica-key")
    assert inputs(replica)["region"] == inputs(key)["region"] == replica_region
    config = inputs(prod_run.one(REPLICATION, "lake-replica-replication"))
    [rule] = config["rules"]
    assert rule["status"] == "Enabled", rule
    assert rule["filter"] == {"prefix": "raw/"}, rule
    assert rule["deleteMarkerReplication"] == {"status": "Disabled"}, rule
    assert rule["destination"]["bucket"] == replica.outputs["arn"], rule
    assert rule["destination"]["encryptionConfiguration"] == {"replicaKmsKeyId": key.outputs["arn"]}
    lake = prod_run.one(BUCKET, "lake-bucket").outputs["arn"]
    grants = statements(
        policy_document(prod_run.one("aws:iam/rolePolicy:RolePolicy", "lake-replica-role-policy"))
    )
    reads = next(s for s in grants if s["Sid"] == "ReadSourceVersions")
    writes = next(s for s in grants if s["Sid"] == "WriteReplicas")
    assert reads["Resource"] == [f"{lake}/raw/*"], reads
    assert writes["Resource"] == [f"{replica.outputs['arn']}/raw/*"], writes


def test_dev_is_not_replicated_by_design(dev_run: ProgramRun) -> None:
    # Rule: dev's lake is disposable: no replica, no replication role.
    assert dev_run.by_type(REPLICATION) == []
    assert [b.name for b in dev_run.by_type(BUCKET)] == ["lake-access-logs-bucket", "lake-bucket"]

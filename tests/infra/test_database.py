"""The database: private, encrypted, TLS-only, backed up, observable; protected in prod."""

from __future__ import annotations

from dataplatform.mocks import ProgramRun, RecordedResource
from tests.infra.support import inputs, setting, setting_int

INSTANCE = "aws:rds/instance:Instance"


def _instance(run: ProgramRun) -> RecordedResource:
    return run.one(INSTANCE, "database-instance")


def _database_key(run: ProgramRun) -> str:
    return str(run.one("aws:kms/key:Key", "database-key").outputs["arn"])


def test_database_is_not_publicly_accessible(stack_run: ProgramRun) -> None:
    # Rule: the instance has no public endpoint.
    instance = _instance(stack_run)
    assert inputs(instance)["publiclyAccessible"] is False, instance.urn


def test_iam_database_authentication_is_on(stack_run: ProgramRun) -> None:
    # Rule (CKV_AWS_161): RDS accepts IAM tokens, which the processor's role logs in with.
    instance = _instance(stack_run)
    assert inputs(instance)["iamDatabaseAuthenticationEnabled"] is True, instance.urn


def test_storage_is_encrypted_with_the_database_key(stack_run: ProgramRun) -> None:
    # Rule: encrypted storage with the database's customer-managed key.
    values = inputs(_instance(stack_run))
    assert values["storageEncrypted"] is True, _instance(stack_run).urn
    assert values["kmsKeyId"] == _database_key(stack_run), _instance(stack_run).urn


def test_parameter_group_forces_tls_for_the_engine_version(stack_run: ProgramRun) -> None:
    # Rule: rds.force_ssl=1 in a parameter group of the instance's major version.
    group = stack_run.one("aws:rds/parameterGroup:ParameterGroup")
    values = inputs(group)
    version = setting(stack_run.stack, "dbPostgresVersion")
    assert {"name": "rds.force_ssl", "value": "1"} in values["parameters"], group.urn
    assert values["family"] == f"postgres{version}", group.urn
    instance = inputs(_instance(stack_run))
    assert instance["parameterGroupName"] == group.outputs["name"], group.urn
    assert (instance["engine"], instance["engineVersion"]) == ("postgres", version), group.urn


def test_performance_insights_on_and_encrypted(stack_run: ProgramRun) -> None:
    # Rule: Performance Insights enabled, encrypted with the database key.
    values = inputs(_instance(stack_run))
    assert values["performanceInsightsEnabled"] is True, _instance(stack_run).urn
    assert values["performanceInsightsKmsKeyId"] == _database_key(stack_run), _instance(
        stack_run
    ).urn


def test_logs_are_exported_into_groups_with_retention(stack_run: ProgramRun) -> None:
    # Rule: postgresql and upgrade logs go to CloudWatch, into groups with the stack's retention.
    instance = _instance(stack_run)
    values = inputs(instance)
    assert values["enabledCloudwatchLogsExports"] == ["postgresql", "upgrade"], instance.urn
    groups = {
        inputs(g)["name"]: inputs(g)["retentionInDays"]
        for g in stack_run.by_type("aws:cloudwatch/logGroup:LogGroup")
        if g.name.startswith("database-")
    }
    retention = setting_int(stack_run.stack, "logRetentionDays")
    identifier = values["identifier"]
    assert groups == {
        f"/aws/rds/instance/{identifier}/postgresql": retention,
        f"/aws/rds/instance/{identifier}/upgrade": retention,
    }, groups
    log_urns = {
        g.urn
        for g in stack_run.by_type("aws:cloudwatch/logGroup:LogGroup")
        if g.name.startswith("database-")
    }
    assert log_urns <= set(instance.dependencies), f"{instance.urn} may create its log groups first"


def test_only_the_processor_and_the_jump_host_may_connect(stack_run: ProgramRun) -> None:
    # Rule: the database SG's only ingress is 5432 from the processor SG and from the jump host
    # of `db-tunnel` (components/access.py); the instance uses it.
    database_sg = stack_run.one("aws:ec2/securityGroup:SecurityGroup", "database-sg").outputs["id"]
    processor_sg = stack_run.one(
        "aws:ec2/securityGroup:SecurityGroup", "network-processor-sg"
    ).outputs["id"]
    jump_host_sg = stack_run.one(
        "aws:ec2/securityGroup:SecurityGroup", "access-jump-host-sg"
    ).outputs["id"]
    rules = [
        (r.inputs.get("referencedSecurityGroupId"), r.inputs["fromPort"], r.inputs["toPort"])
        for r in stack_run.by_type("aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")
        if r.inputs["securityGroupId"] == database_sg
    ]
    assert sorted(rules) == sorted([(processor_sg, 5432, 5432), (jump_host_sg, 5432, 5432)]), rules
    assert inputs(_instance(stack_run))["vpcSecurityGroupIds"] == [database_sg], _instance(
        stack_run
    ).urn


def test_database_lives_in_the_private_subnets(stack_run: ProgramRun) -> None:
    # Rule: the subnet group is exactly the network's two private subnets.
    group = stack_run.one("aws:rds/subnetGroup:SubnetGroup")
    subnets = sorted(s.outputs["id"] for s in stack_run.by_type("aws:ec2/subnet:Subnet"))
    assert sorted(inputs(group)["subnetIds"]) == subnets, group.urn
    assert inputs(_instance(stack_run))["dbSubnetGroupName"] == group.outputs["name"], group.urn


def test_automated_backups_follow_the_stack(stack_run: ProgramRun) -> None:
    # Rule: backups on (retention from config, at least 1 day), tags copied to snapshots.
    values = inputs(_instance(stack_run))
    retention = setting_int(stack_run.stack, "dbBackupRetentionDays")
    assert values["backupRetentionPeriod"] == retention >= 1, _instance(stack_run).urn
    assert values["copyTagsToSnapshot"] is True, _instance(stack_run).urn
    assert values["autoMinorVersionUpgrade"] is True, _instance(stack_run).urn


def test_final_snapshot_is_named_even_when_skipped(stack_run: ProgramRun) -> None:
    # Rule: a final snapshot identifier is always set, so turning the skip off needs no edit.
    values = inputs(_instance(stack_run))
    assert values["finalSnapshotIdentifier"] == f"{values['identifier']}-final", _instance(
        stack_run
    ).urn


def test_prod_database_is_protected(prod_run: ProgramRun) -> None:
    # Rule (prod): deletion protection, final snapshot, Multi-AZ, 7+ days of backups.
    instance = _instance(prod_run)
    values = inputs(instance)
    assert values["deletionProtection"] is True, instance.urn
    assert values["skipFinalSnapshot"] is False, instance.urn
    assert values["multiAz"] is True, instance.urn
    assert values["backupRetentionPeriod"] >= 7, instance.urn


def test_connection_secret_is_encrypted_with_the_database_key(stack_run: ProgramRun) -> None:
    # Rule: the Secrets Manager secret uses the customer-managed database key.
    secret = stack_run.one("aws:secretsmanager/secret:Secret")
    assert inputs(secret)["kmsKeyId"] == _database_key(stack_run), secret.urn

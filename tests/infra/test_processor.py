"""The processor: runtime, VPC, logs, code, queue wiring, least privilege, alarms, migrations."""

from __future__ import annotations

import base64
import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

from components.processor import (
    TRACING_ACTIONS,
    VPC_ACCESS_ACTIONS,
    VPC_CREATE_ACTIONS,
    VPC_DESCRIBE_ACTIONS,
    VPC_INTERFACE_ACTIONS,
    migrations_digest,
    read_migrations,
)
from dataplatform.mocks import ACCOUNT_ID, ProgramRun, RecordedResource
from etl.contract import PROCESSOR_DB_USER
from tests.infra.support import (
    ROOT,
    TEST_PASSWORD,
    inputs,
    policy_document,
    region,
    run_stack,
    setting,
    setting_int,
    statements,
)

FUNCTION = "aws:lambda/function:Function"
QUEUE = "aws:sqs/queue:Queue"


def _function(run: ProgramRun) -> RecordedResource:
    return run.one(FUNCTION, "processor-function")


def _queue(run: ProgramRun, name: str = "processor-queue") -> RecordedResource:
    return run.one(QUEUE, name)


def _role_statements(run: ProgramRun) -> list[dict[str, Any]]:
    return statements(
        policy_document(run.one("aws:iam/rolePolicy:RolePolicy", "processor-role-policy"))
    )


def _grants(run: ProgramRun) -> dict[str, list[str]]:
    """Each action of the role's policy with every resource it is allowed on, over statements."""
    grants: dict[str, set[str]] = defaultdict(set)
    for statement in _role_statements(run):
        assert statement["Effect"] == "Allow", statement
        for action in statement["Action"]:
            grants[action].update(statement["Resource"])
    return {action: sorted(resources) for action, resources in grants.items()}


def test_function_runs_python_313_with_the_etl_handler(stack_run: ProgramRun) -> None:
    # Rule: a current Python runtime and the ETL's handler, on the configured architecture.
    values = inputs(_function(stack_run))
    assert (values["runtime"], values["handler"]) == ("python3.13", "etl.handler.handler"), (
        _function(stack_run).urn
    )
    assert values["architectures"] == [setting(stack_run.stack, "processorArchitecture")], (
        _function(stack_run).urn
    )


def test_function_runs_in_the_private_subnets_with_its_security_group(
    stack_run: ProgramRun,
) -> None:
    # Rule: the function is in the VPC: both private subnets, the processor SG only.
    vpc = inputs(_function(stack_run))["vpcConfig"]
    subnets = sorted(s.outputs["id"] for s in stack_run.by_type("aws:ec2/subnet:Subnet"))
    processor_sg = stack_run.one(
        "aws:ec2/securityGroup:SecurityGroup", "network-processor-sg"
    ).outputs["id"]
    assert sorted(vpc["subnetIds"]) == subnets, _function(stack_run).urn
    assert vpc["securityGroupIds"] == [processor_sg], _function(stack_run).urn


def test_function_has_reserved_concurrency(stack_run: ProgramRun) -> None:
    # Rule: reserved concurrency from config caps executions (and database connections).
    expected = setting_int(stack_run.stack, "processorReservedConcurrency")
    assert inputs(_function(stack_run))["reservedConcurrentExecutions"] == expected >= 1, _function(
        stack_run
    ).urn


def test_function_logs_json_into_its_group_with_retention(stack_run: ProgramRun) -> None:
    # Rule: /aws/lambda/<fn> exists with the stack's retention; the function logs JSON into it.
    values = inputs(_function(stack_run))
    group = stack_run.one("aws:cloudwatch/logGroup:LogGroup", "processor-logs")
    assert inputs(group)["name"] == f"/aws/lambda/{values['name']}", group.urn
    assert inputs(group)["retentionInDays"] == setting_int(stack_run.stack, "logRetentionDays"), (
        group.urn
    )
    assert values["loggingConfig"]["logFormat"] == "JSON", _function(stack_run).urn
    assert values["loggingConfig"]["logGroup"] == inputs(group)["name"], _function(stack_run).urn


def test_environment_names_the_database_and_holds_no_password(stack_run: ProgramRun) -> None:
    # Rule: loads log in with IAM tokens as the processor's role, at the instance's address;
    # DB_SECRET_ARN (the master secret, for migrations) is the only secret named; LAKE_BUCKET is
    # where the migration writes master data; no password.
    variables = inputs(_function(stack_run))["environment"]["variables"]
    secret_arn = stack_run.one("aws:secretsmanager/secret:Secret").outputs["arn"]
    instance = stack_run.one("aws:rds/instance:Instance", "database-instance")
    bucket = stack_run.one("aws:s3/bucket:Bucket", "lake-bucket").outputs["bucket"]
    assert variables == {
        "DB_AUTH": "iam",
        "DB_HOST": instance.outputs["address"],
        "DB_PORT": str(instance.outputs["port"]),
        "DB_NAME": setting(stack_run.stack, "dbName"),
        "DB_USER": PROCESSOR_DB_USER,
        "DB_SECRET_ARN": secret_arn,
        "LAKE_BUCKET": bucket,
        "LOG_LEVEL": setting(stack_run.stack, "processorLogLevel"),
    }, variables
    assert TEST_PASSWORD not in json.dumps(variables), _function(stack_run).urn


def test_the_role_may_connect_to_the_database_as_the_processor_user_only(
    stack_run: ProgramRun,
) -> None:
    # Rule: rds-db:connect on one db-user ARN: this instance's DbiResourceId and the processor's
    # database user, never the master user or every user ("*").
    instance = stack_run.one("aws:rds/instance:Instance", "database-instance")
    expected = (
        f"arn:aws:rds-db:{region(stack_run.stack)}:{ACCOUNT_ID}:dbuser:"
        f"{instance.outputs['resourceId']}/{PROCESSOR_DB_USER}"
    )
    assert _grants(stack_run)["rds-db:connect"] == [expected], _grants(stack_run)


def test_code_is_the_bundle_object_addressed_by_its_hash(
    stack_run: ProgramRun, bundle: Path
) -> None:
    # Rule: the zip is an S3 object under artifacts/ keyed by its sha256, signed by the stack's
    # profile (the function runs the signed copy); source_code_hash matches the bundle.
    digest = hashlib.sha256(bundle.read_bytes()).digest()
    function = inputs(_function(stack_run))
    upload = stack_run.one("aws:s3/bucketObjectv2:BucketObjectv2")
    lake = stack_run.one("aws:s3/bucket:Bucket", "lake-bucket").outputs["bucket"]
    job = stack_run.one("aws:signer/signingJob:SigningJob")
    assert inputs(upload)["key"] == f"artifacts/processor/{digest.hex()}.zip", upload.urn
    assert inputs(job)["source"]["s3"] == {
        "bucket": lake,
        "key": inputs(upload)["key"],
        "version": upload.outputs["versionId"],
    }, job.urn
    [signed] = job.outputs["signedObjects"][0]["s3s"]
    assert signed["key"].startswith("artifacts/processor/signed/"), job.urn
    assert (function["s3Bucket"], function["s3Key"]) == (lake, signed["key"]), _function(
        stack_run
    ).urn
    assert function["sourceCodeHash"] == base64.b64encode(digest).decode(), _function(stack_run).urn


def test_role_policy_has_no_wildcard_actions(stack_run: ProgramRun) -> None:
    # Rule: least privilege - every action is named, none contains "*".
    wildcards = [a for s in _role_statements(stack_run) for a in s["Action"] if "*" in a]
    assert wildcards == [], wildcards


def test_only_actions_without_resource_types_apply_to_every_resource(
    stack_run: ProgramRun,
) -> None:
    # Rule: CKV_AWS_290/355 - only the Describe and X-Ray actions (no resource types) on "*".
    on_everything = sorted(
        a for s in _role_statements(stack_run) if "*" in s["Resource"] for a in s["Action"]
    )
    assert on_everything == sorted((*VPC_DESCRIBE_ACTIONS, *TRACING_ACTIONS)), on_everything


def test_network_interface_actions_are_scoped_to_the_vpc(stack_run: ProgramRun) -> None:
    # Rule: CKV_AWS_290/355 - ENI actions on this account's interfaces, subnets and group, in
    # this VPC only (ec2:Vpc).
    vpc = stack_run.one("aws:ec2/vpc:Vpc").outputs["id"]
    subnets = sorted(s.outputs["id"] for s in stack_run.by_type("aws:ec2/subnet:Subnet"))
    group = stack_run.one("aws:ec2/securityGroup:SecurityGroup", "network-processor-sg")
    scoped = {
        s["Sid"]: s
        for s in _role_statements(stack_run)
        if any(a in VPC_ACCESS_ACTIONS for a in s["Action"]) and "*" not in s["Resource"]
    }
    assert sorted(a for s in scoped.values() for a in s["Action"]) == sorted(
        (*VPC_CREATE_ACTIONS, *VPC_INTERFACE_ACTIONS)
    ), scoped
    for statement in scoped.values():
        assert statement["Condition"]["ArnEquals"]["ec2:Vpc"].endswith(f":vpc/{vpc}"), statement
        assert any(r.endswith(":network-interface/*") for r in statement["Resource"]), statement
    create = scoped["CreateInterfacesInOwnSubnets"]["Resource"]
    assert [r.rsplit("/", 1)[1] for r in create if ":subnet/" in r] == subnets, create
    assert any(r.endswith(f":security-group/{group.outputs['id']}") for r in create), create


def test_object_actions_are_scoped_to_their_zones(stack_run: ProgramRun) -> None:
    # Rule: read raw/ only; write processed/, rejects/, reports/, quarantine/ and (the
    # migration's master data) master/ only; delete
    # (a stale report, a failed attempt's outputs) in processed/, rejects/, reports/ only.
    arn = stack_run.one("aws:s3/bucket:Bucket", "lake-bucket").outputs["arn"]
    grants = {a: r for a, r in _grants(stack_run).items() if a.startswith("s3:")}
    assert grants == {
        "s3:GetObject": [f"{arn}/raw/*"],
        "s3:GetObjectVersion": [f"{arn}/raw/*"],
        "s3:PutObject": sorted(
            f"{arn}/{zone}/*"
            for zone in ("processed", "rejects", "reports", "quarantine", "master")
        ),
        "s3:DeleteObject": sorted(
            f"{arn}/{zone}/*" for zone in ("processed", "rejects", "reports")
        ),
    }, grants


def test_secret_queue_keys_and_logs_are_the_only_other_grants(stack_run: ProgramRun) -> None:
    # Rule: the one secret, the one queue, the two keys, the function's own log group.
    resources = {
        a: r for a, r in _grants(stack_run).items() if not a.startswith(("s3:", "ec2:", "xray:"))
    }
    queue = _queue(stack_run).outputs["arn"]
    logs = stack_run.one("aws:cloudwatch/logGroup:LogGroup", "processor-logs").outputs["arn"]
    lake_key = stack_run.one("aws:kms/key:Key", "lake-key").outputs["arn"]
    database_key = stack_run.one("aws:kms/key:Key", "database-key").outputs["arn"]
    resources.pop("rds-db:connect")  # its own test, above
    assert resources == {
        "secretsmanager:GetSecretValue": [
            stack_run.one("aws:secretsmanager/secret:Secret").outputs["arn"]
        ],
        "sqs:ChangeMessageVisibility": [queue],
        "sqs:DeleteMessage": [queue],
        "sqs:GetQueueAttributes": [queue],
        "sqs:ReceiveMessage": [queue],
        "kms:Decrypt": sorted([lake_key, database_key]),
        "kms:GenerateDataKey": [lake_key],
        "logs:CreateLogStream": [f"{logs}:*"],
        "logs:PutLogEvents": [f"{logs}:*"],
    }, resources


def test_role_is_for_lambda_and_carries_only_its_inline_policy(stack_run: ProgramRun) -> None:
    # Rule: only lambda.amazonaws.com assumes the role; no managed policy widens it.
    role = stack_run.one("aws:iam/role:Role", "processor-role")
    (statement,) = json.loads(inputs(role)["assumeRolePolicy"])["Statement"]
    assert statement["Principal"] == {"Service": "lambda.amazonaws.com"}, role.urn
    attachments = stack_run.by_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")
    assert all(a.inputs["role"] != role.outputs["name"] for a in attachments), role.urn
    assert not inputs(role).get("managedPolicyArns"), role.urn
    assert (
        inputs(stack_run.one("aws:iam/rolePolicy:RolePolicy", "processor-role-policy"))["role"]
        == role.outputs["id"]
    ), role.urn


def test_queue_redrives_to_the_dead_letter_queue(stack_run: ProgramRun) -> None:
    # Rule: after maxReceiveCount receives a message moves to the DLQ; only this queue may use it.
    queue, dlq = _queue(stack_run), _queue(stack_run, "processor-dlq")
    redrive = json.loads(inputs(queue)["redrivePolicy"])
    assert redrive == {
        "deadLetterTargetArn": dlq.outputs["arn"],
        "maxReceiveCount": setting_int(stack_run.stack, "processorMaxReceiveCount"),
    }, queue.urn
    allow = stack_run.one("aws:sqs/redriveAllowPolicy:RedriveAllowPolicy")
    assert inputs(allow)["queueUrl"] == dlq.outputs["url"], allow.urn
    assert json.loads(inputs(allow)["redriveAllowPolicy"])["sourceQueueArns"] == [
        queue.outputs["arn"]
    ], allow.urn


def test_visibility_timeout_is_six_times_the_function_timeout(stack_run: ProgramRun) -> None:
    # Rule: AWS's recommendation for SQS event sources, so a running batch is not redelivered.
    timeout = inputs(_function(stack_run))["timeout"]
    assert timeout == setting_int(stack_run.stack, "processorTimeoutSeconds"), _function(
        stack_run
    ).urn
    assert inputs(_queue(stack_run))["visibilityTimeoutSeconds"] >= 6 * timeout, _queue(
        stack_run
    ).urn


def test_both_queues_are_encrypted_and_the_dlq_outlives_the_queue(stack_run: ProgramRun) -> None:
    # Rule: SSE on queue and DLQ; the DLQ keeps messages longer than their original queue.
    queue, dlq = inputs(_queue(stack_run)), inputs(_queue(stack_run, "processor-dlq"))
    assert (queue["sqsManagedSseEnabled"], dlq["sqsManagedSseEnabled"]) == (True, True), dlq
    assert dlq["messageRetentionSeconds"] > queue["messageRetentionSeconds"], (queue, dlq)


def test_event_source_mapping_reports_partial_batch_failures(stack_run: ProgramRun) -> None:
    # Rule: queue -> function with ReportBatchItemFailures and the configured batch size.
    mapping = stack_run.one("aws:lambda/eventSourceMapping:EventSourceMapping")
    values = inputs(mapping)
    assert values["eventSourceArn"] == _queue(stack_run).outputs["arn"], mapping.urn
    assert values["functionName"] == _function(stack_run).outputs["arn"], mapping.urn
    assert values["functionResponseTypes"] == ["ReportBatchItemFailures"], mapping.urn
    assert values["batchSize"] == setting_int(stack_run.stack, "processorBatchSize"), mapping.urn


def test_raw_objects_notify_the_queue(stack_run: ProgramRun) -> None:
    # Rule: ObjectCreated under raw/ goes to the processor queue, created after the queue policy.
    notification = stack_run.one("aws:s3/bucketNotification:BucketNotification")
    values = inputs(notification)
    (target,) = values["queues"]
    assert (
        values["bucket"] == stack_run.one("aws:s3/bucket:Bucket", "lake-bucket").outputs["bucket"]
    ), notification.urn
    assert target["queueArn"] == _queue(stack_run).outputs["arn"], notification.urn
    assert (target["events"], target["filterPrefix"]) == (["s3:ObjectCreated:*"], "raw/"), (
        notification.urn
    )
    assert stack_run.one("aws:sqs/queuePolicy:QueuePolicy").urn in notification.dependencies, (
        notification.urn
    )


def test_only_the_lake_bucket_may_send_to_the_queue(stack_run: ProgramRun) -> None:
    # Rule: the queue policy allows s3.amazonaws.com to send only when the source is the lake.
    policy = stack_run.one("aws:sqs/queuePolicy:QueuePolicy")
    allows = [s for s in statements(policy_document(policy)) if s["Effect"] == "Allow"]
    (allow,) = allows
    assert inputs(policy)["queueUrl"] == _queue(stack_run).outputs["url"], policy.urn
    assert allow["Principal"] == {"Service": "s3.amazonaws.com"}, policy.urn
    assert (allow["Action"], allow["Resource"]) == (
        ["sqs:SendMessage"],
        [_queue(stack_run).outputs["arn"]],
    ), policy.urn
    assert allow["Condition"]["ArnEquals"] == {
        "aws:SourceArn": stack_run.one("aws:s3/bucket:Bucket", "lake-bucket").outputs["arn"]
    }, policy.urn


def test_dead_letter_queue_depth_raises_an_alarm(stack_run: ProgramRun) -> None:
    # Rule: any visible message in the DLQ alarms.
    alarm = inputs(stack_run.one("aws:cloudwatch/metricAlarm:MetricAlarm", "processor-dlq-alarm"))
    assert (alarm["namespace"], alarm["metricName"]) == (
        "AWS/SQS",
        "ApproximateNumberOfMessagesVisible",
    ), alarm
    assert alarm["dimensions"] == {
        "QueueName": _queue(stack_run, "processor-dlq").outputs["name"]
    }, alarm
    assert (alarm["comparisonOperator"], alarm["threshold"]) == ("GreaterThanThreshold", 0), alarm


def test_function_errors_raise_an_alarm(stack_run: ProgramRun) -> None:
    # Rule: any function error alarms.
    alarm = inputs(
        stack_run.one("aws:cloudwatch/metricAlarm:MetricAlarm", "processor-errors-alarm")
    )
    assert (alarm["namespace"], alarm["metricName"]) == ("AWS/Lambda", "Errors"), alarm
    assert alarm["dimensions"] == {"FunctionName": _function(stack_run).outputs["name"]}, alarm
    assert (alarm["comparisonOperator"], alarm["threshold"]) == ("GreaterThanThreshold", 0), alarm


def test_migrations_run_at_deploy_keyed_on_the_sql_files(stack_run: ProgramRun) -> None:
    # Rule: the function is invoked with {"action": "migrate"}, re-run when etl/migrations changes,
    # after the database exists.
    invocation = stack_run.one("aws:lambda/invocation:Invocation")
    values = inputs(invocation)
    expected = migrations_digest(read_migrations(ROOT / "etl" / "migrations"))
    assert json.loads(values["input"]) == {"action": "migrate"}, invocation.urn
    assert values["functionName"] == _function(stack_run).outputs["name"], invocation.urn
    assert values["triggers"]["migrations"] == expected, invocation.urn
    master_data = [
        ROOT / "etl" / "core" / "master_data.py",
        ROOT / "etl" / "core" / "data" / "taxi_zone_lookup.csv",
    ]
    assert values["triggers"]["masterData"] == migrations_digest(
        {path.name: path.read_bytes() for path in master_data}
    ), invocation.urn
    needed = {
        stack_run.one("aws:rds/instance:Instance").urn,
        stack_run.one("aws:secretsmanager/secretVersion:SecretVersion").urn,
    }
    assert needed <= set(invocation.dependencies), invocation.urn


def test_stack_thresholds_reach_the_function_as_json(bundle: Path) -> None:
    # Rule: `etlSettings` becomes ETL_SETTINGS, canonical (sorted keys, compact), and only then.
    run = run_stack("dev", bundle, etlSettings='{"month_grace_hours": 12, "max_speed_mph": 90}')
    variables = inputs(_function(run))["environment"]["variables"]
    assert variables["ETL_SETTINGS"] == '{"max_speed_mph":90,"month_grace_hours":12}'

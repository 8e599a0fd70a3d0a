"""The policy pack's rules, run offline on both stacks' synth manifests.

Every resource of dev and prod passes every rule; each rule fails on a mutated copy of a real
manifest entry (so a change that breaks the property fails here, before any preview).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import platform_rules as rules
import pytest

from tests.policy.conftest import Manifest

# pulumi-aws warns about deprecated classes when its modules are imported; the program uses none.
pytestmark = pytest.mark.filterwarnings("ignore:.*has been deprecated:DeprecationWarning")

STACKS = ["dev", "prod"]
Resource = dict[str, Any]
Mutation = Callable[[Resource], None]


def stack_resources(manifest: Manifest) -> list[rules.StackResource]:
    """The manifest's resources as the stack rules see them."""
    return [
        rules.StackResource(
            type=r["type"],
            name=r["name"],
            props=r["inputs"],
            depends_on=frozenset(r["dependsOn"]),
            protect=bool(r.get("options", {}).get("protect")),
            stack=manifest["stack"],
        )
        for r in manifest["resources"]
    ]


def entry(manifest: Manifest, resource_type: str, name: str | None = None) -> Resource:
    """A deep copy of the first manifest entry of a type (and name), to mutate freely."""
    for resource in manifest["resources"]:
        if resource["type"] == resource_type and name in (None, resource["name"]):
            return copy.deepcopy(resource)
    raise AssertionError(f"no {resource_type} {name or ''} in the {manifest['stack']} manifest")


def rule_names(resource: Resource, stack: str) -> set[str]:
    """The names of the rules a manifest entry breaks."""
    return {name for name, _ in rules.violations(resource["type"], resource["inputs"], stack)}


@pytest.mark.parametrize("stack", STACKS)
def test_every_resource_of_the_stack_passes_every_rule(
    manifests: Callable[[str], Manifest], stack: str
) -> None:
    manifest = manifests(stack)
    found = {
        f"{r['type']} {r['name']}": rules.violations(r["type"], r["inputs"], stack)
        for r in manifest["resources"]
    }
    assert {name: v for name, v in found.items() if v} == {}
    assert rules.stack_violations(stack_resources(manifest)) == []


@pytest.mark.parametrize("stack", STACKS)
def test_every_rule_has_something_to_check_in_the_stack(
    manifests: Callable[[str], Manifest], stack: str
) -> None:
    # A rule that matches no resource would pass vacuously (e.g. after a type token changes).
    types = {r["type"] for r in manifests(stack)["resources"]}
    assert [rule.name for rule in rules.RULES if not rule.resource_types & types] == []


def _set(path: str, value: Any) -> Mutation:
    """A mutation setting inputs.<path> (dotted; list indexes as digits) to `value`."""

    def mutate(resource: Resource) -> None:
        target: Any = resource["inputs"]
        *parents, last = path.split(".")
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        target[last] = value

    return mutate


def _delete(key: str) -> Mutation:
    def mutate(resource: Resource) -> None:
        del resource["inputs"][key]

    return mutate


def _policy(edit: Callable[[dict[str, Any]], None]) -> Mutation:
    """A mutation of the JSON policy document in inputs.policy."""

    def mutate(resource: Resource) -> None:
        document = json.loads(resource["inputs"]["policy"])
        edit(document)
        resource["inputs"]["policy"] = json.dumps(document)

    return mutate


def _drop_tls_denial(document: dict[str, Any]) -> None:
    document["Statement"] = [
        s for s in document["Statement"] if "aws:SecureTransport" not in json.dumps(s)
    ]


def _tls_denial_on_objects_only(document: dict[str, Any]) -> None:
    for statement in document["Statement"]:
        statement["Resource"] = [r for r in statement["Resource"] if r.endswith("/*")]


def _allow(action: str | list[str], resource: str) -> Callable[[dict[str, Any]], None]:
    def edit(document: dict[str, Any]) -> None:
        document["Statement"].append({"Effect": "Allow", "Action": action, "Resource": resource})

    return edit


def _widen_to_every_secret(document: dict[str, Any]) -> None:
    for statement in document["Statement"]:
        if statement["Action"] == ["secretsmanager:GetSecretValue"]:
            statement["Resource"] = ["*"]


def _parameter(name: str, value: str | None) -> Mutation:
    """Set one parameter of a parameter group (None: remove it), keeping the others."""

    def mutate(resource: Resource) -> None:
        kept = [p for p in resource["inputs"]["parameters"] if p["name"] != name]
        resource["inputs"]["parameters"] = kept + (
            [{"name": name, "value": value}] if value is not None else []
        )

    return mutate


def _open_to_anyone(document: dict[str, Any]) -> None:
    document["Statement"].append(
        {"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:Decrypt", "Resource": "*"}
    )


def _unscope_network_interfaces(document: dict[str, Any]) -> None:
    for statement in document["Statement"]:
        if statement["Sid"] == "ManageInterfacesInOwnVpc":
            statement["Resource"] = ["*"]
            del statement["Condition"]


def _no_logging_config(resource: Resource) -> None:
    del resource["inputs"]["loggingConfig"]


BUCKET_ENCRYPTION = rules.BUCKET_ENCRYPTION
PUBLIC_ACCESS = rules.BUCKET_PUBLIC_ACCESS
SSE = "rules.0.applyServerSideEncryptionByDefault"

# (rule, stack, resource type, resource name or None, mutation, words of the message)
MUTATIONS: list[tuple[str, str, str, str | None, Mutation, str]] = [
    (
        "s3-sse-kms",
        "dev",
        BUCKET_ENCRYPTION,
        "lake-encryption",
        _set(f"{SSE}.sseAlgorithm", "AES256"),
        "AES256",
    ),
    (
        "s3-sse-kms",
        "prod",
        BUCKET_ENCRYPTION,
        "lake-encryption",
        _set(f"{SSE}.kmsMasterKeyId", ""),
        "kmsMaster",
    ),
    (
        "s3-sse-kms",
        "dev",
        BUCKET_ENCRYPTION,
        "lake-access-logs-encryption",
        _set("rules", []),
        "no default encryption",
    ),
    # SSE-S3 is for access-log destinations only: the same rule on the lake's name is refused.
    (
        "s3-sse-kms",
        "prod",
        BUCKET_ENCRYPTION,
        "lake-access-logs-encryption",
        _set("bucket", "dataplatform-prod-lake-0a1b2c3d"),
        "AES256",
    ),
    *(
        (
            "s3-public-access-block",
            "prod",
            rules.BUCKET_PUBLIC_ACCESS,
            None,
            _set(flag, False),
            flag,
        )
        for flag in rules.PUBLIC_ACCESS_FLAGS
    ),
    ("s3-tls-only", "dev", rules.BUCKET_POLICY, None, _policy(_drop_tls_denial), "SecureTransport"),
    (
        "s3-tls-only",
        "prod",
        rules.BUCKET_POLICY,
        None,
        _policy(_tls_denial_on_objects_only),
        "both the bucket ARN and its objects",
    ),
    ("rds-not-exposed", "dev", rules.DB_INSTANCE, None, _set("publiclyAccessible", True), "public"),
    ("rds-not-exposed", "prod", rules.DB_INSTANCE, None, _set("storageEncrypted", False), "stor"),
    (
        "rds-not-exposed",
        "dev",
        rules.DB_INSTANCE,
        None,
        _set("parameterGroupName", "default.postgres17"),
        "parameter group",
    ),
    (
        "rds-iam-auth",
        "dev",
        rules.DB_INSTANCE,
        None,
        _delete("iamDatabaseAuthenticationEnabled"),
        "iam",
    ),
    (
        "rds-iam-auth",
        "prod",
        rules.DB_INSTANCE,
        None,
        _set("iamDatabaseAuthenticationEnabled", False),
        "iamDatabaseAuthenticationEnabled must be true",
    ),
    (
        "rds-force-ssl",
        "prod",
        rules.DB_PARAMETER_GROUP,
        None,
        _parameter("rds.force_ssl", "0"),
        "rds.force_ssl must be 1",
    ),
    (
        "rds-force-ssl",
        "dev",
        rules.DB_PARAMETER_GROUP,
        None,
        _parameter("rds.force_ssl", None),
        "force_ssl",
    ),
    (
        "rds-query-logging",
        "prod",
        rules.DB_PARAMETER_GROUP,
        None,
        _parameter("log_statement", "none"),
        "log_statement",
    ),
    (
        "rds-query-logging",
        "dev",
        rules.DB_PARAMETER_GROUP,
        None,
        _parameter("log_min_duration_statement", "-1"),
        "log_min_duration_statement",
    ),
    (
        "rds-query-logging",
        "prod",
        rules.DB_PARAMETER_GROUP,
        None,
        _parameter("log_connections", None),
        "log_connections",
    ),
    (
        "rds-enhanced-monitoring",
        "prod",
        rules.DB_INSTANCE,
        None,
        _set("monitoringInterval", 0),
        "monitoringInterval",
    ),
    (
        "rds-enhanced-monitoring",
        "dev",
        rules.DB_INSTANCE,
        None,
        _delete("monitoringRoleArn"),
        "monitoringRoleArn",
    ),
    (
        "log-group-cmk",
        "prod",
        rules.LOG_GROUP,
        "network-flow-logs",
        _delete("kmsKeyId"),
        "kmsKeyId",
    ),
    ("log-group-cmk", "dev", rules.LOG_GROUP, "processor-logs", _delete("kmsKeyId"), "kmsKeyId"),
    ("kms-explicit-policy", "dev", rules.KMS_KEY, "logs-key", _delete("policy"), "policy must"),
    (
        "kms-explicit-policy",
        "prod",
        rules.KMS_KEY,
        "lake-key",
        _policy(_open_to_anyone),
        "any principal",
    ),
    (
        "lambda-hardening",
        "prod",
        rules.LAMBDA_FUNCTION,
        None,
        _delete("tracingConfig"),
        "tracingConfig",
    ),
    ("lambda-hardening", "dev", rules.LAMBDA_FUNCTION, None, _delete("kmsKeyArn"), "kmsKeyArn"),
    (
        "lambda-hardening",
        "prod",
        rules.LAMBDA_FUNCTION,
        None,
        _delete("codeSigningConfigArn"),
        "codeSigningConfigArn",
    ),
    (
        "lambda-hardening",
        "prod",
        rules.CODE_SIGNING_CONFIG,
        None,
        _set("policies.untrustedArtifactOnDeployment", "Warn"),
        "Enforce",
    ),
    (
        "rds-prod-protections",
        "prod",
        rules.DB_INSTANCE,
        None,
        _set("deletionProtection", False),
        "deletionProtection",
    ),
    ("rds-prod-protections", "prod", rules.DB_INSTANCE, None, _set("multiAz", False), "multiAz"),
    (
        "rds-prod-protections",
        "prod",
        rules.DB_INSTANCE,
        None,
        _set("skipFinalSnapshot", True),
        "final snapshot",
    ),
    (
        "rds-prod-protections",
        "prod",
        rules.DB_INSTANCE,
        None,
        _delete("finalSnapshotIdentifier"),
        "final snapshot",
    ),
    (
        "rds-prod-protections",
        "prod",
        rules.DB_INSTANCE,
        None,
        _set("backupRetentionPeriod", 6),
        "at least 7 days",
    ),
    (
        "iam-least-privilege",
        "dev",
        "aws:iam/rolePolicy:RolePolicy",
        "processor-role-policy",
        _policy(_allow("*", "*")),
        "'*'",
    ),
    (
        "iam-least-privilege",
        "prod",
        "aws:iam/rolePolicy:RolePolicy",
        "processor-role-policy",
        _policy(_allow(["s3:*"], "arn:aws:s3:::somewhere")),
        "'s3:*'",
    ),
    (
        "iam-least-privilege",
        "prod",
        "aws:iam/rolePolicy:RolePolicy",
        "processor-role-policy",
        _policy(_widen_to_every_secret),
        "secretsmanager:GetSecretValue",
    ),
    (
        "iam-least-privilege",
        "dev",
        "aws:iam/rolePolicy:RolePolicy",
        "processor-role-policy",
        _policy(_allow("s3:Get*", "arn:aws:s3:::*")),
        "data actions",
    ),
    (
        "iam-least-privilege",
        "prod",
        "aws:iam/rolePolicy:RolePolicy",
        "processor-role-policy",
        _policy(_unscope_network_interfaces),
        "resource-level permissions",
    ),
    (
        "iam-least-privilege",
        "dev",
        rules.IAM_ROLE,
        None,
        _set("managedPolicyArns", ["arn:aws:iam::aws:policy/AdministratorAccess"]),
        "AdministratorAccess",
    ),
    (
        "log-retention",
        "prod",
        rules.LOG_GROUP,
        "processor-logs",
        _delete("retentionInDays"),
        "retentionInDays",
    ),
    ("log-retention", "dev", rules.LOG_GROUP, None, _set("retentionInDays", 0), "retentionInDays"),
    ("log-retention", "dev", rules.LAMBDA_FUNCTION, None, _no_logging_config, "loggingConfig"),
    ("sqs-encryption", "dev", rules.QUEUE, None, _set("sqsManagedSseEnabled", False), "sqsMan"),
    (
        "sqs-encryption",
        "prod",
        rules.QUEUE,
        "processor-dlq",
        _delete("sqsManagedSseEnabled"),
        "encrypted at rest",
    ),
    (
        "athena-workgroup-guarded",
        "dev",
        rules.ATHENA_WORKGROUP,
        None,
        _set("configuration.enforceWorkgroupConfiguration", False),
        "enforceWorkgroupConfiguration",
    ),
    (
        "athena-workgroup-guarded",
        "prod",
        rules.ATHENA_WORKGROUP,
        None,
        _set(
            "configuration.resultConfiguration.encryptionConfiguration.encryptionOption", "SSE_S3"
        ),
        "SSE_KMS",
    ),
    (
        "athena-workgroup-guarded",
        "prod",
        rules.ATHENA_WORKGROUP,
        None,
        _set("configuration.bytesScannedCutoffPerQuery", None),
        "bytesScannedCutoffPerQuery",
    ),
    (
        "glue-catalog-encrypted",
        "dev",
        rules.GLUE_CATALOG_ENCRYPTION,
        None,
        _set("dataCatalogEncryptionSettings.encryptionAtRest.catalogEncryptionMode", "DISABLED"),
        "encryptionAtRest",
    ),
    (
        "glue-catalog-encrypted",
        "prod",
        rules.GLUE_CATALOG_ENCRYPTION,
        None,
        _set(
            "dataCatalogEncryptionSettings.connectionPasswordEncryption."
            "returnConnectionPasswordEncrypted",
            False,
        ),
        "connectionPasswordEncryption",
    ),
]


@pytest.mark.parametrize(
    ("rule", "stack", "resource_type", "name", "mutate", "words"),
    MUTATIONS,
    ids=[f"{m[0]}-{m[1]}-{i}" for i, m in enumerate(MUTATIONS)],
)
def test_each_rule_fails_on_a_mutated_real_resource(
    manifests: Callable[[str], Manifest],
    rule: str,
    stack: str,
    resource_type: str,
    name: str | None,
    mutate: Mutation,
    words: str,
) -> None:
    resource = entry(manifests(stack), resource_type, name)
    assert rule_names(resource, stack) == set()  # the real entry complies
    mutate(resource)
    found = rules.violations(resource["type"], resource["inputs"], stack)
    assert {name for name, _ in found} == {rule}
    assert any(words in message for _, message in found), found


def test_every_rule_has_a_failing_mutation() -> None:
    assert {rule.name for rule in rules.RULES} == {m[0] for m in MUTATIONS}


def test_prod_protections_apply_to_resources_tagged_prod_in_any_stack(
    manifests: Callable[[str], Manifest],
) -> None:
    database = entry(manifests("dev"), rules.DB_INSTANCE)
    assert rule_names(database, "dev") == set()  # dev may run without them
    database["inputs"]["tags"]["Environment"] = "prod"
    assert rule_names(database, "dev") == {"rds-prod-protections"}
    assert rule_names(database, "") == {"rds-prod-protections"}


def test_dev_is_allowed_what_prod_is_not(manifests: Callable[[str], Manifest]) -> None:
    database = entry(manifests("dev"), rules.DB_INSTANCE)
    assert database["inputs"]["deletionProtection"] is False
    assert rule_names(database, "dev") == set()
    database["inputs"]["tags"]["Environment"] = "dev"
    assert rule_names(database, "prod") == {"rds-prod-protections"}


@pytest.mark.parametrize(
    ("statement", "problems"),
    [
        # CKV_AWS_290/355: an action with resource types on "*" needs a condition at least.
        ({"Effect": "Allow", "Action": "ec2:CreateNetworkInterface", "Resource": "*"}, 1),
        ({"Effect": "Allow", "Action": "ec2:DescribeSubnets", "Resource": "*"}, 0),
        ({"Effect": "Allow", "Action": "iam:GetRole*", "Resource": "*"}, 1),
        (
            {
                "Effect": "Allow",
                "Action": "ec2:Create*",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:RequestedRegion": "us-east-1"}},
            },
            0,
        ),
        ({"Effect": "Deny", "Action": "*", "Resource": "*"}, 0),
        ({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/raw/*"}, 0),
        ({"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}, 1),
        ({"Effect": "Allow", "Action": ["sqs:*"], "Resource": "arn:aws:sqs:*:*:q"}, 1),
        ({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}, 1),
        ({"Effect": "Allow", "Action": "s3:ListBucket", "NotResource": "arn:aws:s3:::x"}, 1),
        ({"Effect": "Allow", "Action": "*", "Resource": "*"}, 3),
    ],
)
def test_iam_statements(statement: dict[str, Any], problems: int) -> None:
    document = {"Version": "2012-10-17", "Statement": statement}
    assert len(rules.policy_document_violations(document)) == problems


def test_iam_inline_role_policies_are_checked() -> None:
    props = {"inlinePolicies": [{"name": "x", "policy": json.dumps({"Statement": []})}]}
    assert rules.check_iam_least_privilege(rules.IAM_ROLE, props, "dev") == []
    props["inlinePolicies"][0]["policy"] = json.dumps(
        {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
    )
    assert rules.check_iam_least_privilege(rules.IAM_ROLE, props, "dev") != []


def test_broad_managed_policy_attachments_are_refused() -> None:
    attachment = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
    admin = {"policyArn": "arn:aws:iam::aws:policy/AmazonS3FullAccess"}
    scoped = {"policyArn": "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"}
    assert {name for name, _ in rules.violations(attachment, admin, "dev")} == {
        "iam-least-privilege"
    }
    assert rules.violations(attachment, scoped, "dev") == []


def test_a_bucket_without_its_protections_fails_the_stack_rule(
    manifests: Callable[[str], Manifest],
) -> None:
    resources = [
        r
        for r in stack_resources(manifests("prod"))
        if r.type not in (rules.BUCKET_PUBLIC_ACCESS, rules.BUCKET_POLICY)
    ]
    found = rules.stack_violations(resources)
    assert {name for name, _ in found} == {"s3-bucket-protections-present"}
    # Two missing companions for each of the three buckets: lake, access logs, replica.
    assert len(found) == 6


def test_a_function_logging_to_an_unmanaged_group_fails_the_stack_rule(
    manifests: Callable[[str], Manifest],
) -> None:
    resources = [
        r
        for r in stack_resources(manifests("dev"))
        if not (r.type == rules.LOG_GROUP and str(r.props["name"]).startswith("/aws/lambda/"))
    ]
    assert {name for name, _ in rules.stack_violations(resources)} == {"lambda-log-group-managed"}


def test_prod_refuses_an_unprotected_stateful_resource(
    manifests: Callable[[str], Manifest],
) -> None:
    # Rule: dropping `protect` from the prod lake bucket (so that a replace could go through)
    # fails the preview; dev's unprotected resources pass.
    assert rules.stack_violations(stack_resources(manifests("dev"))) == []
    prod = stack_resources(manifests("prod"))
    assert rules.stack_violations(prod) == []
    stripped = [replace(r, protect=False) if r.type in rules.STATEFUL_TYPES else r for r in prod]
    found = rules.stack_violations(stripped)
    assert {name for name, _ in found} == {"prod-stateful-protected"}
    named = sorted(message.split(" holds")[0] for _, message in found)
    assert named == [
        "Bucket lake-access-logs-bucket",
        "Bucket lake-bucket",
        "Bucket lake-replica-bucket",
        "Instance database-instance",
        "Key database-key",
        "Key lake-key",
        "Key lake-replica-key",
        "Key logs-key",
        "Secret database-secret",
    ]
    # Tagged prod in any stack counts too.
    tagged = [replace(r, stack="") for r in stripped]
    assert len(rules.stack_violations(tagged)) == len(found)


def _without(resources: list[rules.StackResource], type_: str) -> list[rules.StackResource]:
    return [r for r in resources if r.type != type_]


@pytest.mark.parametrize("stack", STACKS)
def test_a_vpc_without_its_flow_log_fails_the_stack_rule(
    manifests: Callable[[str], Manifest], stack: str
) -> None:
    # Rule: CKV2_AWS_11 - every VPC logs ALL its flows.
    resources = _without(stack_resources(manifests(stack)), rules.FLOW_LOG)
    assert {name for name, _ in rules.stack_violations(resources)} == {"vpc-flow-logs"}


@pytest.mark.parametrize("stack", STACKS)
def test_a_lake_without_access_logging_fails_the_stack_rule(
    manifests: Callable[[str], Manifest], stack: str
) -> None:
    # Rule: CKV_AWS_18 - the lake logs its requests; the log bucket itself need not.
    resources = _without(stack_resources(manifests(stack)), rules.BUCKET_LOGGING)
    found = rules.stack_violations(resources)
    assert {name for name, _ in found} == {"s3-access-logging"}
    assert [message.split()[1] for _, message in found] == ["lake-bucket"], found


def test_prod_without_replication_fails_and_dev_passes(
    manifests: Callable[[str], Manifest],
) -> None:
    # Rule: CKV_AWS_144 - prod's lake is replicated to a second region; dev by design is not.
    assert rules.stack_violations(stack_resources(manifests("dev"))) == []
    resources = _without(stack_resources(manifests("prod")), rules.BUCKET_REPLICATION)
    found = rules.stack_violations(resources)
    assert {name for name, _ in found} == {"prod-replication"}
    assert [message.split()[1] for _, message in found] == ["lake-bucket"], found

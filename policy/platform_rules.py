"""The platform's security rules, each written once as a pure function over a resource's inputs.

Two runners share these functions:

- the CrossGuard policy pack (`platform_pack.py`, run by `pulumi preview/up --policy-pack
  policy`), which hands them the engine's view of each resource;
- the test suite, which hands them every entry of `dataplatform synth`'s manifest of both stacks,
  so a violating change fails `uv run pytest` before any preview runs.

Inputs are Pulumi's camelCase property names, exactly as both runners see them. A rule reads
them through `Mapping`/`Sequence` only: the policy SDK wraps values in proxies that raise when a
value is not known yet (during a preview), and reports that as "can't run during preview"
instead of a violation; the same rules run again, with every value known, during `pulumi up`.

A check returns the list of what is wrong (empty when the resource complies), each message
naming the property and the fix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any

Props = Mapping[str, Any]
Check = Callable[[str, Props, str], list[str]]
"""(resource type, inputs, stack name) -> violations."""

BUCKET = "aws:s3/bucket:Bucket"
BUCKET_ENCRYPTION = (
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
)
BUCKET_PUBLIC_ACCESS = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
DB_INSTANCE = "aws:rds/instance:Instance"
DB_PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
LAMBDA_FUNCTION = "aws:lambda/function:Function"
QUEUE = "aws:sqs/queue:Queue"
IAM_ROLE = "aws:iam/role:Role"
KMS_KEY = "aws:kms/key:Key"
VPC = "aws:ec2/vpc:Vpc"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
BUCKET_LOGGING = "aws:s3/bucketLogging:BucketLogging"
BUCKET_REPLICATION = "aws:s3/bucketReplicationConfig:BucketReplicationConfig"
CODE_SIGNING_CONFIG = "aws:lambda/codeSigningConfig:CodeSigningConfig"
ATHENA_WORKGROUP = "aws:athena/workgroup:Workgroup"
GLUE_CATALOG_ENCRYPTION = "aws:glue/dataCatalogEncryptionSettings:DataCatalogEncryptionSettings"
ATHENA_RESULT_ENCRYPTION = frozenset({"SSE_KMS", "CSE_KMS"})
GLUE_CATALOG_MODES = frozenset({"SSE-KMS", "SSE-KMS-WITH-SERVICE-ROLE"})
IAM_POLICY_DOCUMENT_TYPES = {
    "aws:iam/rolePolicy:RolePolicy": "policy",
    "aws:iam/policy:Policy": "policy",
    "aws:iam/userPolicy:UserPolicy": "policy",
    "aws:iam/groupPolicy:GroupPolicy": "policy",
}
IAM_ATTACHMENT_TYPES = (
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
    "aws:iam/policyAttachment:PolicyAttachment",
)

PROD_MIN_BACKUP_DAYS = 7
PUBLIC_ACCESS_FLAGS = (
    "blockPublicAcls",
    "blockPublicPolicy",
    "ignorePublicAcls",
    "restrictPublicBuckets",
)
KMS_ALGORITHMS = frozenset({"aws:kms", "aws:kms:dsse"})
# Buckets that receive S3 server access logs are named `<prefix>-access-logs-<hex>` by the
# platform (components/buckets.py): S3 supports only SSE-S3 default encryption on them (Amazon
# S3 User Guide, "Enabling Amazon S3 server access logging"), and they do not log themselves.
ACCESS_LOG_BUCKET = re.compile(r"-access-logs-[0-9a-f]+$")
# A cross-region replica (`<source>-replica`): written by S3 replication only.
REPLICA_BUCKET = re.compile(r"-replica$")
MONITORING_INTERVALS = frozenset({1, 5, 10, 15, 30, 60})
LOGGED_STATEMENTS = frozenset({"ddl", "mod", "all"})
# Actions that support resource-level permissions (Service Authorization Reference), so an
# Allow of one on "*" without a condition grants more than any platform role needs.
RESTRICTABLE_ACTIONS = (
    "ec2:CreateNetworkInterface",
    "ec2:DeleteNetworkInterface",
    "ec2:AssignPrivateIpAddresses",
    "ec2:UnassignPrivateIpAddresses",
    "iam:GetRole",
    "iam:GetRolePolicy",
    "iam:ListRolePolicies",
    "iam:ListAttachedRolePolicies",
)

# Actions that read, write or use data (objects, secrets, messages, keys), as opposed to
# managing resources. An Allow statement whose actions could grant one of these must name its
# resources: granting them on "*" is how one function ends up reading every bucket and secret.
DATA_ACTIONS = (
    "s3:GetObject",
    "s3:GetObjectVersion",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:DeleteObjectVersion",
    "s3:RestoreObject",
    "secretsmanager:GetSecretValue",
    "ssm:GetParameter",
    "ssm:GetParameters",
    "kms:Decrypt",
    "kms:Encrypt",
    "kms:GenerateDataKey",
    "kms:ReEncryptFrom",
    "sqs:SendMessage",
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sns:Publish",
    "lambda:InvokeFunction",
    "rds-db:connect",
    "dynamodb:GetItem",
    "dynamodb:PutItem",
    "dynamodb:Query",
    "dynamodb:Scan",
    "logs:PutLogEvents",
)
# AWS managed policies that grant everything, or everything in a service.
BROAD_MANAGED_POLICY = re.compile(
    r"^arn:aws[\w-]*:iam::aws:policy/(?:AdministratorAccess|PowerUserAccess|IAMFullAccess|\w*FullAccess)$"
)
# A resource ARN that names no resource: "*", or every resource of a service ("arn:aws:s3:::*").
WILDCARD_RESOURCE = re.compile(r"^(?:\*|arn:[^:]*:[^:]*:[^:]*:[^:]*:\*|arn:[^:]*:s3:::\*)$")


@dataclass(frozen=True)
class Rule:
    """One security property: the resource types it applies to and its check."""

    name: str
    """The policy's name in the pack (kebab-case, unique)."""
    description: str
    """One sentence stating the property, shown with every violation."""
    resource_types: frozenset[str]
    check: Check

    def applies_to(self, resource_type: str) -> bool:
        """Whether this rule looks at resources of `resource_type`."""
        return resource_type in self.resource_types


@dataclass(frozen=True)
class StackResource:
    """What a stack-wide rule knows about one resource."""

    type: str
    name: str
    props: Props
    depends_on: frozenset[str]
    """Logical names of the resources this one depends on (inputs or `depends_on`)."""
    protect: bool = False
    """Whether the program marks it `protect` (the engine then refuses to delete or replace
    it)."""
    stack: str = ""
    """The stack being previewed or updated, when the CLI says."""


@dataclass(frozen=True)
class StackRule:
    """A property of the stack as a whole (a companion resource exists for another)."""

    name: str
    description: str
    check: Callable[[Sequence[StackResource]], list[str]]


# --- helpers ---------------------------------------------------------------------------------


def _items(value: Any) -> list[Any]:
    """A JSON/Pulumi value that may be one item or a list of them, as a list."""
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Sequence):
        return [value]
    return list(value)


def _document(value: Any) -> Mapping[str, Any]:
    """An IAM/resource policy document given as JSON text or as an object."""
    if isinstance(value, str):
        loaded = json.loads(value)
        return loaded if isinstance(loaded, Mapping) else {}
    return value if isinstance(value, Mapping) else {}


def _statements(document: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A policy document's statements (a single statement object counts as one)."""
    return [s for s in _items(document.get("Statement")) if isinstance(s, Mapping)]


def _tags(props: Props) -> Mapping[str, Any]:
    tags = props.get("tags")
    return tags if isinstance(tags, Mapping) else {}


def is_prod(stack: str, props: Props) -> bool:
    """Prod protections apply to the `prod` stack and to anything tagged `Environment: prod`.

    The tag makes a renamed or second production stack protected too; the infrastructure tags
    every taggable resource with its environment.
    """
    return stack == "prod" or _tags(props).get("Environment") == "prod"


# --- S3 --------------------------------------------------------------------------------------


def check_bucket_encryption(resource_type: str, props: Props, stack: str) -> list[str]:
    """Default encryption is SSE-KMS with an explicit customer-managed key."""
    rules = _items(props.get("rules"))
    if not rules:
        return ["rules: no default encryption rule; add one with sseAlgorithm aws:kms"]
    found = []
    for index, rule in enumerate(rules):
        default = rule.get("applyServerSideEncryptionByDefault") or {}
        algorithm = default.get("sseAlgorithm")
        if algorithm == "AES256" and ACCESS_LOG_BUCKET.search(str(props.get("bucket", ""))):
            continue  # a server access log destination supports SSE-S3 only
        if algorithm not in KMS_ALGORITHMS:
            found.append(
                f"rules[{index}].applyServerSideEncryptionByDefault.sseAlgorithm is "
                f"{algorithm!r}; use aws:kms (SSE-KMS)"
            )
        elif not default.get("kmsMasterKeyId"):
            found.append(
                f"rules[{index}].applyServerSideEncryptionByDefault.kmsMasterKeyId is not set; "
                "name the stack's KMS key (the AWS-managed aws/s3 key cannot be scoped)"
            )
    return found


def check_public_access_block(resource_type: str, props: Props, stack: str) -> list[str]:
    """All four public access block flags are on."""
    return [f"{flag} must be true" for flag in PUBLIC_ACCESS_FLAGS if props.get(flag) is not True]


def _denies_insecure_transport(statement: Mapping[str, Any]) -> bool:
    """A Deny for everyone, on every S3 action, when the request is not over TLS."""
    if statement.get("Effect") != "Deny":
        return False
    principal = statement.get("Principal")
    everyone = principal == "*" or (
        isinstance(principal, Mapping) and "*" in _items(principal.get("AWS"))
    )
    actions = {str(action).lower() for action in _items(statement.get("Action"))}
    condition = statement.get("Condition") or {}
    secure = (condition.get("Bool") or {}).get("aws:SecureTransport")
    return everyone and bool(actions & {"s3:*", "*"}) and str(secure).lower() == "false"


def check_bucket_policy_tls_only(resource_type: str, props: Props, stack: str) -> list[str]:
    """The bucket policy denies every request that does not use TLS, on the bucket and objects."""
    denials = [
        s for s in _statements(_document(props.get("policy"))) if _denies_insecure_transport(s)
    ]
    if not denials:
        return [
            "policy: no statement denies s3:* to Principal * when aws:SecureTransport is "
            "false; add one (TLS-only bucket)"
        ]
    resources = {str(r) for s in denials for r in _items(s.get("Resource"))}
    if not any(r.endswith("/*") for r in resources) or all(r.endswith("/*") for r in resources):
        return ["policy: the TLS-only denial must cover both the bucket ARN and its objects (/*)"]
    return []


# --- RDS -------------------------------------------------------------------------------------


def check_database_exposure(resource_type: str, props: Props, stack: str) -> list[str]:
    """Not publicly accessible, storage encrypted, TLS enforced by a custom parameter group."""
    found = []
    if props.get("publiclyAccessible") is True:
        found.append("publiclyAccessible must be false")
    if props.get("storageEncrypted") is not True:
        found.append("storageEncrypted must be true")
    group = props.get("parameterGroupName")
    if not group or str(group).startswith("default."):
        found.append(
            "parameterGroupName must name the stack's parameter group (rds.force_ssl=1), "
            "not a default one"
        )
    return found


def check_parameter_group_force_ssl(resource_type: str, props: Props, stack: str) -> list[str]:
    """A PostgreSQL parameter group sets rds.force_ssl to 1."""
    if not str(props.get("family", "")).startswith("postgres"):
        return []
    values = {
        str(parameter.get("name")): str(parameter.get("value"))
        for parameter in _items(props.get("parameters"))
        if isinstance(parameter, Mapping)
    }
    if values.get("rds.force_ssl") != "1":
        return ["parameters: rds.force_ssl must be 1 (TLS required for every connection)"]
    return []


def check_database_iam_authentication(resource_type: str, props: Props, stack: str) -> list[str]:
    """IAM database authentication is on (checkov CKV_AWS_161): applications log in with
    short-lived IAM tokens scoped to one database user, not with a stored password."""
    if props.get("iamDatabaseAuthenticationEnabled") is not True:
        return [
            "iamDatabaseAuthenticationEnabled must be true (the processor logs in with IAM "
            "tokens as its own database user)"
        ]
    return []


def check_database_prod_protections(resource_type: str, props: Props, stack: str) -> list[str]:
    """In prod: deletion protection, Multi-AZ, a final snapshot and 7+ days of backups."""
    if not is_prod(stack, props):
        return []
    found = []
    if props.get("deletionProtection") is not True:
        found.append("deletionProtection must be true in prod")
    if props.get("multiAz") is not True:
        found.append("multiAz must be true in prod")
    if props.get("skipFinalSnapshot") is True or not props.get("finalSnapshotIdentifier"):
        found.append("prod must keep a final snapshot (skipFinalSnapshot false and an identifier)")
    retention = props.get("backupRetentionPeriod")
    if not isinstance(retention, int | float) or retention < PROD_MIN_BACKUP_DAYS:
        found.append(
            f"backupRetentionPeriod is {retention!r}; prod keeps at least "
            f"{PROD_MIN_BACKUP_DAYS} days"
        )
    return found


# --- IAM -------------------------------------------------------------------------------------


def _grants_data_action(pattern: str) -> bool:
    return any(fnmatchcase(action.lower(), pattern.lower()) for action in DATA_ACTIONS)


def policy_document_violations(document: Mapping[str, Any], where: str = "policy") -> list[str]:
    """Least-privilege problems of one IAM policy document's Allow statements."""
    found = []
    for index, statement in enumerate(_statements(document)):
        if statement.get("Effect") != "Allow":
            continue
        label = f"{where}: statement {statement.get('Sid') or index}"
        if "NotAction" in statement:
            found.append(f"{label} allows NotAction (everything but a list); list the actions")
        if "NotResource" in statement:
            found.append(f"{label} allows NotResource; list the resources")
        actions = [str(action) for action in _items(statement.get("Action"))]
        for action in actions:
            if action == "*" or action.endswith(":*"):
                found.append(f"{label} allows {action!r}; list the actions it needs")
        resources = [str(resource) for resource in _items(statement.get("Resource"))]
        if "*" in resources and not statement.get("Condition"):
            restrictable = sorted(
                wanted
                for wanted in RESTRICTABLE_ACTIONS
                if any(fnmatchcase(wanted.lower(), action.lower()) for action in actions)
            )
            if restrictable:
                found.append(
                    f"{label} allows {restrictable} on '*' without a condition; they support "
                    "resource-level permissions: name the resources (or add a condition)"
                )
        if any(WILDCARD_RESOURCE.match(resource) for resource in resources):
            data = sorted(action for action in actions if _grants_data_action(action))
            if data:
                found.append(
                    f"{label} allows data actions {data} on every resource; "
                    "name the buckets/prefixes, secrets, keys or queues"
                )
    return found


def check_iam_least_privilege(resource_type: str, props: Props, stack: str) -> list[str]:
    """No `*` or `service:*` actions, no NotAction, no data actions on `*` resources."""
    if resource_type in IAM_POLICY_DOCUMENT_TYPES:
        return policy_document_violations(_document(props.get("policy")))
    if resource_type == IAM_ROLE:
        found = []
        for inline in _items(props.get("inlinePolicies")):
            if isinstance(inline, Mapping) and inline.get("policy"):
                found += policy_document_violations(
                    _document(inline["policy"]), f"inlinePolicies[{inline.get('name')}]"
                )
        for arn in _items(props.get("managedPolicyArns")):
            if BROAD_MANAGED_POLICY.match(str(arn)):
                found.append(f"managedPolicyArns: {arn} grants far more than the role needs")
        return found
    arn = str(props.get("policyArn", ""))
    if BROAD_MANAGED_POLICY.match(arn):
        return [f"policyArn: {arn} grants far more than the principal needs"]
    return []


# --- logs and queues -------------------------------------------------------------------------


def check_log_retention(resource_type: str, props: Props, stack: str) -> list[str]:
    """Log groups expire their events; functions log to a group the stack manages."""
    if resource_type == LOG_GROUP:
        retention = props.get("retentionInDays")
        if not isinstance(retention, int | float) or retention <= 0:
            return ["retentionInDays must be set (log events are otherwise kept forever)"]
        return []
    logging_config = props.get("loggingConfig")
    group = logging_config.get("logGroup") if isinstance(logging_config, Mapping) else None
    if not group:
        return [
            "loggingConfig.logGroup must name a log group this stack creates with a retention "
            "(Lambda's implicit group keeps logs forever)"
        ]
    return []


def check_log_group_encryption(resource_type: str, props: Props, stack: str) -> list[str]:
    """Log groups are encrypted with a customer-managed KMS key."""
    if props.get("kmsKeyId"):
        return []
    return ["kmsKeyId must name the stack's log key (log events are otherwise AWS-encrypted only)"]


def check_key_policy(resource_type: str, props: Props, stack: str) -> list[str]:
    """KMS keys carry an explicit policy, and no statement opens the key to any principal
    without a condition."""
    if not props.get("policy"):
        return ["policy must be set: the default key policy says nothing of who uses the key"]
    found = []
    for index, statement in enumerate(_statements(_document(props.get("policy")))):
        principal = statement.get("Principal")
        anyone = principal == "*" or (
            isinstance(principal, Mapping) and "*" in _items(principal.get("AWS"))
        )
        if statement.get("Effect") == "Allow" and anyone and not statement.get("Condition"):
            found.append(
                f"policy: statement {statement.get('Sid') or index} allows any principal "
                "without a condition"
            )
    return found


def check_database_monitoring(resource_type: str, props: Props, stack: str) -> list[str]:
    """RDS instances publish enhanced monitoring at 60 s or finer, through a role."""
    found = []
    if props.get("monitoringInterval") not in MONITORING_INTERVALS:
        found.append(
            f"monitoringInterval is {props.get('monitoringInterval')!r}; use one of "
            f"{sorted(MONITORING_INTERVALS)} (enhanced monitoring)"
        )
    if not props.get("monitoringRoleArn"):
        found.append("monitoringRoleArn must name the enhanced monitoring role")
    return found


def check_parameter_group_logging(resource_type: str, props: Props, stack: str) -> list[str]:
    """PostgreSQL logs DDL, slow statements, connections and disconnections."""
    values = {
        str(p.get("name")): str(p.get("value"))
        for p in _items(props.get("parameters"))
        if isinstance(p, Mapping)
    }
    found = []
    if values.get("log_statement") not in LOGGED_STATEMENTS:
        found.append("log_statement must be ddl (or mod, all): schema changes are logged")
    duration = values.get("log_min_duration_statement", "-1")
    if not duration.isdigit():
        found.append("log_min_duration_statement must be a threshold in ms (not -1, off)")
    for name in ("log_connections", "log_disconnections"):
        if values.get(name) not in {"1", "on", "true"}:
            found.append(f"{name} must be 1")
    return found


def check_function_hardening(resource_type: str, props: Props, stack: str) -> list[str]:
    """Lambda functions are traced, have their environment under a customer-managed key, and
    run only code signed for them; prod's code-signing config enforces it."""
    if resource_type == CODE_SIGNING_CONFIG:
        policies = props.get("policies")
        action = (
            policies.get("untrustedArtifactOnDeployment") if isinstance(policies, Mapping) else None
        )
        if is_prod(stack, props) and action != "Enforce":
            return [f"policies.untrustedArtifactOnDeployment is {action!r}; prod must Enforce"]
        return []
    found = []
    tracing = props.get("tracingConfig")
    if not (isinstance(tracing, Mapping) and tracing.get("mode") == "Active"):
        found.append("tracingConfig.mode must be Active (X-Ray tracing)")
    environment = props.get("environment")
    if (
        isinstance(environment, Mapping)
        and environment.get("variables")
        and not props.get("kmsKeyArn")
    ):
        found.append("kmsKeyArn must name a customer-managed key for the environment")
    if not props.get("codeSigningConfigArn"):
        found.append("codeSigningConfigArn must be set: only signed bundles deploy")
    return found


def check_queue_encryption(resource_type: str, props: Props, stack: str) -> list[str]:
    """Queues encrypt messages at rest (SQS-managed SSE or a KMS key)."""
    if props.get("sqsManagedSseEnabled") is True or props.get("kmsMasterKeyId"):
        return []
    return ["set sqsManagedSseEnabled true or kmsMasterKeyId (messages encrypted at rest)"]


# --- Athena and the Glue catalog --------------------------------------------------------------


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def check_athena_workgroup(resource_type: str, props: Props, stack: str) -> list[str]:
    """Workgroups enforce their configuration, encrypt results with a KMS key and cap the bytes
    a query may scan."""
    configuration = _mapping(props.get("configuration"))
    found = []
    if configuration.get("enforceWorkgroupConfiguration") is not True:
        found.append(
            "configuration.enforceWorkgroupConfiguration must be true (clients could otherwise "
            "send results elsewhere, unencrypted)"
        )
    results = _mapping(configuration.get("resultConfiguration"))
    encryption = _mapping(results.get("encryptionConfiguration"))
    if encryption.get("encryptionOption") not in ATHENA_RESULT_ENCRYPTION or not encryption.get(
        "kmsKeyArn"
    ):
        found.append(
            "configuration.resultConfiguration.encryptionConfiguration must be SSE_KMS or "
            "CSE_KMS with a kmsKeyArn (query results hold the data they select)"
        )
    cutoff = configuration.get("bytesScannedCutoffPerQuery")
    if not isinstance(cutoff, int | float) or cutoff <= 0:
        found.append(
            "configuration.bytesScannedCutoffPerQuery must be set (one query could otherwise "
            "scan, and bill, the whole lake)"
        )
    return found


def check_glue_catalog_encryption(resource_type: str, props: Props, stack: str) -> list[str]:
    """The Glue Data Catalog encrypts its metadata and connection passwords with a KMS key."""
    settings = _mapping(props.get("dataCatalogEncryptionSettings"))
    at_rest = _mapping(settings.get("encryptionAtRest"))
    passwords = _mapping(settings.get("connectionPasswordEncryption"))
    found = []
    if at_rest.get("catalogEncryptionMode") not in GLUE_CATALOG_MODES or not at_rest.get(
        "sseAwsKmsKeyId"
    ):
        found.append("encryptionAtRest must be SSE-KMS with an sseAwsKmsKeyId")
    if passwords.get("returnConnectionPasswordEncrypted") is not True or not passwords.get(
        "awsKmsKeyId"
    ):
        found.append(
            "connectionPasswordEncryption must return passwords encrypted, with an awsKmsKeyId"
        )
    return found


RULES: tuple[Rule, ...] = (
    Rule(
        "s3-sse-kms",
        "S3 buckets encrypt objects by default with SSE-KMS under a named key.",
        frozenset({BUCKET_ENCRYPTION}),
        check_bucket_encryption,
    ),
    Rule(
        "s3-public-access-block",
        "S3 public access blocks turn on all four flags.",
        frozenset({BUCKET_PUBLIC_ACCESS}),
        check_public_access_block,
    ),
    Rule(
        "s3-tls-only",
        "S3 bucket policies deny every request that does not use TLS.",
        frozenset({BUCKET_POLICY}),
        check_bucket_policy_tls_only,
    ),
    Rule(
        "rds-not-exposed",
        "RDS instances are private, encrypted and use a parameter group that requires TLS.",
        frozenset({DB_INSTANCE}),
        check_database_exposure,
    ),
    Rule(
        "rds-iam-auth",
        "RDS instances accept IAM database authentication (CKV_AWS_161).",
        frozenset({DB_INSTANCE}),
        check_database_iam_authentication,
    ),
    Rule(
        "rds-force-ssl",
        "PostgreSQL parameter groups set rds.force_ssl=1.",
        frozenset({DB_PARAMETER_GROUP}),
        check_parameter_group_force_ssl,
    ),
    Rule(
        "rds-prod-protections",
        "Production databases have deletion protection, Multi-AZ, a final snapshot and 7+ "
        "days of backups.",
        frozenset({DB_INSTANCE}),
        check_database_prod_protections,
    ),
    Rule(
        "iam-least-privilege",
        "IAM policies name their actions and never grant data actions on every resource.",
        frozenset({*IAM_POLICY_DOCUMENT_TYPES, IAM_ROLE, *IAM_ATTACHMENT_TYPES}),
        check_iam_least_privilege,
    ),
    Rule(
        "log-retention",
        "Log groups have a retention and Lambda functions log to a managed group.",
        frozenset({LOG_GROUP, LAMBDA_FUNCTION}),
        check_log_retention,
    ),
    Rule(
        "log-group-cmk",
        "Log groups are encrypted with a customer-managed KMS key.",
        frozenset({LOG_GROUP}),
        check_log_group_encryption,
    ),
    Rule(
        "kms-explicit-policy",
        "KMS keys have an explicit policy that opens them to no principal unconditionally.",
        frozenset({KMS_KEY}),
        check_key_policy,
    ),
    Rule(
        "rds-enhanced-monitoring",
        "RDS instances publish enhanced monitoring (1 to 60 s) through a monitoring role.",
        frozenset({DB_INSTANCE}),
        check_database_monitoring,
    ),
    Rule(
        "rds-query-logging",
        "PostgreSQL parameter groups log DDL, slow statements, connections and disconnections.",
        frozenset({DB_PARAMETER_GROUP}),
        check_parameter_group_logging,
    ),
    Rule(
        "lambda-hardening",
        "Lambda functions are traced, encrypt their environment with a customer-managed key "
        "and run only signed code (enforced in prod).",
        frozenset({LAMBDA_FUNCTION, CODE_SIGNING_CONFIG}),
        check_function_hardening,
    ),
    Rule(
        "sqs-encryption",
        "SQS queues encrypt messages at rest.",
        frozenset({QUEUE}),
        check_queue_encryption,
    ),
    Rule(
        "athena-workgroup-guarded",
        "Athena workgroups enforce their configuration, encrypt results with KMS and cap the "
        "bytes a query scans.",
        frozenset({ATHENA_WORKGROUP}),
        check_athena_workgroup,
    ),
    Rule(
        "glue-catalog-encrypted",
        "The Glue Data Catalog encrypts metadata and connection passwords with a KMS key.",
        frozenset({GLUE_CATALOG_ENCRYPTION}),
        check_glue_catalog_encryption,
    ),
)


# --- stack-wide ------------------------------------------------------------------------------


BUCKET_COMPANIONS = {
    BUCKET_ENCRYPTION: "default encryption (BucketServerSideEncryptionConfiguration)",
    BUCKET_PUBLIC_ACCESS: "a public access block (BucketPublicAccessBlock)",
    BUCKET_POLICY: "a TLS-only bucket policy (BucketPolicy)",
}


def check_bucket_companions(resources: Sequence[StackResource]) -> list[str]:
    """Every bucket has its encryption, public access block and policy resources.

    The per-resource rules check those resources; this one makes sure they exist at all, since
    in pulumi-aws 7 they are separate from the bucket.
    """
    found = []
    for bucket in (r for r in resources if r.type == BUCKET):
        present = {r.type for r in resources if bucket.name in r.depends_on}
        found += [
            f"bucket {bucket.name} has no {what}"
            for companion, what in BUCKET_COMPANIONS.items()
            if companion not in present
        ]
    return found


def check_function_log_groups(resources: Sequence[StackResource]) -> list[str]:
    """Every Lambda function's log group is created by the stack (so it has a retention)."""
    groups = {str(r.props.get("name")) for r in resources if r.type == LOG_GROUP}
    found = []
    for function in (r for r in resources if r.type == LAMBDA_FUNCTION):
        logging_config = function.props.get("loggingConfig")
        group = logging_config.get("logGroup") if isinstance(logging_config, Mapping) else None
        expected = str(group or f"/aws/lambda/{function.props.get('name')}")
        if expected not in groups:
            found.append(
                f"function {function.name} logs to {expected}, which this stack does not create"
            )
    return found


# What holds data a deletion or replacement would lose: the lake, the database, the keys that
# decrypt both (and the snapshots), the secret that opens the database.
STATEFUL_TYPES = frozenset(
    {BUCKET, DB_INSTANCE, "aws:kms/key:Key", "aws:secretsmanager/secret:Secret"}
)


def check_prod_stateful_protected(resources: Sequence[StackResource]) -> list[str]:
    """In prod, every resource that holds data is `protect`ed.

    CrossGuard shows a policy the resources the program declares and their options, not the
    engine's planned steps, so the pack cannot see a replace or delete coming. The engine can:
    it refuses to delete or replace a protected resource, and this rule refuses any prod
    preview in which one is unprotected, so protection cannot be dropped in the same change
    that replaces or deletes (the deliberate way is two updates; docs/runbooks/recovery.md).
    """
    return [
        f"{resource.type.rsplit(':', 1)[-1]} {resource.name} holds prod data and must be "
        "protected (ResourceOptions(protect=True)); to replace it on purpose see "
        "docs/runbooks/recovery.md"
        for resource in resources
        if resource.type in STATEFUL_TYPES
        and is_prod(resource.stack, resource.props)
        and not resource.protect
    ]


def _bucket_names(resources: Sequence[StackResource], kind: str, field: str) -> set[str]:
    return {str(r.props.get(field)) for r in resources if r.type == kind}


def _guarded_buckets(resources: Sequence[StackResource]) -> list[StackResource]:
    """The buckets that hold data: not access-log destinations, not replicas."""
    targets = _bucket_names(resources, BUCKET_LOGGING, "targetBucket")
    return [
        r
        for r in resources
        if r.type == BUCKET
        and str(r.props.get("bucket")) not in targets
        and not ACCESS_LOG_BUCKET.search(str(r.props.get("bucket", "")))
        and not REPLICA_BUCKET.search(str(r.props.get("bucket", "")))
    ]


def check_vpc_flow_logs(resources: Sequence[StackResource]) -> list[str]:
    """Every VPC has a flow log of all its traffic."""
    found = []
    for vpc in (r for r in resources if r.type == VPC):
        logs = [r for r in resources if r.type == FLOW_LOG and vpc.name in r.depends_on]
        if not any(r.props.get("trafficType") == "ALL" for r in logs):
            found.append(f"VPC {vpc.name} has no flow log of ALL traffic (aws.ec2.FlowLog)")
    return found


def check_bucket_access_logging(resources: Sequence[StackResource]) -> list[str]:
    """Every data bucket logs its requests to an access-log bucket."""
    return [
        f"bucket {bucket.name} has no server access logging (aws.s3.BucketLogging)"
        for bucket in _guarded_buckets(resources)
        if not any(r.type == BUCKET_LOGGING and bucket.name in r.depends_on for r in resources)
    ]


def check_prod_replication(resources: Sequence[StackResource]) -> list[str]:
    """In prod every data bucket is replicated to another region."""
    found = []
    for bucket in _guarded_buckets(resources):
        if not is_prod(bucket.stack, bucket.props):
            continue
        rules = [
            rule
            for r in resources
            if r.type == BUCKET_REPLICATION and bucket.name in r.depends_on
            for rule in _items(r.props.get("rules"))
            if isinstance(rule, Mapping)
        ]
        if not any(rule.get("status") == "Enabled" for rule in rules):
            found.append(
                f"bucket {bucket.name} holds prod data and has no enabled cross-region "
                "replication (aws.s3.BucketReplicationConfig)"
            )
    return found


STACK_RULES: tuple[StackRule, ...] = (
    StackRule(
        "vpc-flow-logs",
        "Every VPC has a flow log of all its traffic.",
        check_vpc_flow_logs,
    ),
    StackRule(
        "s3-access-logging",
        "Every data bucket has S3 server access logging.",
        check_bucket_access_logging,
    ),
    StackRule(
        "prod-replication",
        "In prod every data bucket is replicated to a second region.",
        check_prod_replication,
    ),
    StackRule(
        "s3-bucket-protections-present",
        "Every S3 bucket has default encryption, a public access block and a bucket policy.",
        check_bucket_companions,
    ),
    StackRule(
        "prod-stateful-protected",
        "In prod the lake bucket, the database, the KMS keys and the secret are protected: no "
        "update may delete or replace them.",
        check_prod_stateful_protected,
    ),
    StackRule(
        "lambda-log-group-managed",
        "Every Lambda function logs to a log group the stack creates (with a retention).",
        check_function_log_groups,
    ),
)


def violations(resource_type: str, props: Props, stack: str) -> list[tuple[str, str]]:
    """(rule name, message) for every rule the resource breaks."""
    return [
        (rule.name, message)
        for rule in RULES
        if rule.applies_to(resource_type)
        for message in rule.check(resource_type, props, stack)
    ]


def stack_violations(resources: Iterable[StackResource]) -> list[tuple[str, str]]:
    """(rule name, message) for every stack-wide rule the resources break."""
    listed = list(resources)
    return [(rule.name, message) for rule in STACK_RULES for message in rule.check(listed)]

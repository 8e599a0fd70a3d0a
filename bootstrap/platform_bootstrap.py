"""The bootstrap program: what CI needs in the AWS account before the platform's first deploy.

Run once, locally, with administrator credentials (docs/ci-cd.md), it creates:

- the Pulumi state bucket: versioned, SSE-KMS with a bucket key, public access blocked, owner
  enforced, TLS-only, old state versions expired after a year;
- a KMS key (rotation on) for state objects, and one for Pulumi secrets (`awskms://`);
- the GitHub Actions OIDC provider (`token.actions.githubusercontent.com`, audience
  `sts.amazonaws.com`), unless the account already has one;
- one deploy role per environment, trusted only by this repository's jobs in that GitHub
  environment (`repo:<owner>/<repo>:environment:<env>`), allowed to manage the platform's
  services in the region, IAM only for roles tagged with its stack, and its own stack's state;
- one preview role, trusted only by this repository's pull_request jobs and its drift check
  (the `drift` environment): reads the state, may decrypt secrets, reads resource metadata
  (enough to refresh); changes nothing.

Every policy is JSON built here with `json.dumps` (no invokes), in pure functions the tests call.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random

# The state bucket gets the lake bucket's guard rail, from the same function; the stack's keys
# admit the deploy role by the name given here.
from components.buckets import (
    AccessLogBucket,
    AccessLogBucketArgs,
    BucketReplica,
    BucketReplicaArgs,
    tls_only_policy,
)
from components.kms import deploy_role_name

GITHUB_OIDC_HOST = "token.actions.githubusercontent.com"
GITHUB_OIDC_URL = f"https://{GITHUB_OIDC_HOST}"
STS_AUDIENCE = "sts.amazonaws.com"
DEFAULT_ENVIRONMENTS = ("dev", "prod")
ENHANCED_MONITORING_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
"""The one managed policy a deploy role may attach (to its stack's RDS monitoring role)."""
DRIFT_ENVIRONMENT = "environment:drift"
"""The GitHub environment of the daily drift check (.github/workflows/drift.yml), whose tokens the
preview role also trusts: it runs `pulumi preview --refresh`, read-only like a PR's preview."""
STATE_VERSION_EXPIRATION_DAYS = 365
DEPLOY_SESSION_SECONDS = 4 * 3600
"""The deploy roles' maximum session: longer than the longest deploy job (prod's 90 minutes,
.github/workflows/deploy.yml), so that a Multi-AZ RDS create or modify never outlives its
credentials half-applied. The workflow asks for it with `role-duration-seconds`."""
PREVIEW_SESSION_SECONDS = 3600

_OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")
_REPO = re.compile(r"^[A-Za-z0-9._-]{1,100}$")
_ENVIRONMENT = re.compile(r"^[a-z][a-z0-9-]{0,30}$")
_NUMERIC_ID = re.compile(r"^[1-9][0-9]{0,19}$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")

Document = dict[str, Any]


class BootstrapConfigError(ValueError):
    """A bootstrap setting is missing or invalid; the message names the key and the fix."""


@dataclass(frozen=True)
class BootstrapSettings:
    """The bootstrap stack's settings (`Pulumi.<stack>.yaml` of bootstrap/)."""

    github_owner: str
    """`githubOwner`: the user or organisation that owns the repository (required)."""
    github_repo: str
    """`githubRepo`: the repository name, without the owner (required)."""
    github_owner_id: str | None = None
    """`githubOwnerId`: numeric owner ID, for repositories whose OIDC `sub` claim is immutable
    (`repo:<owner>@<id>/<repo>@<id>:...`, new repositories from 15 July 2026); else unset."""
    github_repo_id: str | None = None
    """`githubRepoId`: numeric repository ID; set together with `githubOwnerId`."""
    environments: tuple[str, ...] = DEFAULT_ENVIRONMENTS
    """`environments`: the GitHub environments (= platform stacks) that get a deploy role."""
    project: str = "dataplatform"
    """`platformProject`: the platform's Pulumi project name (state paths, tags, names)."""
    create_oidc_provider: bool = True
    """`createOidcProvider`: false when the account already has GitHub's OIDC provider."""
    replica_region: str = "us-west-2"
    """`replicaRegion`: the region the state bucket is replicated to, and where the platform's
    prod stack replicates raw/ (its deploy role may create keys there); not the stack's region."""
    log_retention_days: int = 365
    """`logRetentionDays`: days the state bucket's server access logs are kept."""

    @property
    def repository(self) -> str:
        """`owner/repo`."""
        return f"{self.github_owner}/{self.github_repo}"


def validate_settings(settings: BootstrapSettings) -> BootstrapSettings:
    """The settings, or BootstrapConfigError naming the first bad key and how to fix it."""
    if not _OWNER.match(settings.github_owner):
        raise BootstrapConfigError(
            f"githubOwner {settings.github_owner!r} is not a GitHub user or organisation name "
            "(letters, digits, single hyphens, at most 39); set it with "
            "`pulumi config set githubOwner <owner>`"
        )
    if not _REPO.match(settings.github_repo) or settings.github_repo in {".", ".."}:
        raise BootstrapConfigError(
            f"githubRepo {settings.github_repo!r} is not a repository name (letters, digits, "
            "'.', '-', '_'; without the owner); set it with `pulumi config set githubRepo <repo>`"
        )
    ids = (settings.github_owner_id, settings.github_repo_id)
    if (ids[0] is None) != (ids[1] is None):
        raise BootstrapConfigError("githubOwnerId and githubRepoId are set together or not at all")
    for key, value in zip(("githubOwnerId", "githubRepoId"), ids, strict=True):
        if value is not None and not _NUMERIC_ID.match(value):
            raise BootstrapConfigError(f"{key} {value!r} must be GitHub's numeric ID")
    if not settings.environments:
        raise BootstrapConfigError("environments must name at least one GitHub environment")
    for environment in settings.environments:
        if not _ENVIRONMENT.match(environment):
            raise BootstrapConfigError(
                f"environments: {environment!r} is not a stack name (lowercase letters, digits, "
                "hyphens)"
            )
    if len(set(settings.environments)) != len(settings.environments):
        raise BootstrapConfigError("environments lists a name twice")
    if not _REGION.match(settings.replica_region):
        raise BootstrapConfigError(
            f"replicaRegion {settings.replica_region!r} is not an AWS region (e.g. us-west-2); "
            "set it with `pulumi config set replicaRegion <region>`"
        )
    if settings.log_retention_days < 1:
        raise BootstrapConfigError("logRetentionDays must be at least 1")
    return settings


def check_replica_region(settings: BootstrapSettings, region: str) -> None:
    """The replica must be in another region than the state bucket."""
    if settings.replica_region == region:
        raise BootstrapConfigError(
            f"replicaRegion must differ from aws:region ({region}); set it with "
            "`pulumi config set replicaRegion <another region>`"
        )


def load_settings(config: pulumi.Config) -> BootstrapSettings:
    """Read and validate the settings from the stack's config."""
    environments = config.get_object("environments")
    if environments is not None and not (
        isinstance(environments, list) and all(isinstance(e, str) for e in environments)
    ):
        raise BootstrapConfigError('environments must be a list of names, e.g. ["dev", "prod"]')
    return validate_settings(
        BootstrapSettings(
            github_owner=config.get("githubOwner") or "",
            github_repo=config.get("githubRepo") or "",
            # Pulumi.yaml defaults both to "" (unset).
            github_owner_id=config.get("githubOwnerId") or None,
            github_repo_id=config.get("githubRepoId") or None,
            environments=tuple(environments) if environments else DEFAULT_ENVIRONMENTS,
            project=config.get("platformProject") or "dataplatform",
            create_oidc_provider=config.get_bool("createOidcProvider") is not False,
            replica_region=config.get("replicaRegion") or "us-west-2",
            log_retention_days=config.get_int("logRetentionDays") or 365,
        )
    )


# --- OIDC subjects and trust -----------------------------------------------------------------


def subject(settings: BootstrapSettings, context: str) -> str:
    """The `sub` claim GitHub puts in this repository's tokens for `context`.

    `context` is `environment:<name>` for a job in an environment, `pull_request` for a pull
    request job. Repositories with immutable subject claims get `owner@id/repo@id`.
    """
    if settings.github_owner_id and settings.github_repo_id:
        repository = (
            f"{settings.github_owner}@{settings.github_owner_id}/"
            f"{settings.github_repo}@{settings.github_repo_id}"
        )
    else:
        repository = settings.repository
    return f"repo:{repository}:{context}"


def trust_policy(provider_arn: str, sub: str | Sequence[str]) -> str:
    """A role trust policy for GitHub's OIDC tokens with exactly this audience and subject(s).

    StringEquals, never StringLike: no wildcard can widen who may assume the role. A list of
    subjects matches any one of them, exactly.
    """
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "GitHubActionsOidc",
                    "Effect": "Allow",
                    "Principal": {"Federated": provider_arn},
                    "Action": "sts:AssumeRoleWithWebIdentity",
                    "Condition": {
                        "StringEquals": {
                            f"{GITHUB_OIDC_HOST}:aud": STS_AUDIENCE,
                            f"{GITHUB_OIDC_HOST}:sub": sub if isinstance(sub, str) else list(sub),
                        }
                    },
                }
            ],
        },
        sort_keys=True,
    )


# --- the state bucket ------------------------------------------------------------------------


def backend_url(bucket: str, region: str) -> str:
    """`PULUMI_BACKEND_URL` for the DIY S3 backend in `bucket`."""
    return f"s3://{bucket}?region={region}&awssdk=v2"


def secrets_provider(alias: str, region: str) -> str:
    """The `--secrets-provider` URL of the KMS key behind `alias`."""
    return f"awskms://{alias}?region={region}"


def state_paths(bucket_arn: str, project: str, stack: str) -> list[str]:
    """The DIY backend's objects of one stack: stack file, history, backups, locks.

    `.pulumi/stacks/<project>/<stack>.json`, `.pulumi/history/<project>/<stack>/...`,
    `.pulumi/backups/<project>/<stack>/...`, `.pulumi/locks/organization/<project>/<stack>/...`:
    in an S3 ARN `*` spans `/`, so one pattern covers the four.
    """
    return [f"{bucket_arn}/.pulumi/*/{project}/{stack}*"]


# --- permissions -----------------------------------------------------------------------------


def _statement(sid: str, actions: Sequence[str], resources: Sequence[str] | str) -> Document:
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Action": sorted(actions),
        "Resource": resources if isinstance(resources, str) else list(resources),
    }


def _in_region(statement: Document, region: str | list[str]) -> Document:
    return {**statement, "Condition": {"StringEquals": {"aws:RequestedRegion": region}}}


def state_access_statements(
    bucket_arn: str, state_key_arn: str, secrets_key_arn: str, project: str, stack: str | None
) -> list[Document]:
    """Backend access: read the metadata, and read-write one stack (None: read every stack)."""
    statements = [
        _statement("ListState", ["s3:ListBucket", "s3:GetBucketLocation"], [bucket_arn]),
        _statement("ReadStateMetadata", ["s3:GetObject"], [f"{bucket_arn}/.pulumi/meta.yaml"]),
    ]
    if stack is None:
        statements += [
            _statement("ReadStacks", ["s3:GetObject"], [f"{bucket_arn}/.pulumi/*/{project}/*"]),
            _statement("DecryptState", ["kms:Decrypt", "kms:DescribeKey"], [state_key_arn]),
            _statement("DecryptSecrets", ["kms:Decrypt", "kms:DescribeKey"], [secrets_key_arn]),
        ]
    else:
        statements += [
            _statement(
                "ReadWriteOwnStack",
                ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
                state_paths(bucket_arn, project, stack),
            ),
            _statement(
                "UseStateKey",
                ["kms:Decrypt", "kms:DescribeKey", "kms:GenerateDataKey"],
                [state_key_arn],
            ),
            _statement(
                "UseSecretsKey",
                ["kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"],
                [secrets_key_arn],
            ),
        ]
    return statements


def deploy_policy(
    *,
    account: str,
    region: str,
    project: str,
    stack: str,
    bucket_arn: str,
    state_key_arn: str,
    secrets_key_arn: str,
    replica_region: str | None = None,
) -> str:
    """What `pulumi up` of one platform stack needs, and no more than the docs say.

    - VPC, RDS and CloudWatch alarms: their management verbs in the region (their resources
      get generated names, so they cannot be scoped by name).
    - S3, Lambda, SQS, Logs, Secrets Manager, KMS aliases: only resources named
      `<project>-<stack>-...` (the platform names them so).
    - KMS keys: create them tagged with the stack. Managing and using a key is granted by the
      key's own policy (`components.kms.stack_key_policy`), in force from CreateKey on, not by
      its tag: a new tag takes up to five minutes to count for KMS authorization.
    - Event source mappings: their verbs and tags in the region (they are named by a UUID).
    - IAM: create, change and pass only roles tagged with the stack (passed to Lambda only),
      and RDS's service-linked role. Nothing else in IAM, so no escalation beyond the stack.
    - State: its own stack's objects and the two bootstrap keys.
    - `replica_region` (prod's raw/ replica): its keys and aliases may be created there too.
    """
    prefix = f"{project}-{stack}"
    arn = f"arn:aws:%s:{region}:{account}:%s"
    regions = [region, *([replica_region] if replica_region else [])]
    signer = f"arn:aws:signer:{region}:{account}:"
    statements: list[Document] = [
        _in_region(
            _statement(
                "ManageNetwork",
                [
                    "ec2:Describe*",
                    "ec2:Create*",
                    "ec2:Delete*",
                    "ec2:Modify*",
                    "ec2:Authorize*",
                    "ec2:Revoke*",
                    "ec2:Associate*",
                    "ec2:Disassociate*",
                    "ec2:Replace*",
                    "ec2:UpdateSecurityGroupRuleDescriptions*",
                ],
                "*",
            ),
            region,
        ),
        # The jump host of `dataplatform db-tunnel` (components/access.py); Create*, Modify*
        # and Describe* above cover its tags, attributes and the Instance Connect Endpoint.
        _in_region(
            _statement(
                "ManageJumpHost",
                [
                    "ec2:RunInstances",
                    "ec2:StartInstances",
                    "ec2:StopInstances",
                    "ec2:TerminateInstances",
                ],
                "*",
            ),
            region,
        ),
        _statement(
            "ReadAmiParameter",
            ["ssm:GetParameter"],
            [f"arn:aws:ssm:{region}::parameter/aws/service/ami-amazon-linux-latest/*"],
        ),
        _in_region(
            _statement(
                "ManageDatabase",
                [
                    "rds:Describe*",
                    "rds:List*",
                    "rds:Create*",
                    "rds:Delete*",
                    "rds:Modify*",
                    "rds:AddTagsToResource",
                    "rds:RemoveTagsFromResource",
                    "rds:RebootDBInstance",
                    "rds:ResetDBParameterGroup",
                ],
                "*",
            ),
            region,
        ),
        _in_region(
            _statement(
                "ManageAlarms",
                [
                    "cloudwatch:PutMetricAlarm",
                    "cloudwatch:DeleteAlarms",
                    "cloudwatch:DescribeAlarms",
                    "cloudwatch:ListTagsForResource",
                    "cloudwatch:TagResource",
                    "cloudwatch:UntagResource",
                ],
                "*",
            ),
            region,
        ),
        _statement(
            "ManageLakeBuckets",
            [
                "s3:CreateBucket",
                "s3:DeleteBucket",
                "s3:ListBucket",
                "s3:ListBucketVersions",
                "s3:GetBucket*",
                "s3:PutBucket*",
                "s3:DeleteBucketPolicy",
                "s3:GetEncryptionConfiguration",
                "s3:PutEncryptionConfiguration",
                "s3:GetLifecycleConfiguration",
                "s3:PutLifecycleConfiguration",
                "s3:GetAccelerateConfiguration",
                "s3:GetReplicationConfiguration",
                "s3:PutReplicationConfiguration",
            ],
            [f"arn:aws:s3:::{prefix}-*"],
        ),
        _statement(
            "ManageLakeObjects",
            [
                "s3:GetObject",
                "s3:GetObjectVersion",
                "s3:GetObjectTagging",
                "s3:PutObject",
                "s3:PutObjectTagging",
                "s3:DeleteObject",
                "s3:DeleteObjectVersion",
            ],
            [f"arn:aws:s3:::{prefix}-*/*"],
        ),
        _statement("ListBuckets", ["s3:ListAllMyBuckets"], "*"),
        _statement(
            "ManageFunctions",
            [
                "lambda:Get*",
                "lambda:List*",
                "lambda:CreateFunction",
                "lambda:DeleteFunction",
                "lambda:UpdateFunction*",
                "lambda:PublishVersion",
                "lambda:PutFunctionConcurrency",
                "lambda:DeleteFunctionConcurrency",
                "lambda:AddPermission",
                "lambda:RemovePermission",
                "lambda:TagResource",
                "lambda:UntagResource",
                "lambda:InvokeFunction",
                "lambda:PutFunctionCodeSigningConfig",
                "lambda:DeleteFunctionCodeSigningConfig",
            ],
            [arn % ("lambda", f"function:{prefix}-*")],
        ),
        # Code-signing configs are named by an id Lambda assigns; creating one has no resource.
        _in_region(
            _statement("CreateCodeSigningConfigs", ["lambda:CreateCodeSigningConfig"], "*"), region
        ),
        _statement(
            "ManageCodeSigningConfigs",
            [
                "lambda:GetCodeSigningConfig",
                "lambda:UpdateCodeSigningConfig",
                "lambda:DeleteCodeSigningConfig",
                "lambda:TagResource",
                "lambda:UntagResource",
                "lambda:ListTags",
            ],
            [arn % ("lambda", "code-signing-config:*")],
        ),
        # Signer names profiles with letters, digits and underscores only.
        _statement(
            "ManageSigningProfile",
            [
                "signer:PutSigningProfile",
                "signer:GetSigningProfile",
                "signer:CancelSigningProfile",
                "signer:StartSigningJob",
                "signer:TagResource",
                "signer:UntagResource",
                "signer:ListTagsForResource",
            ],
            [f"{signer}/signing-profiles/{prefix.replace('-', '_')}_*"],
        ),
        _statement("ReadSigningJobs", ["signer:DescribeSigningJob"], [f"{signer}/signing-jobs/*"]),
        _in_region(
            _statement(
                "ManageEventSourceMappings",
                [
                    "lambda:CreateEventSourceMapping",
                    "lambda:DeleteEventSourceMapping",
                    "lambda:GetEventSourceMapping",
                    "lambda:UpdateEventSourceMapping",
                    "lambda:ListEventSourceMappings",
                ],
                "*",
            ),
            region,
        ),
        # The mapping is created with its tags and the provider reads them back (ListTags on
        # `event-source-mapping:<uuid>`); without these `processor-trigger` fails on create.
        _statement(
            "TagEventSourceMappings",
            ["lambda:TagResource", "lambda:UntagResource", "lambda:ListTags"],
            [arn % ("lambda", "event-source-mapping:*")],
        ),
        # An interface endpoint with private DNS associates the VPC with AWS's private hosted
        # zone for the service: a dependent action of ec2:CreateVpcEndpoint.
        _in_region(
            _statement("EndpointPrivateDns", ["route53:AssociateVPCWithHostedZone"], "*"), region
        ),
        # Glue authorizes on the catalog, the database and its tables; the database is the
        # stack's prefix in snake_case (Athena names may not hold hyphens).
        _statement(
            "ManageCatalog",
            [
                "glue:CreateDatabase",
                "glue:GetDatabase",
                "glue:UpdateDatabase",
                "glue:DeleteDatabase",
                "glue:CreateTable",
                "glue:GetTable",
                "glue:UpdateTable",
                "glue:DeleteTable",
                "glue:GetPartitionIndexes",
                "glue:GetTags",
                "glue:TagResource",
                "glue:UntagResource",
            ],
            [
                arn % ("glue", "catalog"),
                arn % ("glue", f"database/{prefix.replace('-', '_')}"),
                arn % ("glue", f"table/{prefix.replace('-', '_')}/*"),
            ],
        ),
        _statement(
            "ManageCatalogEncryption",
            ["glue:GetDataCatalogEncryptionSettings", "glue:PutDataCatalogEncryptionSettings"],
            [arn % ("glue", "catalog")],
        ),
        _statement(
            "ManageWorkgroups",
            [
                "athena:CreateWorkGroup",
                "athena:GetWorkGroup",
                "athena:UpdateWorkGroup",
                "athena:DeleteWorkGroup",
                "athena:ListTagsForResource",
                "athena:TagResource",
                "athena:UntagResource",
                "athena:CreateNamedQuery",
                "athena:GetNamedQuery",
                "athena:DeleteNamedQuery",
            ],
            [arn % ("athena", f"workgroup/{prefix}-*")],
        ),
        _statement(
            "ManageQueues",
            [
                "sqs:CreateQueue",
                "sqs:DeleteQueue",
                "sqs:GetQueueAttributes",
                "sqs:SetQueueAttributes",
                "sqs:GetQueueUrl",
                "sqs:ListQueueTags",
                "sqs:TagQueue",
                "sqs:UntagQueue",
                "sqs:ListDeadLetterSourceQueues",
            ],
            [arn % ("sqs", f"{prefix}-*")],
        ),
        _statement(
            "ManageLogGroups",
            [
                "logs:CreateLogGroup",
                "logs:DeleteLogGroup",
                "logs:PutRetentionPolicy",
                "logs:DeleteRetentionPolicy",
                "logs:ListTagsForResource",
                "logs:ListTagsLogGroup",
                "logs:TagResource",
                "logs:UntagResource",
                "logs:TagLogGroup",
                "logs:UntagLogGroup",
                "logs:AssociateKmsKey",
                "logs:DisassociateKmsKey",
            ],
            [
                arn % ("logs", f"log-group:/aws/lambda/{prefix}-*"),
                arn % ("logs", f"log-group:/aws/rds/instance/{prefix}-*"),
                arn % ("logs", f"log-group:/aws/vpc/{prefix}-*"),
            ],
        ),
        _in_region(_statement("DescribeLogGroups", ["logs:DescribeLogGroups"], "*"), region),
        _statement(
            "ManageDatabaseSecret",
            [
                "secretsmanager:CreateSecret",
                "secretsmanager:DeleteSecret",
                "secretsmanager:DescribeSecret",
                "secretsmanager:GetSecretValue",
                "secretsmanager:PutSecretValue",
                "secretsmanager:UpdateSecret",
                "secretsmanager:ListSecretVersionIds",
                "secretsmanager:GetResourcePolicy",
                "secretsmanager:TagResource",
                "secretsmanager:UntagResource",
                "secretsmanager:UpdateSecretVersionStage",
            ],
            [arn % ("secretsmanager", f"secret:{prefix}/*")],
        ),
        # Authorized by the request's tags, which exist at once; everything after CreateKey is
        # the key policy's to grant.
        {
            **_statement("CreateStackKeys", ["kms:CreateKey", "kms:TagResource"], "*"),
            "Condition": {
                "StringEquals": {"aws:RequestTag/Stack": stack, "aws:RequestedRegion": regions}
            },
        },
        _statement(
            "ManageStackKeyAliases",
            ["kms:CreateAlias", "kms:DeleteAlias", "kms:UpdateAlias"],
            [f"arn:aws:kms:{r}:{account}:alias/{prefix}-*" for r in regions],
        ),
        {
            **_statement("ListKeys", ["kms:ListAliases", "kms:ListKeys"], "*"),
            "Condition": {"StringEquals": {"aws:RequestedRegion": regions}},
        },
        {
            **_statement("CreateStackRoles", ["iam:CreateRole", "iam:TagRole"], "*"),
            "Condition": {"StringEquals": {"aws:RequestTag/Stack": stack}},
        },
        {
            **_statement(
                "ManageStackRoles",
                [
                    "iam:GetRole",
                    "iam:GetRolePolicy",
                    "iam:ListRolePolicies",
                    "iam:ListAttachedRolePolicies",
                    "iam:ListInstanceProfilesForRole",
                    "iam:PutRolePolicy",
                    "iam:DeleteRolePolicy",
                    "iam:UpdateRole",
                    "iam:UpdateRoleDescription",
                    "iam:UpdateAssumeRolePolicy",
                    "iam:DeleteRole",
                    "iam:TagRole",
                    "iam:UntagRole",
                ],
                f"arn:aws:iam::{account}:role/*",
            ),
            "Condition": {"StringEquals": {"iam:ResourceTag/Stack": stack}},
        },
        {
            **_statement(
                "PassStackRolesToLambda", ["iam:PassRole"], f"arn:aws:iam::{account}:role/*"
            ),
            "Condition": {
                "StringEquals": {
                    "iam:ResourceTag/Stack": stack,
                    "iam:PassedToService": "lambda.amazonaws.com",
                }
            },
        },
        {
            **_statement(
                "PassStackRolesToPlatformServices",
                ["iam:PassRole"],
                f"arn:aws:iam::{account}:role/*",
            ),
            "Condition": {
                "StringEquals": {
                    "iam:ResourceTag/Stack": stack,
                    "iam:PassedToService": [
                        "monitoring.rds.amazonaws.com",
                        "s3.amazonaws.com",
                        "vpc-flow-logs.amazonaws.com",
                    ],
                }
            },
        },
        {
            **_statement(
                "AttachEnhancedMonitoringPolicy",
                ["iam:AttachRolePolicy", "iam:DetachRolePolicy"],
                f"arn:aws:iam::{account}:role/*",
            ),
            "Condition": {
                "StringEquals": {
                    "iam:ResourceTag/Stack": stack,
                    "iam:PolicyARN": ENHANCED_MONITORING_POLICY,
                }
            },
        },
        {
            **_statement(
                "RdsServiceLinkedRole",
                ["iam:CreateServiceLinkedRole"],
                f"arn:aws:iam::{account}:role/aws-service-role/rds.amazonaws.com/*",
            ),
            "Condition": {"StringEquals": {"iam:AWSServiceName": "rds.amazonaws.com"}},
        },
        {
            **_statement(
                "InstanceConnectServiceLinkedRole",
                ["iam:CreateServiceLinkedRole"],
                f"arn:aws:iam::{account}:role/aws-service-role/ec2-instance-connect.amazonaws.com/*",
            ),
            "Condition": {
                "StringEquals": {"iam:AWSServiceName": "ec2-instance-connect.amazonaws.com"}
            },
        },
        *state_access_statements(bucket_arn, state_key_arn, secrets_key_arn, project, stack),
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


def preview_policy(
    *,
    region: str,
    project: str,
    bucket_arn: str,
    state_key_arn: str,
    secrets_key_arn: str,
    account: str,
    replica_region: str | None = None,
) -> str:
    """What `pulumi preview` needs: read the state, decrypt config secrets, read metadata.

    No data reads (objects of the lake, secret values, messages), no writes anywhere: a preview
    takes no lock on the DIY backend.
    """
    statements: list[Document] = [
        _in_region(
            _statement(
                "ReadPlatformMetadata",
                [
                    "ec2:Describe*",
                    "rds:Describe*",
                    "rds:ListTagsForResource",
                    "lambda:GetFunctionConfiguration",
                    "lambda:ListFunctions",
                    "lambda:ListEventSourceMappings",
                    "sqs:GetQueueAttributes",
                    "sqs:ListQueueTags",
                    "logs:DescribeLogGroups",
                    "cloudwatch:DescribeAlarms",
                    "secretsmanager:DescribeSecret",
                    "kms:DescribeKey",
                    "kms:ListAliases",
                    "glue:GetDatabase",
                    "glue:GetTable",
                    "glue:GetPartitionIndexes",
                    "glue:GetTags",
                    "glue:GetDataCatalogEncryptionSettings",
                    "athena:GetWorkGroup",
                    "athena:ListTagsForResource",
                    "athena:GetNamedQuery",
                ],
                "*",
            ),
            [region, *([replica_region] if replica_region else [])],
        ),
        _project_roles(
            _statement("ReadRoles", ["iam:GetRole", "iam:GetRolePolicy"], "*"), account, project
        ),
        # A preview runs the program, whose jump host reads the current AMI's public parameter.
        _statement(
            "ReadAmiParameter",
            ["ssm:GetParameter"],
            [f"arn:aws:ssm:{region}::parameter/aws/service/ami-amazon-linux-latest/*"],
        ),
        *refresh_statements(region, project, account, replica_region),
        *state_access_statements(bucket_arn, state_key_arn, secrets_key_arn, project, None),
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


def _project_roles(statement: Document, account: str, project: str) -> Document:
    """`statement` on the account's roles tagged with the project only (the platform's roles
    are tagged so; some are named by the provider, so a name pattern would not cover them)."""
    return {
        **statement,
        "Resource": [f"arn:aws:iam::{account}:role/*"],
        "Condition": {"StringEquals": {"iam:ResourceTag/Project": project}},
    }


def refresh_statements(
    region: str, project: str, account: str, replica_region: str | None = None
) -> list[Document]:
    """The metadata reads a refresh adds to a preview (the drift check's `--refresh`).

    Written from the AWS provider's read of each resource type the platform declares: the
    bucket's configuration, the function's settings and policy, tags, key policies, the roles'
    policy lists. Still no data: no object, no secret value, no message. The two resources whose
    read is a data read (the connection secret's value, the bundle object) are left out of the
    refresh by the drift check instead (docs/ci-cd.md, "Drift").
    """
    return [
        _statement(
            "RefreshBucketConfiguration",
            [
                "s3:GetAccelerateConfiguration",
                "s3:GetBucketAcl",
                "s3:GetBucketCORS",
                "s3:GetBucketLocation",
                "s3:GetBucketLogging",
                "s3:GetBucketNotification",
                "s3:GetBucketObjectLockConfiguration",
                "s3:GetBucketOwnershipControls",
                "s3:GetBucketPolicy",
                "s3:GetBucketPublicAccessBlock",
                "s3:GetBucketRequestPayment",
                "s3:GetBucketTagging",
                "s3:GetBucketVersioning",
                "s3:GetBucketWebsite",
                "s3:GetEncryptionConfiguration",
                "s3:GetLifecycleConfiguration",
                "s3:GetReplicationConfiguration",
                "s3:ListBucket",
            ],
            [f"arn:aws:s3:::{project}-*"],
        ),
        _in_region(
            _statement(
                "RefreshPlatformMetadata",
                [
                    "lambda:GetCodeSigningConfig",
                    "lambda:GetEventSourceMapping",
                    "lambda:GetFunction",
                    "lambda:GetFunctionCodeSigningConfig",
                    "lambda:GetFunctionConcurrency",
                    "lambda:GetPolicy",
                    "lambda:ListTags",
                    "lambda:ListVersionsByFunction",
                    "logs:ListTagsForResource",
                    "logs:ListTagsLogGroup",
                    "kms:GetKeyPolicy",
                    "kms:GetKeyRotationStatus",
                    "kms:ListResourceTags",
                    "secretsmanager:GetResourcePolicy",
                    "sqs:GetQueueUrl",
                    "cloudwatch:ListTagsForResource",
                    "signer:DescribeSigningJob",
                    "signer:GetSigningProfile",
                    "signer:ListTagsForResource",
                ],
                "*",
            ),
            [region, *([replica_region] if replica_region else [])],
        ),
        _project_roles(
            _statement(
                "RefreshRolePolicies", ["iam:ListAttachedRolePolicies", "iam:ListRolePolicies"], "*"
            ),
            account,
            project,
        ),
    ]


def key_policy(account: str) -> str:
    """The KMS keys' policy: the account administers them through IAM policies."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AccountAdministersThroughIam",
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                    "Action": "kms:*",
                    "Resource": "*",
                }
            ],
        },
        sort_keys=True,
    )


# --- the program -----------------------------------------------------------------------------


def deploy(settings: BootstrapSettings) -> None:
    """Create the bootstrap resources and export what the repository settings need."""
    identity = aws.get_caller_identity()
    region = aws.get_region().region
    check_replica_region(settings, region)
    account = identity.account_id
    project = settings.project
    tags = {"Project": project, "ManagedBy": "pulumi", "Stack": "bootstrap"}
    protect = pulumi.ResourceOptions(protect=True)

    state_key = aws.kms.Key(
        "state-key",
        description=f"{project}: Pulumi state bucket objects",
        enable_key_rotation=True,
        deletion_window_in_days=30,
        policy=key_policy(account),
        tags=tags,
        opts=protect,
    )
    aws.kms.Alias(
        "state-key-alias", name=f"alias/{project}-pulumi-state", target_key_id=state_key.id
    )
    secrets_key = aws.kms.Key(
        "secrets-key",
        description=f"{project}: Pulumi stack secrets (awskms:// secrets provider)",
        enable_key_rotation=True,
        deletion_window_in_days=30,
        policy=key_policy(account),
        tags=tags,
        opts=protect,
    )
    secrets_alias = aws.kms.Alias(
        "secrets-key-alias", name=f"alias/{project}-pulumi-secrets", target_key_id=secrets_key.id
    )

    suffix = random.RandomId("state-suffix", byte_length=4)
    bucket = aws.s3.Bucket(
        "state-bucket",
        bucket=suffix.hex.apply(lambda hex_: f"{project}-pulumi-state-{hex_}"),
        force_destroy=False,
        tags=tags,
        opts=protect,
    )
    aws.s3.BucketOwnershipControls(
        "state-ownership", bucket=bucket.id, rule={"object_ownership": "BucketOwnerEnforced"}
    )
    aws.s3.BucketPublicAccessBlock(
        "state-public-access",
        bucket=bucket.id,
        block_public_acls=True,
        block_public_policy=True,
        ignore_public_acls=True,
        restrict_public_buckets=True,
    )
    versioning = aws.s3.BucketVersioning(
        "state-versioning", bucket=bucket.id, versioning_configuration={"status": "Enabled"}
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        "state-encryption",
        bucket=bucket.id,
        rules=[
            {
                "apply_server_side_encryption_by_default": {
                    "sse_algorithm": "aws:kms",
                    "kms_master_key_id": state_key.arn,
                },
                "bucket_key_enabled": True,
            }
        ],
    )
    aws.s3.BucketLifecycleConfiguration(
        "state-lifecycle",
        bucket=bucket.id,
        rules=[
            {
                "id": "expire-old-state-versions",
                "status": "Enabled",
                "filter": {"prefix": ""},
                "noncurrent_version_expiration": {"noncurrent_days": STATE_VERSION_EXPIRATION_DAYS},
                "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
            }
        ],
    )
    aws.s3.BucketPolicy("state-policy", bucket=bucket.id, policy=bucket.arn.apply(tls_only_policy))
    _state_guards(settings, bucket, suffix, state_key, versioning, account, region, tags)

    if settings.create_oidc_provider:
        provider_arn: pulumi.Output[str] = aws.iam.OpenIdConnectProvider(
            "github-oidc",
            url=GITHUB_OIDC_URL,
            client_id_lists=[STS_AUDIENCE],
            tags=tags,
        ).arn
    else:
        provider_arn = pulumi.Output.from_input(
            f"arn:aws:iam::{account}:oidc-provider/{GITHUB_OIDC_HOST}"
        )

    keys = pulumi.Output.all(bucket.arn, state_key.arn, secrets_key.arn)
    preview_role = aws.iam.Role(
        "preview-role",
        name=f"{project}-github-preview",
        description=f"{settings.repository} pull requests: pulumi preview (read-only)",
        assume_role_policy=provider_arn.apply(
            lambda arn: trust_policy(
                arn, [subject(settings, "pull_request"), subject(settings, DRIFT_ENVIRONMENT)]
            )
        ),
        max_session_duration=PREVIEW_SESSION_SECONDS,
        tags=tags,
    )
    aws.iam.RolePolicy(
        "preview-role-policy",
        role=preview_role.id,
        policy=keys.apply(
            lambda k: preview_policy(
                account=account,
                region=region,
                project=project,
                bucket_arn=k[0],
                state_key_arn=k[1],
                secrets_key_arn=k[2],
                replica_region=settings.replica_region,
            )
        ),
    )

    deploy_roles = {
        environment: _deploy_role(settings, environment, provider_arn, keys, account, region, tags)
        for environment in settings.environments
    }

    pulumi.export("stateBucket", bucket.bucket)
    pulumi.export("backendUrl", bucket.bucket.apply(lambda name: backend_url(name, region)))
    pulumi.export(
        "secretsProvider", secrets_alias.name.apply(lambda a: secrets_provider(a, region))
    )
    pulumi.export("oidcProviderArn", provider_arn)
    pulumi.export("previewRoleArn", preview_role.arn)
    pulumi.export("deployRoleArns", deploy_roles)
    pulumi.export("awsRegion", region)


def _state_guards(
    settings: BootstrapSettings,
    bucket: aws.s3.Bucket,
    suffix: random.RandomId,
    state_key: aws.kms.Key,
    versioning: aws.s3.BucketVersioning,
    account: str,
    region: str,
    tags: dict[str, str],
) -> None:
    """The state bucket's server access logs and its replica in `settings.replica_region`
    (components/buckets.py: the lake's guards, from the same code)."""
    project = settings.project
    logs = AccessLogBucket(
        "state-access-logs",
        AccessLogBucketArgs(
            bucket_name=suffix.hex.apply(lambda hex_: f"{project}-state-access-logs-{hex_}"),
            source_bucket_arns=[bucket.arn],
            retention_days=settings.log_retention_days,
            tags=tags,
            protect=True,
        ),
    )
    aws.s3.BucketLogging(
        "state-logging",
        bucket=bucket.id,
        target_bucket=logs.bucket_name,
        target_prefix="state/",
        opts=pulumi.ResourceOptions(depends_on=[logs]),
    )
    BucketReplica(
        "state-replica",
        BucketReplicaArgs(
            name_prefix=f"{project}-pulumi",
            region=settings.replica_region,
            source_region=region,
            source_bucket_name=bucket.bucket,
            source_bucket_arn=bucket.arn,
            source_key_arn=state_key.arn,
            key_policy=key_policy(account),
            tags=tags,
            noncurrent_version_expiration_days=STATE_VERSION_EXPIRATION_DAYS,
            protect=True,
            depends_on=[versioning],
        ),
    )


def _deploy_role(
    settings: BootstrapSettings,
    environment: str,
    provider_arn: pulumi.Output[str],
    keys: pulumi.Output[list[str]],
    account: str,
    region: str,
    tags: dict[str, str],
) -> pulumi.Output[str]:
    """One environment's deploy role and its policy; returns the role's ARN."""

    def trust(arn: str) -> str:
        return trust_policy(arn, subject(settings, f"environment:{environment}"))

    def permissions(arns: list[str]) -> str:
        bucket_arn, state_key_arn, secrets_key_arn = arns
        return deploy_policy(
            account=account,
            region=region,
            project=settings.project,
            stack=environment,
            bucket_arn=bucket_arn,
            state_key_arn=state_key_arn,
            secrets_key_arn=secrets_key_arn,
            replica_region=settings.replica_region,
        )

    role = aws.iam.Role(
        f"deploy-role-{environment}",
        name=deploy_role_name(settings.project, environment),
        description=f"{settings.repository} environment {environment}: pulumi up",
        assume_role_policy=provider_arn.apply(trust),
        max_session_duration=DEPLOY_SESSION_SECONDS,
        tags=tags,
    )
    aws.iam.RolePolicy(
        f"deploy-role-{environment}-policy", role=role.id, policy=keys.apply(permissions)
    )
    return role.arn


def main() -> None:
    """The program's entry point (`bootstrap/__main__.py`)."""
    deploy(load_settings(pulumi.Config()))

"""The key policy of the stack's KMS keys, and the name of the role that deploys the stack.

A new key's tags can take up to five minutes to count for authorization (AWS KMS Developer Guide,
"ABAC for AWS KMS"), while the provider calls EnableKeyRotation, GetKeyPolicy and ListResourceTags
right after CreateKey, and S3, RDS and Secrets Manager use the key moments later. So the deploy
role's rights on a key come from the key's own policy, given in CreateKey and in force from the
first call, not from an IAM statement conditioned on the key's `Stack` tag:

- the account keeps administering the key through IAM (the default key policy's statement), so
  the processor's role, the preview role and administrators keep working;
- the stack's deploy role (`<project>-github-deploy-<stack>`, created by bootstrap/) may manage
  the key and use it, but only through S3, RDS and Secrets Manager (never directly), and may
  create grants only for AWS resources. The role is matched by `aws:PrincipalArn`, not named
  as the principal, so a stack can be deployed (by an administrator) before the bootstrap has
  created it: KMS refuses a key policy naming a principal that does not exist.
"""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws

KEY_MANAGEMENT_ACTIONS = (
    "kms:CancelKeyDeletion",
    "kms:CreateAlias",
    "kms:DeleteAlias",
    "kms:DescribeKey",
    "kms:DisableKey",
    "kms:DisableKeyRotation",
    "kms:EnableKey",
    "kms:EnableKeyRotation",
    "kms:GetKeyPolicy",
    "kms:GetKeyRotationStatus",
    "kms:ListResourceTags",
    "kms:PutKeyPolicy",
    "kms:ScheduleKeyDeletion",
    "kms:TagResource",
    "kms:UntagResource",
    "kms:UpdateAlias",
    "kms:UpdateKeyDescription",
)
"""What the provider calls on a key and its aliases (terraform-provider-aws kms/key.go,
alias.go)."""
KEY_USE_ACTIONS = ("kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey")
"""What S3 (bundle upload, code fetch) and Secrets Manager ask KMS for, with the caller's
rights."""
KEY_SERVICES = ("glue", "lambda", "rds", "s3", "secretsmanager")
"""The services that use the stack's keys on the deploy role's behalf (Lambda fetches the code
through S3, and encrypts the function's environment with the database key)."""


def stateful(parent: pulumi.Resource, protect: bool) -> pulumi.ResourceOptions:
    """Options of a resource that holds data (the lake bucket, the database, the keys, the
    secret): in prod protected, so Pulumi refuses any change that would delete or replace it,
    and retained on delete, so that even a deliberate `pulumi destroy` leaves it in AWS.
    docs/runbooks/recovery.md says how to replace one on purpose."""
    return pulumi.ResourceOptions(parent=parent, protect=protect, retain_on_delete=protect)


def stack_key_policy_output(
    project: str,
    stack: str,
    opts: pulumi.InvokeOutputOptions | None = None,
    region: str | None = None,
) -> pulumi.Output[str]:
    """`stack_key_policy` for this account and region (or `region`, for a replica's key), with
    the stack's deploy role."""
    account = aws.get_caller_identity_output(opts=opts).account_id
    region_output = (
        pulumi.Output.from_input(region) if region else aws.get_region_output(opts=opts).region
    )
    return pulumi.Output.all(account, region_output).apply(
        lambda values: stack_key_policy(
            account=values[0],
            region=values[1],
            deploy_role_arn=f"arn:aws:iam::{values[0]}:role/{deploy_role_name(project, stack)}",
        )
    )


def deploy_role_name(project: str, stack: str) -> str:
    """The IAM role CI deploys `stack` with (bootstrap/ creates it; the key policy admits it)."""
    return f"{project}-github-deploy-{stack}"


def log_key_policy_output(
    project: str,
    stack: str,
    log_group_prefixes: list[str],
    opts: pulumi.InvokeOutputOptions | None = None,
) -> pulumi.Output[str]:
    """`log_key_policy` for this account and region, with the stack's deploy role."""
    account = aws.get_caller_identity_output(opts=opts).account_id
    region = aws.get_region_output(opts=opts).region
    return pulumi.Output.all(account, region).apply(
        lambda values: log_key_policy(
            account=values[0],
            region=values[1],
            deploy_role_arn=f"arn:aws:iam::{values[0]}:role/{deploy_role_name(project, stack)}",
            log_group_prefixes=log_group_prefixes,
        )
    )


LOG_SERVICE_ACTIONS = (
    "kms:Decrypt*",
    "kms:Describe*",
    "kms:Encrypt*",
    "kms:GenerateDataKey*",
    "kms:ReEncrypt*",
)
"""What CloudWatch Logs asks of a log group's key (CloudWatch Logs User Guide, "Encrypt log data
in CloudWatch Logs using AWS Key Management Service", step 2: the key policy)."""


def log_key_policy(
    *, account: str, region: str, deploy_role_arn: str, log_group_prefixes: list[str]
) -> str:
    """The policy of the stack's log key: administered as the stack's other keys, used only by
    CloudWatch Logs in this region, and only for the stack's own log groups: the encryption
    context CloudWatch Logs sends (`kms:EncryptionContext:aws:logs:arn`, the log group's ARN)
    must match one of `log_group_prefixes` (CloudWatch Logs User Guide, "Encrypt log data in
    CloudWatch Logs using AWS KMS")."""
    document = json.loads(
        stack_key_policy(account=account, region=region, deploy_role_arn=deploy_role_arn)
    )
    # The deploy role never encrypts log data itself: only the management statement stays.
    document["Statement"] = [
        statement
        for statement in document["Statement"]
        if statement["Sid"] in {"AccountAdministersThroughIam", "DeployRoleManagesKey"}
    ]
    groups = [
        f"arn:aws:logs:{region}:{account}:log-group:{prefix}*" for prefix in log_group_prefixes
    ]
    document["Statement"].append(
        {
            "Sid": "CloudWatchLogsEncryptsStackLogGroups",
            "Effect": "Allow",
            "Principal": {"Service": f"logs.{region}.amazonaws.com"},
            "Action": list(LOG_SERVICE_ACTIONS),
            "Resource": "*",
            "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": groups}},
        }
    )
    return json.dumps(document, sort_keys=True)


def stack_key_policy(*, account: str, region: str, deploy_role_arn: str) -> str:
    """The policy of a stack's KMS key (see the module docstring)."""
    caller = {"aws:PrincipalArn": deploy_role_arn, "kms:CallerAccount": account}
    services = [f"{service}.{region}.amazonaws.com" for service in KEY_SERVICES]
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
                },
                {
                    "Sid": "DeployRoleManagesKey",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": list(KEY_MANAGEMENT_ACTIONS),
                    "Resource": "*",
                    "Condition": {"StringEquals": caller},
                },
                {
                    "Sid": "DeployRoleUsesKeyThroughServices",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": list(KEY_USE_ACTIONS),
                    "Resource": "*",
                    "Condition": {"StringEquals": {**caller, "kms:ViaService": services}},
                },
                {
                    "Sid": "DeployRoleGrantsToAwsResources",
                    "Effect": "Allow",
                    "Principal": {"AWS": "*"},
                    "Action": ["kms:CreateGrant"],
                    "Resource": "*",
                    "Condition": {
                        "StringEquals": {**caller, "kms:ViaService": services},
                        "Bool": {"kms:GrantIsForAWSResource": "true"},
                    },
                },
            ],
        },
        sort_keys=True,
    )

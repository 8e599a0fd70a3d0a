"""Buckets that guard other buckets: the access-log bucket and the cross-region replica.

Both the lake (components/data_lake.py) and the bootstrap's state bucket use them, so the two
get the same guard rails from the same code:

- `AccessLogBucket`: S3 server access logs of the buckets given, in a bucket of their own that
  never logs itself (AWS: a destination bucket should not have server access logging on, or its
  own log deliveries would log themselves without end). Encrypted with SSE-S3, because default
  encryption with SSE-KMS is not supported on a server access logging destination (Amazon S3
  User Guide, "Enabling Amazon S3 server access logging" and "Troubleshoot server access
  logging"). Versioned, owner-enforced (log delivery is granted by bucket policy, not ACL),
  public access blocked, TLS-only, expiring with the stack's log retention.
- `BucketReplica`: a bucket in a second region, encrypted with a key in that region, that S3
  replicates the source (or one prefix of it) to, through a role that can read only what it
  replicates and write only to the replica (Amazon S3 User Guide, "Setting up permissions for
  live replication" and "Replicating objects created with server-side encryption (SSE-KMS)").
  Deletes are not replicated: the replica is the copy that survives a mistaken delete too.

Replica resources carry `region` (pulumi-aws 7's per-resource region) instead of needing a
second provider: the same credentials and provider configuration, one region argument.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.kms import stateful

ACCESS_LOG_NONCURRENT_DAYS = 7
"""Days an overwritten access-log object version is kept (log objects are never rewritten)."""


def tls_only_statements(bucket_arn: str) -> list[dict[str, object]]:
    """Statements denying every request not made over TLS 1.2 or later."""
    resources = [bucket_arn, f"{bucket_arn}/*"]
    return [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": resources,
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        },
        {
            "Sid": "DenyOutdatedTls",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": resources,
            "Condition": {"NumericLessThan": {"s3:TlsVersion": "1.2"}},
        },
    ]


def tls_only_policy(bucket_arn: str) -> str:
    """A bucket policy denying every request that is not made over TLS 1.2 or later."""
    return json.dumps(
        {"Version": "2012-10-17", "Statement": tls_only_statements(bucket_arn)}, sort_keys=True
    )


def access_log_policy(log_bucket_arn: str, source_bucket_arns: Sequence[str], account: str) -> str:
    """S3's logging service may write log objects for the source buckets of this account, and
    nothing else; TLS only (Amazon S3 User Guide, "Permissions for log delivery")."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "S3ServerAccessLogsDelivery",
                    "Effect": "Allow",
                    "Principal": {"Service": "logging.s3.amazonaws.com"},
                    "Action": "s3:PutObject",
                    "Resource": f"{log_bucket_arn}/*",
                    "Condition": {
                        "ArnLike": {"aws:SourceArn": sorted(source_bucket_arns)},
                        "StringEquals": {"aws:SourceAccount": account},
                    },
                },
                *tls_only_statements(log_bucket_arn),
            ],
        },
        sort_keys=True,
    )


def guard_rails(
    parent: pulumi.Resource,
    name: str,
    bucket: aws.s3.Bucket,
    region: str | None = None,
) -> tuple[aws.s3.BucketOwnershipControls, aws.s3.BucketPublicAccessBlock, aws.s3.BucketVersioning]:
    """No ACLs, no public access, versioning on: what every bucket of the platform has."""
    child = pulumi.ResourceOptions(parent=parent)
    return (
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership",
            bucket=bucket.id,
            rule={"object_ownership": "BucketOwnerEnforced"},
            region=region,
            opts=child,
        ),
        aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access",
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
            region=region,
            opts=child,
        ),
        aws.s3.BucketVersioning(
            f"{name}-versioning",
            bucket=bucket.id,
            versioning_configuration={"status": "Enabled"},
            region=region,
            opts=child,
        ),
    )


def kms_encryption(
    parent: pulumi.Resource,
    name: str,
    bucket: aws.s3.Bucket,
    key_arn: pulumi.Input[str],
    region: str | None = None,
) -> aws.s3.BucketServerSideEncryptionConfiguration:
    """Default encryption of every new object under the customer-managed key `key_arn`."""
    return aws.s3.BucketServerSideEncryptionConfiguration(
        f"{name}-encryption",
        bucket=bucket.id,
        rules=[
            {
                "apply_server_side_encryption_by_default": {
                    "sse_algorithm": "aws:kms",
                    "kms_master_key_id": key_arn,
                },
                # One data key per bucket instead of per object: cuts KMS requests ~99%.
                "bucket_key_enabled": True,
            }
        ],
        region=region,
        opts=pulumi.ResourceOptions(parent=parent),
    )


@dataclass(frozen=True)
class AccessLogBucketArgs:
    """What an access-log bucket is built from."""

    bucket_name: pulumi.Input[str]
    """The log bucket's name (globally unique)."""
    source_bucket_arns: Sequence[pulumi.Input[str]]
    """The buckets whose server access logs it receives (same account and region)."""
    retention_days: int
    """Days a log object is kept (the stack's log retention)."""
    tags: Mapping[str, str]
    """Tags for the bucket."""
    force_destroy: bool = False
    """Let a destroy delete the bucket with its logs (dev)."""
    protect: bool = False
    """Protect the bucket (prod): logs are evidence."""


class AccessLogBucket(pulumi.ComponentResource):
    """A bucket for S3 server access logs (see the module docstring)."""

    bucket_name: pulumi.Output[str]
    """The bucket's name: the `target_bucket` of a `BucketLogging`."""

    def __init__(
        self, name: str, args: AccessLogBucketArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("dataplatform:index:AccessLogBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        account = aws.get_caller_identity_output(
            opts=pulumi.InvokeOutputOptions(parent=self)
        ).account_id
        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=args.bucket_name,
            force_destroy=args.force_destroy,
            tags=args.tags,
            opts=stateful(self, args.protect),
        )
        rails = guard_rails(self, name, bucket)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption",
            bucket=bucket.id,
            rules=[{"apply_server_side_encryption_by_default": {"sse_algorithm": "AES256"}}],
            opts=child,
        )
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=[
                {
                    "id": "log-retention",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "expiration": {"days": args.retention_days},
                    "noncurrent_version_expiration": {
                        "noncurrent_days": ACCESS_LOG_NONCURRENT_DAYS
                    },
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 1},
                }
            ],
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(rails)),
        )
        aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket.id,
            policy=pulumi.Output.all(bucket.arn, account, *args.source_bucket_arns).apply(
                lambda values: access_log_policy(values[0], values[2:], values[1])
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(rails)),
        )
        self.bucket_name = bucket.bucket
        self.register_outputs({"bucket_name": self.bucket_name})


def replication_trust_policy(source_bucket_arn: str, account: str) -> str:
    """Only S3, replicating the source bucket of this account, may assume the role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "s3.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Condition": {
                        "StringEquals": {"aws:SourceAccount": account},
                        "ArnLike": {"aws:SourceArn": source_bucket_arn},
                    },
                }
            ],
        },
        sort_keys=True,
    )


def replication_policy(
    *,
    source_bucket_arn: str,
    source_key_arn: str,
    source_region: str,
    replica_bucket_arn: str,
    replica_key_arn: str,
    replica_region: str,
    prefix: str,
) -> str:
    """The replication role's permissions: read the versions it replicates, decrypt them with
    the source key through S3 only, write replicas, encrypt them with the replica key through S3
    only. With S3 Bucket Keys the encryption context is the bucket's ARN, otherwise the
    object's (Amazon S3 User Guide, "Replicating objects created with SSE-KMS")."""
    objects = f"{source_bucket_arn}/{prefix}*"
    replicas = f"{replica_bucket_arn}/{prefix}*"
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "ReadReplicationConfiguration",
                    "Effect": "Allow",
                    "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"],
                    "Resource": [source_bucket_arn],
                },
                {
                    "Sid": "ReadSourceVersions",
                    "Effect": "Allow",
                    "Action": [
                        "s3:GetObjectVersionAcl",
                        "s3:GetObjectVersionForReplication",
                        "s3:GetObjectVersionTagging",
                    ],
                    "Resource": [objects],
                },
                {
                    "Sid": "WriteReplicas",
                    "Effect": "Allow",
                    "Action": ["s3:ReplicateDelete", "s3:ReplicateObject", "s3:ReplicateTags"],
                    "Resource": [replicas],
                },
                {
                    "Sid": "DecryptSource",
                    "Effect": "Allow",
                    "Action": ["kms:Decrypt"],
                    "Resource": [source_key_arn],
                    "Condition": {
                        "StringEquals": {"kms:ViaService": f"s3.{source_region}.amazonaws.com"},
                        "ArnLike": {
                            "kms:EncryptionContext:aws:s3:arn": [source_bucket_arn, objects]
                        },
                    },
                },
                {
                    "Sid": "EncryptReplicas",
                    "Effect": "Allow",
                    "Action": ["kms:Encrypt", "kms:GenerateDataKey"],
                    "Resource": [replica_key_arn],
                    "Condition": {
                        "StringEquals": {"kms:ViaService": f"s3.{replica_region}.amazonaws.com"},
                        "ArnLike": {
                            "kms:EncryptionContext:aws:s3:arn": [replica_bucket_arn, replicas]
                        },
                    },
                },
            ],
        },
        sort_keys=True,
    )


@dataclass(frozen=True)
class BucketReplicaArgs:
    """What a cross-region replica is built from."""

    name_prefix: str
    """Prefix of the key alias and the role (`<prefix>-<name>`)."""
    region: str
    """The replica's region; differs from the source's (validated by the settings)."""
    source_region: pulumi.Input[str]
    """The source bucket's region."""
    source_bucket_name: pulumi.Input[str]
    """The source bucket; the replica is `<source>-replica`."""
    source_bucket_arn: pulumi.Input[str]
    """The source bucket's ARN."""
    source_key_arn: pulumi.Input[str]
    """The key the source objects are encrypted with."""
    key_policy: pulumi.Input[str]
    """The replica key's policy (for the replica region)."""
    tags: Mapping[str, str]
    """Tags for every taggable resource."""
    prefix: str = ""
    """Replicate only keys under this prefix (e.g. `raw/`); empty: the whole bucket."""
    storage_class: str = "STANDARD"
    """The replicas' storage class."""
    noncurrent_version_expiration_days: int = 30
    """Days an overwritten version of a replica is kept."""
    force_destroy: bool = False
    """Let a destroy delete the replica with its objects."""
    protect: bool = False
    """Protect the replica bucket and key (prod)."""
    depends_on: Sequence[pulumi.Resource] = ()
    """What must exist first: the source's versioning (S3 refuses replication without it)."""


class BucketReplica(pulumi.ComponentResource):
    """A replica bucket in another region with its key, role and replication rule."""

    bucket_arn: pulumi.Output[str]
    """The replica bucket's ARN."""
    key_arn: pulumi.Output[str]
    """The replica key's ARN."""

    def __init__(
        self, name: str, args: BucketReplicaArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("dataplatform:index:BucketReplica", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        region = args.region
        account = aws.get_caller_identity_output(
            opts=pulumi.InvokeOutputOptions(parent=self)
        ).account_id
        key = aws.kms.Key(
            f"{name}-key",
            description=f"{args.name_prefix}: {name} in {region}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=args.key_policy,
            region=region,
            tags=args.tags,
            opts=stateful(self, args.protect),
        )
        aws.kms.Alias(
            f"{name}-key-alias",
            name=f"alias/{args.name_prefix}-{name}",
            target_key_id=key.id,
            region=region,
            opts=child,
        )
        bucket = aws.s3.Bucket(
            f"{name}-bucket",
            bucket=pulumi.Output.from_input(args.source_bucket_name).apply(
                lambda source: f"{source}-replica"
            ),
            force_destroy=args.force_destroy,
            region=region,
            tags=args.tags,
            opts=stateful(self, args.protect),
        )
        rails = guard_rails(self, name, bucket, region)
        kms_encryption(self, name, bucket, key.arn, region)
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=[
                {
                    "id": "replica-hygiene",
                    "status": "Enabled",
                    "filter": {"prefix": ""},
                    "noncurrent_version_expiration": {
                        "noncurrent_days": args.noncurrent_version_expiration_days
                    },
                    "abort_incomplete_multipart_upload": {"days_after_initiation": 7},
                }
            ],
            region=region,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(rails)),
        )
        aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket.id,
            policy=bucket.arn.apply(tls_only_policy),
            region=region,
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(rails)),
        )
        role = aws.iam.Role(
            f"{name}-role",
            name=f"{args.name_prefix}-{name}",
            assume_role_policy=pulumi.Output.all(args.source_bucket_arn, account).apply(
                lambda values: replication_trust_policy(values[0], values[1])
            ),
            description=f"{args.name_prefix}: S3 replication to {region}",
            tags=args.tags,
            opts=child,
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-role-policy",
            role=role.id,
            policy=pulumi.Output.all(
                args.source_bucket_arn, args.source_key_arn, args.source_region, bucket.arn, key.arn
            ).apply(
                lambda values: replication_policy(
                    source_bucket_arn=values[0],
                    source_key_arn=values[1],
                    source_region=values[2],
                    replica_bucket_arn=values[3],
                    replica_key_arn=values[4],
                    replica_region=region,
                    prefix=args.prefix,
                )
            ),
            opts=child,
        )
        aws.s3.BucketReplicationConfig(
            f"{name}-replication",
            bucket=args.source_bucket_name,
            role=role.arn,
            rules=[
                {
                    "id": f"{args.prefix.strip('/') or 'all'}-to-{region}",
                    "status": "Enabled",
                    "priority": 1,
                    "filter": {"prefix": args.prefix},
                    "delete_marker_replication": {"status": "Disabled"},
                    "source_selection_criteria": {
                        "sse_kms_encrypted_objects": {"status": "Enabled"}
                    },
                    "destination": {
                        "bucket": bucket.arn,
                        "storage_class": args.storage_class,
                        "encryption_configuration": {"replica_kms_key_id": key.arn},
                    },
                }
            ],
            opts=pulumi.ResourceOptions(
                parent=self, depends_on=[*args.depends_on, *rails, role_policy]
            ),
        )
        self.bucket_arn = bucket.arn
        self.key_arn = key.arn
        self.register_outputs({"bucket_arn": self.bucket_arn, "key_arn": self.key_arn})

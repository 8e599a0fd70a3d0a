"""DataLake: one S3 bucket with a prefix per zone, private, encrypted, versioned, TLS-only.

One bucket rather than one per zone: one KMS key, one policy, one notification configuration and
one set of guard rails to get right, while IAM still separates the zones by prefix (the processor
may read `raw/` and write the other zones, nothing more). Lifecycle rules are per prefix too.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.buckets import (
    AccessLogBucket,
    AccessLogBucketArgs,
    BucketReplica,
    BucketReplicaArgs,
    guard_rails,
    kms_encryption,
    tls_only_policy,
)
from components.kms import stateful
from components.settings import LakeSettings
from etl.contract import Zone

ARTIFACTS_PREFIX = "artifacts/"
"""Where deployment artifacts (the processor bundle) live, outside every data zone."""
ATHENA_RESULTS_PREFIX = "athena-results/"
"""Where the Athena workgroup writes query results (components/catalog.py)."""
ATHENA_RESULTS_EXPIRATION_DAYS = 30
"""Query results are copies of what a query selected: kept a month for re-downloads, then gone."""


@dataclass(frozen=True)
class DataLakeArgs:
    """What the lake is built from."""

    name_prefix: str
    """`<project>-<stack>` (at most 33 characters, see the settings); the bucket is
    `<name_prefix>-lake-<8 hex>`, well under S3's 63."""
    settings: LakeSettings
    """Teardown behaviour and lifecycle days (see `LakeSettings` for defaults and ranges)."""
    tags: Mapping[str, str]
    """Tags for every taggable resource."""
    key_policy: pulumi.Input[str] | None = None
    """The lake key's policy (`components.kms.stack_key_policy`); None keeps AWS's default."""
    protect: bool = False
    """Protect the bucket and the key (prod): Pulumi refuses to delete or replace them, and a
    `pulumi destroy` leaves them in the account (`retain_on_delete`). Default false (dev)."""
    log_retention_days: int = 90
    """Days the bucket's server access logs are kept (the stack's log retention)."""
    replica_key_policy: pulumi.Input[str] | None = None
    """The replica key's policy, for `settings.replica_region`; required when that is set."""


__all__ = ["ARTIFACTS_PREFIX", "DataLake", "DataLakeArgs", "lifecycle_rules", "tls_only_policy"]


def lifecycle_rules(
    settings: LakeSettings,
) -> list[aws.s3.BucketLifecycleConfigurationRuleArgsDict]:
    """The lifecycle rules of the lake, one per zone that ages, plus one for the whole bucket.

    raw/ is kept forever but moves to Standard-IA and then to an archive class; rejects/,
    quarantine/ and Athena's query results expire; processed/ and reports/ stay in Standard
    (they are what people query).
    The bucket-wide rule removes overwritten versions, delete markers left behind by expiry, and
    abandoned multipart uploads, which S3 would otherwise bill for indefinitely.
    """
    return [
        {
            "id": "raw-tiering",
            "status": "Enabled",
            "filter": {"prefix": Zone.RAW.prefix},
            "transitions": [
                {
                    "days": settings.raw_infrequent_access_days,
                    "storage_class": "STANDARD_IA",
                },
                {
                    "days": settings.raw_archive_days,
                    "storage_class": settings.raw_archive_storage_class.value,
                },
            ],
        },
        {
            "id": "rejects-expiry",
            "status": "Enabled",
            "filter": {"prefix": Zone.REJECTS.prefix},
            "expiration": {"days": settings.rejects_expiration_days},
        },
        {
            "id": "quarantine-expiry",
            "status": "Enabled",
            "filter": {"prefix": Zone.QUARANTINE.prefix},
            "expiration": {"days": settings.quarantine_expiration_days},
        },
        {
            "id": "bucket-hygiene",
            "status": "Enabled",
            "filter": {"prefix": ""},
            "abort_incomplete_multipart_upload": {
                "days_after_initiation": settings.abort_incomplete_upload_days
            },
            "noncurrent_version_expiration": {
                "noncurrent_days": settings.noncurrent_version_expiration_days
            },
            "expiration": {"expired_object_delete_marker": True},
        },
        {
            "id": "athena-results-expiry",
            "status": "Enabled",
            "filter": {"prefix": ATHENA_RESULTS_PREFIX},
            "expiration": {"days": ATHENA_RESULTS_EXPIRATION_DAYS},
        },
    ]


def _bucket_name(name_prefix: str, suffix_hex: str) -> str:
    """The bucket's globally unique name: the stack's prefix plus a random suffix."""
    return f"{name_prefix}-lake-{suffix_hex}"


class DataLake(pulumi.ComponentResource):
    """The lake bucket with its KMS key and guard rails."""

    bucket_name: pulumi.Output[str]
    """The bucket's name (`<prefix>-lake-<hex>`)."""
    bucket_arn: pulumi.Output[str]
    """The bucket's ARN."""
    kms_key_arn: pulumi.Output[str]
    """The customer-managed key that encrypts every object."""

    def __init__(
        self, name: str, args: DataLakeArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("dataplatform:index:DataLake", name, None, opts)
        key = self._key(name, args)
        suffix = random.RandomId(
            f"{name}-suffix", byte_length=4, opts=pulumi.ResourceOptions(parent=self)
        )
        bucket = self._bucket(name, args, suffix)
        ownership, public_access, versioning = guard_rails(self, name, bucket)
        self._storage(name, args, bucket, key, versioning)
        self._policy(name, bucket, ownership, public_access)
        self._access_logs(name, args, bucket, suffix)
        if args.settings.replica_region:
            self._replica(name, args, bucket, key, versioning)

        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        self.kms_key_arn = key.arn
        self.register_outputs(
            {
                "bucket_name": self.bucket_name,
                "bucket_arn": self.bucket_arn,
                "kms_key_arn": self.kms_key_arn,
            }
        )

    def _key(self, name: str, args: DataLakeArgs) -> aws.kms.Key:
        """The key that encrypts every object, with an alias."""
        child = pulumi.ResourceOptions(parent=self)
        prefix = args.name_prefix
        key = aws.kms.Key(
            f"{name}-key",
            description=f"{prefix}: data lake objects",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=args.key_policy,
            tags=args.tags,
            opts=stateful(self, args.protect),
        )
        aws.kms.Alias(
            f"{name}-key-alias", name=f"alias/{prefix}-lake", target_key_id=key.id, opts=child
        )
        return key

    def _bucket(self, name: str, args: DataLakeArgs, suffix: random.RandomId) -> aws.s3.Bucket:
        """The bucket, under a random suffix that makes its name globally unique."""
        prefix = args.name_prefix
        return aws.s3.Bucket(
            f"{name}-bucket",
            bucket=suffix.hex.apply(lambda hex_: _bucket_name(prefix, hex_)),
            force_destroy=args.settings.force_destroy,
            tags=args.tags,
            opts=stateful(self, args.protect),
        )

    def _storage(
        self,
        name: str,
        args: DataLakeArgs,
        bucket: aws.s3.Bucket,
        key: aws.kms.Key,
        versioning: aws.s3.BucketVersioning,
    ) -> None:
        """Default KMS encryption and the lifecycle rules."""
        kms_encryption(self, name, bucket, key.arn)
        aws.s3.BucketLifecycleConfiguration(
            f"{name}-lifecycle",
            bucket=bucket.id,
            rules=lifecycle_rules(args.settings),
            # Noncurrent-version rules only make sense once versioning is on.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[versioning]),
        )

    def _access_logs(
        self, name: str, args: DataLakeArgs, bucket: aws.s3.Bucket, suffix: random.RandomId
    ) -> None:
        """Server access logs of the lake, in a bucket of their own (components/buckets.py)."""
        prefix = args.name_prefix
        logs = AccessLogBucket(
            f"{name}-access-logs",
            AccessLogBucketArgs(
                bucket_name=suffix.hex.apply(lambda hex_: f"{prefix}-access-logs-{hex_}"),
                source_bucket_arns=[bucket.arn],
                retention_days=args.log_retention_days,
                tags=args.tags,
                force_destroy=args.settings.force_destroy,
                protect=args.protect,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        aws.s3.BucketLogging(
            f"{name}-logging",
            bucket=bucket.id,
            target_bucket=logs.bucket_name,
            target_prefix="lake/",
            opts=pulumi.ResourceOptions(parent=self, depends_on=[logs]),
        )

    def _replica(
        self,
        name: str,
        args: DataLakeArgs,
        bucket: aws.s3.Bucket,
        key: aws.kms.Key,
        versioning: aws.s3.BucketVersioning,
    ) -> None:
        """raw/ replicated to the replica region: the one zone nothing can rebuild."""
        region = args.settings.replica_region
        if region is None or args.replica_key_policy is None:
            raise ValueError("a replica needs replica_region and replica_key_policy")
        source_region = aws.get_region_output(opts=pulumi.InvokeOutputOptions(parent=self)).region
        BucketReplica(
            f"{name}-replica",
            BucketReplicaArgs(
                name_prefix=args.name_prefix,
                region=region,
                source_region=source_region,
                source_bucket_name=bucket.bucket,
                source_bucket_arn=bucket.arn,
                source_key_arn=key.arn,
                key_policy=args.replica_key_policy,
                tags=args.tags,
                prefix=Zone.RAW.prefix,
                storage_class=args.settings.raw_archive_storage_class.value,
                noncurrent_version_expiration_days=args.settings.noncurrent_version_expiration_days,
                force_destroy=args.settings.force_destroy,
                protect=args.protect,
                depends_on=[versioning],
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _policy(
        self,
        name: str,
        bucket: aws.s3.Bucket,
        ownership: aws.s3.BucketOwnershipControls,
        public_access: aws.s3.BucketPublicAccessBlock,
    ) -> None:
        """The TLS-only bucket policy."""
        aws.s3.BucketPolicy(
            f"{name}-policy",
            bucket=bucket.id,
            policy=bucket.arn.apply(tls_only_policy),
            # S3 rejects concurrent changes to a bucket's access settings; serialise them.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[public_access, ownership]),
        )

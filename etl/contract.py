"""The lake's zone prefixes and the S3 actions the processor needs in each.

One table shared by the processor (`etl.lake`) and by the IAM policy the infrastructure gives it
(`components.processor`), so that what the code does and what the role allows cannot drift apart.
No imports: the Pulumi program reads it without loading the ETL.
"""

from __future__ import annotations

RAW_PREFIX = "raw/"
PROCESSED_PREFIX = "processed/"
REJECTS_PREFIX = "rejects/"
REPORTS_PREFIX = "reports/"
QUARANTINE_PREFIX = "quarantine/"

S3_ACCESS: dict[str, tuple[str, ...]] = {
    RAW_PREFIX: ("s3:GetObject", "s3:GetObjectVersion"),
    PROCESSED_PREFIX: ("s3:DeleteObject", "s3:PutObject"),
    REJECTS_PREFIX: ("s3:DeleteObject", "s3:PutObject"),
    REPORTS_PREFIX: ("s3:DeleteObject", "s3:PutObject"),
    QUARANTINE_PREFIX: ("s3:PutObject",),
}
"""The S3 actions the processor uses, per key prefix of the lake bucket: what its IAM policy must
allow (GetObjectVersion because it reads the version an event names; DeleteObject to remove a
stale report first and partial outputs after a failed write). Without s3:ListBucket on the bucket
a deleted raw object answers 403 rather than 404, and its event is retried instead of skipped:
ListBucket is deliberately not granted (it would reveal every key of the lake)."""

"""The data lake bucket's guard rails, asserted on what the program registers for each stack."""

from __future__ import annotations

from dataplatform.mocks import ProgramRun
from tests.infra.support import inputs, policy_document, setting, setting_int, statements

BUCKET = "aws:s3/bucket:Bucket"


def _lake_bucket(run: ProgramRun) -> str:
    return str(run.one(BUCKET, "lake-bucket").outputs["bucket"])


def test_public_access_block_sets_all_four_flags(stack_run: ProgramRun) -> None:
    # Rule: the lake is never public - all four public access block flags, on the lake bucket.
    block = stack_run.one(
        "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "lake-public-access"
    )
    flags = inputs(block)
    expected = ["blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"]
    assert all(flags.get(flag) is True for flag in expected), f"{block.urn}: {flags}"
    assert flags["bucket"] == _lake_bucket(stack_run), f"{block.urn} guards another bucket"


def test_objects_are_encrypted_with_the_lake_key_and_a_bucket_key(stack_run: ProgramRun) -> None:
    # Rule: SSE-KMS with the lake's customer-managed key, and an S3 bucket key.
    encryption = stack_run.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
        "lake-encryption",
    )
    (rule,) = inputs(encryption)["rules"]
    default = rule["applyServerSideEncryptionByDefault"]
    lake_key = stack_run.one("aws:kms/key:Key", "lake-key").outputs["arn"]
    assert default == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": lake_key}, encryption.urn
    assert rule["bucketKeyEnabled"] is True, f"{encryption.urn}: no bucket key"


def test_versioning_is_enabled(stack_run: ProgramRun) -> None:
    # Rule: every overwrite or delete stays recoverable for the noncurrent-version window.
    versioning = stack_run.one("aws:s3/bucketVersioning:BucketVersioning", "lake-versioning")
    assert inputs(versioning)["versioningConfiguration"] == {"status": "Enabled"}, versioning.urn


def test_object_ownership_is_enforced(stack_run: ProgramRun) -> None:
    # Rule: BucketOwnerEnforced disables ACLs, so only IAM and the bucket policy grant access.
    ownership = stack_run.one(
        "aws:s3/bucketOwnershipControls:BucketOwnershipControls", "lake-ownership"
    )
    assert inputs(ownership)["rule"] == {"objectOwnership": "BucketOwnerEnforced"}, ownership.urn


def test_bucket_policy_denies_requests_without_tls(stack_run: ProgramRun) -> None:
    # Rule: deny every request whose aws:SecureTransport is false, on the bucket and its objects.
    policy = stack_run.one("aws:s3/bucketPolicy:BucketPolicy", "lake-policy")
    arn = stack_run.one(BUCKET, "lake-bucket").outputs["arn"]
    denials = [
        statement
        for statement in statements(policy_document(policy))
        if statement["Effect"] == "Deny"
        and statement.get("Condition") == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert len(denials) == 1, f"{policy.urn}: no TLS-only denial"
    assert set(denials[0]["Resource"]) == {arn, f"{arn}/*"}, policy.urn
    assert (denials[0]["Principal"], denials[0]["Action"]) == ("*", ["s3:*"]), policy.urn


def test_raw_zone_moves_to_infrequent_access_then_archive(stack_run: ProgramRun) -> None:
    # Rule: raw/ transitions to Standard-IA, then to the archive class, at the stack's days.
    lifecycle = stack_run.one(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "lake-lifecycle"
    )
    (rule,) = [r for r in inputs(lifecycle)["rules"] if r["filter"] == {"prefix": "raw/"}]
    stack = stack_run.stack
    assert rule["transitions"] == [
        {"storageClass": "STANDARD_IA", "days": setting_int(stack, "rawInfrequentAccessDays")},
        {
            "storageClass": setting(stack, "rawArchiveStorageClass"),
            "days": setting_int(stack, "rawArchiveDays"),
        },
    ], lifecycle.urn
    assert "expiration" not in rule, f"{lifecycle.urn}: raw data must never expire"


def test_rejects_and_quarantine_expire(stack_run: ProgramRun) -> None:
    # Rule: rejects/ and quarantine/ are deleted after the stack's expiry days (and Athena's
    # results after 30, tests/infra/test_catalog.py).
    lifecycle = stack_run.one(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "lake-lifecycle"
    )
    expiry = {
        rule["filter"]["prefix"]: rule["expiration"]["days"]
        for rule in inputs(lifecycle)["rules"]
        if "days" in rule.get("expiration", {})
    }
    assert expiry == {
        "rejects/": setting_int(stack_run.stack, "rejectsExpirationDays"),
        "quarantine/": setting_int(stack_run.stack, "quarantineExpirationDays"),
        "athena-results/": 30,
    }, lifecycle.urn


def test_whole_bucket_aborts_uploads_and_expires_old_versions(stack_run: ProgramRun) -> None:
    # Rule: abandoned multipart uploads and noncurrent versions do not accumulate anywhere.
    lifecycle = stack_run.one(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "lake-lifecycle"
    )
    (rule,) = [r for r in inputs(lifecycle)["rules"] if r["filter"] == {"prefix": ""}]
    stack = stack_run.stack
    assert rule["abortIncompleteMultipartUpload"] == {
        "daysAfterInitiation": setting_int(stack, "abortIncompleteUploadDays")
    }, lifecycle.urn
    assert rule["noncurrentVersionExpiration"] == {
        "noncurrentDays": setting_int(stack, "noncurrentVersionExpirationDays")
    }, lifecycle.urn
    assert all(r["status"] == "Enabled" for r in inputs(lifecycle)["rules"]), lifecycle.urn


def test_force_destroy_only_in_dev(stack_run: ProgramRun) -> None:
    # Rule: only dev may delete a non-empty lake on `pulumi destroy`.
    bucket = stack_run.one(BUCKET, "lake-bucket")
    assert inputs(bucket)["forceDestroy"] is (stack_run.stack == "dev"), bucket.urn


def test_bucket_name_carries_the_random_suffix(stack_run: ProgramRun) -> None:
    # Rule: bucket names are global; the stack prefix plus a pulumi-random suffix avoids clashes.
    suffix = stack_run.one("random:index/randomId:RandomId", "lake-suffix").outputs["hex"]
    name = _lake_bucket(stack_run)
    assert name == f"dataplatform-{stack_run.stack}-lake-{suffix}", name

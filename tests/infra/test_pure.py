"""The components' pure functions: policies, CIDR maths, lifecycle rules, hashes."""

from __future__ import annotations

import base64
import hashlib
import ipaddress
import json
from pathlib import Path

import pytest

from components.data_lake import lifecycle_rules, tls_only_policy
from components.database import connection_secret, parameters
from components.network import _zone, private_subnet_cidrs
from components.processor import (
    TRACING_ACTIONS,
    VPC_DESCRIBE_ACTIONS,
    bundle_digest,
    bundle_key,
    db_user_arn,
    migrations_digest,
    processor_policy,
    queue_policy,
    read_migrations,
    redrive_policy,
)
from components.settings import ArchiveStorageClass, LakeSettings
from etl.contract import S3_ACCESS, Zone

BUCKET = "arn:aws:s3:::lake"
ARNS = {
    "bucket_arn": BUCKET,
    "lake_key_arn": "arn:aws:kms:us-east-1:1:key/lake",
    "secret_arn": "arn:aws:secretsmanager:us-east-1:1:secret:db",
    "secret_key_arn": "arn:aws:kms:us-east-1:1:key/db",
    "queue_arn": "arn:aws:sqs:us-east-1:1:q",
    "log_group_arn": "arn:aws:logs:us-east-1:1:log-group:/aws/lambda/f",
    "database_user_arn": "arn:aws:rds-db:us-east-1:1:dbuser:db-ABC/dataplatform_processor",
    "vpc_arn": "arn:aws:ec2:us-east-1:1:vpc/vpc-1",
    "subnet_arns": ["arn:aws:ec2:us-east-1:1:subnet/subnet-1"],
    "security_group_arn": "arn:aws:ec2:us-east-1:1:security-group/sg-1",
    "network_interfaces_arn": "arn:aws:ec2:us-east-1:1:network-interface/*",
}
LAKE = LakeSettings(
    force_destroy=False,
    raw_infrequent_access_days=31,
    raw_archive_days=95,
    raw_archive_storage_class=ArchiveStorageClass.GLACIER,
    rejects_expiration_days=11,
    quarantine_expiration_days=12,
    noncurrent_version_expiration_days=13,
    abort_incomplete_upload_days=2,
)


def test_tls_policy_denies_plain_http_on_bucket_and_objects() -> None:
    # Rule: the TLS-only statement covers both the bucket and every object.
    statements = json.loads(tls_only_policy(BUCKET))["Statement"]
    insecure = [
        s for s in statements if s["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    ]
    assert [(s["Effect"], s["Resource"]) for s in insecure] == [("Deny", [BUCKET, f"{BUCKET}/*"])]


def test_tls_policy_denies_tls_older_than_1_2() -> None:
    # Rule: TLS 1.0/1.1 clients are refused too.
    statements = json.loads(tls_only_policy(BUCKET))["Statement"]
    assert {"NumericLessThan": {"s3:TlsVersion": "1.2"}} in [s["Condition"] for s in statements]


def test_subnets_are_the_first_two_quarters_of_the_vpc() -> None:
    # Rule: two disjoint subnets inside the VPC, leaving half of it free.
    assert private_subnet_cidrs("10.40.0.0/16") == ["10.40.0.0/18", "10.40.64.0/18"]


@pytest.mark.parametrize("cidr", ["10.0.0.0/16", "172.16.4.0/22", "192.168.7.0/24"])
def test_subnets_fit_any_allowed_vpc_size(cidr: str) -> None:
    # Rule: for every VPC size the settings accept, the subnets are inside and disjoint.
    vpc = ipaddress.IPv4Network(cidr)
    first, second = (ipaddress.IPv4Network(c) for c in private_subnet_cidrs(cidr))
    assert [first.subnet_of(vpc), second.subnet_of(vpc)] == [True, True]
    assert not first.overlaps(second)


def test_subnet_count_beyond_the_quarters_is_refused() -> None:
    # Rule: asking for more subnets than quarters is an error, not a silent overlap.
    with pytest.raises(ValueError, match="room for 4 subnets"):
        private_subnet_cidrs("10.0.0.0/16", count=5)


def test_zones_are_distinct_and_a_single_zone_region_is_refused() -> None:
    # Rule: subnet i gets the i-th zone; a region with one zone cannot host the database.
    assert [_zone(["b", "a", "c"], i) for i in (0, 1)] == ["a", "b"]
    with pytest.raises(ValueError, match="need 2"):
        _zone(["a"], 0)


def test_lifecycle_rules_follow_the_settings() -> None:
    # Rule: each zone's rule carries exactly the days of the settings.
    rules = {rule["id"]: rule for rule in lifecycle_rules(LAKE)}
    assert rules["raw-tiering"]["transitions"] == [
        {"days": 31, "storage_class": "STANDARD_IA"},
        {"days": 95, "storage_class": "GLACIER"},
    ]
    assert rules["rejects-expiry"]["expiration"] == {"days": 11}
    assert rules["quarantine-expiry"]["expiration"] == {"days": 12}
    assert rules["bucket-hygiene"]["noncurrent_version_expiration"] == {"noncurrent_days": 13}
    assert rules["bucket-hygiene"]["abort_incomplete_multipart_upload"] == {
        "days_after_initiation": 2
    }


def test_lifecycle_filters_are_the_zone_prefixes() -> None:
    # Rule: every rule is scoped by a prefix; processed/ and reports/ never age.
    prefixes = [rule["filter"]["prefix"] for rule in lifecycle_rules(LAKE)]  # type: ignore[index]
    assert prefixes == ["raw/", "rejects/", "quarantine/", "", "athena-results/"]


def test_bundle_digest_is_sha256_in_hex_and_base64() -> None:
    # Rule: the S3 key uses the hex digest, Lambda's source_code_hash the base64 one.
    digest = bundle_digest(b"zip bytes")
    raw = hashlib.sha256(b"zip bytes").digest()
    assert (digest.hex, digest.base64) == (raw.hex(), base64.b64encode(raw).decode())


def test_bundle_key_changes_exactly_when_the_content_does() -> None:
    # Rule: same bytes, same key (no redeploy); one byte different, a new key.
    assert bundle_key(bundle_digest(b"a")) == bundle_key(bundle_digest(b"a"))
    assert bundle_key(bundle_digest(b"a")) != bundle_key(bundle_digest(b"b"))
    assert bundle_key(bundle_digest(b"a")).startswith("artifacts/processor/")


def test_migrations_digest_ignores_order_but_not_names_or_content() -> None:
    # Rule: the migration trigger changes when a file is added, renamed or edited, never otherwise.
    files = {"001_init.sql": b"create table t();", "002_more.sql": b"alter table t;"}
    reordered = dict(reversed(list(files.items())))
    assert migrations_digest(files) == migrations_digest(reordered)
    assert migrations_digest(files) != migrations_digest(
        {**files, "002_more.sql": b"alter table u;"}
    )
    assert migrations_digest(files) != migrations_digest(
        {"001_init.sql": files["001_init.sql"], "003_more.sql": files["002_more.sql"]}
    )
    assert migrations_digest(files) != migrations_digest({})


def test_read_migrations_takes_sql_files_and_tolerates_absence(tmp_path: Path) -> None:
    # Rule: an absent folder is no migrations; only *.sql files count.
    assert read_migrations(tmp_path / "absent") == {}
    (tmp_path / "001_init.sql").write_bytes(b"select 1;")
    (tmp_path / "README.md").write_text("not a migration")
    assert read_migrations(tmp_path) == {"001_init.sql": b"select 1;"}


def test_processor_policy_wildcards_are_only_actions_without_resource_types() -> None:
    # Rule: no action is a wildcard; only the Describe and X-Ray actions apply to every resource.
    statements = json.loads(processor_policy(**ARNS))["Statement"]  # type: ignore[arg-type]
    assert not [a for s in statements for a in s["Action"] if "*" in a]
    assert sorted(a for s in statements if s["Resource"] == ["*"] for a in s["Action"]) == sorted(
        (*VPC_DESCRIBE_ACTIONS, *TRACING_ACTIONS)
    )


def test_processor_policy_scopes_objects_to_zone_prefixes() -> None:
    # Rule: object reads under raw/ only; writes (and cleanup deletes) under the output zones.
    statements = {
        s["Sid"]: s
        for s in json.loads(processor_policy(**ARNS))["Statement"]  # type: ignore[arg-type]
    }
    zones = {
        sid: (s["Action"], s["Resource"]) for sid, s in statements.items() if sid.endswith("Zone")
    }
    assert zones == {
        "RawZone": (["s3:GetObject", "s3:GetObjectVersion"], [f"{BUCKET}/raw/*"]),
        "ProcessedZone": (["s3:DeleteObject", "s3:PutObject"], [f"{BUCKET}/processed/*"]),
        "RejectsZone": (["s3:DeleteObject", "s3:PutObject"], [f"{BUCKET}/rejects/*"]),
        "ReportsZone": (["s3:DeleteObject", "s3:PutObject"], [f"{BUCKET}/reports/*"]),
        "QuarantineZone": (["s3:PutObject"], [f"{BUCKET}/quarantine/*"]),
        "MasterZone": (["s3:PutObject"], [f"{BUCKET}/master/*"]),
    }


def test_lake_zones_and_processor_access_name_the_same_prefixes() -> None:
    # Rule: the bucket's zones and the processor's access table describe the same lake.
    assert {zone.prefix for zone in Zone} == set(S3_ACCESS)


def test_queue_policy_admits_only_the_lake_bucket_over_tls() -> None:
    # Rule: S3 may send only for the lake bucket in this account; plain HTTP is denied.
    statements = json.loads(queue_policy(queue_arn="q", bucket_arn=BUCKET, account_id="1"))[
        "Statement"
    ]
    allow, deny = statements
    assert allow["Condition"] == {
        "ArnEquals": {"aws:SourceArn": BUCKET},
        "StringEquals": {"aws:SourceAccount": "1"},
    }
    assert (deny["Effect"], deny["Condition"]) == (
        "Deny",
        {"Bool": {"aws:SecureTransport": "false"}},
    )


def test_redrive_policy_names_the_dlq_and_the_receive_count() -> None:
    # Rule: SQS's redrive JSON with the count as a number.
    assert json.loads(redrive_policy("dlq", 4)) == {
        "deadLetterTargetArn": "dlq",
        "maxReceiveCount": 4,
    }


def test_connection_secret_uses_the_rds_key_names() -> None:
    # Rule: the keys RDS-managed secrets use, so standard clients and rotation read it.
    document = connection_secret(host="h", port=5432, username="u", password="p", dbname="d")
    assert sorted(document) == ["dbname", "engine", "host", "password", "port", "username"]


def test_parameters_force_tls() -> None:
    # Rule: rds.force_ssl=1.
    assert {"name": "rds.force_ssl", "value": "1"} in parameters(1000)


def test_parameters_log_ddl_slow_statements_and_connections() -> None:
    # Rule: the parameter group logs DDL, statements over the threshold, connections.
    values = {p["name"]: p["value"] for p in parameters(250)}
    assert values["log_statement"] == "ddl", values
    assert values["log_min_duration_statement"] == "250", values
    assert (values["log_connections"], values["log_disconnections"]) == ("1", "1"), values


def test_db_user_arn_names_one_user_of_one_instance() -> None:
    # Rule: the db-user ARN of the Service Authorization Reference, by DbiResourceId.
    arn = db_user_arn(
        region="eu-west-1", account_id="123456789012", resource_id="db-ABCDEF", user="loader"
    )
    assert arn == "arn:aws:rds-db:eu-west-1:123456789012:dbuser:db-ABCDEF/loader"

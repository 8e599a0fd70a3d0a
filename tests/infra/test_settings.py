"""Settings parsing (pure) and the config files that feed it."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from components.settings import (
    CONFIG_KEYS,
    PASSWORD_KEY,
    Environment,
    Settings,
    SettingsError,
    parse_settings,
)
from etl.contract import Architecture
from tests.infra.support import ROOT, STACKS, TEST_PASSWORD, write_bundle

PROJECT_CONFIG = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]


def _parse(tmp_path: Path, stack: str = "dev", **raw: str) -> Settings:
    architecture = Architecture(raw.get("processorArchitecture", "arm64"))
    bundle = write_bundle(tmp_path / "processor.zip", architecture=architecture)
    values: dict[str, str | None] = {
        PASSWORD_KEY: TEST_PASSWORD,
        "processorBundlePath": str(bundle),
    }
    values.update(raw)
    return parse_settings(
        values, project="dataplatform", stack=stack, root=tmp_path, password=TEST_PASSWORD
    )


def test_pulumi_yaml_declares_every_setting_with_its_type_and_default() -> None:
    # Rule: Pulumi.yaml's config block and the program's key list are the same, key for key.
    declared = {
        key: (spec["type"], spec.get("default"), spec.get("secret", False))
        for key, spec in PROJECT_CONFIG.items()
    }
    expected = {key.name: (key.type, key.default, key.secret) for key in CONFIG_KEYS}
    assert declared == expected


def test_every_setting_has_a_description() -> None:
    # Rule: `pulumi config` users see what each key means.
    undocumented = [key for key, spec in PROJECT_CONFIG.items() if not spec.get("description")]
    assert undocumented == [], undocumented


@pytest.mark.parametrize("stack", STACKS)
def test_stack_files_only_set_declared_keys(stack: str) -> None:
    # Rule: a typo in a stack file would silently fall back to a default; every key must exist.
    config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    unknown = [
        key
        for key in config
        if key.startswith("dataplatform:") and key.split(":", 1)[1] not in PROJECT_CONFIG
    ]
    assert unknown == [], unknown
    assert "aws:region" in config, f"Pulumi.{stack}.yaml has no aws:region"


@pytest.mark.parametrize("stack", STACKS)
def test_stack_files_hold_no_plaintext_password(stack: str) -> None:
    # Rule: dbPassword only ever lives in a stack file as `secure:` ciphertext.
    config = yaml.safe_load((ROOT / f"Pulumi.{stack}.yaml").read_text())["config"]
    value = config.get(f"dataplatform:{PASSWORD_KEY}")
    assert value is None or (isinstance(value, dict) and set(value) == {"secure"}), stack


def test_defaults_are_a_valid_prod_configuration(tmp_path: Path) -> None:
    # Rule: a new stack with nothing set gets prod's protections and passes validation.
    settings = _parse(tmp_path, stack="staging")
    assert settings.environment is Environment.PROD
    assert settings.database.deletion_protection


def test_architecture_is_an_enum_choice(tmp_path: Path) -> None:
    # Rule: restricted choices parse into their Enum.
    settings = _parse(tmp_path, processorArchitecture="x86_64")
    assert settings.processor.architecture is Architecture.X86_64


@pytest.mark.parametrize(
    ("raw", "key"),
    [
        ({"quarantineExpirationDays": "0"}, "quarantineExpirationDays"),
        ({"rawInfrequentAccessDays": "10"}, "rawInfrequentAccessDays"),
        ({"processorEphemeralStorageMb": "256"}, "processorEphemeralStorageMb"),
        ({"processorBatchSize": "abc"}, "processorBatchSize"),
        ({"lakeForceDestroy": "yes"}, "lakeForceDestroy"),
        ({"dbMaxAllocatedStorageGb": "10"}, "dbMaxAllocatedStorageGb"),
        ({"dbPerformanceInsightsRetentionDays": "30"}, "dbPerformanceInsightsRetentionDays"),
        ({"dbUsername": "rdsadmin"}, "dbUsername"),
        ({"dbName": "1st"}, "dbName"),
        ({"dbInstanceClass": "m5.large"}, "dbInstanceClass"),
        ({"alarmTopicArn": "not-an-arn"}, "alarmTopicArn"),
        ({"environment": "staging"}, "environment"),
        ({PASSWORD_KEY: ""}, PASSWORD_KEY),
        ({PASSWORD_KEY: 'quote"d-password'}, PASSWORD_KEY),
        ({PASSWORD_KEY: "x" * 129}, PASSWORD_KEY),
        ({"replicaRegion": "west"}, "replicaRegion"),
        ({"replicaRegion": ""}, "replicaRegion"),  # prod (the default environment) needs one
        ({"dbMonitoringIntervalSeconds": "0"}, "dbMonitoringIntervalSeconds"),
        ({"dbMonitoringIntervalSeconds": "20"}, "dbMonitoringIntervalSeconds"),
        ({"dbLogMinDurationMs": "-1"}, "dbLogMinDurationMs"),
        ({"dbLogMinDurationMs": "50"}, "dbLogMinDurationMs"),
    ],
    ids=lambda value: next(iter(value)) if isinstance(value, dict) else None,
)
def test_invalid_value_is_rejected_naming_its_key(
    tmp_path: Path, raw: dict[str, str], key: str
) -> None:
    # Rule: every invalid value raises a SettingsError that names the key and the fix.
    with pytest.raises(SettingsError, match=rf"dataplatform:{key} .*\(fix: pulumi config set"):
        _parse(tmp_path, **raw)


def test_the_replica_region_must_differ_from_the_stacks(tmp_path: Path) -> None:
    # Rule: CKV_AWS_144 - a replica in the same region survives nothing the original would not.
    architecture = Architecture.ARM64
    bundle = write_bundle(tmp_path / "processor.zip", architecture=architecture)
    values: dict[str, str | None] = {
        PASSWORD_KEY: TEST_PASSWORD,
        "processorBundlePath": str(bundle),
        "replicaRegion": "eu-west-1",
    }
    with pytest.raises(SettingsError, match=r"dataplatform:replicaRegion must differ"):
        parse_settings(
            values,
            project="dataplatform",
            stack="prod",
            root=tmp_path,
            password=TEST_PASSWORD,
            region="eu-west-1",
        )


def test_dev_may_go_without_a_replica_and_keeps_monitoring(tmp_path: Path) -> None:
    # Rule: dev differs from prod only where it is disposable: no replica, but monitoring on.
    settings = _parse(tmp_path, environment="dev", replicaRegion="")
    assert settings.lake.replica_region is None
    assert settings.database.monitoring_interval_seconds == 60
    assert settings.database.log_min_duration_ms == 1000


def test_stack_name_must_fit_physical_names(tmp_path: Path) -> None:
    # Rule: the stack name becomes part of bucket and function names, so it is checked too.
    with pytest.raises(SettingsError, match="stack name 'Prod_EU'"):
        _parse(tmp_path, stack="Prod_EU")


def test_bundle_path_must_be_a_zip(tmp_path: Path) -> None:
    # Rule: the bundle must be a zip archive, not any file.
    not_zip = tmp_path / "processor.txt"
    not_zip.write_text("hello")
    with pytest.raises(SettingsError, match=r"processorBundlePath .*not a zip"):
        _parse(tmp_path, processorBundlePath=str(not_zip))


def test_a_username_longer_than_rds_allows_is_refused(tmp_path: Path) -> None:
    # Rule: RDS for PostgreSQL takes 1 to 16 characters as the master user name.
    assert _parse(tmp_path, dbUsername="a" * 16).database.username == "a" * 16
    with pytest.raises(SettingsError, match=r"dataplatform:dbUsername .*up to 15"):
        _parse(tmp_path, dbUsername="a" * 17)


def test_an_undeclared_key_is_refused_with_the_nearest_declared_one(tmp_path: Path) -> None:
    # Rule: a typo is a problem, not a silent fallback to the default.
    with pytest.raises(SettingsError) as failure:
        _parse(tmp_path, dbMultiAZ="false", processorMemroyMb="1024", somethingElse="1")
    message = str(failure.value)
    assert "dataplatform:dbMultiAZ is not a setting of this program; did you mean dbMultiAz?" in (
        message
    )
    assert "did you mean processorMemoryMb?" in message
    assert "dataplatform:somethingElse is not a setting of this program (fix" in message


def test_iam_authentication_is_no_longer_a_choice(tmp_path: Path) -> None:
    # Rule: the processor logs in with IAM tokens, so a stack may not turn them off; the former
    # setting is refused with the command that removes it.
    with pytest.raises(SettingsError) as failure:
        _parse(tmp_path, dbIamAuthentication="false")
    assert "fix: pulumi config rm dbIamAuthentication -s dev" in str(failure.value)


def test_a_secret_key_held_in_plaintext_is_refused(tmp_path: Path) -> None:
    # Rule: the program refuses what `pulumi config` would, a secret key not held encrypted.
    bundle = write_bundle(tmp_path / "processor.zip")
    values: dict[str, str | None] = {
        PASSWORD_KEY: TEST_PASSWORD,
        "processorBundlePath": str(bundle),
    }

    def parse(secret_keys: set[str]) -> Settings:
        return parse_settings(
            values,
            project="dataplatform",
            stack="dev",
            root=tmp_path,
            password=TEST_PASSWORD,
            secret_keys=secret_keys,
        )

    with pytest.raises(SettingsError, match=f"{PASSWORD_KEY} is stored in plaintext"):
        parse(set())
    settings = parse({PASSWORD_KEY})
    assert settings.database.username == "dataplatform"


def test_the_poller_leaves_one_execution_for_the_migration(tmp_path: Path) -> None:
    # Rule: the queue never takes the whole reservation, and SQS's poller needs at least 2.
    settings = _parse(tmp_path, processorReservedConcurrency="3")
    assert settings.processor.poller_concurrency == 2
    with pytest.raises(SettingsError, match="processorReservedConcurrency must be from 3"):
        _parse(tmp_path, processorReservedConcurrency="2")


def test_memory_too_small_for_the_largest_month_is_a_warning(tmp_path: Path) -> None:
    # Rule: 512 MB cannot hold a 3M-row object (about 681 MB by the model); 1024 MB can.
    small = _parse(tmp_path, processorMemoryMb="512").processor
    warning = small.memory_warning()
    assert warning is not None
    assert "processorMemoryMb is 512 MB" in warning
    assert "processorLargestMonthRows=3,000,000" in warning
    assert f"at least {small.memory_needed_mb}" in warning
    assert _parse(tmp_path, processorMemoryMb="1024").processor.memory_warning() is None


def test_a_larger_expected_month_needs_more_memory(tmp_path: Path) -> None:
    # Rule: the need grows with the rows: 16M rows do not fit 2048 MB but fit 4096 MB.
    rows = "16000000"
    needed = _parse(tmp_path, processorLargestMonthRows=rows).processor.memory_needed_mb
    assert 2048 < needed <= 4096
    for memory, warns in (("2048", True), ("4096", False)):
        processor = _parse(
            tmp_path, processorMemoryMb=memory, processorLargestMonthRows=rows
        ).processor
        assert (processor.memory_warning() is not None) is warns, memory


def test_largest_month_rows_is_validated(tmp_path: Path) -> None:
    with pytest.raises(SettingsError, match="processorLargestMonthRows"):
        _parse(tmp_path, processorLargestMonthRows="0")

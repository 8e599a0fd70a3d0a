"""A bad config value stops the real program before it registers anything, naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.settings import SettingsError
from dataplatform.mocks import RecordingMocks, run_program
from etl.contract import Architecture
from tests.infra.support import (
    PROGRAM,
    PROJECT,
    TEST_PASSWORD,
    run_stack,
    stack_config,
    write_bundle,
)

# (stack, overrides, the key the message must name)
CASES = [
    ("dev", {"rejectsExpirationDays": "-5"}, "rejectsExpirationDays"),
    ("dev", {"processorArchitecture": "sparc"}, "processorArchitecture"),
    ("dev", {"dbPassword": "short"}, "dbPassword"),
    ("dev", {"dbPassword": "has@an-at-sign"}, "dbPassword"),
    ("dev", {"dbPassword": "has a space in it"}, "dbPassword"),
    ("dev", {"rawArchiveDays": "40"}, "rawArchiveDays"),
    ("dev", {"processorMemoryMb": "64"}, "processorMemoryMb"),
    ("dev", {"processorTimeoutSeconds": "901"}, "processorTimeoutSeconds"),
    ("dev", {"processorReservedConcurrency": "0"}, "processorReservedConcurrency"),
    # One slot is the migration's and SQS's poller needs at least 2.
    ("dev", {"processorReservedConcurrency": "2"}, "processorReservedConcurrency"),
    # RDS's master user name is at most 16 characters.
    ("dev", {"dbUsername": "a" * 17}, "dbUsername"),
    ("dev", {"vpcCidr": "8.8.8.0/24"}, "vpcCidr"),
    ("dev", {"logRetentionDays": "42"}, "logRetentionDays"),
    ("dev", {"dbPostgresVersion": "15"}, "dbPostgresVersion"),
    # The ETL's own check of its thresholds: range, unknown key, not an object.
    ("dev", {"etlSettings": '{"max_speed_mph": 0}'}, "etlSettings"),
    ("dev", {"etlSettings": '{"max_sped_mph": 90}'}, "etlSettings"),
    ("dev", {"etlSettings": "[90]"}, "etlSettings"),
    ("prod", {"dbDeletionProtection": "false"}, "dbDeletionProtection"),
    ("prod", {"dbMultiAz": "false"}, "dbMultiAz"),
    ("prod", {"dbBackupRetentionDays": "3"}, "dbBackupRetentionDays"),
    ("prod", {"lakeForceDestroy": "true"}, "lakeForceDestroy"),
]


@pytest.mark.parametrize(
    ("stack", "overrides", "key"),
    CASES,
    ids=[f"{c[0]}-{c[2]}-{next(iter(c[1].values()))}" for c in CASES],
)
def test_bad_value_fails_before_any_resource(
    bundle: Path, stack: str, overrides: dict[str, str], key: str
) -> None:
    # Rule: validation names the key and runs before the first registration (not even a component).
    mocks = RecordingMocks()
    with pytest.raises(SettingsError, match=rf"dataplatform:{key} ") as failure:
        run_stack(stack, bundle, mocks, **overrides)
    assert mocks.registered == [], mocks.registered
    assert f"pulumi config set {'--secret ' if key == 'dbPassword' else ''}{key}" in str(
        failure.value
    )


def test_password_problems_never_print_the_password(bundle: Path) -> None:
    # Rule: a rejected password is described, never echoed.
    password = "my secret/password"
    with pytest.raises(SettingsError) as failure:
        run_stack("dev", bundle, dbPassword=password)
    message = str(failure.value)
    assert {"slash", "space"} <= set(message.replace(",", " ").split()), message
    assert password not in message, message
    assert TEST_PASSWORD not in message, message


def test_missing_bundle_says_how_to_build_it(bundle: Path, tmp_path: Path) -> None:
    # Rule: no resource without a bundle, and the message says how to build or point to one.
    mocks = RecordingMocks()
    with pytest.raises(SettingsError, match="processorBundlePath") as failure:
        run_stack("dev", bundle, mocks, processorBundlePath=str(tmp_path / "absent.zip"))
    assert "dataplatform bundle" in str(failure.value), failure.value
    assert mocks.registered == [], mocks.registered


def test_every_problem_is_reported_at_once(bundle: Path) -> None:
    # Rule: one run reports all bad keys, so fixing config is one round trip.
    with pytest.raises(SettingsError) as failure:
        run_stack("dev", bundle, processorMemoryMb="1", processorBatchSize="11")
    named = [
        key for key in ("processorMemoryMb", "processorBatchSize") if key in str(failure.value)
    ]
    assert named == ["processorMemoryMb", "processorBatchSize"], failure.value


def test_too_little_memory_for_the_largest_month_is_warned_and_still_deployable(
    bundle: Path,
) -> None:
    # Rule: a warning, not an error: the stack may expect smaller files than the setting says.
    run = run_stack("dev", bundle, processorMemoryMb="512")
    (warning,) = [w for w in run.warnings if "processorMemoryMb" in w]
    assert "processorMemoryMb is 512 MB" in warning, warning
    assert run.by_type("aws:lambda/function:Function"), "the program went on"


def test_a_typo_d_key_is_refused_naming_the_nearest_declared_one(bundle: Path) -> None:
    # Rule: `dbMultiAZ: false` would otherwise be ignored and dev would get Multi-AZ.
    mocks = RecordingMocks()
    with pytest.raises(SettingsError, match=r"dbMultiAZ .*did you mean dbMultiAz") as failure:
        run_stack("dev", bundle, mocks, dbMultiAZ="false")
    assert "pulumi config rm dbMultiAZ -s dev" in str(failure.value)
    assert mocks.registered == [], mocks.registered


def test_an_unknown_key_and_an_unknown_namespace_are_refused(bundle: Path) -> None:
    # Rule: nothing the program does not read may sit in the stack's config unnoticed.
    config, secret_keys = stack_config("dev", bundle)
    config.update({f"{PROJECT}:colour": "blue", "dataplatfrom:dbName": "x"})
    mocks = RecordingMocks()
    with pytest.raises(SettingsError) as failure:
        run_program(
            PROGRAM,
            project=PROJECT,
            stack="dev",
            config=config,
            secret_keys=secret_keys,
            recording_mocks=mocks,
        )
    message = str(failure.value)
    assert "dataplatform:colour is not a setting of this program (fix" in message
    assert "did you mean dataplatform:dbName?" in message
    assert mocks.registered == []


def test_a_plaintext_password_is_refused_as_the_cli_would(bundle: Path) -> None:
    # Rule: dbPassword is declared secret; a value the engine does not hold encrypted is refused.
    config, secret_keys = stack_config("dev", bundle)
    plaintext = [key for key in secret_keys if not key.endswith(":dbPassword")]
    mocks = RecordingMocks()
    with pytest.raises(SettingsError, match="dbPassword is stored in plaintext") as failure:
        run_program(
            PROGRAM,
            project=PROJECT,
            stack="dev",
            config=config,
            secret_keys=plaintext,
            recording_mocks=mocks,
        )
    assert TEST_PASSWORD not in str(failure.value)
    assert mocks.registered == []


@pytest.mark.parametrize(
    ("architecture", "python", "expected"),
    [
        (Architecture.X86_64, "3.13", "built for x86_64 but processorArchitecture is arm64"),
        (Architecture.ARM64, "3.12", "built for Python 3.12"),
        (None, "3.13", "records no target"),
    ],
)
def test_a_bundle_for_another_target_is_refused_before_any_resource(
    tmp_path: Path, architecture: Architecture | None, python: str, expected: str
) -> None:
    # Rule: the wheels would fail at the first invocation, after every resource was created.
    bundle = write_bundle(
        tmp_path / "processor.zip", architecture=architecture, python_version=python
    )
    mocks = RecordingMocks()
    with pytest.raises(SettingsError, match=rf"processorBundlePath .*{expected}"):
        run_stack("dev", bundle, mocks)
    assert mocks.registered == []


def test_a_threshold_out_of_range_says_which_and_the_range(bundle: Path) -> None:
    # Rule: `etlSettings` is judged by the ETL's own check, with its message, before any resource.
    mocks = RecordingMocks()
    with pytest.raises(SettingsError, match=r"max_speed_mph=0\.0 is out of range") as failure:
        run_stack("dev", bundle, mocks, etlSettings='{"max_speed_mph": 0}')
    assert "pulumi config set etlSettings" in str(failure.value)
    assert mocks.registered == [], mocks.registered

"""A bad config value stops the real program before it registers anything, naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from components.settings import SettingsError
from dataplatform.mocks import RecordingMocks
from tests.infra.support import TEST_PASSWORD, run_stack

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
    ("dev", {"vpcCidr": "8.8.8.0/24"}, "vpcCidr"),
    ("dev", {"logRetentionDays": "42"}, "logRetentionDays"),
    ("dev", {"dbPostgresVersion": "15"}, "dbPostgresVersion"),
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

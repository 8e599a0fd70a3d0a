"""dev and prod differ where their stack files say, and the program carries each value through."""

from __future__ import annotations

from typing import Any

import pytest

from dataplatform.mocks import ProgramRun
from tests.infra.support import inputs, setting

# (config key, resource name, path of the input that must carry it)
DIFFERENCES = [
    ("dbInstanceClass", "database-instance", ("instanceClass",)),
    ("dbAllocatedStorageGb", "database-instance", ("allocatedStorage",)),
    ("dbMultiAz", "database-instance", ("multiAz",)),
    ("dbDeletionProtection", "database-instance", ("deletionProtection",)),
    ("dbSkipFinalSnapshot", "database-instance", ("skipFinalSnapshot",)),
    ("dbBackupRetentionDays", "database-instance", ("backupRetentionPeriod",)),
    ("lakeForceDestroy", "lake-bucket", ("forceDestroy",)),
    ("logRetentionDays", "processor-logs", ("retentionInDays",)),
    ("rejectsExpirationDays", "lake-lifecycle", ("rules", 1, "expiration", "days")),
    (
        "noncurrentVersionExpirationDays",
        "lake-lifecycle",
        ("rules", 3, "noncurrentVersionExpiration", "noncurrentDays"),
    ),
    ("processorMemoryMb", "processor-function", ("memorySize",)),
    ("processorTimeoutSeconds", "processor-function", ("timeout",)),
    ("processorReservedConcurrency", "processor-function", ("reservedConcurrentExecutions",)),
    ("vpcCidr", "network-vpc", ("cidrBlock",)),
]


def _at(value: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        value = value[step]
    return value


def _as_config(value: Any) -> str:
    """A recorded input spelled as config spells it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


@pytest.mark.parametrize(("key", "resource", "path"), DIFFERENCES, ids=[d[0] for d in DIFFERENCES])
def test_stacks_differ_as_configured(
    dev_run: ProgramRun, prod_run: ProgramRun, key: str, resource: str, path: tuple[str | int, ...]
) -> None:
    # Rule: each stack's value of `key` reaches the resource, and dev and prod really differ.
    dev = _as_config(_at(inputs(dev_run.named(resource)), path))
    prod = _as_config(_at(inputs(prod_run.named(resource)), path))
    assert (dev, prod) == (setting("dev", key), setting("prod", key)), f"{resource}: {key}"
    assert dev != prod, f"{resource}: {key} is the same in dev and prod"

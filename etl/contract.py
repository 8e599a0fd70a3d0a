"""What the infrastructure and the processor must agree on, stated once.

The Pulumi program (`components/`) builds the function, its role and its settings from these
values; the processor (`etl/`) reads its environment, lake and database through the same names.
Changing one here changes both sides, so they cannot drift apart. The standard library only: the
infrastructure imports this module without loading the ETL.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Final

# --- The lake's zones and what the processor may do in each ---------------------------------------


class Zone(StrEnum):
    """The lake's zones; each is a top-level prefix of the bucket."""

    RAW = "raw"
    PROCESSED = "processed"
    REJECTS = "rejects"
    REPORTS = "reports"
    QUARANTINE = "quarantine"
    MASTER = "master"
    """The master data (zones, code tables) as Parquet, for Athena to join on."""

    @property
    def prefix(self) -> str:
        """The zone's key prefix, e.g. `raw/`."""
        return f"{self.value}/"


RAW_PREFIX: Final = Zone.RAW.prefix
PROCESSED_PREFIX: Final = Zone.PROCESSED.prefix
REJECTS_PREFIX: Final = Zone.REJECTS.prefix
REPORTS_PREFIX: Final = Zone.REPORTS.prefix
QUARANTINE_PREFIX: Final = Zone.QUARANTINE.prefix
MASTER_PREFIX: Final = Zone.MASTER.prefix

S3_ACCESS: Final[dict[str, tuple[str, ...]]] = {
    RAW_PREFIX: ("s3:GetObject", "s3:GetObjectVersion"),
    PROCESSED_PREFIX: ("s3:DeleteObject", "s3:PutObject"),
    REJECTS_PREFIX: ("s3:DeleteObject", "s3:PutObject"),
    REPORTS_PREFIX: ("s3:DeleteObject", "s3:PutObject"),
    QUARANTINE_PREFIX: ("s3:PutObject",),
    MASTER_PREFIX: ("s3:PutObject",),
}
"""The S3 actions the processor uses, per zone prefix of the lake bucket: what its IAM policy must
allow (GetObjectVersion because it reads the version an event names; DeleteObject to remove a
stale report first and partial outputs after a failed write; master/ is written by the deploy-time
migration and never read back). Without s3:ListBucket on the bucket
a deleted raw object answers 403 rather than 404, and its event is retried instead of skipped:
ListBucket is deliberately not granted (it would reveal every key of the lake)."""

# --- The function: its runtime, entry point and environment ---------------------------------------

PYTHON_VERSION: Final = "3.13"
"""Python of the Lambda runtime, as X.Y: what the bundle is built for and the function runs."""
RUNTIME: Final = f"python{PYTHON_VERSION}"
"""Lambda's runtime identifier."""


class Architecture(StrEnum):
    """Lambda's instruction set architectures."""

    ARM64 = "arm64"
    X86_64 = "x86_64"


DEFAULT_ARCHITECTURE: Final = Architecture.ARM64
"""Graviton: cheaper per GB-second, and Polars is built for it."""

BUNDLE_MANIFEST: Final = "dataplatform-bundle.json"
"""The file at the root of the processor bundle recording its target, as JSON
`{"architecture": "arm64", "python": "3.13"}`: written by `dataplatform bundle`, read by the
program, which refuses a bundle built for another architecture or Python than the stack's."""


def bundle_manifest(architecture: Architecture, python_version: str = PYTHON_VERSION) -> str:
    """The manifest's JSON text for a bundle built for `architecture` and `python_version`."""
    return json.dumps(
        {"architecture": architecture.value, "python": python_version}, sort_keys=True
    )


HANDLER: Final = "etl.handler.handler"
"""The function's entry point: module path and function name inside the bundle."""

DB_SECRET_ARN_ENV: Final = "DB_SECRET_ARN"  # noqa: S105 - a variable's name, not a secret
"""Environment variable naming the Secrets Manager secret that holds the master user's connection:
read only by the migrate action, never for a load."""
DB_AUTH_ENV: Final = "DB_AUTH"
"""Environment variable saying how the processor's own database role logs in (`DbAuth`)."""
DB_HOST_ENV: Final = "DB_HOST"
"""Environment variable holding the database's host name (with `DbAuth.IAM`)."""
DB_PORT_ENV: Final = "DB_PORT"
"""Environment variable holding the database's port (with `DbAuth.IAM`)."""
DB_NAME_ENV: Final = "DB_NAME"
"""Environment variable holding the database's name (with `DbAuth.IAM`)."""
DB_USER_ENV: Final = "DB_USER"
"""Environment variable holding the processor's database role (with `DbAuth.IAM`; the stack
sets `PROCESSOR_DB_USER`)."""
DB_PROCESSOR_SECRET_ARN_ENV: Final = "DB_PROCESSOR_SECRET_ARN"  # noqa: S105 - a name
"""Environment variable naming a Secrets Manager secret with the processor role's connection,
password included (with `DbAuth.PASSWORD`: local runs and tests, where IAM cannot work)."""
LOG_LEVEL_ENV: Final = "LOG_LEVEL"
"""Environment variable holding the processor's log level (a Python logging level name)."""
ETL_SETTINGS_ENV: Final = "ETL_SETTINGS"
"""Environment variable holding the stack's rule thresholds: a JSON object of the keys of
docs/etl-settings.toml (absent or empty: the defaults)."""

LAKE_BUCKET_ENV: Final = "LAKE_BUCKET"
"""Environment variable naming the lake bucket: where the migration writes the master data."""

MIGRATE_ACTION: Final = "migrate"
"""The `action` of the event that asks the function to migrate the database."""


def migrate_event() -> dict[str, str]:
    """The event the deployment invokes the function with to run the migrations."""
    return {"action": MIGRATE_ACTION}


def master_data_key(table: str) -> str:
    """The lake key of master table `table` (`master/zones/zones.parquet`): one folder per table,
    which is what a catalog table's location names."""
    return f"{MASTER_PREFIX}{table}/{table}.parquet"


# --- The database -------------------------------------------------------------------------------

DATABASE_SCHEMA: Final = "taxi"
"""The PostgreSQL schema holding the processor's tables."""

PROCESSOR_DB_USER: Final = "dataplatform_processor"
"""The processor's own, least-privilege database role, created by migration 0004 (which names it
in its SQL: a test holds the two equal). The master user is for migrations and administration."""


class DbAuth(StrEnum):
    """How the processor's database role proves who it is (`DB_AUTH_ENV`)."""

    IAM = "iam"
    """An RDS IAM authentication token, generated from the function's role for each connection:
    what the deployed function uses; no database password exists for the role."""
    PASSWORD = "password"  # noqa: S105 - the mode's name, not a password
    """A password from the secret `DB_PROCESSOR_SECRET_ARN_ENV` names: for local PostgreSQL,
    which cannot check IAM tokens."""


PASSWORD_CONFIG_KEY: Final = "dbPassword"  # noqa: S105 - the key's name, not a password
"""The stack config key of the database master password (an encrypted secret)."""
PASSWORD_MIN_LENGTH: Final = 8
PASSWORD_MAX_LENGTH: Final = 128
PASSWORD_FORBIDDEN: Final = frozenset('/@" ')
"""Characters RDS refuses in a master password; the rest of printable ASCII is accepted
(RDS CreateDBInstance, MasterUserPassword)."""

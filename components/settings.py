"""The stack's settings: every config key, parsed once, validated before any resource exists.

`load_settings` is the only reader of `pulumi.Config`, and `__main__.py` its only caller. It reads
every key as the raw string the engine hands the program, and `parse_settings` (pure, testable
without Pulumi) turns them into frozen dataclasses or raises one `SettingsError` that names every
bad key and how to fix it. Nothing is registered with the engine until this has succeeded, so a bad
value never leaves half a stack behind.

`CONFIG_KEYS` is the single list of keys with their types and defaults; `Pulumi.yaml` declares the
same keys for the CLI and a test holds the two equal.
"""

from __future__ import annotations

import difflib
import ipaddress
import json
import math
import re
import zipfile
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from enum import Enum, StrEnum
from pathlib import Path
from typing import Literal, TypeVar

import pulumi
from pulumi.runtime import config as runtime_config

from etl.contract import (
    BUNDLE_MANIFEST,
    DEFAULT_ARCHITECTURE,
    PASSWORD_CONFIG_KEY,
    PASSWORD_FORBIDDEN,
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
    PYTHON_VERSION,
    Architecture,
)


class SettingsError(pulumi.RunError):
    """One or more config values are invalid.

    A `pulumi.RunError` so that `pulumi up` prints the message without a traceback;
    `dataplatform synth` prints it as one line with exit code 2.
    """


class Environment(StrEnum):
    """What a stack is for; `prod` turns the protective settings from defaults into requirements."""

    DEV = "dev"
    PROD = "prod"


class PostgresMajorVersion(StrEnum):
    """The PostgreSQL major versions this program has been written and tested against."""

    V16 = "16"
    V17 = "17"

    @property
    def parameter_group_family(self) -> str:
        """The RDS parameter group family of this major version, e.g. `postgres17`."""
        return f"postgres{self.value}"


class ArchiveStorageClass(StrEnum):
    """Where raw/ objects go after Standard-IA. GLACIER_IR keeps millisecond reads for backfills."""

    GLACIER_IR = "GLACIER_IR"
    GLACIER = "GLACIER"
    DEEP_ARCHIVE = "DEEP_ARCHIVE"


class LogLevel(StrEnum):
    """The processor's log level, passed to the handler as `LOG_LEVEL` (Python logging names)."""

    DEBUG = "DEBUG"
    INFO = "INFO"
    WARNING = "WARNING"
    ERROR = "ERROR"

    @property
    def lambda_level(self) -> str:
        """The same level in Lambda's advanced logging vocabulary (which spells WARNING `WARN`)."""
        return "WARN" if self is LogLevel.WARNING else self.value


ConfigType = Literal["string", "integer", "boolean"]


@dataclass(frozen=True)
class ConfigKey:
    """One project config key: its `Pulumi.yaml` type, its default (None: required), secrecy."""

    name: str
    type: ConfigType
    default: str | int | bool | None
    secret: bool = False


PASSWORD_KEY = PASSWORD_CONFIG_KEY
ETL_SETTINGS_KEY = "etlSettings"
BUNDLE_KEY = "processorBundlePath"

CONFIG_KEYS: tuple[ConfigKey, ...] = (
    ConfigKey("environment", "string", "prod"),
    ConfigKey("logRetentionDays", "integer", 90),
    ConfigKey("alarmTopicArn", "string", ""),
    ConfigKey("vpcCidr", "string", "10.40.0.0/16"),
    ConfigKey("lakeForceDestroy", "boolean", False),
    ConfigKey("rawInfrequentAccessDays", "integer", 30),
    ConfigKey("rawArchiveDays", "integer", 90),
    ConfigKey("rawArchiveStorageClass", "string", "GLACIER_IR"),
    ConfigKey("rejectsExpirationDays", "integer", 180),
    ConfigKey("quarantineExpirationDays", "integer", 90),
    ConfigKey("noncurrentVersionExpirationDays", "integer", 30),
    ConfigKey("abortIncompleteUploadDays", "integer", 7),
    ConfigKey("replicaRegion", "string", "us-west-2"),
    ConfigKey("dbPostgresVersion", "integer", 17),
    ConfigKey("dbInstanceClass", "string", "db.t4g.small"),
    ConfigKey("dbAllocatedStorageGb", "integer", 20),
    ConfigKey("dbMaxAllocatedStorageGb", "integer", 100),
    ConfigKey("dbMultiAz", "boolean", True),
    ConfigKey("dbDeletionProtection", "boolean", True),
    ConfigKey("dbSkipFinalSnapshot", "boolean", False),
    ConfigKey("dbBackupRetentionDays", "integer", 7),
    ConfigKey("dbPerformanceInsightsRetentionDays", "integer", 7),
    ConfigKey("dbMonitoringIntervalSeconds", "integer", 60),
    ConfigKey("dbLogMinDurationMs", "integer", 1000),
    ConfigKey("dbName", "string", "dataplatform"),
    ConfigKey("dbUsername", "string", "dataplatform"),
    ConfigKey(PASSWORD_KEY, "string", None, secret=True),
    ConfigKey("processorArchitecture", "string", DEFAULT_ARCHITECTURE.value),
    ConfigKey("processorMemoryMb", "integer", 2048),
    ConfigKey("processorLargestMonthRows", "integer", 3_000_000),
    ConfigKey("processorTimeoutSeconds", "integer", 300),
    ConfigKey("processorReservedConcurrency", "integer", 3),
    ConfigKey("processorEphemeralStorageMb", "integer", 2048),
    ConfigKey("processorBatchSize", "integer", 1),
    ConfigKey("processorMaxReceiveCount", "integer", 3),
    ConfigKey(BUNDLE_KEY, "string", "build/lambda/processor.zip"),
    ConfigKey("processorLogLevel", "string", "INFO"),
    ConfigKey(ETL_SETTINGS_KEY, "string", ""),
    ConfigKey("athenaScanLimitGb", "integer", 10),
    ConfigKey("glueCatalogEncryption", "boolean", True),
    ConfigKey("dbTunnel", "boolean", True),
)

MIN_POLLER_CONCURRENCY = 2
"""An SQS event source mapping's smallest maximum concurrency (Lambda ScalingConfig)."""
MIGRATION_CONCURRENCY = 1
"""Executions of the reservation the queue's poller never takes: the deploy-time migration's."""
UNRESERVED_MINIMUM = 100
"""Lambda keeps at least this many of an account's concurrent executions unreserved
(PutFunctionConcurrency fails otherwise)."""

MONITORING_INTERVALS = (1, 5, 10, 15, 30, 60)
"""The enhanced-monitoring intervals RDS accepts besides 0, which turns it off and is not offered
(RDS CreateDBInstance, MonitoringInterval)."""
LOG_MIN_DURATION_RANGE = (100, 3_600_000)
"""Bounds of `dbLogMinDurationMs`: below 100 ms a busy loader floods the log; -1 (off) and 0
(every statement) are not offered."""

# The retention values CloudWatch Logs accepts (0, "never expire", is deliberately not offered).
LOG_RETENTION_DAYS = frozenset(
    {1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922}
    | {3288, 3653}
)


@dataclass(frozen=True)
class NetworkSettings:
    """The VPC the processor and the database live in."""

    vpc_cidr: str
    """`vpcCidr`, default 10.40.0.0/16: a private (RFC 1918) IPv4 block from /16 to /24; the two
    private subnets take its first two quarters."""


@dataclass(frozen=True)
class LakeSettings:
    """The data lake bucket: teardown behaviour and lifecycle per zone."""

    force_destroy: bool
    """`lakeForceDestroy`, default false: let `pulumi destroy` delete a non-empty bucket. Refused
    in prod."""
    raw_infrequent_access_days: int
    """`rawInfrequentAccessDays`, default 30: days until raw/ objects move to Standard-IA; at least
    30 (S3 refuses earlier Standard-IA transitions)."""
    raw_archive_days: int
    """`rawArchiveDays`, default 90: days until raw/ objects move to `raw_archive_storage_class`;
    at least `rawInfrequentAccessDays` + 30 (S3's minimum stay in Standard-IA)."""
    raw_archive_storage_class: ArchiveStorageClass
    """`rawArchiveStorageClass`, default GLACIER_IR: GLACIER_IR, GLACIER or DEEP_ARCHIVE."""
    rejects_expiration_days: int
    """`rejectsExpirationDays`, default 180: days rejects/ objects are kept; 1 or more."""
    quarantine_expiration_days: int
    """`quarantineExpirationDays`, default 90: days quarantine/ objects are kept; 1 or more."""
    noncurrent_version_expiration_days: int
    """`noncurrentVersionExpirationDays`, default 30: days an overwritten or deleted version is
    kept before it is removed for good; 1 or more."""
    abort_incomplete_upload_days: int
    """`abortIncompleteUploadDays`, default 7: days after which unfinished multipart uploads are
    discarded; 1 or more."""
    replica_region: str | None = None
    """`replicaRegion`, default us-west-2: the AWS region raw/ is replicated to, with its own
    bucket and KMS key; must differ from `aws:region`. Empty (no replica) is refused in prod."""


@dataclass(frozen=True)
class DatabaseSettings:
    """The RDS PostgreSQL instance and its master credentials."""

    postgres_version: PostgresMajorVersion
    """`dbPostgresVersion`, default 17: the major version, 16 or 17."""
    instance_class: str
    """`dbInstanceClass`, default db.t4g.small: any `db.<family>.<size>` class."""
    allocated_storage_gb: int
    """`dbAllocatedStorageGb`, default 20: initial gp3 storage, 20 to 65536 GiB."""
    max_allocated_storage_gb: int
    """`dbMaxAllocatedStorageGb`, default 100: storage autoscaling ceiling, at least
    `dbAllocatedStorageGb` (equal turns autoscaling off), at most 65536."""
    multi_az: bool
    """`dbMultiAz`, default true: a synchronous standby in a second AZ. Required in prod."""
    deletion_protection: bool
    """`dbDeletionProtection`, default true: RDS refuses to delete the instance. Required in
    prod."""
    skip_final_snapshot: bool
    """`dbSkipFinalSnapshot`, default false: delete without a final snapshot. Refused in prod."""
    backup_retention_days: int
    """`dbBackupRetentionDays`, default 7: automated backup retention, 1 to 35; at least 7 in
    prod."""
    performance_insights_retention_days: int
    """`dbPerformanceInsightsRetentionDays`, default 7: 7 (free tier), a multiple of 31 up to 713,
    or 731."""
    monitoring_interval_seconds: int
    """`dbMonitoringIntervalSeconds`, default 60: enhanced monitoring's sampling interval, one of
    1, 5, 10, 15, 30 or 60 (0, off, is refused)."""
    log_min_duration_ms: int
    """`dbLogMinDurationMs`, default 1000: statements running longer are logged with their
    duration (`log_min_duration_statement`), 100 to 3600000 ms."""
    db_name: str
    """`dbName`, default dataplatform: the database created at launch; a letter, then up to 62
    letters, digits or underscores."""
    username: str
    """`dbUsername`, default dataplatform: the master user; a letter, then up to 15 letters,
    digits or underscores (RDS's limit for PostgreSQL), not `rdsadmin`."""
    tunnel: bool = True
    """`dbTunnel`, default true: an EC2 Instance Connect Endpoint and a small jump host, so that
    `dataplatform db-tunnel` reaches the database with IAM credentials and no inbound port."""
    password: pulumi.Input[str] = field(default="", repr=False)
    """`dbPassword`, secret, required: 8 to 128 printable ASCII characters without `/`, `@`, `"`
    or space. Held as a secret Output; never printed."""


@dataclass(frozen=True)
class ProcessorSettings:
    """The Lambda processor, its queue and its code bundle."""

    architecture: Architecture
    """`processorArchitecture`, default arm64: arm64 or x86_64."""
    memory_mb: int
    """`processorMemoryMb`, default 2048: 128 to 10240 MB."""
    timeout_seconds: int
    """`processorTimeoutSeconds`, default 300: 1 to 900 s; the queue's visibility timeout is six
    times this, as AWS recommends for SQS event sources."""
    reserved_concurrency: int
    """`processorReservedConcurrency`, default 3: 3 to 1000 concurrent executions, which also caps
    the connections the processor opens to the database. One of them is kept free of the queue
    for the deploy-time migration; the queue's poller may use the rest (at least 2, SQS's
    minimum for a maximum concurrency)."""

    @property
    def poller_concurrency(self) -> int:
        """The event source mapping's maximum concurrency: the reservation less the slot kept
        for the migration, so a busy queue can neither throttle itself nor a deploy."""
        return self.reserved_concurrency - MIGRATION_CONCURRENCY

    ephemeral_storage_mb: int
    """`processorEphemeralStorageMb`, default 2048: /tmp size, 512 to 10240 MB."""
    batch_size: int
    """`processorBatchSize`, default 1: SQS messages per invocation, 1 to 10."""
    max_receive_count: int
    """`processorMaxReceiveCount`, default 3: receives before a message moves to the dead-letter
    queue, 1 to 1000."""
    bundle_path: Path
    """`processorBundlePath`, default build/lambda/processor.zip: the prebuilt code zip, relative
    to the project directory; it must exist."""
    log_level: LogLevel
    """`processorLogLevel`, default INFO: DEBUG, INFO, WARNING or ERROR."""
    etl_settings: str = ""
    """`etlSettings`, default empty (the defaults): the ETL's rule thresholds as a JSON object of
    the keys of docs/etl-settings.toml, e.g. `{"max_speed_mph": 90}`; passed to the function."""
    largest_month_rows: int = 3_000_000
    """`processorLargestMonthRows`, default 3,000,000: the most rows one raw object of this stack
    is expected to hold, 1,000 to 100,000,000; `memory_warning` compares it with the memory."""

    @property
    def memory_needed_mb(self) -> int:
        """The processor's measured peak for the largest expected object (`HANDLER_BASE_MB` plus
        `HANDLER_MB_PER_MILLION_ROWS` per million rows)."""
        return math.ceil(
            HANDLER_BASE_MB + HANDLER_MB_PER_MILLION_ROWS * self.largest_month_rows / 1_000_000
        )

    def memory_warning(self) -> str | None:
        """One line if `processorMemoryMb` cannot hold the largest expected object, else None."""
        if self.memory_mb >= self.memory_needed_mb:
            return None
        return (
            f"processorMemoryMb is {self.memory_mb} MB, but an object of "
            f"processorLargestMonthRows={self.largest_month_rows:,} rows peaks at about "
            f"{self.memory_needed_mb} MB in the processor ({HANDLER_BASE_MB} MB + "
            f"{HANDLER_MB_PER_MILLION_ROWS} MB per million rows, docs/infrastructure.md): such a "
            f"file would exhaust the function; raise processorMemoryMb to at least "
            f"{self.memory_needed_mb} or lower processorLargestMonthRows"
        )


HANDLER_BASE_MB = 268
HANDLER_MB_PER_MILLION_ROWS = 148
"""The handler's peak RSS as a line through two measurements (`benchmarks/e2e_benchmark.py`,
fresh process per invocation, 2024-style yellow rows, medians of 5 in two runs): 404 and 405 MB
at 1M rows, 698 and 700 MB at 3M (the higher of two sessions' figures: 385-393 and 684-689 MB
in the other), plus 10 MB for NumPy, which the binary COPY encoder brought (714 against 704 MB
at 3M, one run each of the code with and without it)."""


ATHENA_MAX_SCAN_LIMIT_GB = 10_240
"""The largest per-query scan limit the settings accept (10 TiB, $50 a query at $5 per TB):
beyond it a limit no longer limits anything."""


@dataclass(frozen=True)
class CatalogSettings:
    """The Glue Data Catalog and the Athena workgroup over the lake."""

    scan_limit_gb: int
    """`athenaScanLimitGb`, default 10: the most a single Athena query of the workgroup may
    scan, in GiB, 1 to 10240 (Athena's minimum is 10 MB); a query that would scan more is
    cancelled."""
    catalog_encryption: bool
    """`glueCatalogEncryption`, default true: encrypt the account's Glue Data Catalog (metadata
    and connection passwords) with the lake key. The setting is one per account and region:
    with two stacks in one account, only one may manage it (set it false on the other)."""

    @property
    def scan_limit_bytes(self) -> int:
        """The limit as Athena takes it, in bytes."""
        return self.scan_limit_gb * 1024**3


@dataclass(frozen=True)
class Settings:
    """Everything the program needs to know about one stack, validated."""

    project: str
    """The Pulumi project name (`dataplatform`)."""
    stack: str
    """The stack name, lowercase letters, digits and hyphens."""
    environment: Environment
    """`environment`, default prod: dev or prod. New stacks get prod's rules unless they opt out."""
    log_retention_days: int
    """`logRetentionDays`, default 90: retention of every log group this program creates; one of
    the values CloudWatch Logs accepts (1, 3, 5, 7, 14, 30, 60, 90, ... 3653)."""
    alarm_topic_arn: str | None
    """`alarmTopicArn`, default empty: an SNS topic ARN the alarms notify; empty for no action."""
    network: NetworkSettings
    """The VPC's settings."""
    lake: LakeSettings
    """The data lake's settings."""
    database: DatabaseSettings
    """The database's settings, including the secret password."""
    processor: ProcessorSettings
    """The processor's settings, including the bundle path."""
    catalog: CatalogSettings
    """The Glue catalog's and the Athena workgroup's settings."""

    @property
    def name_prefix(self) -> str:
        """The prefix of physical names, `<project>-<stack>`, unique per account and region."""
        return f"{self.project}-{self.stack}"

    @property
    def protect_stateful(self) -> bool:
        """Whether the lake bucket, the database, the keys and the secret are protected (prod:
        never deleted or replaced by an update, kept by a destroy); dev stays disposable."""
        return self.environment is Environment.PROD

    @property
    def tags(self) -> dict[str, str]:
        """The tags every taggable resource carries."""
        return resource_tags(self.project, self.stack, self.environment)


def resource_tags(project: str, stack: str, environment: Environment) -> dict[str, str]:
    """The tag map for a stack: who owns a resource and which stack manages it."""
    return {
        "Project": project,
        "Stack": stack,
        "Environment": environment.value,
        "ManagedBy": "pulumi",
    }


_E = TypeVar("_E", bound=Enum)


class _Reader:
    """Reads raw config strings into typed values, collecting every problem instead of stopping."""

    def __init__(self, raw: Mapping[str, str | None], project: str, stack: str) -> None:
        self._raw = raw
        self.project = project
        self.stack = stack
        self._defaults = {key.name: key.default for key in CONFIG_KEYS}
        self.problems: list[str] = []

    def fail(self, key: str, problem: str, example: str | None = None) -> None:
        """Record that `key` is invalid, with the command that sets a valid value."""
        fix = f"pulumi config set {key} {example or '<value>'} -s {self.stack}"
        if key == PASSWORD_KEY:
            fix = f"pulumi config set --secret {key} <password> -s {self.stack}"
        self.problems.append(f"{self.project}:{key} {problem} (fix: {fix})")

    def _value(self, key: str) -> str | None:
        value = self._raw.get(key)
        if value is None:
            default = self._defaults.get(key)
            return None if default is None else _yaml_scalar(default)
        return value

    def plaintext(self, key: str) -> str | None:
        """The raw value of `key` as given, without a default (used for the secret)."""
        return self._raw.get(key)

    def string(self, key: str) -> str:
        """The value of a string key (its default when unset)."""
        return self._value(key) or ""

    def integer(self, key: str, low: int, high: int | None = None) -> int:
        """The value of an integer key, which must lie in [low, high]."""
        value = self._value(key) or ""
        try:
            number = int(value.strip())
        except ValueError:
            self.fail(key, f"must be a whole number, got {value!r}", str(low))
            return low
        if number < low or (high is not None and number > high):
            bounds = f"from {low} to {high}" if high is not None else f"at least {low}"
            self.fail(key, f"must be {bounds}, got {number}", str(low))
            return low
        return number

    def boolean(self, key: str) -> bool:
        """The value of a boolean key: `true` or `false`."""
        value = (self._value(key) or "").strip().lower()
        if value not in ("true", "false"):
            self.fail(key, f"must be true or false, got {value!r}", "false")
            return False
        return value == "true"

    def choice(self, key: str, enum: type[_E]) -> _E:
        """The value of a key restricted to the values of `enum`."""
        value = self.string(key).strip()
        choices = [str(member.value) for member in enum]
        try:
            return enum(value)
        except ValueError:
            self.fail(key, f"must be one of {', '.join(choices)}, got {value!r}", choices[0])
            return next(iter(enum))


def _yaml_scalar(value: str | int | bool) -> str:
    """A default as the engine would pass it: booleans as `true`/`false`, numbers as digits."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_STACK_NAME = re.compile(r"^[a-z][a-z0-9-]{0,19}$")
_IDENTIFIER = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
# RDS for PostgreSQL's master user name: 1 to 16 letters, digits or underscores, a letter first
# (RDS CreateDBInstance, MasterUsername constraints).
_MASTER_USERNAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,15}$")
# The configuration namespaces this program's stacks may use: its own and its providers'.
PROVIDER_NAMESPACES = frozenset({"aws", "random", "pulumi"})
_INSTANCE_CLASS = re.compile(r"^db\.[a-z0-9]+\.[a-z0-9]+$")
_REGION = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
_SNS_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]+$")


def parse_settings(
    raw: Mapping[str, str | None],
    *,
    project: str,
    stack: str,
    root: Path,
    password: pulumi.Input[str],
    secret_keys: Collection[str] | None = None,
    other_keys: Collection[str] = (),
    thresholds_problem: Callable[[str], str | None] | None = None,
    region: str | None = None,
) -> Settings:
    """Validate raw config strings (keys without the project prefix) into `Settings`.

    `raw[PASSWORD_KEY]` is the plaintext password, used only to check RDS's rules; `password` is
    the secret Output the database receives. `raw` holds every key the stack sets in the
    project's namespace, so an undeclared one is refused; `other_keys` are the stack's full keys
    in other namespaces (`aws:region`); `secret_keys` the short keys the engine holds encrypted
    (None: trust that the secret keys are). `thresholds_problem` judges `etlSettings` (the
    ETL's own check, handed in by the program: components know only the contract); None checks
    only that it is a JSON object. `region` is the stack's `aws:region` (the replica region must
    differ). Raises one `SettingsError` naming every bad key.
    """
    read = _Reader(raw, project, stack)
    _check_keys(read, raw, other_keys)
    if secret_keys is not None:
        for key in CONFIG_KEYS:
            if key.secret and raw.get(key.name) and key.name not in secret_keys:
                read.fail(
                    key.name,
                    "is stored in plaintext; a secret must be encrypted in the stack file "
                    f"(run `pulumi config rm {key.name} -s {stack}` first)",
                )
    if not _STACK_NAME.match(stack):
        read.problems.append(
            f"stack name {stack!r} must be 1 to 20 lowercase letters, digits or hyphens, starting "
            "with a letter, because it becomes part of bucket and function names "
            "(fix: pulumi stack init <name>)"
        )

    environment = read.choice("environment", Environment)
    log_retention = read.integer("logRetentionDays", 1)
    if log_retention not in LOG_RETENTION_DAYS:
        allowed = ", ".join(map(str, sorted(LOG_RETENTION_DAYS)))
        read.fail("logRetentionDays", f"must be one of {allowed}, got {log_retention}", "30")
    alarm_topic = read.string("alarmTopicArn").strip()
    if alarm_topic and not _SNS_ARN.match(alarm_topic):
        read.fail("alarmTopicArn", f"must be an SNS topic ARN or empty, got {alarm_topic!r}")

    network = NetworkSettings(vpc_cidr=_vpc_cidr(read))
    lake = _lake(read, region)
    database = _database(read, password)
    processor = _processor(read, root, thresholds_problem or _json_object_problem)
    catalog = CatalogSettings(
        scan_limit_gb=read.integer("athenaScanLimitGb", 1, ATHENA_MAX_SCAN_LIMIT_GB),
        catalog_encryption=read.boolean("glueCatalogEncryption"),
    )

    if environment is Environment.PROD:
        _prod_rules(read, lake, database)

    if read.problems:
        raise SettingsError(f"invalid config for stack {stack}: " + "; ".join(read.problems))
    return Settings(
        project=project,
        stack=stack,
        environment=environment,
        log_retention_days=log_retention,
        alarm_topic_arn=alarm_topic or None,
        network=network,
        lake=lake,
        database=database,
        processor=processor,
        catalog=catalog,
    )


def nearest_key(key: str, known: Collection[str]) -> str | None:
    """The declared key `key` is most likely a typo of, if any is close enough."""
    by_case = {name.lower(): name for name in known}
    if key.lower() in by_case:
        return by_case[key.lower()]
    found = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return found[0] if found else None


def _check_keys(read: _Reader, raw: Mapping[str, str | None], other_keys: Collection[str]) -> None:
    """Refuse every key this program does not declare: a typo would otherwise fall back to the
    default silently (`dbMultiAZ: false` leaves dev Multi-AZ at twice the cost)."""
    declared = [key.name for key in CONFIG_KEYS]
    for key in sorted(set(raw) - set(declared)):
        guess = nearest_key(key, declared)
        hint = f"; did you mean {guess}?" if guess else ""
        read.problems.append(
            f"{read.project}:{key} is not a setting of this program{hint} "
            f"(fix: pulumi config rm {key} -s {read.stack}; the settings are listed in "
            "Pulumi.yaml)"
        )
    for full_key in sorted(other_keys):
        namespace, _, name = full_key.partition(":")
        if namespace in PROVIDER_NAMESPACES or namespace == read.project:
            continue
        guess = nearest_key(namespace, [read.project, *sorted(PROVIDER_NAMESPACES)])
        hint = f"; did you mean {guess}:{name}?" if guess else ""
        read.problems.append(
            f"{full_key} is in a namespace no part of this program reads{hint} "
            f"(fix: pulumi config rm {full_key} -s {read.stack})"
        )


def _vpc_cidr(read: _Reader) -> str:
    value = read.string("vpcCidr").strip()
    try:
        network = ipaddress.IPv4Network(value)
    except ValueError:
        read.fail("vpcCidr", f"must be an IPv4 network such as 10.40.0.0/16, got {value!r}")
        return value
    if not 16 <= network.prefixlen <= 24 or not network.is_private:
        read.fail(
            "vpcCidr",
            f"must be a private (RFC 1918) block from /16 to /24, got {value}",
            "10.40.0.0/16",
        )
    return str(network)


def _replica_region(read: _Reader, region: str | None) -> str | None:
    value = read.string("replicaRegion").strip()
    if not value:
        return None
    if not _REGION.match(value):
        read.fail("replicaRegion", f"must be an AWS region such as us-west-2, got {value!r}")
    elif value == region:
        read.fail(
            "replicaRegion",
            f"must differ from aws:region ({region}): a replica in the same region survives "
            "nothing the original would not",
            "us-west-2",
        )
    return value


def _lake(read: _Reader, region: str | None) -> LakeSettings:
    infrequent = read.integer("rawInfrequentAccessDays", 30)
    archive = read.integer("rawArchiveDays", 1)
    if archive < infrequent + 30:
        read.fail(
            "rawArchiveDays",
            f"must be at least rawInfrequentAccessDays + 30 = {infrequent + 30} (S3 keeps objects "
            f"30 days in Standard-IA before archiving them), got {archive}",
            str(infrequent + 30),
        )
    return LakeSettings(
        force_destroy=read.boolean("lakeForceDestroy"),
        raw_infrequent_access_days=infrequent,
        raw_archive_days=archive,
        raw_archive_storage_class=read.choice("rawArchiveStorageClass", ArchiveStorageClass),
        rejects_expiration_days=read.integer("rejectsExpirationDays", 1),
        quarantine_expiration_days=read.integer("quarantineExpirationDays", 1),
        noncurrent_version_expiration_days=read.integer("noncurrentVersionExpirationDays", 1),
        abort_incomplete_upload_days=read.integer("abortIncompleteUploadDays", 1),
        replica_region=_replica_region(read, region),
    )


def _database(read: _Reader, password: pulumi.Input[str]) -> DatabaseSettings:
    version = read.integer("dbPostgresVersion", 16, 17)
    instance_class = read.string("dbInstanceClass").strip()
    if not _INSTANCE_CLASS.match(instance_class):
        read.fail("dbInstanceClass", f"must look like db.t4g.small, got {instance_class!r}")
    allocated = read.integer("dbAllocatedStorageGb", 20, 65536)
    max_allocated = read.integer("dbMaxAllocatedStorageGb", 20, 65536)
    if max_allocated < allocated:
        read.fail(
            "dbMaxAllocatedStorageGb",
            f"must be at least dbAllocatedStorageGb ({allocated}), got {max_allocated}",
            str(allocated),
        )
    insights = read.integer("dbPerformanceInsightsRetentionDays", 7, 731)
    if insights not in {7, 731} and insights % 31 != 0:
        read.fail(
            "dbPerformanceInsightsRetentionDays",
            f"must be 7, a multiple of 31 up to 713, or 731, got {insights}",
            "7",
        )
    interval = read.integer("dbMonitoringIntervalSeconds", 1, 60)
    if interval not in MONITORING_INTERVALS:
        choices = ", ".join(map(str, MONITORING_INTERVALS))
        read.fail("dbMonitoringIntervalSeconds", f"must be one of {choices}, got {interval}", "60")
    names = {key: read.string(key).strip() for key in ("dbName", "dbUsername")}
    if not _IDENTIFIER.match(names["dbName"]):
        read.fail(
            "dbName",
            "must be a letter followed by up to 62 letters, digits or underscores, "
            f"got {names['dbName']!r}",
            "dataplatform",
        )
    if not _MASTER_USERNAME.match(names["dbUsername"]):
        read.fail(
            "dbUsername",
            "must be a letter followed by up to 15 letters, digits or underscores (RDS's master "
            f"user name rules), got {names['dbUsername']!r}",
            "dataplatform",
        )
    if names["dbUsername"].lower() == "rdsadmin":
        read.fail("dbUsername", "must not be rdsadmin, which RDS reserves", "dataplatform")
    _check_password(read, read.plaintext(PASSWORD_KEY))
    return DatabaseSettings(
        postgres_version=PostgresMajorVersion(str(version)),
        instance_class=instance_class,
        allocated_storage_gb=allocated,
        max_allocated_storage_gb=max_allocated,
        multi_az=read.boolean("dbMultiAz"),
        deletion_protection=read.boolean("dbDeletionProtection"),
        skip_final_snapshot=read.boolean("dbSkipFinalSnapshot"),
        backup_retention_days=read.integer("dbBackupRetentionDays", 1, 35),
        performance_insights_retention_days=insights,
        monitoring_interval_seconds=interval,
        log_min_duration_ms=read.integer("dbLogMinDurationMs", *LOG_MIN_DURATION_RANGE),
        db_name=names["dbName"],
        username=names["dbUsername"],
        tunnel=read.boolean("dbTunnel"),
        password=password,
    )


def _check_password(read: _Reader, plaintext: str | None) -> None:
    """Check RDS's password rules. Messages describe the problem, never the value."""
    if plaintext is None or plaintext == "":
        read.fail(PASSWORD_KEY, "is not set")
        return
    if not PASSWORD_MIN_LENGTH <= len(plaintext) <= PASSWORD_MAX_LENGTH:
        read.fail(
            PASSWORD_KEY,
            f"must be {PASSWORD_MIN_LENGTH} to {PASSWORD_MAX_LENGTH} characters long, "
            f"got {len(plaintext)}",
        )
    if any(not " " <= char <= "~" for char in plaintext):
        read.fail(PASSWORD_KEY, "must contain printable ASCII characters only")
    refused = sorted(PASSWORD_FORBIDDEN.intersection(plaintext))
    if refused:
        names = {"/": "slash", "@": "at sign", '"': "double quote", " ": "space"}
        listed = ", ".join(names[char] for char in refused)
        read.fail(PASSWORD_KEY, f"must not contain {listed}, which RDS refuses")


def _processor(
    read: _Reader, root: Path, thresholds_problem: Callable[[str], str | None]
) -> ProcessorSettings:
    bundle_value = read.string(BUNDLE_KEY).strip()
    bundle = Path(bundle_value)
    if not bundle.is_absolute():
        bundle = root / bundle
    if not bundle.is_file():
        read.fail(
            BUNDLE_KEY,
            f"points at {bundle_value!r}, which does not exist; build the processor bundle "
            "(`uv run dataplatform bundle`) or point this key at a prebuilt zip",
            "path/to/processor.zip",
        )
    elif not zipfile.is_zipfile(bundle):
        read.fail(BUNDLE_KEY, f"points at {bundle_value!r}, which is not a zip archive")
    architecture = read.choice("processorArchitecture", Architecture)
    if bundle.is_file() and zipfile.is_zipfile(bundle):
        problem = bundle_target_problem(bundle, architecture)
        if problem:
            read.fail(BUNDLE_KEY, f"points at {bundle_value!r}, {problem}")
    return ProcessorSettings(
        architecture=architecture,
        memory_mb=read.integer("processorMemoryMb", 128, 10240),
        timeout_seconds=read.integer("processorTimeoutSeconds", 1, 900),
        reserved_concurrency=read.integer(
            "processorReservedConcurrency", MIN_POLLER_CONCURRENCY + MIGRATION_CONCURRENCY, 1000
        ),
        ephemeral_storage_mb=read.integer("processorEphemeralStorageMb", 512, 10240),
        batch_size=read.integer("processorBatchSize", 1, 10),
        max_receive_count=read.integer("processorMaxReceiveCount", 1, 1000),
        bundle_path=bundle,
        log_level=read.choice("processorLogLevel", LogLevel),
        etl_settings=_etl_settings(read, thresholds_problem),
        largest_month_rows=read.integer("processorLargestMonthRows", 1_000, 100_000_000),
    )


def _etl_settings(read: _Reader, thresholds_problem: Callable[[str], str | None]) -> str:
    """The thresholds as compact JSON with sorted keys (so equal settings give an equal function
    configuration), or empty for the defaults."""
    text = read.string(ETL_SETTINGS_KEY).strip()
    if not text:
        return ""
    problem = thresholds_problem(text)
    if problem is not None:
        read.fail(ETL_SETTINGS_KEY, problem, """'{"max_speed_mph": 90}'""")
        return ""
    return json.dumps(json.loads(text), sort_keys=True, separators=(",", ":"))


def _json_object_problem(text: str) -> str | None:
    try:
        value = json.loads(text)
    except ValueError as error:
        return f"is not JSON ({error})"
    return None if isinstance(value, dict) else "must be a JSON object"


def bundle_target(bundle: Path) -> tuple[str, str] | None:
    """(architecture, Python) the bundle records it was built for; None if it records none."""
    try:
        with zipfile.ZipFile(bundle) as archive:
            document = json.loads(archive.read(BUNDLE_MANIFEST))
    except (KeyError, ValueError, OSError, zipfile.BadZipFile):
        return None
    if not isinstance(document, dict):
        return None
    return str(document.get("architecture")), str(document.get("python"))


def bundle_target_problem(bundle: Path, architecture: Architecture) -> str | None:
    """Why the bundle cannot run as a `python{PYTHON_VERSION}` function on `architecture`.

    Its wheels are compiled for one CPU and one Python: a mismatch would only show at the first
    invocation (the deploy-time migration), after every resource had been created.
    """
    target = bundle_target(bundle)
    rebuild = f"rebuild it with `uv run dataplatform bundle --arch {architecture.value}`"
    if target is None:
        return f"which records no target ({BUNDLE_MANIFEST}); {rebuild}"
    built_arch, built_python = target
    if built_arch != architecture.value:
        return (
            f"which is built for {built_arch} but processorArchitecture is "
            f"{architecture.value}; {rebuild} or set processorArchitecture {built_arch}"
        )
    if built_python != PYTHON_VERSION:
        return (
            f"which is built for Python {built_python} but the function runs "
            f"python{PYTHON_VERSION}; {rebuild}"
        )
    return None


def _prod_rules(read: _Reader, lake: LakeSettings, database: DatabaseSettings) -> None:
    """In prod the protective settings are requirements, not defaults."""
    if not database.deletion_protection:
        read.fail("dbDeletionProtection", "must be true in prod", "true")
    if not database.multi_az:
        read.fail("dbMultiAz", "must be true in prod", "true")
    if database.skip_final_snapshot:
        read.fail("dbSkipFinalSnapshot", "must be false in prod", "false")
    if database.backup_retention_days < 7:
        read.fail(
            "dbBackupRetentionDays",
            f"must be at least 7 in prod, got {database.backup_retention_days}",
            "7",
        )
    if lake.force_destroy:
        read.fail("lakeForceDestroy", "must be false in prod", "false")
    if lake.replica_region is None and not _has_problem(read, "replicaRegion"):
        read.fail(
            "replicaRegion",
            "must be set in prod: raw/ is replicated to a second region",
            "us-west-2",
        )


def _has_problem(read: _Reader, key: str) -> bool:
    return any(problem.startswith(f"{read.project}:{key} ") for problem in read.problems)


def load_settings(
    config: pulumi.Config,
    *,
    root: Path,
    thresholds_problem: Callable[[str], str | None] | None = None,
) -> Settings:
    """Read every key of `CONFIG_KEYS` from the project's config and validate it.

    The password is read twice on purpose: its plaintext (`Config.get`, already decrypted by the
    engine) to check RDS's rules before any resource exists, and `Config.require_secret` for the
    Output the database receives, so the value stays a secret from config to resource.
    """
    project = pulumi.get_project()
    given, secret = _engine_config()
    mine = {key.split(":", 1)[1] for key in given if key.startswith(f"{project}:")}
    raw = {name: config.get(name) for name in sorted({key.name for key in CONFIG_KEYS} | mine)}
    password: pulumi.Input[str] = ""
    if raw[PASSWORD_KEY]:
        password = config.require_secret(PASSWORD_KEY)
    return parse_settings(
        raw,
        project=project,
        stack=pulumi.get_stack(),
        root=root,
        password=password,
        secret_keys={key.split(":", 1)[1] for key in secret if key.startswith(f"{project}:")},
        other_keys=[key for key in given if not key.startswith(f"{project}:")],
        thresholds_problem=thresholds_problem,
        region=pulumi.Config("aws").get("region"),
    )


def _engine_config() -> tuple[set[str], set[str]]:
    """Every config key the engine gave the program, and those it holds as secrets.

    The engine passes config in `PULUMI_CONFIG` (and the mocks runtime through `set_all_config`);
    the SDK reads one key at a time and offers no listing, hence its module-level state here.
    """
    given = set(runtime_config.get_config_env()) | set(runtime_config.CONFIG.get())
    secret = set(runtime_config.get_config_secret_keys_env()) | {
        key for key in given if runtime_config.is_config_secret(key)
    }
    return given, secret

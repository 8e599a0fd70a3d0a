"""`dataplatform doctor --stack dev`: what the first `pulumi up` needs of the account and machine.

Mocks, mypy and the policy pack cannot see an account's quotas, its Availability Zones or this
machine's tools. Run with the credentials `pulumi up` will use, doctor checks, one line each:

- the region is set (`aws:region` in the stack file) and credentials work (STS);
- the Pulumi CLI is the version in `.pulumi-version`;
- the state backend (`PULUMI_BACKEND_URL`, or the one `pulumi login` remembers) is reachable, and
  the stack's secrets provider (its `awskms://` key, or a passphrase in the environment) usable;
- the processor bundle exists and was built for the stack's architecture and Python;
- the account's Lambda concurrency leaves Lambda's 100 unreserved executions after what every
  stack of the project in this region reserves;
- the Availability Zones the stack will use, by ID (the program's own choice), are ones Lambda
  supports, and RDS offers the stack's instance class in each of them.

Every line is `ok` or a `problem` with its fix; doctor exits 1 if there is any problem. A check
doctor could not make (an API the endpoint does not serve, a denied call) is a problem too: it
says what to verify by hand.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import boto3
import yaml
from botocore.exceptions import BotoCoreError, ClientError

from components.network import choose_zone_ids
from components.settings import (
    BUNDLE_KEY,
    UNRESERVED_MINIMUM,
    bundle_target_problem,
)
from dataplatform.synth import PROJECT_ROOT, load_stack_config
from etl.contract import Architecture

RESERVED_KEY = "processorReservedConcurrency"
CONCURRENCY_QUOTA = "L-B99A9384"
"""Service Quotas' code for Lambda's "Concurrent executions"."""


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    ok: bool
    detail: str
    """What was found (ok) or what is wrong and how to fix it (problem)."""

    def line(self) -> str:
        """`ok       name: detail` or `problem  name: detail`."""
        return f"{'ok' if self.ok else 'problem':<8} {self.name}: {self.detail}"


@dataclass(frozen=True)
class StackFacts:
    """What doctor needs to know about the stack, from its files."""

    project: str
    stack: str
    region: str | None
    values: Mapping[str, str]
    """Full config keys to values (Pulumi.yaml defaults under the stack file)."""
    secrets_provider: str | None
    """The stack file's `secretsprovider` (None: passphrase, or the backend's default)."""
    reservations: Mapping[str, int]
    """Each of the project's stacks in the same region: its reserved concurrency."""

    def setting(self, key: str) -> str:
        """A project setting's value."""
        return self.values.get(f"{self.project}:{key}", "")


def stack_facts(root: Path, stack: str) -> StackFacts:
    """The stack's settings, and the reservations of every stack of the project in its region."""
    config = load_stack_config(root, stack)
    stack_file = yaml.safe_load((root / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8")) or {}
    region = config.values.get("aws:region")
    reservations = {}
    for path in sorted(root.glob("Pulumi.*.yaml")):
        other = path.name.split(".")[1]
        other_config = load_stack_config(root, other).values
        if other_config.get("aws:region") == region:
            value = other_config.get(f"{config.project}:{RESERVED_KEY}", "0")
            reservations[other] = int(value) if value.isdigit() else 0
    return StackFacts(
        project=config.project,
        stack=stack,
        region=region,
        values=config.values,
        secrets_provider=stack_file.get("secretsprovider"),
        reservations=reservations,
    )


# --- pure judgements (tested without AWS) ---------------------------------------------------


def concurrency_check(
    *, limit: int, unreserved: int, held: int, reservations: Mapping[str, int]
) -> Check:
    """Whether the stacks' reservations leave Lambda's 100 unreserved executions.

    `unreserved` is what the account has unreserved now; `held` what the project's functions
    already reserve (a redeploy gives it back before taking it again).
    """
    wanted = sum(reservations.values())
    spare = unreserved + held - wanted
    listed = ", ".join(f"{stack} {count}" for stack, count in sorted(reservations.items()))
    if spare >= UNRESERVED_MINIMUM:
        return Check(
            "lambda concurrency",
            True,
            f"limit {limit}, the stacks reserve {wanted} ({listed}), {spare} stay unreserved",
        )
    needed = limit - spare + UNRESERVED_MINIMUM
    return Check(
        "lambda concurrency",
        False,
        f"the account's limit is {limit} with {unreserved} unreserved; the stacks reserve "
        f"{wanted} ({listed}) and Lambda keeps {UNRESERVED_MINIMUM} unreserved, so "
        "PutFunctionConcurrency would fail. Fix: request a limit of at least "
        f"{needed} (Service Quotas, AWS Lambda, 'Concurrent executions', {CONCURRENCY_QUOTA}) "
        f"or lower {RESERVED_KEY}",
    )


def zones_check(zones: Sequence[tuple[str, str]]) -> tuple[Check, list[tuple[str, str]]]:
    """The zones the stack will use (by ID, as the program chooses) from (name, ID) pairs."""
    try:
        chosen = choose_zone_ids([zone_id for _, zone_id in zones])
    except ValueError as error:
        return (
            Check(
                "availability zones",
                False,
                f"{error}. Fix: deploy to a region with two zones Lambda supports",
            ),
            [],
        )
    names = {zone_id: name for name, zone_id in zones}
    picked = [(zone_id, names[zone_id]) for zone_id in chosen]
    listed = ", ".join(f"{zone_id} ({name})" for zone_id, name in picked)
    return Check("availability zones", True, f"{listed}; Lambda supports both"), picked


def rds_check(
    instance_class: str, version: str, offered: Sequence[str], picked: Sequence[tuple[str, str]]
) -> Check:
    """Whether RDS offers the class (for the PostgreSQL major version) in every chosen zone."""
    name = "rds instance class"
    if not offered:
        return Check(
            name,
            False,
            f"RDS offers no {instance_class} for PostgreSQL {version} in this region. Fix: set "
            "dbInstanceClass to a class `aws rds describe-orderable-db-instance-options "
            "--engine postgres` lists",
        )
    missing = [f"{zone_id} ({zone})" for zone_id, zone in picked if zone not in offered]
    if missing:
        return Check(
            name,
            False,
            f"{instance_class} is not offered in {', '.join(missing)}, where the stack puts a "
            "subnet. Fix: choose a class offered in every zone (Graviton classes are missing "
            "in some, e.g. use1-az3)",
        )
    return Check(name, True, f"{instance_class} (PostgreSQL {version}) in every chosen zone")


def pulumi_version_check(expected: str, output: str | None) -> Check:
    """The CLI's `pulumi version` output against `.pulumi-version`."""
    if output is None:
        return Check(
            "pulumi cli",
            False,
            f"not found. Fix: install Pulumi {expected} "
            "(https://www.pulumi.com/docs/iac/download-install/)",
        )
    found = output.strip().removeprefix("v")
    if found != expected:
        return Check(
            "pulumi cli",
            False,
            f"{found} is installed, the project pins {expected} (.pulumi-version). Fix: "
            f"install {expected} (CI runs that one)",
        )
    return Check("pulumi cli", True, f"{found}, as .pulumi-version pins")


# --- the checks that ask AWS and the machine ------------------------------------------------


Client = Any
ClientFactory = Callable[[str, str], Client]


def _boto_client(service: str, region: str) -> Client:
    return boto3.client(service, region_name=region)  # type: ignore[call-overload]


def _could_not(name: str, what: str, error: Exception) -> Check:
    reason = str(error).splitlines()[0][:200]
    return Check(name, False, f"could not {what} ({reason}). Fix: check it by hand")


def _backend_url(environ: Mapping[str, str], home: Path) -> str | None:
    if environ.get("PULUMI_BACKEND_URL"):
        return environ["PULUMI_BACKEND_URL"]
    credentials = home / ".pulumi" / "credentials.json"
    try:
        current = json.loads(credentials.read_text(encoding="utf-8")).get("current")
    except (OSError, ValueError):
        return None
    return str(current) if current else None


def backend_check(url: str | None, client: ClientFactory, region: str) -> Check:
    """The state backend is reachable: its S3 bucket (or local directory) exists."""
    name = "state backend"
    if not url:
        return Check(
            name,
            False,
            "none configured. Fix: export PULUMI_BACKEND_URL=<the bootstrap's backendUrl> "
            "(or `pulumi login <url>`)",
        )
    parsed = urlparse(url)
    if parsed.scheme == "s3":
        bucket_region = parse_qs(parsed.query).get("region", [region])[0]
        try:
            client("s3", bucket_region).head_bucket(Bucket=parsed.netloc)
        except (BotoCoreError, ClientError) as error:
            return Check(
                name,
                False,
                f"bucket {parsed.netloc} is not reachable ({str(error).splitlines()[0]}). Fix: "
                "use the bootstrap's backendUrl and credentials that may read it",
            )
        return Check(name, True, f"s3://{parsed.netloc} reachable")
    if parsed.scheme == "file":
        path = Path(parsed.path or "/").expanduser()
        if path.is_dir():
            return Check(name, True, f"{url} exists")
        return Check(name, False, f"{url} does not exist. Fix: `pulumi login {url}` creates it")
    return Check(name, True, f"{parsed.scheme}:// backend (not probed)")


def secrets_check(
    provider: str | None, environ: Mapping[str, str], client: ClientFactory, region: str
) -> Check:
    """The stack's secrets provider can be used: its KMS key exists, or a passphrase is set."""
    name = "secrets provider"
    if provider and provider.startswith("awskms://"):
        parsed = urlparse(provider)
        key = (parsed.netloc + parsed.path).strip("/")
        key_region = parse_qs(parsed.query).get("region", [region])[0]
        try:
            client("kms", key_region).describe_key(KeyId=key)
        except (BotoCoreError, ClientError) as error:
            return Check(
                name,
                False,
                f"{key} cannot be described ({str(error).splitlines()[0]}). Fix: use the "
                "bootstrap's secretsProvider and credentials that may use its key",
            )
        return Check(name, True, f"awskms key {key} found")
    if provider and provider != "passphrase":
        return Check(name, True, f"{provider.split('://')[0]} (not probed)")
    if environ.get("PULUMI_CONFIG_PASSPHRASE") is not None or environ.get(
        "PULUMI_CONFIG_PASSPHRASE_FILE"
    ):
        return Check(name, True, "passphrase from the environment")
    return Check(
        name,
        False,
        "the stack uses a passphrase and none is set. Fix: export PULUMI_CONFIG_PASSPHRASE, or "
        "move the stack to the bootstrap's key: pulumi stack change-secrets-provider "
        "<secretsProvider>",
    )


def bundle_check(facts: StackFacts, root: Path) -> Check:
    """The bundle exists and records the stack's architecture and Python."""
    configured = facts.setting(BUNDLE_KEY)
    path = Path(configured) if Path(configured).is_absolute() else root / configured
    if not path.is_file():
        return Check(
            "bundle",
            False,
            f"{configured} does not exist. Fix: uv run dataplatform bundle --arch "
            f"{facts.setting('processorArchitecture')}",
        )
    try:
        architecture = Architecture(facts.setting("processorArchitecture"))
    except ValueError:
        return Check("bundle", False, "processorArchitecture is neither arm64 nor x86_64")
    problem = bundle_target_problem(path, architecture)
    if problem:
        return Check("bundle", False, f"{configured} {problem}")
    return Check("bundle", True, f"{configured}, built for {architecture.value}")


def _pulumi_version(command: str) -> str | None:
    try:
        result = subprocess.run(
            [command, "version"], capture_output=True, text=True, check=False, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def _concurrency(facts: StackFacts, client: ClientFactory, region: str) -> Check:
    lambda_ = client("lambda", region)
    try:
        settings = lambda_.get_account_settings()
    except (BotoCoreError, ClientError) as error:
        return _could_not("lambda concurrency", "read the account's Lambda settings", error)
    held = 0
    for stack in facts.reservations:
        try:
            found = lambda_.get_function_concurrency(
                FunctionName=f"{facts.project}-{stack}-processor"
            )
        except ClientError:
            continue
        held += int(found.get("ReservedConcurrentExecutions") or 0)
    limit = settings["AccountLimit"]
    return concurrency_check(
        limit=int(limit["ConcurrentExecutions"]),
        unreserved=int(limit["UnreservedConcurrentExecutions"]),
        held=held,
        reservations=facts.reservations,
    )


def _rds(facts: StackFacts, client: ClientFactory, region: str, picked: Any) -> Check:
    instance_class = facts.setting("dbInstanceClass")
    version = facts.setting("dbPostgresVersion")
    offered: set[str] = set()
    try:
        pages = client("rds", region).get_paginator("describe_orderable_db_instance_options")
        for page in pages.paginate(Engine="postgres", DBInstanceClass=instance_class):
            for option in page["OrderableDBInstanceOptions"]:
                if str(option.get("EngineVersion", "")).split(".")[0] == version:
                    offered.update(zone["Name"] for zone in option.get("AvailabilityZones", []))
    except (BotoCoreError, ClientError) as error:
        return _could_not("rds instance class", "list RDS's orderable instance options", error)
    return rds_check(instance_class, version, sorted(offered), picked)


def diagnose(
    stack: str,
    *,
    root: Path = PROJECT_ROOT,
    environ: Mapping[str, str] | None = None,
    client: ClientFactory = _boto_client,
    pulumi: str = "pulumi",
    home: Path | None = None,
) -> list[Check]:
    """Every check for `stack`, in the order they are printed."""
    environ = os.environ if environ is None else environ
    home = Path.home() if home is None else home
    facts = stack_facts(root, stack)
    expected = (root / ".pulumi-version").read_text(encoding="utf-8").strip()
    checks: list[Check] = []
    region = facts.region
    if region:
        checks.append(Check("region", True, f"{region} (Pulumi.{stack}.yaml)"))
    else:
        checks.append(
            Check(
                "region", False, f"not set. Fix: pulumi config set aws:region <region> -s {stack}"
            )
        )
    checks.append(pulumi_version_check(expected, _pulumi_version(pulumi)))
    checks.append(bundle_check(facts, root))
    if not region:
        return checks
    try:
        identity = client("sts", region).get_caller_identity()
    except (BotoCoreError, ClientError) as error:
        checks.append(
            Check(
                "credentials",
                False,
                f"none usable ({str(error).splitlines()[0]}). Fix: sign in with the "
                "credentials `pulumi up` will use (the account's AWS checks are skipped)",
            )
        )
        return checks
    checks.append(Check("credentials", True, f"account {identity['Account']}"))
    checks.append(backend_check(_backend_url(environ, home), client, region))
    checks.append(secrets_check(facts.secrets_provider, environ, client, region))
    checks.append(_concurrency(facts, client, region))
    try:
        zones = client("ec2", region).describe_availability_zones(
            Filters=[{"Name": "state", "Values": ["available"]}]
        )["AvailabilityZones"]
    except (BotoCoreError, ClientError) as error:
        checks.append(_could_not("availability zones", "list the region's zones", error))
        return checks
    zone_check, picked = zones_check(
        [
            (zone["ZoneName"], zone["ZoneId"])
            for zone in zones
            if zone.get("ZoneType", "availability-zone") == "availability-zone"
        ]
    )
    checks.append(zone_check)
    if picked:
        checks.append(_rds(facts, client, region, picked))
    return checks


def report(checks: Sequence[Check]) -> str:
    """The report, one line per check."""
    return "".join(check.line() + "\n" for check in checks)

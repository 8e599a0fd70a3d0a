"""Run the real program under Pulumi's mocks runtime and record everything it registers.

No engine, no provider plugins, no credentials: `set_mocks` replaces the engine with an in-process
monitor, and `RecordingMocks` answers each resource registration with deterministic outputs (ids,
ARNs, names derived from the logical name) and each of the invokes the program uses
(caller identity, region, partition, availability zones) with fixed values. Any other invoke is an
error, so an unplanned data source cannot slip into the program unnoticed.

`run_program` is what `dataplatform synth` and the infrastructure tests share: it seeds the config
before the program runs, runs it with `preview=False` (so every `apply` runs), waits for every
registration, and returns the recorded resources and the stack's exports. It resets the runtime's
root resource first, so several runs (dev, then prod) can share one process.
"""

from __future__ import annotations

import hashlib
import logging
import runpy
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
from pulumi.runtime import mocks, rpc, settings
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

ACCOUNT_ID = "123456789012"
DEFAULT_REGION = "us-east-1"


@dataclass(frozen=True)
class RecordedResource:
    """One resource the program registered, as the engine would have received it."""

    urn: str
    type: str
    name: str
    parent: str | None
    """The parent's URN; None for children of the stack itself."""
    custom: bool
    """True for cloud resources, False for components."""
    inputs: dict[str, Any]
    """The inputs; secret values are wrapped as Pulumi's RPC secrets (see `is_secret`)."""
    outputs: dict[str, Any]
    """What the mocks answered: the inputs plus computed outputs (ARNs, names) and `id`."""
    dependencies: tuple[str, ...]
    """URNs of the resources this one depends on (inputs and `depends_on`)."""
    options: dict[str, bool] = field(default_factory=dict)
    """The lifecycle options the engine received: `protect`, `retainOnDelete`,
    `deleteBeforeReplace`."""


@dataclass(frozen=True)
class Export:
    """One stack output after resolution."""

    value: Any
    secret: bool


@dataclass(frozen=True)
class ProgramRun:
    """Everything one run of the program registered and exported."""

    stack: str
    resources: list[RecordedResource]
    exports: dict[str, Export]
    invokes: list[str] = field(default_factory=list)
    """The invoke tokens the program called, in order."""
    warnings: list[str] = field(default_factory=list)
    """Warnings the program logged to the engine (pulumi-aws logs one for every deprecated
    resource or argument used)."""

    def by_type(self, type_: str) -> list[RecordedResource]:
        """Every recorded resource of one type token, e.g. `aws:s3/bucket:Bucket`."""
        return [resource for resource in self.resources if resource.type == type_]

    def one(self, type_: str, name: str | None = None) -> RecordedResource:
        """The single resource of a type (and logical name); fails if there is not exactly one."""
        found = [r for r in self.by_type(type_) if name is None or r.name == name]
        if len(found) != 1:
            names = [r.name for r in self.by_type(type_)]
            raise LookupError(f"expected one {type_} named {name}, found {names}")
        return found[0]

    def named(self, name: str) -> RecordedResource:
        """The resource with a logical name (names are unique in this program)."""
        found = [r for r in self.resources if r.name == name]
        if len(found) != 1:
            raise LookupError(f"expected one resource named {name}, found {len(found)}")
        return found[0]


def is_secret(value: Any) -> bool:
    """True if `value` is a recorded input Pulumi marked secret."""
    return bool(rpc.is_rpc_secret(value))


def unwrap(value: Any) -> Any:
    """A recorded value with every secret wrapper removed, for assertions on its content."""
    if is_secret(value):
        return unwrap(rpc.unwrap_rpc_secret(value))
    if isinstance(value, dict):
        return {key: unwrap(item) for key, item in value.items()}
    if isinstance(value, list):
        return [unwrap(item) for item in value]
    return value


def _short_hash(*parts: str, length: int = 8) -> str:
    return hashlib.sha256("/".join(parts).encode("utf-8")).hexdigest()[:length]


class RecordingMocks(pulumi.runtime.Mocks):
    """Deterministic answers for resources and the invokes the program uses."""

    def __init__(
        self, region: str = DEFAULT_REGION, zones: Sequence[tuple[str, str]] | None = None
    ) -> None:
        self.region = region
        self.zones = (
            list(zones)
            if zones is not None
            else [
                (f"{region}a", "use1-az1"),
                (f"{region}b", "use1-az2"),
                (f"{region}c", "use1-az4"),
            ]
        )
        """The region's available zones as (name, ID): names map to IDs per account."""
        self.invokes: list[str] = []
        self.registered: list[str] = []
        """Every `type::name` the program asked to create, in order (kept even if it fails)."""

    def call(
        self, args: pulumi.runtime.MockCallArgs
    ) -> tuple[dict[str, Any], list[tuple[str, str]]]:
        self.invokes.append(args.token)
        region = self.region
        # Results are in the provider's wire names (camelCase), as the engine would return them.
        results: dict[str, dict[str, Any]] = {
            "aws:index/getCallerIdentity:getCallerIdentity": {
                "accountId": ACCOUNT_ID,
                "arn": f"arn:aws:iam::{ACCOUNT_ID}:user/mock",
                "id": ACCOUNT_ID,
                "userId": "AIDAMOCKMOCKMOCK",
            },
            "aws:index/getRegion:getRegion": {
                "region": region,
                "name": region,
                "id": region,
                "endpoint": f"ec2.{region}.amazonaws.com",
                "description": region,
            },
            "aws:index/getPartition:getPartition": {
                "partition": "aws",
                "dnsSuffix": "amazonaws.com",
                "id": "aws",
                "reverseDnsPrefix": "com.amazonaws",
            },
            "aws:ssm/getParameter:getParameter": {
                "name": str(args.args.get("name", "")),
                "value": "ami-0a1b2c3d4e5f60718",
                "type": "String",
                "arn": f"arn:aws:ssm:{region}::parameter{args.args.get('name', '')}",
                "id": str(args.args.get("name", "")),
                "insecureValue": "ami-0a1b2c3d4e5f60718",
                "version": 1,
            },
            "aws:index/getAvailabilityZones:getAvailabilityZones": {
                "names": [name for name, _ in self.zones],
                "zoneIds": [zone_id for _, zone_id in self.zones],
                "id": region,
                "state": "available",
            },
        }
        if args.token not in results:
            raise NotImplementedError(f"no mock for invoke {args.token}; add one deliberately")
        return results[args.token], []

    def new_resource(self, args: pulumi.runtime.MockResourceArgs) -> tuple[str, dict[str, Any]]:
        self.registered.append(f"{args.typ}::{args.name}")
        computed = self._computed(args.typ, args.name, args.inputs)
        resource_id = str(computed.pop("id", f"{args.name}-id"))
        return resource_id, {**args.inputs, **computed}

    def _computed(self, type_: str, name: str, inputs: Mapping[str, Any]) -> dict[str, Any]:
        """The outputs a provider would compute, derived deterministically from the name."""
        # A resource may live in another region than the provider's (pulumi-aws 7's `region`).
        region, account = str(unwrap(inputs.get("region")) or self.region), ACCOUNT_ID
        physical = str(unwrap(inputs.get("name")) or name)
        token = _short_hash(type_, name)
        service = type_.split(":")[1].split("/")[0] if ":" in type_ else "mock"
        out: dict[str, Any] = {
            "arn": f"arn:aws:{service}:{region}:{account}:{physical}",
            "name": physical,
        }
        if type_ == "random:index/randomId:RandomId":
            size = int(inputs.get("byteLength", 4))
            out = {"hex": _short_hash(name, length=2 * size), "b64Url": token, "dec": "0"}
        elif type_ == "aws:s3/bucket:Bucket":
            bucket = str(inputs["bucket"])
            out = {"id": bucket, "bucket": bucket, "arn": f"arn:aws:s3:::{bucket}"}
        elif type_ == "aws:kms/key:Key":
            key_id = f"{token}-0000-4000-8000-{_short_hash(name, length=12)}"
            out = {
                "id": key_id,
                "keyId": key_id,
                "arn": f"arn:aws:kms:{region}:{account}:key/{key_id}",
            }
        elif type_ == "aws:sqs/queue:Queue":
            url = f"https://sqs.{region}.amazonaws.com/{account}/{physical}"
            out = {
                "id": url,
                "url": url,
                "name": physical,
                "arn": f"arn:aws:sqs:{region}:{account}:{physical}",
            }
        elif type_ == "aws:lambda/function:Function":
            out["arn"] = f"arn:aws:lambda:{region}:{account}:function:{physical}"
            out["version"] = "$LATEST"
        elif type_ == "aws:s3/bucketObjectv2:BucketObjectv2":
            out = {"id": str(inputs.get("key")), "versionId": f"v-{token}"}
        elif type_ == "aws:signer/signingProfile:SigningProfile":
            profile = f"arn:aws:signer:{region}:{account}:/signing-profiles/{physical}"
            out = {
                "id": physical,
                "name": physical,
                "arn": profile,
                "version": token,
                "versionArn": f"{profile}/{token}",
            }
        elif type_ == "aws:signer/signingJob:SigningJob":
            # Signer names the signed object after the job: <prefix><job id>.zip.
            destination = unwrap(inputs.get("destination")) or {}
            target = destination.get("s3", {})
            job_id = f"{token}-0000-4000-8000-{_short_hash(name, length=12)}"
            key = f"{target.get('prefix', '')}{job_id}.zip"
            out = {
                "id": job_id,
                "jobId": job_id,
                "status": "Succeeded",
                "signedObjects": [{"s3s": [{"bucket": target.get("bucket"), "key": key}]}],
            }
        elif type_ == "aws:iam/role:Role":
            out = {
                "id": physical,
                "name": physical,
                "arn": f"arn:aws:iam::{account}:role/{physical}",
            }
        elif type_ == "aws:cloudwatch/logGroup:LogGroup":
            out = {
                "id": physical,
                "name": physical,
                "arn": f"arn:aws:logs:{region}:{account}:log-group:{physical}",
            }
        elif type_ == "aws:secretsmanager/secret:Secret":
            secret = f"{inputs.get('namePrefix', name)}{token}"
            out = {
                "id": secret,
                "name": secret,
                "arn": f"arn:aws:secretsmanager:{region}:{account}:secret:{secret}",
            }
        elif type_ == "aws:rds/instance:Instance":
            address = f"{inputs['identifier']}.{token}.{region}.rds.amazonaws.com"
            port = int(inputs.get("port", 5432))
            out = {
                "id": str(inputs["identifier"]),
                "address": address,
                "port": port,
                "endpoint": f"{address}:{port}",
                "resourceId": f"db-{_short_hash(name, length=26).upper()}",
                "arn": f"arn:aws:rds:{region}:{account}:db:{inputs['identifier']}",
            }
        elif type_ == "aws:ec2/vpcEndpoint:VpcEndpoint":
            out = {
                "id": f"vpce-{token}",
                "prefixListId": f"pl-{token}",
                "arn": f"arn:aws:ec2:{region}:{account}:vpc-endpoint/vpce-{token}",
            }
        elif type_ == "aws:ec2transitgateway/instanceConnectEndpoint:InstanceConnectEndpoint":
            out = {
                "id": f"eice-{token}",
                "arn": f"arn:aws:ec2:{region}:{account}:instance-connect-endpoint/eice-{token}",
                "dnsName": f"eice-{token}.ec2-instance-connect-endpoint.{region}.amazonaws.com",
            }
        elif type_ == "aws:ec2/instance:Instance":
            out = {
                "id": f"i-{token}",
                "arn": f"arn:aws:ec2:{region}:{account}:instance/i-{token}",
                "privateIp": "10.40.0.10",
            }
        elif type_.startswith("aws:ec2/"):
            kind = {
                "vpc": "vpc",
                "subnet": "subnet",
                "securityGroup": "sg",
                "defaultSecurityGroup": "sg",
                "routeTable": "rtb",
            }
            prefix = kind.get(type_.split("/")[1].split(":")[0], "ec2")
            out = {
                "id": f"{prefix}-{token}",
                "arn": f"arn:aws:ec2:{region}:{account}:{prefix}/{prefix}-{token}",
            }
        return out


class _Collect(logging.Handler):
    """Keeps the messages the program logs to the (mock) engine at warning level and above."""

    def __init__(self) -> None:
        super().__init__(level=logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


class RecordingMonitor(mocks.MockMonitor):
    """The mocks' monitor, also remembering each registration's parent, kind and dependencies."""

    def __init__(self, recording_mocks: RecordingMocks) -> None:
        super().__init__(recording_mocks)
        self.registrations: dict[
            str, tuple[str, str, str, bool, tuple[str, ...], dict[str, Any], dict[str, bool]]
        ] = {}

    def RegisterResource(self, request: Any) -> Any:  # noqa: N802 - the gRPC method's name
        response = super().RegisterResource(request)  # type: ignore[no-untyped-call]
        if request.type != "pulumi:pulumi:Stack":
            inputs = rpc.deserialize_properties(request.object)
            self.registrations[response.urn] = (
                request.type,
                request.name,
                request.parent,
                bool(request.custom),
                tuple(sorted(set(request.dependencies))),
                inputs,
                {
                    "protect": bool(request.protect),
                    "retainOnDelete": bool(request.retainOnDelete),
                    "deleteBeforeReplace": bool(request.deleteBeforeReplace),
                },
            )
        return response


def run_program(
    program: Path,
    *,
    project: str,
    stack: str,
    config: Mapping[str, str],
    secret_keys: Sequence[str] = (),
    recording_mocks: RecordingMocks | None = None,
) -> ProgramRun:
    """Run `program` (a `__main__.py`) under mocks with `config` (full `project:key` names).

    Raises whatever the program raises (e.g. a `SettingsError` before any resource exists); pass
    `recording_mocks` to see afterwards what was registered before it failed.
    """
    if recording_mocks is None:
        recording_mocks = RecordingMocks(region=config.get("aws:region", DEFAULT_REGION))
    monitor = RecordingMonitor(recording_mocks)
    # A fresh root stack per run; set_mocks only creates one when there is none.
    settings.ROOT.set(None)
    # Config first: the program reads it while it is being executed.
    pulumi.runtime.set_all_config(dict(config), list(secret_keys))
    engine_log = logging.getLogger(f"{__name__}.engine.{project}.{stack}")
    engine_log.propagate = False
    collect = _Collect()
    engine_log.handlers = [collect]
    pulumi.runtime.set_mocks(
        recording_mocks,
        project=project,
        stack=stack,
        preview=False,
        monitor=monitor,
        logger=engine_log,
    )

    def execute() -> None:
        runpy.run_path(str(program), run_name="__main__")

    _sync_await(run_pulumi_func(execute))
    resources = []
    for urn, (type_, name, parent, custom, deps, inputs, options) in monitor.registrations.items():
        registration = monitor.resources.get(urn)
        state = {**registration.state, "id": registration.id} if registration else {}
        stack_urn = parent.endswith(f"::pulumi:pulumi:Stack::{project}-{stack}")
        resources.append(
            RecordedResource(
                urn=urn,
                type=type_,
                name=name,
                parent=None if not parent or stack_urn else parent,
                custom=custom,
                inputs=inputs,
                outputs=dict(state),
                dependencies=deps,
                options=options,
            )
        )
    return ProgramRun(
        stack=stack,
        resources=sorted(resources, key=lambda r: r.urn),
        exports=_exports(),
        invokes=list(recording_mocks.invokes),
        warnings=list(collect.messages),
    )


def _exports() -> dict[str, Export]:
    root = settings.get_root_resource()
    outputs: dict[str, Any] = getattr(root, "outputs", {})
    exports = {}
    for name, value in outputs.items():
        output = pulumi.Output.from_input(value)
        exports[name] = Export(
            value=_sync_await(output.future()), secret=bool(_sync_await(output.is_secret()))
        )
    return exports

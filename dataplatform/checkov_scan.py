"""Checkov's AWS checks over the resources each stack registers, offline.

Usage: `uv run python -m dataplatform.checkov_scan [--stack dev|prod|bootstrap ...] [--out DIR]`

Checkov scans Terraform, not Pulumi programs, so each stack is run under Pulumi's mocks (what
`dataplatform synth` does) and every registered resource is written as a Terraform plan
(`terraform show -json` format): its type from the Pulumi token (`aws:s3/bucket:Bucket` is
`aws_s3_bucket`), its inputs in Terraform's snake_case names, secrets redacted, and a reference
from an input to every dependency whose id, ARN or name it holds, so that checkov's graph checks
(flow log of a VPC, logging of a bucket) can join resources. The bootstrap program runs with its
example config.

Checkov itself runs as `uvx --from checkov==3.3.30`: it pins boto3 and other libraries to
versions that would drag pulumi and pulumi-aws back by months if it shared the project's
environment. Prints passed and failed per check id per stack; exits 1 if a check fails that is
not listed in `ACCEPTED` for that stack (with the reason), 0 otherwise.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import re
import shutil
import subprocess
import sys
import tempfile
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from dataplatform.mocks import ProgramRun, run_program
from dataplatform.synth import PROJECT_ROOT, _read_yaml, redact, run_stack

CHECKOV = "checkov==3.3.30"
STACKS = ("dev", "prod", "bootstrap")

ACCEPTED: Mapping[str, Mapping[str, str]] = {
    "*": {
        "CKV_AWS_116": "a function DLQ catches only asynchronous invocations; SQS event source "
        "failures reach the queue's DLQ through its redrive policy",
        "CKV2_AWS_57": "the master password is rotated through stack config by design",
        "CKV_AWS_145 *access_logs*": "S3 server access logging supports SSE-S3 destinations "
        "only (Amazon S3 User Guide, enabling server access logging)",
        "CKV_AWS_18 *access_logs*": "a log destination must not log itself",
        "CKV_AWS_144 *access_logs*": "access logs are not replicated (they stay in-region)",
        "CKV2_AWS_62 *access_logs*": "nothing consumes access-log events",
        "CKV2_AWS_62 *replica*": "a replica is written by replication only; nothing consumes "
        "its events",
        "CKV_AWS_18 *replica*": "a replica is written by S3 replication only; its access "
        "would need a second log bucket in the replica region",
        "CKV_AWS_144 *replica*": "a replica is not replicated again",
        "CKV_AWS_24 aws_vpc_security_group_ingress_rule.access_host_from_endpoint": "the check "
        "reads a rule without a CIDR as open to the world; this one admits the Instance Connect "
        "Endpoint's security group only (referenced_security_group_id, which the check ignores)",
        "CKV_AWS_61 aws_iam_role.catalog_analyst_role": "the analyst role trusts the account, "
        "so only principals whose own IAM policy allows sts:AssumeRole on it may assume it "
        "(IAM User Guide, delegating access within an account); no service or other account",
        "CKV2_AWS_41 aws_instance.access_jump_host": "the jump host has no IAM role on purpose: "
        "it forwards SSH to the database and holds no credentials to steal",
        "CKV_AWS_126 aws_instance.access_jump_host": "a stateless jump host used for minutes at "
        "a time: detailed monitoring would cost $2.10 a month, more than half the host's price",
    },
    "bootstrap": {
        "CKV2_AWS_62 aws_s3_bucket.state_bucket": "nothing consumes the state bucket's events; "
        "its changes are kept by versioning and its access logs",
    },
    "dev": {
        "CKV_AWS_144": "dev is not replicated by design (disposable)",
        "CKV_AWS_157": "dev is single-AZ by design",
        "CKV_AWS_293": "dev has no deletion protection by design",
        "CKV_AWS_338": "dev keeps logs 14 days by design",
    },
}
"""Failures accepted per stack (`*`: every stack), with the reason: a check id, or a check id
and an fnmatch pattern of the resource addresses it applies to."""


def accepted_reason(stack: str, check_id: str, resource: str) -> str | None:
    """Why a failure of `check_id` on `resource` is accepted in `stack`, or None."""
    for scope in (stack, "*"):
        for key, reason in ACCEPTED.get(scope, {}).items():
            wanted, _, pattern = key.partition(" ")
            if wanted == check_id and (not pattern or fnmatch.fnmatch(resource, pattern)):
                return reason
    return None


TERRAFORM_TYPES = {
    "aws:ec2/vpc:Vpc": "aws_vpc",
    "aws:ec2/subnet:Subnet": "aws_subnet",
    "aws:ec2/securityGroup:SecurityGroup": "aws_security_group",
    "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup": "aws_default_security_group",
    "aws:ec2/routeTable:RouteTable": "aws_route_table",
    "aws:ec2/routeTableAssociation:RouteTableAssociation": "aws_route_table_association",
    "aws:ec2/vpcEndpoint:VpcEndpoint": "aws_vpc_endpoint",
    "aws:ec2/flowLog:FlowLog": "aws_flow_log",
    "aws:ec2/instance:Instance": "aws_instance",
    "aws:ec2transitgateway/instanceConnectEndpoint:InstanceConnectEndpoint": (
        "aws_ec2_instance_connect_endpoint"
    ),
    "aws:rds/instance:Instance": "aws_db_instance",
    "aws:rds/parameterGroup:ParameterGroup": "aws_db_parameter_group",
    "aws:rds/subnetGroup:SubnetGroup": "aws_db_subnet_group",
    "aws:s3/bucketObjectv2:BucketObjectv2": "aws_s3_object",
    "aws:s3/bucketReplicationConfig:BucketReplicationConfig": (
        "aws_s3_bucket_replication_configuration"
    ),
    "aws:iam/openIdConnectProvider:OpenIdConnectProvider": "aws_iam_openid_connect_provider",
}
"""Pulumi tokens whose Terraform type is not `<package>_<module>_<snake_case name>`."""


def snake(name: str) -> str:
    """`kmsMasterKeyId` -> `kms_master_key_id` (Pulumi's names are Terraform's, camelCased)."""
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


def terraform_type(token: str) -> str | None:
    """The Terraform resource type of a Pulumi type token; None for components and non-AWS."""
    if token in TERRAFORM_TYPES:
        return TERRAFORM_TYPES[token]
    package, module, kind = token.split(":")
    if package != "aws":
        return None
    return f"aws_{module.split('/')[0].lower()}_{snake(kind)}"


def _singular(name: str) -> str:
    """Pulumi pluralises repeated blocks (`rules`); Terraform names the block once (`rule`)."""
    if name.endswith("ies"):
        return name[:-3] + "y"
    return name[:-1] if name.endswith("s") and not name.endswith("ss") else name


def terraform_values(inputs: Mapping[str, Any], *, top: bool = True) -> dict[str, Any]:
    """Inputs in Terraform's names: snake_case, repeated blocks singular. Tag and variable
    maps keep their keys."""
    values: dict[str, Any] = {}
    for key, value in inputs.items():
        if top and key.startswith("__"):
            continue
        name = snake(key)
        if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            values[_singular(name)] = [terraform_values(v, top=False) for v in value]
        elif isinstance(value, dict) and name not in {"tags", "tags_all", "variables", "triggers"}:
            values[name] = terraform_values(value, top=False)
        else:
            values[name] = value
    return values


def _identities(outputs: Mapping[str, Any]) -> set[str]:
    """The values by which other resources refer to this one."""
    found = set()
    for key in ("id", "arn", "name", "bucket", "keyId"):
        value = outputs.get(key)
        if isinstance(value, str) and len(value) > 3:
            found.add(value)
    return found


def _mentions(value: Any, identity: str) -> bool:
    if isinstance(value, str):
        return identity in value
    if isinstance(value, dict):
        return any(_mentions(item, identity) for item in value.values())
    if isinstance(value, list):
        return any(_mentions(item, identity) for item in value)
    return False


def terraform_plan(run: ProgramRun) -> dict[str, Any]:
    """The run as a Terraform JSON plan of creates, with references along dependencies."""
    addresses: dict[str, str] = {}
    for resource in run.resources:
        kind = terraform_type(resource.type) if resource.custom else None
        if kind:
            addresses[resource.urn] = f"{kind}.{re.sub(r'[^A-Za-z0-9_]', '_', resource.name)}"
    by_urn = {resource.urn: resource for resource in run.resources}
    planned, changes, configuration = [], [], []
    for resource in run.resources:
        address = addresses.get(resource.urn)
        if address is None:
            continue
        kind, name = address.split(".", 1)
        values = terraform_values(redact(resource.inputs))
        expressions: dict[str, Any] = {}
        for key, value in resource.inputs.items():
            references = [
                f"{addresses[dep]}.id"
                for dep in resource.dependencies
                if dep in addresses
                and any(_mentions(value, i) for i in _identities(by_urn[dep].outputs))
            ]
            if references:
                refs = [ref for r in references for ref in (r, r.rsplit(".", 1)[0])]
                expressions[snake(key)] = {"references": refs}
        common = {"address": address, "mode": "managed", "type": kind, "name": name}
        planned.append(
            {**common, "provider_name": "registry.terraform.io/hashicorp/aws", "values": values}
        )
        changes.append(
            {
                **common,
                "change": {
                    "actions": ["create"],
                    "before": None,
                    "after": values,
                    "after_unknown": {},
                },
            }
        )
        configuration.append({**common, "expressions": expressions})
    return {
        "format_version": "1.2",
        "terraform_version": "1.9.0",
        "planned_values": {"root_module": {"resources": planned}},
        "resource_changes": changes,
        "configuration": {"root_module": {"resources": configuration}},
    }


def bootstrap_run(root: Path = PROJECT_ROOT) -> ProgramRun:
    """The bootstrap program under mocks with its example config."""
    # bootstrap/__main__.py imports its module from its own directory, as `pulumi up` runs it.
    if str(root / "bootstrap") not in sys.path:
        sys.path.insert(0, str(root / "bootstrap"))
    example = _read_yaml(root / "bootstrap" / "Pulumi.example.yaml").get("config") or {}
    config = {str(key): str(value) for key, value in example.items()}
    return run_program(
        root / "bootstrap" / "__main__.py",
        project="dataplatform-bootstrap",
        stack="bootstrap",
        config=config,
    )


def stack_run(stack: str) -> ProgramRun:
    """A stack's run: a platform stack from its stack file, or the bootstrap program."""
    return bootstrap_run() if stack == "bootstrap" else run_stack(stack)[0]


def checkov(plan: Path) -> dict[str, list[tuple[str, str]]]:
    """Checkov over one plan file: `passed`/`failed` lists of (check id, resource address)."""
    uvx = shutil.which("uvx")
    if uvx is None:
        raise SystemExit("error: uvx not found; install uv (https://docs.astral.sh/uv/)")
    command = [
        uvx,
        "--quiet",
        "--from",
        CHECKOV,
        "checkov",
        "--compact",
        "--framework",
        "terraform_plan",
        "--output",
        "json",
        "--file",
        str(plan),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    try:
        report = json.loads(done.stdout)
    except ValueError:
        raise SystemExit(f"error: checkov printed no JSON:\n{done.stderr[-2000:]}") from None
    reports = report if isinstance(report, list) else [report]
    results: dict[str, list[tuple[str, str]]] = {"passed": [], "failed": []}
    for one in reports:
        for outcome in ("passed", "failed"):
            for check in one.get("results", {}).get(f"{outcome}_checks", []):
                results[outcome].append((check["check_id"], check["resource"]))
    return results


def summarise(stack: str, results: Mapping[str, Sequence[tuple[str, str]]]) -> list[str]:
    """The report of one stack: totals, then each failing and each passing check id."""
    by_id: dict[str, dict[str, list[str]]] = defaultdict(lambda: {"passed": [], "failed": []})
    for outcome, checks in results.items():
        for check_id, resource in checks:
            by_id[check_id][outcome].append(resource)
    failing = sorted(i for i, r in by_id.items() if r["failed"])
    passing = sorted(i for i, r in by_id.items() if not r["failed"])
    lines = [
        f"== {stack}: {len(results['passed'])} passed, {len(results['failed'])} failed "
        f"({len(passing)} check ids pass, {len(failing)} fail)"
    ]
    for check_id in failing:
        passed = len(by_id[check_id]["passed"])
        lines.append(f"FAIL {check_id} ({passed} passed)")
        for resource in sorted(by_id[check_id]["failed"]):
            reason = accepted_reason(stack, check_id, resource)
            lines.append(f"     {resource}" + (f"  [accepted: {reason}]" if reason else ""))
    lines.extend(f"pass {check_id} ({len(by_id[check_id]['passed'])})" for check_id in passing)
    return lines


def unaccepted(stack: str, results: Mapping[str, Sequence[tuple[str, str]]]) -> list[str]:
    """`check id resource` of each failure not accepted for `stack`."""
    return sorted(
        f"{check_id} {resource}"
        for check_id, resource in results["failed"]
        if accepted_reason(stack, check_id, resource) is None
    )


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--stack", action="append", choices=STACKS, help="default: all three")
    parser.add_argument("--out", type=Path, help="keep the plan JSON files here")
    options = parser.parse_args(list(argv) if argv is not None else None)
    stacks = options.stack or list(STACKS)
    bad: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory(prefix="dataplatform-checkov-") as scratch:
        directory = options.out or Path(scratch)
        directory.mkdir(parents=True, exist_ok=True)
        for stack in stacks:
            plan = directory / f"{stack}.tfplan.json"
            plan.write_text(json.dumps(terraform_plan(stack_run(stack)), indent=1) + "\n")
            results = checkov(plan)
            print("\n".join(summarise(stack, results)), flush=True)
            if problems := unaccepted(stack, results):
                bad[stack] = problems
    for stack, problems in bad.items():
        print(f"error: {stack} fails {', '.join(problems)}", file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())

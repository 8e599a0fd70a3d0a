"""The permission table (bootstrap/permissions.toml) turned into the IAM requests a deploy makes.

`load_table` reads the rows; `requests` renders, for every resource a program registered under
the mocks (`dataplatform.mocks.run_program`), every row of its type into concrete `Request`s:
the action, the resource ARN built from the resource's recorded inputs and outputs, and the
condition keys the call carries (region, tags sent or already on the resource, the service a KMS
call comes through). `decide` evaluates one against an identity policy, through the key policy of
the stack's own key when the resource is one (`dataplatform.iam.evaluate_kms`).
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dataplatform.iam import Decision, Request, evaluate, evaluate_kms
from dataplatform.mocks import ProgramRun, RecordedResource, unwrap

TABLE = Path(__file__).resolve().parent.parent / "bootstrap" / "permissions.toml"
OPERATIONS = frozenset({"create", "read", "update", "delete", "tag"})
_PLACEHOLDER = re.compile(r"\{([^{}]+)\}")
_DEPENDENCY = re.compile(r"^dep\[(?P<type>[^\]]+)\]\.(?P<field>\w+)$")
_KEY_ARN = re.compile(r"^arn:aws[\w-]*:kms:[^:]+:\d{12}:key/")


@dataclass(frozen=True)
class Permission:
    """One row of the table."""

    type: str
    operation: str
    actions: tuple[str, ...]
    resource: str
    source: tuple[str, ...]
    tags: str = "resource"
    fresh: bool = False
    context: Mapping[str, str] = field(default_factory=dict)
    preview: bool = True
    tags_of: str | None = None
    """The type of the dependency whose tags the call sees (an inline policy's role)."""


def load_table(path: Path = TABLE) -> tuple[list[Permission], dict[str, str]]:
    """The rows and the named sources of the table, checked for shape."""
    document = tomllib.loads(path.read_text(encoding="utf-8"))
    sources: dict[str, str] = document.get("sources", {})
    rows = []
    for index, row in enumerate(document.get("permission", [])):
        permission = Permission(
            type=row["type"],
            operation=row["operation"],
            actions=tuple(row["actions"]),
            resource=row["resource"],
            source=tuple(row["source"]),
            tags=row.get("tags", "resource"),
            fresh=bool(row.get("fresh", False)),
            context=dict(row.get("context", {})),
            preview=bool(row.get("preview", True)),
            tags_of=row.get("tags_of"),
        )
        if permission.operation not in OPERATIONS or permission.tags not in {"request", "resource"}:
            raise ValueError(f"permission row {index} ({permission.type}) is malformed")
        if not permission.source:
            raise ValueError(f"permission row {index} ({permission.type}) cites no source")
        rows.append(permission)
    return rows, sources


@dataclass(frozen=True)
class Need:
    """One (action, resource) a deploy of a recorded resource needs, and why."""

    resource: RecordedResource
    permission: Permission
    request: Request

    def describe(self) -> str:
        """`type name operation: action on ARN` for a failure message."""
        return (
            f"{self.resource.type} {self.resource.name} {self.permission.operation}: "
            f"{self.request.action} on {self.request.resource}"
        )


def _state(resource: RecordedResource) -> dict[str, Any]:
    value = unwrap({**resource.inputs, **resource.outputs})
    assert isinstance(value, dict)
    return value


def _sqs_arn(url: str) -> str:
    """`https://sqs.<region>.amazonaws.com/<account>/<name>` as the queue's ARN."""
    match = re.match(r"^https://sqs\.([^.]+)\.amazonaws\.com/(\d{12})/(.+)$", url)
    if not match:
        raise ValueError(f"{url!r} is not an SQS queue URL")
    region, account, name = match.groups()
    return f"arn:aws:sqs:{region}:{account}:{name}"


def render(
    template: str,
    resource: RecordedResource,
    by_urn: Mapping[str, RecordedResource],
    *,
    region: str,
    account: str,
) -> str:
    """A row's template filled from the resource, its dependencies, region and account."""
    state = _state(resource)

    def value(match: re.Match[str]) -> str:
        name, _, filter_ = match.group(1).partition("|")
        if name == "region":
            found: Any = region
        elif name == "account":
            found = account
        elif dependency := _DEPENDENCY.match(name):
            candidates = [
                by_urn[urn]
                for urn in resource.dependencies
                if urn in by_urn and by_urn[urn].type == dependency["type"]
            ]
            if len(candidates) != 1:
                raise LookupError(f"{resource.urn}: {len(candidates)} dependencies of {name}")
            found = _state(candidates[0]).get(dependency["field"])
        else:
            found = state.get(name)
        if found is None or found == "":
            raise LookupError(f"{resource.urn} records no {name} for {template}")
        text = str(found)
        return _sqs_arn(text) if filter_ == "sqs_arn" else text

    return _PLACEHOLDER.sub(value, template)


def _tag_context(tags: Mapping[str, str], how: str, action: str) -> dict[str, Any]:
    if how == "request":
        return {
            **{f"aws:RequestTag/{key}": value for key, value in tags.items()},
            "aws:TagKeys": sorted(tags),
        }
    context: dict[str, Any] = {f"aws:ResourceTag/{key}": value for key, value in tags.items()}
    if action.startswith("iam:"):
        context.update({f"iam:ResourceTag/{key}": value for key, value in tags.items()})
    return context


def needs(
    run: ProgramRun,
    table: Sequence[Permission],
    *,
    principal: str,
    region: str,
    account: str,
) -> Iterator[Need]:
    """Every (action, resource) the recorded resources need, as requests by `principal`."""
    by_urn = {resource.urn: resource for resource in run.resources}
    rows: dict[str, list[Permission]] = {}
    for permission in table:
        rows.setdefault(permission.type, []).append(permission)
    for resource in run.resources:
        if not resource.custom:
            continue
        for permission in rows.get(resource.type, []):
            tagged = resource
            if permission.tags_of:
                [tagged] = [
                    by_urn[urn]
                    for urn in resource.dependencies
                    if urn in by_urn and by_urn[urn].type == permission.tags_of
                ]
            tags = {str(k): str(v) for k, v in (_state(tagged).get("tags") or {}).items()}
            # A resource may live in another region than the stack's (a replica's `region`).
            where = str(_state(resource).get("region") or region)
            arn = render(permission.resource, resource, by_urn, region=where, account=account)
            for action in permission.actions:
                context: dict[str, Any] = {"aws:RequestedRegion": where}
                if action.startswith("kms:"):
                    # KMS puts the caller's account in every request's context.
                    context["kms:CallerAccount"] = account
                if permission.tags == "request" or not permission.fresh:
                    context.update(_tag_context(tags, permission.tags, action))
                context.update(
                    {key: value.format(region=where) for key, value in permission.context.items()}
                )
                yield Need(resource, permission, Request(action, arn, principal, context))


def key_policies(run: ProgramRun, account: str) -> dict[str, Any]:
    """Each recorded KMS key's policy by ARN (AWS's default key policy where none is set)."""
    default = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                "Action": "kms:*",
                "Resource": "*",
            }
        ]
    }
    policies: dict[str, Any] = {}
    for key in run.by_type("aws:kms/key:Key"):
        state = _state(key)
        policies[str(state["arn"])] = state.get("policy") or default
    return policies


def decide(
    need: Need, identity_policy: str | Mapping[str, Any], keys: Mapping[str, Any]
) -> Decision:
    """The decision on one need: the key policy decides for the stack's keys, IAM elsewhere."""
    if _KEY_ARN.match(need.request.resource) and need.request.resource in keys:
        return evaluate_kms(keys[need.request.resource], [identity_policy], need.request)
    return evaluate([identity_policy], need.request)

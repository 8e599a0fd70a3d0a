"""The CrossGuard policy pack: `platform_rules` wrapped as mandatory pulumi_policy policies.

`pulumi preview|up --policy-pack policy` runs `__main__.py`, which calls `serve()`. Every rule of
`platform_rules` becomes one ResourceValidationPolicy and every stack rule one
StackValidationPolicy, all mandatory: a violation fails the preview and stops the update.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import platform_rules
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyPack,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)

PACK_NAME = "dataplatform-security"


def current_stack(environ: Mapping[str, str] = os.environ) -> str:
    """The stack being previewed or updated, as the Pulumi CLI tells the analyzer.

    Empty when the CLI does not say; prod protections then still apply to every resource tagged
    `Environment: prod` (`platform_rules.is_prod`).
    """
    return environ.get("PULUMI_STACK", "")


def resource_policy(rule: platform_rules.Rule) -> ResourceValidationPolicy:
    """A mandatory resource policy that reports each of `rule`'s findings."""

    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if not rule.applies_to(args.resource_type):
            return
        for message in rule.check(args.resource_type, args.props, current_stack()):
            report_violation(message, None)

    return ResourceValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


def _stack_resource(resource: Any) -> platform_rules.StackResource:
    """A pulumi_policy PolicyResource as the stack rules see it."""
    return platform_rules.StackResource(
        type=resource.resource_type,
        name=resource.name,
        props=resource.props,
        depends_on=frozenset(d.name for d in (resource.dependencies or [])),
        protect=bool(resource.opts.protect) if resource.opts is not None else False,
        stack=current_stack(),
    )


def stack_policy(rule: platform_rules.StackRule) -> StackValidationPolicy:
    """A mandatory stack policy that reports each of `rule`'s findings."""

    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        for message in rule.check([_stack_resource(r) for r in args.resources]):
            report_violation(message, None)

    return StackValidationPolicy(
        name=rule.name,
        description=rule.description,
        validate=validate,
        enforcement_level=EnforcementLevel.MANDATORY,
    )


def policies() -> list[Policy]:
    """Every policy of the pack, resource rules first."""
    return [
        *(resource_policy(rule) for rule in platform_rules.RULES),
        *(stack_policy(rule) for rule in platform_rules.STACK_RULES),
    ]


def serve() -> None:
    """Start the pack's analyzer server for the Pulumi CLI (blocks until the CLI stops it)."""
    PolicyPack(
        name=PACK_NAME,
        policies=policies(),
        enforcement_level=EnforcementLevel.MANDATORY,
        description="The data platform's security properties, enforced on every preview and up.",
    )

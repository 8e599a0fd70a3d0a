"""The CrossGuard wrapper (policy/platform_pack.py) around the rules, driven as the engine does."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import platform_pack
import platform_rules as rules
import pytest
import yaml
from pulumi_policy import (
    EnforcementLevel,
    PolicyCustomTimeouts,
    PolicyResource,
    PolicyResourceOptions,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError, unknown_checking_proxy

ROOT = Path(__file__).resolve().parents[2]
OPTIONS = PolicyResourceOptions(False, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)
QUEUE = {"name": "q", "sqsManagedSseEnabled": True}


def policy_named(name: str) -> Any:
    [policy] = [p for p in platform_pack.policies() if p.name == name]
    return policy


def validate(name: str, resource_type: str, props: dict[str, Any]) -> list[str]:
    """What the named resource policy reports for a resource, as the analyzer would call it."""
    reported: list[str] = []
    args = ResourceValidationArgs(
        resource_type, unknown_checking_proxy(props), "urn:pulumi:dev::dataplatform::x", "x",
        OPTIONS, None,
    )  # fmt: skip
    policy_named(name).validate(args, lambda message, urn=None: reported.append(message))
    return reported


def test_the_pack_holds_every_rule_once_all_mandatory() -> None:
    policies = platform_pack.policies()
    assert [p.name for p in policies] == [
        *(rule.name for rule in rules.RULES),
        *(rule.name for rule in rules.STACK_RULES),
    ]
    assert len({p.name for p in policies}) == len(policies)
    assert {p.enforcement_level for p in policies} == {EnforcementLevel.MANDATORY}
    assert all(isinstance(p, ResourceValidationPolicy) for p in policies[: len(rules.RULES)])
    assert all(isinstance(p, StackValidationPolicy) for p in policies[len(rules.RULES) :])


def test_a_violation_is_reported_through_the_sdk() -> None:
    assert validate("sqs-encryption", rules.QUEUE, QUEUE) == []
    [message] = validate("sqs-encryption", rules.QUEUE, {**QUEUE, "sqsManagedSseEnabled": False})
    assert "sqsManagedSseEnabled" in message


def test_a_policy_ignores_other_resource_types() -> None:
    assert validate("sqs-encryption", rules.LOG_GROUP, {"name": "g"}) == []


def test_an_unknown_value_during_preview_is_not_a_pass() -> None:
    # The SDK turns UnknownValueError into "can't run during preview"; the rule must not swallow
    # it (and pass), and it runs again with known values during `pulumi up`.
    props = {"policy": UNKNOWN_STRING_VALUE, "bucket": "b"}
    with pytest.raises(UnknownValueError):
        validate("s3-tls-only", rules.BUCKET_POLICY, props)


def test_prod_protections_follow_the_stack_the_cli_names(monkeypatch: pytest.MonkeyPatch) -> None:
    database = {
        "publiclyAccessible": False,
        "storageEncrypted": True,
        "parameterGroupName": "database-parameters",
        "multiAz": False,
    }
    monkeypatch.setenv("PULUMI_STACK", "dev")
    assert validate("rds-prod-protections", rules.DB_INSTANCE, database) == []
    monkeypatch.setenv("PULUMI_STACK", "prod")
    assert len(validate("rds-prod-protections", rules.DB_INSTANCE, database)) == 4


def test_current_stack_reads_the_cli_environment() -> None:
    assert platform_pack.current_stack({"PULUMI_STACK": "prod"}) == "prod"
    assert platform_pack.current_stack({}) == ""


def _resource(
    type_: str, name: str, props: dict[str, Any], deps: list[PolicyResource]
) -> PolicyResource:
    return PolicyResource(type_, props, f"urn:{name}", name, OPTIONS, None, None, deps, {})


def test_the_stack_policy_sees_dependencies() -> None:
    bucket = _resource(rules.BUCKET, "lake-bucket", {"bucket": "b"}, [])
    companions = [
        _resource(kind, f"lake-{index}", {"bucket": "b"}, [bucket])
        for index, kind in enumerate(rules.BUCKET_COMPANIONS)
    ]
    policy = policy_named("s3-bucket-protections-present")
    reported: list[str] = []
    policy.validate(
        StackValidationArgs([bucket, *companions]), lambda m, urn=None: reported.append(m)
    )
    assert reported == []
    policy.validate(
        StackValidationArgs([bucket, *companions[1:]]), lambda m, urn=None: reported.append(m)
    )
    assert reported == ["bucket lake-bucket has no " + next(iter(rules.BUCKET_COMPANIONS.values()))]


def test_pulumi_policy_yaml_declares_a_python_pack_with_its_virtualenv() -> None:
    project = yaml.safe_load((ROOT / "policy" / "PulumiPolicy.yaml").read_text(encoding="utf-8"))
    assert project["runtime"] == {"name": "python", "options": {"virtualenv": "venv"}}
    assert project["version"]


def test_the_pack_requirements_are_the_locked_versions() -> None:
    lock = tomllib.loads((ROOT / "uv.lock").read_text(encoding="utf-8"))
    locked = {p["name"]: p["version"] for p in lock["package"]}
    lines = (ROOT / "policy" / "requirements.txt").read_text(encoding="utf-8").splitlines()
    pins = dict(line.split("==") for line in lines if line and not line.startswith("#"))
    assert pins == {"pulumi": locked["pulumi"], "pulumi-policy": locked["pulumi-policy"]}


def test_the_pack_entry_point_only_serves() -> None:
    source = (ROOT / "policy" / "__main__.py").read_text(encoding="utf-8")
    code = [line for line in source.splitlines() if line and not line.startswith(('"""', "#"))]
    assert code[-2:] == ["from platform_pack import serve", "serve()"]


def test_the_stack_policy_sees_protection(monkeypatch: pytest.MonkeyPatch) -> None:
    # The pack hands the rule each resource's `protect` option and the CLI's stack.
    protected = PolicyResourceOptions(True, [], None, [], PolicyCustomTimeouts(0, 0, 0), [], None)

    def bucket(opts: PolicyResourceOptions) -> PolicyResource:
        props = {"bucket": "b", "tags": {"Environment": "prod"}}
        return PolicyResource(rules.BUCKET, props, "urn:b", "lake-bucket", opts, None, None, [], {})

    policy = policy_named("prod-stateful-protected")
    reported: list[str] = []
    policy.validate(
        StackValidationArgs([bucket(protected)]), lambda m, urn=None: reported.append(m)
    )
    assert reported == []
    policy.validate(StackValidationArgs([bucket(OPTIONS)]), lambda m, urn=None: reported.append(m))
    assert len(reported) == 1
    assert "lake-bucket holds prod data" in reported[0]
    monkeypatch.setenv("PULUMI_STACK", "prod")
    untagged = PolicyResource(
        rules.BUCKET, {"bucket": "b"}, "urn:b", "lake-bucket", OPTIONS, None, None, [], {}
    )
    policy.validate(StackValidationArgs([untagged]), lambda m, urn=None: reported.append(m))
    assert len(reported) == 2

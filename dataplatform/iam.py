"""The smallest IAM policy evaluator that can judge the bootstrap's roles offline.

AWS publishes the rules (IAM User Guide, "Policy evaluation logic" and "IAM JSON policy elements:
Condition operators"; AWS KMS Developer Guide, "Determining access to AWS KMS keys"); no kept
library on PyPI evaluates conditions as well as actions and resources, so this module implements
the part of them the platform's policies use:

- a request is an action, a resource ARN, the calling principal's ARN and a request context
  (condition keys are case-insensitive, values are strings or lists of strings);
- a statement applies when its Action/NotAction, Resource/NotResource (and, in a resource
  policy, Principal) match and every condition holds; `*` and `?` are wildcards in actions
  (case-insensitive) and resources (case-sensitive);
- an applicable Deny beats any Allow, an applicable Allow beats the implicit deny;
- condition operators: the String, Arn, Numeric and Bool families (negated forms, `IfExists`
  suffixes, `ForAnyValue:`/`ForAllValues:` qualifiers) and `Null`. A missing key fails a
  positive operator and satisfies a negated one; `...IfExists` is satisfied by a missing key.
- KMS keys: the key policy decides. A statement naming the principal (or `*`) allows on its
  own; one naming the account (`arn:aws:iam::<account>:root`) delegates to IAM, whose policies
  must then allow too.

Anything else (permission boundaries, SCPs, session policies, policy variables) is out of scope:
`evaluate` raises `UnsupportedPolicy` rather than guessing.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from fnmatch import fnmatchcase
from typing import Any

Document = Mapping[str, Any]
ContextValue = str | Sequence[str]


class Decision(StrEnum):
    """What an evaluation concluded."""

    ALLOW = "allow"
    EXPLICIT_DENY = "explicit-deny"
    IMPLICIT_DENY = "implicit-deny"


class UnsupportedPolicy(ValueError):
    """A policy uses an element or operator this evaluator does not implement."""


@dataclass(frozen=True)
class Request:
    """One API call as IAM authorizes it."""

    action: str
    """`service:Action`, e.g. `lambda:ListTags`."""
    resource: str
    """The resource ARN the action applies to, or `*` for actions without resource types."""
    principal: str = "arn:aws:iam::123456789012:role/caller"
    """The caller's ARN (for a role session: the role's ARN, as `aws:PrincipalArn` gives it)."""
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    """Condition keys present in the request (`aws:RequestedRegion`, `aws:RequestTag/Stack`)."""

    def value(self, key: str) -> list[str] | None:
        """The values of a context key (keys are case-insensitive); None when absent."""
        wanted = key.lower()
        for name, value in self.context.items():
            if name.lower() == wanted:
                return [value] if isinstance(value, str) else list(value)
        if wanted == "aws:principalarn":
            return [self.principal]
        return None


def _items(value: Any) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, str | Mapping | bool | int | float):
        return [value]
    return list(value)


def _wildcard(pattern: str, value: str, *, case_sensitive: bool) -> bool:
    if "${" in pattern:
        raise UnsupportedPolicy(f"policy variables are not supported: {pattern!r}")
    # fnmatch's [] classes have no meaning in IAM: escape them so they match literally.
    escaped = re.sub(r"([\[\]])", r"[\1]", pattern)
    if case_sensitive:
        return fnmatchcase(value, escaped)
    return fnmatchcase(value.lower(), escaped.lower())


def _arn_like(pattern: str, value: str) -> bool:
    """ArnLike: each of the six colon-separated parts matched on its own (wildcards inside)."""
    if pattern == "*":
        return True
    pattern_parts, value_parts = pattern.split(":", 5), value.split(":", 5)
    if len(pattern_parts) != 6 or len(value_parts) != 6:
        return False
    return all(
        _wildcard(p, v, case_sensitive=True)
        for p, v in zip(pattern_parts, value_parts, strict=True)
    )


def _matches_action(statement: Document, action: str) -> bool:
    if "Action" in statement:
        return any(_wildcard(p, action, case_sensitive=False) for p in _items(statement["Action"]))
    if "NotAction" in statement:
        return not any(
            _wildcard(p, action, case_sensitive=False) for p in _items(statement["NotAction"])
        )
    raise UnsupportedPolicy("a statement needs Action or NotAction")


def _matches_resource(statement: Document, resource: str) -> bool:
    if "Resource" in statement:
        return any(_arn_or_star(p, resource) for p in _items(statement["Resource"]))
    if "NotResource" in statement:
        return not any(_arn_or_star(p, resource) for p in _items(statement["NotResource"]))
    raise UnsupportedPolicy("a statement needs Resource or NotResource")


def _arn_or_star(pattern: str, resource: str) -> bool:
    if pattern == "*" or resource == "*":
        return pattern == "*"
    return _wildcard(pattern, resource, case_sensitive=True)


def _compare(base: str, expected: str, actual: str) -> bool:
    if base == "StringEquals":
        return actual == expected
    if base == "StringEqualsIgnoreCase":
        return actual.lower() == expected.lower()
    if base == "StringLike":
        return _wildcard(expected, actual, case_sensitive=True)
    if base in ("ArnEquals", "ArnLike"):
        return _arn_like(expected, actual)
    if base == "Bool":
        return actual.lower() == str(expected).lower()
    if base.startswith("Numeric"):
        left, right = float(actual), float(expected)
        return {
            "NumericEquals": left == right,
            "NumericLessThan": left < right,
            "NumericLessThanEquals": left <= right,
            "NumericGreaterThan": left > right,
            "NumericGreaterThanEquals": left >= right,
        }[base]
    raise UnsupportedPolicy(f"condition operator {base} is not supported")


_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
    "NumericNotEquals": "NumericEquals",
}


def _condition_holds(operator: str, key: str, expected: Any, request: Request) -> bool:
    qualifier, _, name = operator.rpartition(":")
    if_exists = name.endswith("IfExists")
    base = name.removesuffix("IfExists")
    values = [str(v).lower() if isinstance(v, bool) else str(v) for v in _items(expected)]
    actual = request.value(key)
    if base == "Null":
        absent = actual is None
        return any(absent == (v.lower() == "true") for v in values)
    if actual is None:
        if if_exists:
            return True
        # Negated operators and ForAllValues hold on an absent key; the rest do not.
        return base in _NEGATED or qualifier == "ForAllValues"
    negated = base in _NEGATED
    positive = _NEGATED.get(base, base)

    def one(value: str) -> bool:
        hit = any(_compare(positive, wanted, value) for wanted in values)
        return not hit if negated else hit

    if qualifier == "ForAllValues":
        return all(one(value) for value in actual)
    if qualifier in ("ForAnyValue", ""):
        if qualifier == "" and len(actual) > 1:
            raise UnsupportedPolicy(f"{key} has several values: qualify {operator}")
        return any(one(value) for value in actual)
    raise UnsupportedPolicy(f"condition qualifier {qualifier} is not supported")


def _conditions_hold(statement: Document, request: Request) -> bool:
    conditions = statement.get("Condition") or {}
    return all(
        _condition_holds(operator, key, expected, request)
        for operator, block in conditions.items()
        for key, expected in block.items()
    )


def _principal_kind(statement: Document, request: Request) -> str | None:
    """How a resource policy's statement names the caller: `direct`, `account`, or None."""
    if "NotPrincipal" in statement:
        raise UnsupportedPolicy("NotPrincipal is not supported")
    principal = statement.get("Principal")
    if principal == "*":
        return "direct"
    if not isinstance(principal, Mapping):
        return None
    account = request.principal.split(":")[4]
    for name in _items(principal.get("AWS")):
        if name == "*" or name == request.principal:
            return "direct"
        if name in (account, f"arn:aws:iam::{account}:root"):
            return "account"
    return None


def statements(document: Document | str) -> list[Document]:
    """A policy's statements (JSON text or a parsed document; one statement or a list)."""
    parsed = json.loads(document) if isinstance(document, str) else document
    return [s for s in _items(parsed.get("Statement")) if isinstance(s, Mapping)]


def _applies(statement: Document, request: Request) -> bool:
    return (
        _matches_action(statement, request.action)
        and _matches_resource(statement, request.resource)
        and _conditions_hold(statement, request)
    )


def evaluate(policies: Sequence[Document | str], request: Request) -> Decision:
    """The decision of identity-based `policies` on `request`."""
    applicable = [s for p in policies for s in statements(p) if _applies(s, request)]
    if any(s.get("Effect") == "Deny" for s in applicable):
        return Decision.EXPLICIT_DENY
    if any(s.get("Effect") == "Allow" for s in applicable):
        return Decision.ALLOW
    return Decision.IMPLICIT_DENY


def evaluate_kms(
    key_policy: Document | str, identity_policies: Sequence[Document | str], request: Request
) -> Decision:
    """The decision on a request against a KMS key: its key policy first, IAM if it delegates."""
    applicable = [
        (s, kind)
        for s in statements(key_policy)
        if _applies(s, request) and (kind := _principal_kind(s, request)) is not None
    ]
    if any(s.get("Effect") == "Deny" for s, _ in applicable):
        return Decision.EXPLICIT_DENY
    identity = evaluate(identity_policies, request)
    if identity is Decision.EXPLICIT_DENY:
        return identity
    allows = {kind for s, kind in applicable if s.get("Effect") == "Allow"}
    if "direct" in allows or ("account" in allows and identity is Decision.ALLOW):
        return Decision.ALLOW
    return Decision.IMPLICIT_DENY

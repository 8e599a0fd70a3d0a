"""The IAM evaluator on the cases AWS documents (IAM User Guide: "Policy evaluation logic",
"IAM JSON policy elements: Condition operators", "Multivalued context keys"; AWS KMS Developer
Guide: "Determining access to AWS KMS keys"), re-stated here as policies and requests."""

from __future__ import annotations

from typing import Any

import pytest

from dataplatform.iam import Decision, Request, UnsupportedPolicy, evaluate, evaluate_kms

ACCOUNT = "111122223333"
ROLE = f"arn:aws:iam::{ACCOUNT}:role/deployer"


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def allow(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def deny(action: Any, resource: Any = "*", **extra: Any) -> dict[str, Any]:
    return {"Effect": "Deny", "Action": action, "Resource": resource, **extra}


def test_an_explicit_deny_overrides_any_allow() -> None:
    # Evaluation logic: explicit deny > allow > implicit deny.
    request = Request("s3:DeleteBucket", "arn:aws:s3:::logs", ROLE)
    assert evaluate([policy(allow("s3:*"))], request) is Decision.ALLOW
    assert evaluate([policy(allow("s3:*")), policy(deny("s3:Delete*"))], request) is (
        Decision.EXPLICIT_DENY
    )
    assert evaluate([policy(allow("s3:Get*"))], request) is Decision.IMPLICIT_DENY


def test_actions_match_case_insensitively_and_resources_case_sensitively() -> None:
    document = policy(allow("S3:get*", "arn:aws:s3:::Reports/*"))
    assert evaluate([document], Request("s3:GetObject", "arn:aws:s3:::Reports/a.csv", ROLE)) is (
        Decision.ALLOW
    )
    assert evaluate([document], Request("s3:GetObject", "arn:aws:s3:::reports/a.csv", ROLE)) is (
        Decision.IMPLICIT_DENY
    )
    # `?` is one character.
    single = policy(allow("s3:GetObject", "arn:aws:s3:::bucket-?"))
    assert evaluate([single], Request("s3:GetObject", "arn:aws:s3:::bucket-1", ROLE)) is (
        Decision.ALLOW
    )
    assert evaluate([single], Request("s3:GetObject", "arn:aws:s3:::bucket-12", ROLE)) is (
        Decision.IMPLICIT_DENY
    )


def test_not_action_allows_everything_but_the_listed_actions() -> None:
    # The documented "NotAction with Allow": everything except IAM.
    document = policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    assert evaluate([document], Request("s3:ListBucket", "arn:aws:s3:::b", ROLE)) is (
        Decision.ALLOW
    )
    assert evaluate([document], Request("iam:CreateUser", "*", ROLE)) is Decision.IMPLICIT_DENY


def test_not_resource_with_deny_denies_everything_but_the_listed_resources() -> None:
    document = policy(
        allow("s3:*"),
        {"Effect": "Deny", "Action": "s3:*", "NotResource": "arn:aws:s3:::mine*"},
    )
    assert evaluate([document], Request("s3:GetObject", "arn:aws:s3:::mine/x", ROLE)) is (
        Decision.ALLOW
    )
    assert evaluate([document], Request("s3:GetObject", "arn:aws:s3:::yours/x", ROLE)) is (
        Decision.EXPLICIT_DENY
    )


def test_condition_keys_are_anded_and_values_ored() -> None:
    # "Multiple context keys or values": every key must match, any one of a key's values.
    document = policy(
        allow(
            "ec2:StartInstances",
            Condition={
                "StringEquals": {
                    "aws:PrincipalTag/department": ["finance", "hr"],
                    "aws:PrincipalTag/role": "audit",
                }
            },
        )
    )
    tags = {"aws:PrincipalTag/department": "hr", "aws:PrincipalTag/role": "audit"}
    assert evaluate([document], Request("ec2:StartInstances", "*", ROLE, tags)) is Decision.ALLOW
    wrong = {**tags, "aws:PrincipalTag/role": "admin"}
    assert evaluate([document], Request("ec2:StartInstances", "*", ROLE, wrong)) is (
        Decision.IMPLICIT_DENY
    )


def test_condition_keys_are_case_insensitive() -> None:
    document = policy(
        allow("kms:CreateKey", Condition={"StringEquals": {"aws:RequestTag/Stack": "dev"}})
    )
    request = Request("kms:CreateKey", "*", ROLE, {"AWS:requesttag/Stack": "dev"})
    assert evaluate([document], request) is Decision.ALLOW


@pytest.mark.parametrize(
    ("operator", "decision"),
    [
        ("StringEquals", Decision.IMPLICIT_DENY),
        ("StringLike", Decision.IMPLICIT_DENY),
        ("StringNotEquals", Decision.ALLOW),
        ("StringEqualsIfExists", Decision.ALLOW),
        ("ForAnyValue:StringEquals", Decision.IMPLICIT_DENY),
        ("ForAllValues:StringEquals", Decision.ALLOW),
    ],
)
def test_a_missing_key(operator: str, decision: Decision) -> None:
    # A missing key fails positive operators, satisfies negated ones, IfExists and (the
    # documented trap) ForAllValues.
    document = policy(allow("ec2:RunInstances", Condition={operator: {"aws:RequestTag/team": "a"}}))
    assert evaluate([document], Request("ec2:RunInstances", "*", ROLE)) is decision


def test_null_tests_for_presence() -> None:
    document = policy(
        allow("ec2:RunInstances", Condition={"Null": {"aws:RequestTag/team": "false"}})
    )
    present = Request("ec2:RunInstances", "*", ROLE, {"aws:RequestTag/team": "x"})
    assert evaluate([document], present) is Decision.ALLOW
    assert evaluate([document], Request("ec2:RunInstances", "*", ROLE)) is Decision.IMPLICIT_DENY


def test_multivalued_keys_need_a_qualifier() -> None:
    # ForAllValues: every requested tag key is in the list; ForAnyValue: at least one is.
    keys = {"aws:TagKeys": ["Stack", "Owner"]}
    every = policy(
        allow("ec2:CreateTags", Condition={"ForAllValues:StringEquals": {"aws:TagKeys": ["Stack"]}})
    )
    some = policy(
        allow("ec2:CreateTags", Condition={"ForAnyValue:StringEquals": {"aws:TagKeys": ["Stack"]}})
    )
    assert evaluate([every], Request("ec2:CreateTags", "*", ROLE, keys)) is Decision.IMPLICIT_DENY
    assert evaluate([some], Request("ec2:CreateTags", "*", ROLE, keys)) is Decision.ALLOW
    plain = policy(allow("ec2:CreateTags", Condition={"StringEquals": {"aws:TagKeys": "Stack"}}))
    with pytest.raises(UnsupportedPolicy):
        evaluate([plain], Request("ec2:CreateTags", "*", ROLE, keys))


def test_arn_like_matches_part_by_part() -> None:
    document = policy(
        allow(
            "iam:PassRole",
            Condition={"ArnLike": {"aws:PrincipalArn": "arn:aws:iam::*:role/deploy-*"}},
        )
    )
    assert evaluate(
        [document], Request("iam:PassRole", "*", f"arn:aws:iam::{ACCOUNT}:role/deploy-dev")
    ) is (Decision.ALLOW)
    assert evaluate(
        [document], Request("iam:PassRole", "*", f"arn:aws:iam::{ACCOUNT}:user/deploy-dev")
    ) is (Decision.IMPLICIT_DENY)


def test_bool_and_numeric_operators() -> None:
    document = policy(
        deny("s3:*", Condition={"Bool": {"aws:SecureTransport": False}}),
        allow("s3:*", Condition={"NumericLessThan": {"s3:max-keys": "10"}}),
    )
    tls = {"aws:SecureTransport": "true", "s3:max-keys": "5"}
    assert evaluate([document], Request("s3:ListBucket", "*", ROLE, tls)) is Decision.ALLOW
    plain = {"aws:SecureTransport": "false", "s3:max-keys": "5"}
    assert (
        evaluate([document], Request("s3:ListBucket", "*", ROLE, plain)) is Decision.EXPLICIT_DENY
    )
    many = {"aws:SecureTransport": "true", "s3:max-keys": "50"}
    assert evaluate([document], Request("s3:ListBucket", "*", ROLE, many)) is Decision.IMPLICIT_DENY


KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


def test_a_key_policy_naming_the_account_delegates_to_iam() -> None:
    # The default key policy: IAM policies decide, and must allow.
    key_policy = policy({**allow("kms:*"), "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}})
    request = Request("kms:Decrypt", KEY, ROLE)
    assert evaluate_kms(key_policy, [], request) is Decision.IMPLICIT_DENY
    assert evaluate_kms(key_policy, [policy(allow("kms:Decrypt", KEY))], request) is Decision.ALLOW


def test_a_key_policy_naming_the_principal_allows_without_iam() -> None:
    key_policy = policy(
        {
            **allow("kms:Decrypt"),
            "Principal": {"AWS": "*"},
            "Condition": {"StringEquals": {"aws:PrincipalArn": ROLE}},
        }
    )
    assert evaluate_kms(key_policy, [], Request("kms:Decrypt", KEY, ROLE)) is Decision.ALLOW
    other = f"arn:aws:iam::{ACCOUNT}:role/other"
    assert evaluate_kms(key_policy, [], Request("kms:Decrypt", KEY, other)) is (
        Decision.IMPLICIT_DENY
    )


def test_without_a_key_policy_statement_iam_alone_grants_nothing() -> None:
    key_policy = policy({**allow("kms:Encrypt"), "Principal": {"AWS": ROLE}})
    identity = [policy(allow("kms:*"))]
    assert evaluate_kms(key_policy, identity, Request("kms:Decrypt", KEY, ROLE)) is (
        Decision.IMPLICIT_DENY
    )
    denied = [policy(allow("kms:*"), deny("kms:Encrypt"))]
    assert evaluate_kms(key_policy, denied, Request("kms:Encrypt", KEY, ROLE)) is (
        Decision.EXPLICIT_DENY
    )


def test_policy_variables_are_refused_not_guessed() -> None:
    document = policy(allow("s3:GetObject", "arn:aws:s3:::home/${aws:username}/*"))
    with pytest.raises(UnsupportedPolicy):
        evaluate([document], Request("s3:GetObject", "arn:aws:s3:::home/a/b", ROLE))

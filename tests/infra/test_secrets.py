"""The master password: a secret from config to resource, and nowhere in plaintext."""

from __future__ import annotations

import json
from typing import Any

from dataplatform.mocks import ProgramRun, is_secret
from dataplatform.synth import redact
from tests.infra.support import TEST_PASSWORD, inputs


def test_rds_password_input_is_secret(stack_run: ProgramRun) -> None:
    # Rule: the instance receives the password as a secret Output, never as plain text.
    instance = stack_run.one("aws:rds/instance:Instance")
    assert is_secret(instance.inputs["password"]), instance.urn
    assert inputs(instance)["password"] == TEST_PASSWORD, instance.urn


def test_connection_secret_is_secret_and_complete(stack_run: ProgramRun) -> None:
    # Rule: the secret's value is a secret holding the standard RDS keys for this instance.
    version = stack_run.one("aws:secretsmanager/secretVersion:SecretVersion")
    instance = stack_run.one("aws:rds/instance:Instance")
    assert is_secret(version.inputs["secretString"]), version.urn
    assert json.loads(inputs(version)["secretString"]) == {
        "engine": "postgres",
        "host": instance.outputs["address"],
        "port": 5432,
        "username": inputs(instance)["username"],
        "password": TEST_PASSWORD,
        "dbname": inputs(instance)["dbName"],
    }, version.urn
    secret = stack_run.one("aws:secretsmanager/secret:Secret")
    assert inputs(version)["secretId"] == secret.outputs["id"], version.urn


def _with_secrets_removed(value: Any) -> Any:
    return json.dumps(redact(value), sort_keys=True)


def test_password_appears_nowhere_outside_a_secret(stack_run: ProgramRun) -> None:
    # Rule: with secret values removed, no recorded input, output or export holds the password.
    leaks = [
        resource.urn
        for resource in stack_run.resources
        if TEST_PASSWORD in _with_secrets_removed(resource.inputs)
        or TEST_PASSWORD in _with_secrets_removed(resource.outputs)
    ]
    leaks += [
        name
        for name, export in stack_run.exports.items()
        if not export.secret and TEST_PASSWORD in json.dumps(export.value)
    ]
    assert leaks == [], leaks


def test_only_the_password_inputs_carry_secrets(stack_run: ProgramRun) -> None:
    # Rule: secrecy is where the password flows (instance, secret value) - and the check can see it.
    carriers = sorted(
        f"{resource.name}.{key}"
        for resource in stack_run.resources
        for key, value in resource.inputs.items()
        if is_secret(value)
    )
    assert carriers == ["database-instance.password", "database-secret-value.secretString"], (
        carriers
    )


def test_no_export_is_or_holds_a_secret(stack_run: ProgramRun) -> None:
    # Rule: nothing the stack exports is secret, so nothing secret leaves the state file.
    secret_exports = [name for name, export in stack_run.exports.items() if export.secret]
    assert secret_exports == [], secret_exports
    assert (
        stack_run.exports["databaseSecretArn"].value
        == stack_run.one("aws:secretsmanager/secret:Secret").outputs["arn"]
    ), stack_run.exports

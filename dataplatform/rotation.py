"""Rotating the database password: generate one RDS accepts and store it as the stack's encrypted
`dbPassword` config. `pulumi up` then changes the RDS master password and the secret the processor
reads (docs/runbooks/rotation.md).

The password never appears on a command line (other users can read argv from /proc) or in
output: it goes to `pulumi config set` on standard input, which Pulumi reads when no value
argument is given and stdin is not a terminal.
"""

from __future__ import annotations

import secrets
import shutil
import string
import subprocess

from dataplatform.errors import PULUMI_INSTALL_HINT
from etl.contract import (
    PASSWORD_CONFIG_KEY,
    PASSWORD_FORBIDDEN,
    PASSWORD_MAX_LENGTH,
    PASSWORD_MIN_LENGTH,
)
from etl.core.errors import DataplatformError, UsageError

MIN_LENGTH = PASSWORD_MIN_LENGTH
MAX_LENGTH = PASSWORD_MAX_LENGTH
DEFAULT_LENGTH = 40
CONFIG_KEY = PASSWORD_CONFIG_KEY

# RDS master passwords: printable ASCII except what the contract forbids (RDS CreateDBInstance).
FORBIDDEN = PASSWORD_FORBIDDEN
ALPHABET = "".join(
    sorted(c for c in string.printable if c not in FORBIDDEN and c not in string.whitespace)
)


class PulumiError(DataplatformError):
    """The Pulumi CLI is missing or refused to store the value."""


def generate_password(length: int = DEFAULT_LENGTH) -> str:
    """A random password of `length` characters (8–128) that RDS accepts as a master password."""
    if not MIN_LENGTH <= length <= MAX_LENGTH:
        raise UsageError(
            f"password length {length} is out of range: RDS accepts {MIN_LENGTH} to {MAX_LENGTH}"
        )
    return "".join(secrets.choice(ALPHABET) for _ in range(length))


def store_password(stack: str, password: str) -> None:
    """`pulumi config set --secret dbPassword --stack STACK`, the value on stdin."""
    pulumi = shutil.which("pulumi")
    if pulumi is None:
        raise PulumiError(f"the Pulumi CLI (`pulumi`) is not on PATH: {PULUMI_INSTALL_HINT}")
    result = subprocess.run(
        [pulumi, "config", "set", "--secret", CONFIG_KEY, "--stack", stack, "--non-interactive"],
        input=password,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if result.returncode != 0:
        lines = [line for line in (result.stderr or result.stdout).splitlines() if line.strip()]
        detail = lines[-1].strip() if lines else f"exit status {result.returncode}"
        raise PulumiError(
            f"pulumi config set failed for stack {stack!r}: {detail} "
            "(run it from the project directory, logged in to the stack's backend)"
        )


def rotate(stack: str, length: int = DEFAULT_LENGTH) -> None:
    """Generate a password and store it in the stack's config; it is not returned or shown."""
    store_password(stack, generate_password(length))


def next_steps(stack: str) -> str:
    """What to do after storing the new password."""
    return (
        f"Stored a new {CONFIG_KEY} for stack {stack!r} (encrypted in Pulumi.{stack}.yaml).\n"
        "Next:\n"
        f"  1. pulumi preview -s {stack}   # shows {CONFIG_KEY} changing as [secret]\n"
        f"  2. commit Pulumi.{stack}.yaml and open a PR: its preview comment shows the [secret]\n"
        "     change of the RDS password and of the processor's database secret\n"
        f"  3. after merge (or by hand): pulumi up -s {stack}\n"
        "The processor re-reads the secret on its next authentication failure: no redeploy.\n"
        "Runbook: docs/runbooks/rotation.md"
    )

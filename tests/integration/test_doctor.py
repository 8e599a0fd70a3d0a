"""`dataplatform doctor` against moto's server (STS, S3, KMS, EC2, Lambda, RDS over HTTP), and its
judgements on the numbers and zones moto cannot produce.

moto does not serve Lambda's GetAccountSettings, and answers RDS's
DescribeOrderableDBInstanceOptions only for Aurora PostgreSQL and Neptune: against moto those two
checks are problems that say they could not be made, which is what a denied call in a real account
would show too. Their logic is pinned below on the figures a real account returns.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import boto3
import pytest
from typer.testing import CliRunner

from components.settings import UNRESERVED_MINIMUM
from dataplatform import doctor
from dataplatform.cli import app
from etl.contract import Architecture
from tests.infra.support import ROOT, write_bundle

REGION = "us-east-1"
SECRETS_ALIAS = "alias/dataplatform-pulumi-secrets"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the project's stack files, the dev stack on the bootstrap's KMS secrets
    provider, a bundle for arm64, and a fake Pulumi CLI of the pinned version."""
    for name in ("Pulumi.yaml", "Pulumi.dev.yaml", "Pulumi.prod.yaml", ".pulumi-version"):
        shutil.copyfile(ROOT / name, tmp_path / name)
    stack_file = tmp_path / "Pulumi.dev.yaml"
    stack_file.write_text(
        f"secretsprovider: awskms://{SECRETS_ALIAS}?region={REGION}\n" + stack_file.read_text()
    )
    (tmp_path / "build" / "lambda").mkdir(parents=True)
    write_bundle(tmp_path / "build" / "lambda" / "processor.zip", architecture=Architecture.ARM64)
    version = (ROOT / ".pulumi-version").read_text().strip()
    fake = tmp_path / "bin" / "pulumi"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\necho v{version}\n")
    fake.chmod(0o755)
    return tmp_path


def _backend(bucket: str) -> str:
    """A state bucket and the secrets key's alias, as the bootstrap leaves them."""
    boto3.client("s3", region_name=REGION).create_bucket(Bucket=bucket)
    kms = boto3.client("kms", region_name=REGION)
    if not any(a["AliasName"] == SECRETS_ALIAS for a in kms.list_aliases()["Aliases"]):
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=SECRETS_ALIAS, TargetKeyId=key)
    return f"s3://{bucket}?region={REGION}&awssdk=v2"


def test_doctor_against_moto_reports_one_line_per_check(aws: str, project: Path) -> None:
    backend = _backend("doctor-state-ok")
    checks = doctor.diagnose(
        "dev",
        root=project,
        environ={"PULUMI_BACKEND_URL": backend},
        pulumi=str(project / "bin" / "pulumi"),
        home=project,
    )
    by_name = {check.name: check for check in checks}
    assert list(by_name) == [
        "region",
        "pulumi cli",
        "bundle",
        "credentials",
        "state backend",
        "secrets provider",
        "lambda concurrency",
        "availability zones",
        "rds instance class",
    ]
    for name in ("region", "pulumi cli", "bundle", "credentials", "state backend"):
        assert by_name[name].ok, by_name[name].line()
    assert by_name["secrets provider"].ok, by_name["secrets provider"].line()
    # moto's us-east-1 maps us-east-1b/c to use1-az1/az2 and us-east-1e to use1-az3.
    assert by_name["availability zones"].ok
    assert "use1-az1 (us-east-1b), use1-az2 (us-east-1c)" in by_name["availability zones"].detail
    # What moto does not serve is reported, not passed.
    assert not by_name["lambda concurrency"].ok
    assert "could not read the account's Lambda settings" in by_name["lambda concurrency"].detail
    assert not by_name["rds instance class"].ok


def test_doctor_names_each_problem_and_its_fix(aws: str, project: Path) -> None:
    (project / "build" / "lambda" / "processor.zip").unlink()
    write_bundle(project / "build" / "lambda" / "processor.zip", architecture=Architecture.X86_64)
    (project / "bin" / "pulumi").write_text("#!/bin/sh\necho v3.100.0\n")
    stack_file = project / "Pulumi.dev.yaml"
    stack_file.write_text(stack_file.read_text().replace(SECRETS_ALIAS, "alias/doctor-absent"))
    checks = doctor.diagnose(
        "dev",
        root=project,
        environ={"PULUMI_BACKEND_URL": f"s3://doctor-absent-{os.getpid()}?region={REGION}"},
        pulumi=str(project / "bin" / "pulumi"),
        home=project,
    )
    by_name = {check.name: check for check in checks}
    assert "built for x86_64 but processorArchitecture is arm64" in by_name["bundle"].detail
    assert "3.100.0 is installed" in by_name["pulumi cli"].detail
    assert "is not reachable" in by_name["state backend"].detail
    assert "cannot be described" in by_name["secrets provider"].detail
    assert not any(by_name[n].ok for n in ("bundle", "pulumi cli", "state backend"))


def test_the_cli_prints_the_lines_and_exits_1_on_a_problem(
    aws: str, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PULUMI_BACKEND_URL", _backend("doctor-state-cli"))
    original = doctor.diagnose
    monkeypatch.setattr(doctor, "diagnose", lambda stack, **kw: original(stack, home=project, **kw))
    result = CliRunner().invoke(
        app,
        ["doctor", "-s", "dev", "--pulumi", "absent-pulumi", "--project-dir", str(project)],
    )
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert len(lines) == 9, lines
    assert all(line.split()[0] in {"ok", "problem"} for line in lines), lines
    assert any(line.startswith("problem  pulumi cli: not found. Fix: install") for line in lines)


def test_the_cli_help_shows_an_example() -> None:
    result = CliRunner().invoke(app, ["doctor", "--help"])
    assert result.exit_code == 0
    assert "dataplatform doctor --stack dev" in result.output


def test_an_unknown_stack_is_one_line_and_exit_2() -> None:
    result = CliRunner().invoke(app, ["doctor", "--stack", "nope"])
    assert result.exit_code == 2
    assert "no stack file Pulumi.nope.yaml" in result.output


# --- the judgements, on a real account's figures ----------------------------------------------


def test_a_new_account_limit_of_10_is_a_problem_with_the_limit_to_request() -> None:
    # Rule: Lambda keeps 100 unreserved; dev 3 + prod 5 need a limit of at least 108.
    check = doctor.concurrency_check(
        limit=10, unreserved=10, held=0, reservations={"dev": 3, "prod": 5}
    )
    assert not check.ok
    assert "at least 108" in check.detail
    assert "L-B99A9384" in check.detail


def test_a_redeploy_counts_what_the_functions_already_hold() -> None:
    # Both stacks deployed: the account shows 100 unreserved of 108, the functions hold 8.
    reservations = {"dev": 3, "prod": 5}
    held = doctor.concurrency_check(limit=108, unreserved=100, held=8, reservations=reservations)
    assert held.ok, held.detail
    assert f"{UNRESERVED_MINIMUM} stay unreserved" in held.detail
    other = doctor.concurrency_check(limit=108, unreserved=100, held=0, reservations=reservations)
    assert not other.ok


def test_zones_are_the_programs_choice_by_id() -> None:
    check, picked = doctor.zones_check(
        [("us-east-1a", "use1-az3"), ("us-east-1b", "use1-az1"), ("us-east-1c", "use1-az2")]
    )
    assert check.ok
    assert picked == [("use1-az1", "us-east-1b"), ("use1-az2", "us-east-1c")]
    refused, none = doctor.zones_check([("us-east-1a", "use1-az3"), ("us-east-1b", "use1-az1")])
    assert not refused.ok
    assert none == []


def test_rds_must_offer_the_class_in_every_chosen_zone() -> None:
    picked = [("use1-az1", "us-east-1b"), ("use1-az3", "us-east-1e")]
    missing = doctor.rds_check("db.m7g.large", "17", ["us-east-1a", "us-east-1b"], picked)
    assert not missing.ok
    assert "use1-az3 (us-east-1e)" in missing.detail
    offered = doctor.rds_check("db.m7g.large", "17", ["us-east-1b", "us-east-1e"], picked)
    assert offered.ok
    assert not doctor.rds_check("db.x9.huge", "17", [], picked).ok


def test_secrets_by_passphrase_need_it_in_the_environment() -> None:
    def unused(service: str, region: str) -> None:
        raise AssertionError("no AWS call for a passphrase")

    assert not doctor.secrets_check(None, {}, unused, REGION).ok
    assert doctor.secrets_check(None, {"PULUMI_CONFIG_PASSPHRASE": ""}, unused, REGION).ok


def test_the_cli_json_holds_every_check_and_the_verdict(
    aws: str, project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # --json: the same checks as the lines, for scripts; the exit code is the same too.
    monkeypatch.setenv("PULUMI_BACKEND_URL", _backend("doctor-state-json"))
    original = doctor.diagnose
    monkeypatch.setattr(doctor, "diagnose", lambda stack, **kw: original(stack, home=project, **kw))
    arguments = ["doctor", "-s", "dev", "--pulumi", "absent-pulumi", "--project-dir", str(project)]
    result = CliRunner().invoke(app, [*arguments, "--json"])
    assert result.exit_code == 1, result.output
    document = json.loads(result.output)
    assert (document["stack"], document["ok"]) == ("dev", False)
    assert len(document["checks"]) == 9
    pulumi_cli = next(check for check in document["checks"] if check["name"] == "pulumi cli")
    assert pulumi_cli["ok"] is False
    assert pulumi_cli["detail"].startswith("not found. Fix: install")

"""The bootstrap program under Pulumi's mocks: trust policies, bucket protections, permissions.

The real `bootstrap/__main__.py` runs under the mocks runtime (`preview=False`, config seeded
first) with only the usual invokes mocked; policy JSON is parsed back and compared exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import platform_bootstrap as bootstrap
import platform_rules
import pytest
import yaml

from dataplatform.mocks import ProgramRun, RecordedResource, run_program

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = ROOT / "bootstrap" / "__main__.py"
REGION = "eu-west-1"
OIDC = bootstrap.GITHUB_OIDC_HOST

pytestmark = pytest.mark.filterwarnings("ignore:.*has been deprecated:DeprecationWarning")


def run(**settings: str) -> ProgramRun:
    """The bootstrap program's run with githubOwner acme, githubRepo dataplatform, overrides."""
    values = {"githubOwner": "acme", "githubRepo": "dataplatform", **settings}
    config = {f"dataplatform-bootstrap:{key}": value for key, value in values.items()}
    return run_program(
        PROGRAM,
        project="dataplatform-bootstrap",
        stack="bootstrap",
        config={"aws:region": REGION, **config},
    )


@pytest.fixture(scope="module")
def program() -> ProgramRun:
    """The default run (new OIDC provider, legacy subject claims, dev and prod)."""
    return run()


def one(program: ProgramRun, type_: str, name: str | None = None) -> RecordedResource:
    [found] = [r for r in program.resources if r.type == type_ and name in (None, r.name)]
    return found


def document(resource: RecordedResource, key: str) -> dict[str, Any]:
    value = resource.inputs[key]
    assert isinstance(value, str), f"{resource.name}.{key} is not JSON text"
    loaded = json.loads(value)
    assert isinstance(loaded, dict)
    return loaded


def trust_condition(program: ProgramRun, role: RecordedResource) -> dict[str, Any]:
    """The single statement's condition of a role's trust policy, after checking the rest."""
    provider = one(program, "aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    [statement] = document(role, "assumeRolePolicy")["Statement"]
    assert statement["Effect"] == "Allow"
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"] == {"Federated": provider.outputs["arn"]}
    condition = statement["Condition"]
    assert isinstance(condition, dict)
    return condition


# --- trust ---------------------------------------------------------------------------------


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_a_deploy_role_trusts_only_its_environment_of_this_repository(
    program: ProgramRun, environment: str
) -> None:
    role = one(program, "aws:iam/role:Role", f"deploy-role-{environment}")
    # Exact equality: StringEquals (no StringLike), the audience, and the full subject.
    assert trust_condition(program, role) == {
        "StringEquals": {
            f"{OIDC}:aud": "sts.amazonaws.com",
            f"{OIDC}:sub": f"repo:acme/dataplatform:environment:{environment}",
        }
    }


def test_the_preview_role_trusts_only_this_repositorys_pull_requests_and_drift_check(
    program: ProgramRun,
) -> None:
    role = one(program, "aws:iam/role:Role", "preview-role")
    assert trust_condition(program, role) == {
        "StringEquals": {
            f"{OIDC}:aud": "sts.amazonaws.com",
            f"{OIDC}:sub": [
                "repo:acme/dataplatform:pull_request",
                "repo:acme/dataplatform:environment:drift",
            ],
        }
    }


def test_the_drift_environment_is_the_one_the_drift_workflow_runs_in() -> None:
    drift = (ROOT / ".github" / "workflows" / "drift.yml").read_text(encoding="utf-8")
    assert f"    environment: {bootstrap.DRIFT_ENVIRONMENT.split(':', 1)[1]}\n" in drift


def test_no_role_trusts_a_wildcard_subject(program: ProgramRun) -> None:
    # The OIDC-trusted roles; the state replica's role is trusted by S3 only.
    roles = [
        r
        for r in program.resources
        if r.type == "aws:iam/role:Role" and "Federated" in r.inputs["assumeRolePolicy"]
    ]
    assert len(roles) == 3
    for role in roles:
        text = json.dumps(trust_condition(program, role))
        assert "*" not in text, role.name
        assert "StringLike" not in text, role.name


def test_the_oidc_provider_is_githubs_with_the_sts_audience(program: ProgramRun) -> None:
    provider = one(program, "aws:iam/openIdConnectProvider:OpenIdConnectProvider")
    assert provider.inputs["url"] == "https://token.actions.githubusercontent.com"
    assert provider.inputs["clientIdLists"] == ["sts.amazonaws.com"]


def test_an_existing_oidc_provider_is_referenced_not_created() -> None:
    program = run(createOidcProvider="false")
    types = {r.type for r in program.resources}
    assert "aws:iam/openIdConnectProvider:OpenIdConnectProvider" not in types
    role = next(r for r in program.resources if r.name == "deploy-role-dev")
    [statement] = document(role, "assumeRolePolicy")["Statement"]
    assert statement["Principal"] == {
        "Federated": f"arn:aws:iam::123456789012:oidc-provider/{OIDC}"
    }


def test_immutable_subject_claims_carry_the_numeric_ids() -> None:
    settings = bootstrap.validate_settings(
        bootstrap.BootstrapSettings("acme", "dataplatform", "123456", "789012")
    )
    assert bootstrap.subject(settings, "environment:prod") == (
        "repo:acme@123456/dataplatform@789012:environment:prod"
    )


# --- the state bucket and keys -------------------------------------------------------------


def test_the_state_bucket_is_versioned_encrypted_private_and_tls_only(program: ProgramRun) -> None:
    bucket = one(program, platform_rules.BUCKET, "state-bucket")
    assert bucket.inputs["forceDestroy"] is False
    versioning = one(program, "aws:s3/bucketVersioning:BucketVersioning", "state-versioning")
    assert versioning.inputs["versioningConfiguration"] == {"status": "Enabled"}
    encryption = one(program, platform_rules.BUCKET_ENCRYPTION, "state-encryption")
    state_key = one(program, "aws:kms/key:Key", "state-key")
    [rule] = encryption.inputs["rules"]
    assert rule == {
        "applyServerSideEncryptionByDefault": {
            "kmsMasterKeyId": state_key.outputs["arn"],
            "sseAlgorithm": "aws:kms",
        },
        "bucketKeyEnabled": True,
    }
    ownership = one(
        program, "aws:s3/bucketOwnershipControls:BucketOwnershipControls", "state-ownership"
    )
    assert ownership.inputs["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    # The policy pack's own rules judge the public access block and the TLS-only policy.
    for type_, name in (
        (platform_rules.BUCKET_PUBLIC_ACCESS, "state-public-access"),
        (platform_rules.BUCKET_POLICY, "state-policy"),
    ):
        resource = one(program, type_, name)
        assert resource.inputs["bucket"] == bucket.outputs["bucket"]
        assert platform_rules.violations(type_, resource.inputs, "bootstrap") == []


def test_every_bootstrap_resource_passes_the_platform_rules(program: ProgramRun) -> None:
    found = {
        r.name: platform_rules.violations(r.type, r.inputs, "bootstrap") for r in program.resources
    }
    assert {name: v for name, v in found.items() if v} == {}
    resources = [
        platform_rules.StackResource(
            r.type, r.name, r.inputs, frozenset(d.split("::")[-1] for d in r.dependencies)
        )
        for r in program.resources
    ]
    assert platform_rules.stack_violations(resources) == []


@pytest.mark.parametrize("key", ["state-key", "secrets-key"])
def test_the_keys_rotate(program: ProgramRun, key: str) -> None:
    assert one(program, "aws:kms/key:Key", key).inputs["enableKeyRotation"] is True


def test_the_exports_are_what_the_repository_settings_need(program: ProgramRun) -> None:
    bucket = one(program, platform_rules.BUCKET, "state-bucket").outputs["bucket"]
    exports = {name: export.value for name, export in program.exports.items()}
    assert exports["backendUrl"] == f"s3://{bucket}?region={REGION}&awssdk=v2"
    assert exports["secretsProvider"] == (
        f"awskms://alias/dataplatform-pulumi-secrets?region={REGION}"
    )
    assert set(exports["deployRoleArns"]) == {"dev", "prod"}
    assert exports["previewRoleArn"].endswith(":role/dataplatform-github-preview")


# --- permissions ---------------------------------------------------------------------------


def statements(program: ProgramRun, role_policy: str) -> dict[str, dict[str, Any]]:
    policy = one(program, "aws:iam/rolePolicy:RolePolicy", role_policy)
    return {s["Sid"]: s for s in document(policy, "policy")["Statement"]}


@pytest.mark.parametrize(("environment", "other"), [("dev", "prod"), ("prod", "dev")])
def test_a_deploy_role_writes_only_its_own_stacks_state(
    program: ProgramRun, environment: str, other: str
) -> None:
    found = statements(program, f"deploy-role-{environment}-policy")
    bucket = one(program, platform_rules.BUCKET, "state-bucket").outputs["arn"]
    assert found["ReadWriteOwnStack"]["Resource"] == [
        f"{bucket}/.pulumi/*/dataplatform/{environment}*"
    ]
    writes = [
        s for s in found.values() if "s3:PutObject" in s["Action"] and bucket in str(s["Resource"])
    ]
    assert all(other not in str(s["Resource"]) for s in writes)


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_iam_changes_are_confined_to_roles_tagged_with_the_stack(
    program: ProgramRun, environment: str
) -> None:
    found = statements(program, f"deploy-role-{environment}-policy")
    iam = {sid: s for sid, s in found.items() if any(a.startswith("iam:") for a in s["Action"])}
    assert set(iam) == {
        "CreateStackRoles",
        "ManageStackRoles",
        "PassStackRolesToLambda",
        "PassStackRolesToPlatformServices",
        "AttachEnhancedMonitoringPolicy",
        "RdsServiceLinkedRole",
        "InstanceConnectServiceLinkedRole",
    }
    assert iam["InstanceConnectServiceLinkedRole"]["Condition"] == {
        "StringEquals": {"iam:AWSServiceName": "ec2-instance-connect.amazonaws.com"}
    }
    assert iam["CreateStackRoles"]["Condition"] == {
        "StringEquals": {"aws:RequestTag/Stack": environment}
    }
    assert iam["ManageStackRoles"]["Condition"] == {
        "StringEquals": {"iam:ResourceTag/Stack": environment}
    }
    assert iam["PassStackRolesToLambda"]["Condition"] == {
        "StringEquals": {
            "iam:ResourceTag/Stack": environment,
            "iam:PassedToService": "lambda.amazonaws.com",
        }
    }


def test_the_preview_role_writes_nothing(program: ProgramRun) -> None:
    writes = ("Put", "Delete", "Create", "Update", "Modify", "Tag", "Untag", "Encrypt", "Pass")
    for sid, statement in statements(program, "preview-role-policy").items():
        for action in statement["Action"]:
            verb = action.split(":", 1)[1]
            assert not verb.startswith(writes), f"{sid}: {action}"
            assert verb != "GenerateDataKey", f"{sid}: {action}"


def test_the_preview_role_reads_no_data(program: ProgramRun) -> None:
    found = statements(program, "preview-role-policy")
    reads = [s for s in found.values() if "s3:GetObject" in s["Action"]]
    bucket = one(program, platform_rules.BUCKET, "state-bucket").outputs["arn"]
    assert all(str(r).startswith(f"{bucket}/.pulumi/") for s in reads for r in s["Resource"])
    assert not any("secretsmanager:GetSecretValue" in s["Action"] for s in found.values())


# --- settings ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("overrides", "key"),
    [
        ({"github_owner": ""}, "githubOwner"),
        ({"github_owner": "-acme"}, "githubOwner"),
        ({"github_owner": "ac--me"}, "githubOwner"),
        ({"github_repo": "acme/dataplatform"}, "githubRepo"),
        ({"github_repo": ".."}, "githubRepo"),
        ({"github_owner_id": "123"}, "githubOwnerId and githubRepoId"),
        ({"github_owner_id": "12a", "github_repo_id": "5"}, "githubOwnerId"),
        ({"environments": ()}, "environments"),
        ({"environments": ("Prod!",)}, "environments"),
        ({"environments": ("dev", "dev")}, "environments"),
    ],
)
def test_bad_settings_are_refused_naming_the_key(overrides: dict[str, Any], key: str) -> None:
    values: dict[str, Any] = {"github_owner": "acme", "github_repo": "dataplatform", **overrides}
    with pytest.raises(bootstrap.BootstrapConfigError, match=key):
        bootstrap.validate_settings(bootstrap.BootstrapSettings(**values))


def test_the_program_refuses_bad_config() -> None:
    with pytest.raises(bootstrap.BootstrapConfigError, match="githubRepo"):
        run(githubRepo="acme/dataplatform")


def test_deploy_credentials_outlive_the_longest_deploy_job(program: ProgramRun) -> None:
    # Rule: a job that may run 90 minutes never runs on one-hour credentials: the session it
    # asks for covers its timeout, and the role allows that session.
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "deploy.yml").read_text())
    for name in ("dev", "prod"):
        job = workflow["jobs"][name]
        [step] = [s for s in job["steps"] if "configure-aws-credentials" in s.get("uses", "")]
        asked = int(step["with"]["role-duration-seconds"])
        assert asked >= 60 * int(job["timeout-minutes"]), name
        role = one(program, "aws:iam/role:Role", f"deploy-role-{name}")
        assert asked <= role.inputs["maxSessionDuration"] <= 12 * 3600, name


def test_the_state_bucket_logs_its_requests_and_is_replicated(program: ProgramRun) -> None:
    # Rule: CKV_AWS_18 and CKV_AWS_144 on the state bucket: access logs to an SSE-S3 log
    # bucket, every object replicated to replicaRegion under a key there.
    bucket = one(program, platform_rules.BUCKET, "state-bucket")
    logging = one(program, "aws:s3/bucketLogging:BucketLogging", "state-logging")
    logs = one(program, platform_rules.BUCKET, "state-access-logs-bucket")
    assert logging.inputs["bucket"] == bucket.outputs["bucket"]
    assert logging.inputs["targetBucket"] == logs.outputs["bucket"]
    replication = one(
        program,
        "aws:s3/bucketReplicationConfig:BucketReplicationConfig",
        "state-replica-replication",
    )
    [rule] = replication.inputs["rules"]
    replica = one(program, platform_rules.BUCKET, "state-replica-bucket")
    replica_key = one(program, "aws:kms/key:Key", "state-replica-key")
    assert (rule["status"], rule["filter"]) == ("Enabled", {"prefix": ""})
    assert rule["destination"]["bucket"] == replica.outputs["arn"]
    assert rule["destination"]["encryptionConfiguration"] == {
        "replicaKmsKeyId": replica_key.outputs["arn"]
    }
    assert replica.inputs["region"] == replica_key.inputs["region"] == "us-west-2"


def test_a_replica_in_the_state_buckets_region_is_refused() -> None:
    with pytest.raises(Exception, match="replicaRegion must differ"):
        run(replicaRegion=REGION)

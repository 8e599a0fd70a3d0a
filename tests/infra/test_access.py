"""The way into PostgreSQL: the Instance Connect Endpoint, the jump host and their rules, under
mocks for both stacks; and `dataplatform db-tunnel` up to the point AWS is needed, fed the
outputs the program exports."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dataplatform.cli import app
from dataplatform.mocks import ProgramRun
from tests.infra.support import TEST_PASSWORD, inputs, run_stack

ENDPOINT = "aws:ec2transitgateway/instanceConnectEndpoint:InstanceConnectEndpoint"
INSTANCE = "aws:ec2/instance:Instance"
SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"


def _sg(run: ProgramRun, name: str) -> str:
    return str(run.one(SG, name).outputs["id"])


def _rules(run: ProgramRun, type_: str, group: str) -> list[tuple[str | None, int, int]]:
    return sorted(
        (
            r.inputs.get("referencedSecurityGroupId"),
            int(r.inputs["fromPort"]),
            int(r.inputs["toPort"]),
        )
        for r in run.by_type(type_)
        if r.inputs["securityGroupId"] == group
    )


def test_endpoint_is_in_a_private_subnet_with_its_own_group(stack_run: ProgramRun) -> None:
    # Rule: the endpoint sits in the first private subnet, behind a group of its own.
    endpoint = stack_run.one(ENDPOINT)
    values = inputs(endpoint)
    subnet = stack_run.one("aws:ec2/subnet:Subnet", "network-private-0").outputs["id"]
    assert values["subnetId"] == subnet, endpoint.urn
    assert values["securityGroupIds"] == [_sg(stack_run, "access-endpoint-sg")], endpoint.urn
    assert values["preserveClientIp"] is False, endpoint.urn


def test_nothing_accepts_traffic_from_outside_the_vpc(stack_run: ProgramRun) -> None:
    # Rule: no inbound port: every ingress rule of the stack names a security group, no CIDR.
    open_rules = [
        r.urn
        for r in stack_run.by_type(INGRESS)
        if r.inputs.get("cidrIpv4") or r.inputs.get("cidrIpv6") or r.inputs.get("prefixListId")
    ]
    assert open_rules == []
    endpoint_sg = _sg(stack_run, "access-endpoint-sg")
    assert _rules(stack_run, INGRESS, endpoint_sg) == []


def test_endpoint_reaches_only_ssh_on_the_jump_host(stack_run: ProgramRun) -> None:
    # Rule: the endpoint's one way out is 22 to the jump host's group.
    endpoint_sg, host_sg = (
        _sg(stack_run, "access-endpoint-sg"),
        _sg(stack_run, "access-jump-host-sg"),
    )
    assert _rules(stack_run, EGRESS, endpoint_sg) == [(host_sg, 22, 22)]
    assert _rules(stack_run, INGRESS, host_sg) == [(endpoint_sg, 22, 22)]


def test_jump_host_reaches_only_the_database_port(stack_run: ProgramRun) -> None:
    # Rule: from the jump host, 5432 to the database's group and nothing else.
    host_sg, database_sg = _sg(stack_run, "access-jump-host-sg"), _sg(stack_run, "database-sg")
    assert _rules(stack_run, EGRESS, host_sg) == [(database_sg, 5432, 5432)]
    assert (host_sg, 5432, 5432) in _rules(stack_run, INGRESS, database_sg)


def test_jump_host_is_private_hardened_and_keyless(stack_run: ProgramRun) -> None:
    # Rule: no public address, IMDSv2 only, encrypted EBS-optimized disk, no key pair and no IAM
    # role.
    host = stack_run.one(INSTANCE)
    values = inputs(host)
    assert values["associatePublicIpAddress"] is False, host.urn
    assert values["metadataOptions"]["httpTokens"] == "required", host.urn
    assert values["rootBlockDevice"]["encrypted"] is True, host.urn
    assert values["ebsOptimized"] is True, host.urn
    assert "keyName" not in values, host.urn
    assert "iamInstanceProfile" not in values, host.urn
    assert values["vpcSecurityGroupIds"] == [_sg(stack_run, "access-jump-host-sg")], host.urn
    assert values["instanceType"] == "t4g.nano", host.urn


def test_db_tunnel_false_leaves_the_way_in_out(bundle: Path) -> None:
    # Rule: dbTunnel false creates neither endpoint nor jump host, and exports no tunnel.
    run = run_stack("dev", bundle, dbTunnel="false")
    assert run.by_type(ENDPOINT) == []
    assert run.by_type(INSTANCE) == []
    assert not {"dbTunnelInstanceId", "dbTunnelEndpointId"} & set(run.exports)


def _outputs(run: ProgramRun) -> dict[str, object]:
    return {name: export.value for name, export in run.exports.items()}


def test_db_tunnel_assembles_the_command_from_the_stack_outputs(
    dev_run: ProgramRun, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Rule: host and port come from the outputs; the AWS CLI gets exactly the eice forwarding;
    # the psql URL has no password, and no secret is printed.
    outputs = _outputs(dev_run)
    monkeypatch.setattr("dataplatform.backfill.stack_outputs", lambda stack, cwd=None: outputs)
    calls = tmp_path / "calls.txt"
    fake_aws = tmp_path / "aws"
    fake_aws.write_text(f"#!/bin/sh\nprintf '%s\\n' \"$@\" > {calls}\n")
    fake_aws.chmod(fake_aws.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    result = CliRunner().invoke(app, ["db-tunnel", "-s", "dev"])
    assert result.exit_code == 0, result.output
    host, port = str(outputs["databaseEndpoint"]).rsplit(":", 1)
    assert calls.read_text().split() == [
        "ec2-instance-connect",
        "ssh",
        "--instance-id",
        str(outputs["dbTunnelInstanceId"]),
        "--connection-type",
        "eice",
        "--os-user",
        "ec2-user",
        "--local-forwarding",
        f"15432:{host}:{port}",
    ]
    url = f"postgresql://dataplatform@localhost:15432/{outputs['databaseName']}?sslmode=require"
    assert url in result.output
    assert TEST_PASSWORD not in result.output
    assert TEST_PASSWORD not in json.dumps(outputs, default=str)


def test_db_tunnel_without_its_outputs_says_how_to_deploy_them(
    dev_run: ProgramRun, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stack deployed with dbTunnel false: one line naming the setting, exit 1.
    outputs = {k: v for k, v in _outputs(dev_run).items() if not k.startswith("dbTunnel")}
    monkeypatch.setattr("dataplatform.backfill.stack_outputs", lambda stack, cwd=None: outputs)
    result = CliRunner().invoke(app, ["db-tunnel", "-s", "dev", "--dry-run"])
    assert result.exit_code == 1, result.output
    assert "dbTunnel true" in result.output
    assert "Traceback" not in result.output


def test_db_tunnel_without_the_aws_cli_says_where_to_get_it(
    dev_run: ProgramRun, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The AWS CLI is needed only to open the tunnel: its absence is one line, exit 1.
    monkeypatch.setattr(
        "dataplatform.backfill.stack_outputs", lambda stack, cwd=None: _outputs(dev_run)
    )
    monkeypatch.setattr("dataplatform.tunnel.shutil.which", lambda name: None)
    result = CliRunner().invoke(app, ["db-tunnel", "-s", "dev"])
    assert result.exit_code == 1, result.output
    assert "needs the AWS CLI" in result.output

"""The network: private subnets only, endpoints instead of a NAT, security groups per path."""

from __future__ import annotations

import ipaddress

from dataplatform.mocks import ProgramRun
from tests.infra.support import inputs, region, setting

INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"


def _sg(run: ProgramRun, name: str) -> str:
    return str(run.one("aws:ec2/securityGroup:SecurityGroup", name).outputs["id"])


def test_vpc_uses_the_stack_cidr_and_dns(stack_run: ProgramRun) -> None:
    # Rule: the VPC's block comes from vpcCidr; DNS on, as private endpoint DNS requires.
    vpc = stack_run.one("aws:ec2/vpc:Vpc")
    values = inputs(vpc)
    assert values["cidrBlock"] == setting(stack_run.stack, "vpcCidr"), vpc.urn
    assert (values["enableDnsSupport"], values["enableDnsHostnames"]) == (True, True), vpc.urn


def test_two_private_subnets_in_two_zones_inside_the_vpc(stack_run: ProgramRun) -> None:
    # Rule: two subnets, distinct AZs, disjoint blocks within the VPC, no public IPs.
    vpc = ipaddress.IPv4Network(setting(stack_run.stack, "vpcCidr"))
    subnets = [inputs(s) for s in stack_run.by_type("aws:ec2/subnet:Subnet")]
    blocks = [ipaddress.IPv4Network(s["cidrBlock"]) for s in subnets]
    assert len(subnets) == 2, subnets
    assert len({s["availabilityZoneId"] for s in subnets}) == 2, subnets
    assert all(block.subnet_of(vpc) for block in blocks), blocks
    assert not blocks[0].overlaps(blocks[1]), blocks
    assert all(s["mapPublicIpOnLaunch"] is False for s in subnets), subnets


def test_private_route_table_has_no_route_out(stack_run: ProgramRun) -> None:
    # Rule: no internet or NAT route; both subnets use the private table.
    table = stack_run.one("aws:ec2/routeTable:RouteTable")
    assert not inputs(table).get("routes"), table.urn
    subnet_ids = {s.outputs["id"] for s in stack_run.by_type("aws:ec2/subnet:Subnet")}
    associations = stack_run.by_type("aws:ec2/routeTableAssociation:RouteTableAssociation")
    associated = {
        a.inputs["subnetId"]
        for a in associations
        if a.inputs["routeTableId"] == table.outputs["id"]
    }
    assert associated == subnet_ids, associated
    assert not stack_run.by_type("aws:ec2/internetGateway:InternetGateway"), "internet gateway"
    assert not stack_run.by_type("aws:ec2/natGateway:NatGateway"), "NAT gateway"


def test_s3_gateway_endpoint_on_the_private_route_table(stack_run: ProgramRun) -> None:
    # Rule: S3 is reached through a gateway endpoint attached to the private route table.
    endpoint = stack_run.one("aws:ec2/vpcEndpoint:VpcEndpoint", "network-s3-endpoint")
    values = inputs(endpoint)
    table = stack_run.one("aws:ec2/routeTable:RouteTable").outputs["id"]
    assert values["vpcEndpointType"] == "Gateway", endpoint.urn
    assert values["serviceName"] == f"com.amazonaws.{region(stack_run.stack)}.s3", endpoint.urn
    assert values["routeTableIds"] == [table], endpoint.urn


def test_secrets_manager_endpoint_is_private_and_guarded(stack_run: ProgramRun) -> None:
    # Rule: interface endpoint with private DNS in both subnets, behind the endpoints SG.
    endpoint = stack_run.one("aws:ec2/vpcEndpoint:VpcEndpoint", "network-secretsmanager-endpoint")
    values = inputs(endpoint)
    subnet_ids = sorted(s.outputs["id"] for s in stack_run.by_type("aws:ec2/subnet:Subnet"))
    assert values["vpcEndpointType"] == "Interface", endpoint.urn
    expected = f"com.amazonaws.{region(stack_run.stack)}.secretsmanager"
    assert values["serviceName"] == expected, endpoint.urn
    assert values["privateDnsEnabled"] is True, endpoint.urn
    assert sorted(values["subnetIds"]) == subnet_ids, endpoint.urn
    assert values["securityGroupIds"] == [_sg(stack_run, "network-endpoints-sg")], endpoint.urn


def test_endpoints_accept_only_https_from_the_processor(stack_run: ProgramRun) -> None:
    # Rule: the endpoints' only ingress is 443 from the processor's security group.
    endpoints_sg = _sg(stack_run, "network-endpoints-sg")
    rules = [
        (
            r.inputs["referencedSecurityGroupId"],
            r.inputs["ipProtocol"],
            r.inputs["fromPort"],
            r.inputs["toPort"],
        )
        for r in stack_run.by_type(INGRESS)
        if r.inputs["securityGroupId"] == endpoints_sg
    ]
    assert rules == [(_sg(stack_run, "network-processor-sg"), "tcp", 443, 443)], rules


def test_processor_egress_is_only_endpoints_s3_and_database(stack_run: ProgramRun) -> None:
    # Rule: the processor SG talks to the endpoints and S3 on 443 and the database on 5432, only.
    processor_sg = _sg(stack_run, "network-processor-sg")
    s3_prefix_list = stack_run.one(
        "aws:ec2/vpcEndpoint:VpcEndpoint", "network-s3-endpoint"
    ).outputs["prefixListId"]
    targets = {
        (
            rule.inputs.get("referencedSecurityGroupId")
            or rule.inputs.get("prefixListId")
            or rule.inputs.get("cidrIpv4"),
            rule.inputs["fromPort"],
            rule.inputs["toPort"],
        )
        for rule in stack_run.by_type(EGRESS)
        if rule.inputs["securityGroupId"] == processor_sg
    }
    assert targets == {
        (_sg(stack_run, "network-endpoints-sg"), 443, 443),
        (s3_prefix_list, 443, 443),
        (_sg(stack_run, "database-sg"), 5432, 5432),
    }, targets


def test_no_security_group_rule_opens_a_cidr(stack_run: ProgramRun) -> None:
    # Rule: every SG rule references a group or the S3 prefix list, never an address range.
    rules = stack_run.by_type(INGRESS) + stack_run.by_type(EGRESS)
    open_rules = [r.urn for r in rules if "cidrIpv4" in r.inputs or "cidrIpv6" in r.inputs]
    assert open_rules == [], open_rules


def test_default_security_group_is_stripped(stack_run: ProgramRun) -> None:
    # Rule: the VPC's default SG is adopted with no rules, so it allows nothing.
    default = stack_run.one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")
    rules = (default.inputs.get("ingress"), default.inputs.get("egress"))
    assert not any(rules), default.urn
    assert default.inputs["vpcId"] == stack_run.one("aws:ec2/vpc:Vpc").outputs["id"], default.urn

"""Network: a private VPC for the processor and the database, with no route to the internet.

Two private subnets in two availability zones (RDS subnet groups and Multi-AZ need two), one route
table, an S3 gateway endpoint on it (free, and S3 traffic never leaves AWS's network) and a Secrets
Manager interface endpoint with private DNS, so the processor reaches everything it calls without
a NAT gateway. The processor's security group only talks to the endpoints and S3 on 443; its
database rule (5432) belongs to the Database component, which owns the other end of it.
"""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import partial

import pulumi
import pulumi_aws as aws

HTTPS = 443
SUBNET_COUNT = 2
LAMBDA_UNSUPPORTED_ZONE_IDS = frozenset({"use1-az3"})
"""Availability Zone IDs where Lambda cannot place a VPC function's network interfaces (AWS
Lambda Developer Guide, VPC access). Zones are chosen by ID: an AZ *name* maps to a different
physical zone in every account, so `us-east-1a` is `use1-az3` in some accounts and not others."""


@dataclass(frozen=True)
class NetworkArgs:
    """What the network is built from."""

    name_prefix: str
    """`<project>-<stack>`, used in Name tags; lowercase letters, digits and hyphens."""
    vpc_cidr: str
    """The VPC's IPv4 block, private, /16 to /24 (validated by the settings; default
    10.40.0.0/16)."""
    tags: Mapping[str, str]
    """Tags for every resource (default: the stack's tags)."""
    log_key_arn: pulumi.Input[str]
    """The customer-managed key the flow log group is encrypted with (`LogKey`)."""
    log_retention_days: int
    """Retention of the flow log group (one of CloudWatch's values; default 90)."""


FLOW_LOG_TRAFFIC = "ALL"
"""Accepted and rejected traffic: rejects are what an investigation looks for first."""


def flow_log_group_name(name_prefix: str) -> str:
    """The log group the VPC's flow logs go to."""
    return f"/aws/vpc/{name_prefix}-flow-logs"


def flow_log_trust_policy(account: str, region: str) -> str:
    """Only VPC Flow Logs, for flow logs of this account and region, may assume the role (the
    confused-deputy conditions of the VPC User Guide, "IAM role for publishing flow logs to
    CloudWatch Logs")."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "vpc-flow-logs.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Condition": {
                        "StringEquals": {"aws:SourceAccount": account},
                        "ArnLike": {
                            "aws:SourceArn": f"arn:aws:ec2:{region}:{account}:vpc-flow-log/*"
                        },
                    },
                }
            ],
        },
        sort_keys=True,
    )


def flow_log_policy(log_group_arn: str) -> str:
    """The flow log role writes to its one log group (the VPC User Guide's policy, with the
    group created here, so without logs:CreateLogGroup and on this group only)."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "WriteFlowLogs",
                    "Effect": "Allow",
                    "Action": [
                        "logs:CreateLogStream",
                        "logs:DescribeLogGroups",
                        "logs:DescribeLogStreams",
                        "logs:PutLogEvents",
                    ],
                    "Resource": [log_group_arn, f"{log_group_arn}:*"],
                }
            ],
        },
        sort_keys=True,
    )


def private_subnet_cidrs(vpc_cidr: str, count: int = SUBNET_COUNT) -> list[str]:
    """The first `count` quarters of `vpc_cidr`: a /16 gives /18s, leaving half for later tiers."""
    network = ipaddress.IPv4Network(vpc_cidr)
    quarters = list(network.subnets(prefixlen_diff=2))
    if count > len(quarters):
        raise ValueError(f"{vpc_cidr} has room for {len(quarters)} subnets, not {count}")
    return [str(subnet) for subnet in quarters[:count]]


def choose_zone_ids(zone_ids: Sequence[str], count: int = SUBNET_COUNT) -> list[str]:
    """The zones the subnets go to, by ID: the first `count` the region offers in ID order,
    skipping those Lambda does not support. The same in every account (names are not)."""
    usable = sorted(set(zone_ids) - LAMBDA_UNSUPPORTED_ZONE_IDS)
    if len(usable) < count:
        raise ValueError(
            f"the region offers {len(usable)} availability zones Lambda supports "
            f"({', '.join(usable) or 'none'}), need {count}"
        )
    return usable[:count]


def _zone(zone_ids: Sequence[str], index: int) -> str:
    """The `index`-th chosen zone ID; the region must offer two for the subnets and Multi-AZ."""
    return choose_zone_ids(zone_ids)[index]


def _service_name(region: str, service: str) -> str:
    """The name of AWS service `service`'s VPC endpoint in `region`."""
    return f"com.amazonaws.{region}.{service}"


def _named(tags: Mapping[str, str], name: str) -> dict[str, str]:
    """`tags` plus a Name tag, which is what the AWS console lists VPC resources by."""
    return {**tags, "Name": name}


class Network(pulumi.ComponentResource):
    """A VPC with two private subnets, S3 and Secrets Manager endpoints, and the processor's SG."""

    vpc_id: pulumi.Output[str]
    """The VPC's id."""
    private_subnet_ids: list[pulumi.Output[str]]
    """The two private subnets, one per availability zone."""
    processor_security_group_id: pulumi.Output[str]
    """The processor's security group (egress to the endpoints and S3 on 443)."""
    endpoint_security_group_id: pulumi.Output[str]
    """The interface endpoints' security group (ingress 443 from the processor only)."""
    egress_ready: list[pulumi.Resource]
    """What the processor needs to reach S3 and Secrets Manager from the VPC: both endpoints
    and the 443 rules. Whatever invokes the function at deploy time depends on them."""

    def __init__(
        self, name: str, args: NetworkArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("dataplatform:index:Network", name, None, opts)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        region = aws.get_region_output(opts=invoke).region
        zones = aws.get_availability_zones_output(state="available", opts=invoke).zone_ids
        vpc = self._vpc(name, args)
        self._flow_logs(name, args, vpc)
        subnets, route_table = self._subnets(name, args, vpc, zones)
        s3_endpoint = self._s3_endpoint(name, args, vpc, route_table, region)
        processor_sg, endpoint_sg, rules = self._security_groups(name, args, vpc, s3_endpoint)
        secrets_endpoint = self._secretsmanager_endpoint(
            name, args, vpc, subnets, endpoint_sg, region
        )
        self.egress_ready = [s3_endpoint, secrets_endpoint, *rules]

        self.vpc_id = vpc.id
        self.private_subnet_ids = [subnet.id for subnet in subnets]
        self.processor_security_group_id = processor_sg.id
        self.endpoint_security_group_id = endpoint_sg.id
        self.register_outputs(
            {
                "vpc_id": self.vpc_id,
                "private_subnet_ids": self.private_subnet_ids,
                "processor_security_group_id": self.processor_security_group_id,
                "endpoint_security_group_id": self.endpoint_security_group_id,
            }
        )

    def _vpc(self, name: str, args: NetworkArgs) -> aws.ec2.Vpc:
        """The VPC, with its default security group stripped of every rule."""
        child = pulumi.ResourceOptions(parent=self)
        vpc = aws.ec2.Vpc(
            f"{name}-vpc",
            cidr_block=args.vpc_cidr,
            # Both are required for the interface endpoint's private DNS name to resolve.
            enable_dns_support=True,
            enable_dns_hostnames=True,
            tags=_named(args.tags, f"{args.name_prefix}-vpc"),
            opts=child,
        )
        # Adopting the default security group without rules strips its allow-all rules, so
        # nothing placed in the VPC by mistake can talk to anything.
        aws.ec2.DefaultSecurityGroup(
            f"{name}-default-sg",
            vpc_id=vpc.id,
            tags=_named(args.tags, f"{args.name_prefix}-default-deny"),
            opts=child,
        )
        return vpc

    def _flow_logs(self, name: str, args: NetworkArgs, vpc: aws.ec2.Vpc) -> None:
        """Every accepted and rejected flow of the VPC, to an encrypted log group."""
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        region = aws.get_region_output(opts=invoke).region
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-flow-logs",
            name=flow_log_group_name(args.name_prefix),
            retention_in_days=args.log_retention_days,
            kms_key_id=args.log_key_arn,
            tags=args.tags,
            opts=child,
        )
        role = aws.iam.Role(
            f"{name}-flow-logs-role",
            assume_role_policy=pulumi.Output.all(account, region).apply(
                lambda values: flow_log_trust_policy(values[0], values[1])
            ),
            description=f"{args.name_prefix}: VPC flow logs to CloudWatch Logs",
            tags=args.tags,
            opts=child,
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-flow-logs-policy",
            role=role.id,
            policy=log_group.arn.apply(flow_log_policy),
            opts=child,
        )
        aws.ec2.FlowLog(
            f"{name}-flow-log",
            vpc_id=vpc.id,
            traffic_type=FLOW_LOG_TRAFFIC,
            log_destination_type="cloud-watch-logs",
            log_destination=log_group.arn,
            iam_role_arn=role.arn,
            max_aggregation_interval=600,
            tags=_named(args.tags, f"{args.name_prefix}-flow-log"),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]),
        )

    def _subnets(
        self, name: str, args: NetworkArgs, vpc: aws.ec2.Vpc, zones: pulumi.Output[list[str]]
    ) -> tuple[list[aws.ec2.Subnet], aws.ec2.RouteTable]:
        """One private subnet per zone and the route table they share (no internet route)."""
        child = pulumi.ResourceOptions(parent=self)
        prefix = args.name_prefix
        subnets = [
            aws.ec2.Subnet(
                f"{name}-private-{index}",
                vpc_id=vpc.id,
                cidr_block=cidr,
                availability_zone_id=zones.apply(partial(_zone, index=index)),
                map_public_ip_on_launch=False,
                tags=_named(args.tags, f"{prefix}-private-{index}"),
                opts=child,
            )
            for index, cidr in enumerate(private_subnet_cidrs(args.vpc_cidr))
        ]
        route_table = aws.ec2.RouteTable(
            f"{name}-private-rt",
            vpc_id=vpc.id,
            tags=_named(args.tags, f"{prefix}-private"),
            opts=child,
        )
        for index, subnet in enumerate(subnets):
            aws.ec2.RouteTableAssociation(
                f"{name}-private-{index}-rt",
                subnet_id=subnet.id,
                route_table_id=route_table.id,
                opts=child,
            )
        return subnets, route_table

    def _s3_endpoint(
        self,
        name: str,
        args: NetworkArgs,
        vpc: aws.ec2.Vpc,
        route_table: aws.ec2.RouteTable,
        region: pulumi.Output[str],
    ) -> aws.ec2.VpcEndpoint:
        """The S3 gateway endpoint on the private route table."""
        return aws.ec2.VpcEndpoint(
            f"{name}-s3-endpoint",
            vpc_id=vpc.id,
            service_name=region.apply(partial(_service_name, service="s3")),
            vpc_endpoint_type="Gateway",
            route_table_ids=[route_table.id],
            tags=_named(args.tags, f"{args.name_prefix}-s3"),
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _security_groups(
        self, name: str, args: NetworkArgs, vpc: aws.ec2.Vpc, s3_endpoint: aws.ec2.VpcEndpoint
    ) -> tuple[aws.ec2.SecurityGroup, aws.ec2.SecurityGroup, list[pulumi.Resource]]:
        """The processor's and the interface endpoints' groups, and the 443 rules between them."""
        child = pulumi.ResourceOptions(parent=self)
        prefix = args.name_prefix
        processor_sg = aws.ec2.SecurityGroup(
            f"{name}-processor-sg",
            vpc_id=vpc.id,
            description="Lambda processor: S3 and VPC endpoints (443), database (5432)",
            tags=_named(args.tags, f"{prefix}-processor"),
            opts=child,
        )
        endpoint_sg = aws.ec2.SecurityGroup(
            f"{name}-endpoints-sg",
            vpc_id=vpc.id,
            description="Interface VPC endpoints: HTTPS from the processor only",
            tags=_named(args.tags, f"{prefix}-endpoints"),
            opts=child,
        )
        endpoints_from_processor = aws.vpc.SecurityGroupIngressRule(
            f"{name}-endpoints-from-processor",
            security_group_id=endpoint_sg.id,
            referenced_security_group_id=processor_sg.id,
            ip_protocol="tcp",
            from_port=HTTPS,
            to_port=HTTPS,
            description="HTTPS from the processor",
            tags=args.tags,
            opts=child,
        )
        processor_to_endpoints = aws.vpc.SecurityGroupEgressRule(
            f"{name}-processor-to-endpoints",
            security_group_id=processor_sg.id,
            referenced_security_group_id=endpoint_sg.id,
            ip_protocol="tcp",
            from_port=HTTPS,
            to_port=HTTPS,
            description="HTTPS to the interface endpoints (Secrets Manager)",
            tags=args.tags,
            opts=child,
        )
        processor_to_s3 = aws.vpc.SecurityGroupEgressRule(
            f"{name}-processor-to-s3",
            security_group_id=processor_sg.id,
            prefix_list_id=s3_endpoint.prefix_list_id,
            ip_protocol="tcp",
            from_port=HTTPS,
            to_port=HTTPS,
            description="HTTPS to S3 through the gateway endpoint",
            tags=args.tags,
            opts=child,
        )
        return (
            processor_sg,
            endpoint_sg,
            [
                endpoints_from_processor,
                processor_to_endpoints,
                processor_to_s3,
            ],
        )

    def _secretsmanager_endpoint(
        self,
        name: str,
        args: NetworkArgs,
        vpc: aws.ec2.Vpc,
        subnets: Sequence[aws.ec2.Subnet],
        endpoint_sg: aws.ec2.SecurityGroup,
        region: pulumi.Output[str],
    ) -> aws.ec2.VpcEndpoint:
        """The Secrets Manager interface endpoint, with private DNS, in every subnet."""
        return aws.ec2.VpcEndpoint(
            f"{name}-secretsmanager-endpoint",
            vpc_id=vpc.id,
            service_name=region.apply(partial(_service_name, service="secretsmanager")),
            vpc_endpoint_type="Interface",
            private_dns_enabled=True,
            subnet_ids=[subnet.id for subnet in subnets],
            security_group_ids=[endpoint_sg.id],
            tags=_named(args.tags, f"{args.name_prefix}-secretsmanager"),
            opts=pulumi.ResourceOptions(parent=self),
        )


@dataclass(frozen=True)
class Leg:
    """One side of a security-group-to-security-group TCP path: its rule's name and description."""

    name: str
    description: str


def tcp_between(
    source_group_id: pulumi.Input[str],
    target_group_id: pulumi.Input[str],
    port: int,
    *,
    egress: Leg,
    ingress: Leg,
    tags: Mapping[str, str],
    opts: pulumi.ResourceOptions,
) -> list[aws.vpc.SecurityGroupEgressRule | aws.vpc.SecurityGroupIngressRule]:
    """TCP `port` from one security group to another, and nothing else: the source's egress rule
    and the target's ingress rule, each naming the other group rather than an address range."""
    return [
        aws.vpc.SecurityGroupEgressRule(
            egress.name,
            security_group_id=source_group_id,
            referenced_security_group_id=target_group_id,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            description=egress.description,
            tags=tags,
            opts=opts,
        ),
        aws.vpc.SecurityGroupIngressRule(
            ingress.name,
            security_group_id=target_group_id,
            referenced_security_group_id=source_group_id,
            ip_protocol="tcp",
            from_port=port,
            to_port=port,
            description=ingress.description,
            tags=tags,
            opts=opts,
        ),
    ]

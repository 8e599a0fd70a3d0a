"""DatabaseAccess: a way into PostgreSQL from a laptop without opening the network.

An EC2 Instance Connect Endpoint in a private subnet, and a small jump host beside it. The
endpoint tunnels TCP from the AWS API (the caller's IAM credentials, `ec2-instance-connect:
OpenTunnel`, logged in CloudTrail) into the VPC, but only to ports 22 and 3389 (EC2 User Guide,
"EC2 Instance Connect Endpoint" considerations; the service refuses remote port 5432 with
"Specify either 22 or 3389 as the RemotePort"), so it cannot reach RDS directly. The jump host
takes the SSH connection (keys pushed for 60 s by EC2 Instance Connect, no key pair) and forwards
the database port. Nothing listens on the internet: the VPC has no internet gateway, the jump
host has no public address, and its only inbound rule is SSH from the endpoint's group; its
only outbound rule is 5432 to the database's group.

Cost: the endpoint is free; the jump host is a t4g.nano with an 8 GiB gp3 volume, about $3.7 a
month on demand (`dbTunnel: false` leaves both out). It runs the current Amazon Linux 2023 AMI
(its public SSM parameter): when AWS publishes a new one the next `pulumi up` replaces the host,
which holds no state, so it never runs an old image for long. The database's ingress rule from
the jump host is created here, beside the host it admits.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.network import Leg, tcp_between

SSH = 22
POSTGRES_PORT = 5432
JUMP_HOST_TYPE = "t4g.nano"
AMI_PARAMETER = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
"""The public SSM parameter naming the current Amazon Linux 2023 AMI for arm64 (Graviton);
AL2023 ships the EC2 Instance Connect agent."""


@dataclass(frozen=True)
class DatabaseAccessArgs:
    """What the way in is built from."""

    name_prefix: str
    """`<project>-<stack>`, used in Name tags."""
    vpc_id: pulumi.Input[str]
    """The VPC of the database."""
    subnet_id: pulumi.Input[str]
    """The private subnet the endpoint and the jump host go to."""
    database_security_group_id: pulumi.Input[str]
    """The database's security group: gains 5432 from the jump host."""
    tags: Mapping[str, str]
    """Tags for every resource."""


def _named(tags: Mapping[str, str], name: str) -> dict[str, str]:
    return {**tags, "Name": name}


class DatabaseAccess(pulumi.ComponentResource):
    """The Instance Connect endpoint, the jump host and the rules between them and the
    database."""

    endpoint_id: pulumi.Output[str]
    """The EC2 Instance Connect Endpoint's id (`eice-...`)."""
    jump_host_id: pulumi.Output[str]
    """The jump host's instance id: what `dataplatform db-tunnel` connects to."""

    def __init__(
        self, name: str, args: DatabaseAccessArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("dataplatform:index:DatabaseAccess", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        prefix = args.name_prefix
        endpoint_sg = aws.ec2.SecurityGroup(
            f"{name}-endpoint-sg",
            vpc_id=args.vpc_id,
            description="EC2 Instance Connect Endpoint: SSH to the jump host only, no inbound",
            tags=_named(args.tags, f"{prefix}-instance-connect"),
            opts=child,
        )
        host_sg = aws.ec2.SecurityGroup(
            f"{name}-jump-host-sg",
            vpc_id=args.vpc_id,
            description="Jump host: SSH from the Instance Connect Endpoint, 5432 to the database",
            tags=_named(args.tags, f"{prefix}-jump-host"),
            opts=child,
        )
        rules = [
            *tcp_between(
                endpoint_sg.id,
                host_sg.id,
                SSH,
                egress=Leg(f"{name}-endpoint-to-host", "SSH to the jump host"),
                ingress=Leg(f"{name}-host-from-endpoint", "SSH from the Instance Connect Endpoint"),
                tags=args.tags,
                opts=child,
            ),
            *tcp_between(
                host_sg.id,
                args.database_security_group_id,
                POSTGRES_PORT,
                egress=Leg(f"{name}-host-to-database", "PostgreSQL to the database"),
                ingress=Leg(
                    f"{name}-database-from-host",
                    "PostgreSQL from the jump host (dataplatform db-tunnel)",
                ),
                tags=args.tags,
                opts=child,
            ),
        ]
        endpoint = aws.ec2transitgateway.InstanceConnectEndpoint(
            f"{name}-endpoint",
            subnet_id=args.subnet_id,
            security_group_ids=[endpoint_sg.id],
            # The endpoint's own address is the source: the host's rule names its group.
            preserve_client_ip=False,
            tags=_named(args.tags, f"{prefix}-instance-connect"),
            opts=child,
        )
        ami = aws.ssm.get_parameter_output(
            name=AMI_PARAMETER, opts=pulumi.InvokeOutputOptions(parent=self)
        ).value
        host = aws.ec2.Instance(
            f"{name}-jump-host",
            ami=ami,
            instance_type=JUMP_HOST_TYPE,
            subnet_id=args.subnet_id,
            vpc_security_group_ids=[host_sg.id],
            associate_public_ip_address=False,
            # IMDSv2 only: the Instance Connect agent reads the pushed key from it.
            metadata_options={
                "http_endpoint": "enabled",
                "http_tokens": "required",
                "http_put_response_hop_limit": 1,
            },
            root_block_device={"encrypted": True, "volume_type": "gp3"},
            credit_specification={"cpu_credits": "standard"},
            # t4g is EBS-optimized by default at no charge; said so for scanners (CKV_AWS_135).
            ebs_optimized=True,
            tags=_named(args.tags, f"{prefix}-jump-host"),
            volume_tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self, depends_on=rules),
        )
        self.endpoint_id = endpoint.id
        self.jump_host_id = host.id
        self.register_outputs({"endpoint_id": self.endpoint_id, "jump_host_id": self.jump_host_id})

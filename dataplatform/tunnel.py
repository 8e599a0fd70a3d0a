"""`dataplatform db-tunnel`: a local port forwarded to the stack's PostgreSQL, with the user's
own AWS credentials and no inbound port anywhere.

The stack's outputs name the jump host and the database (`components/access.py`); the tunnel is
`aws ec2-instance-connect ssh --connection-type eice ... --local-forwarding`, which pushes a
one-minute SSH key to the jump host through EC2 Instance Connect, reaches it through the VPC's
Instance Connect Endpoint and forwards the local port to the database. (The endpoint alone cannot:
it accepts only remote ports 22 and 3389.) What is printed never holds a credential: the psql URL
has no password (libpq asks for it, or reads PGPASSWORD or ~/.pgpass).
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from etl.core.errors import DataplatformError

DEFAULT_LOCAL_PORT = 15432
"""Not 5432, so that a PostgreSQL of the laptop's own keeps its port."""
JUMP_HOST_USER = "ec2-user"
"""Amazon Linux's login user."""
AWS_CLI_HINT = "install the AWS CLI v2: https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html"


class TunnelError(DataplatformError):
    """The tunnel cannot be opened (outputs missing, AWS CLI missing)."""


@dataclass(frozen=True)
class Tunnel:
    """A forwarding from localhost to the stack's database through its jump host."""

    stack: str
    instance_id: str
    endpoint_id: str
    database_host: str
    database_port: int
    database_name: str
    user: str
    local_port: int = DEFAULT_LOCAL_PORT

    def command(self, aws: str = "aws") -> list[str]:
        """The AWS CLI command that opens the tunnel and holds it while it runs."""
        return [
            aws,
            "ec2-instance-connect",
            "ssh",
            "--instance-id",
            self.instance_id,
            "--connection-type",
            "eice",
            "--os-user",
            JUMP_HOST_USER,
            "--local-forwarding",
            f"{self.local_port}:{self.database_host}:{self.database_port}",
        ]

    @property
    def psql_url(self) -> str:
        """The database through the tunnel, without a password. TLS is required by the server
        (rds.force_ssl); the certificate names the RDS host, not localhost, so `require`
        (encrypt) rather than `verify-full`."""
        return (
            f"postgresql://{self.user}@localhost:{self.local_port}/{self.database_name}"
            "?sslmode=require"
        )


def tunnel_from_outputs(
    outputs: Mapping[str, Any], stack: str, *, user: str | None, local_port: int
) -> Tunnel:
    """The tunnel of a stack, from its outputs (`pulumi stack output --json`)."""
    missing = [
        key
        for key in ("dbTunnelInstanceId", "dbTunnelEndpointId", "databaseEndpoint", "databaseName")
        if not outputs.get(key)
    ]
    if missing:
        raise TunnelError(
            f"stack {stack!r} has no {', '.join(missing)} output: deploy it with dbTunnel true "
            f"(`pulumi config set dbTunnel true -s {stack}`, then `pulumi up -s {stack}`)"
        )
    host, _, port = str(outputs["databaseEndpoint"]).rpartition(":")
    if not host or not port.isdigit():
        raise TunnelError(
            f"stack {stack!r} output databaseEndpoint is {outputs['databaseEndpoint']!r}, "
            "not host:port"
        )
    return Tunnel(
        stack=stack,
        instance_id=str(outputs["dbTunnelInstanceId"]),
        endpoint_id=str(outputs["dbTunnelEndpointId"]),
        database_host=host,
        database_port=int(port),
        database_name=str(outputs["databaseName"]),
        user=user or str(outputs.get("databaseUsername") or "postgres"),
        local_port=local_port,
    )


def aws_cli() -> str:
    """The AWS CLI's path; TunnelError if it is not installed."""
    found = shutil.which("aws")
    if found is None:
        raise TunnelError(
            f"db-tunnel needs the AWS CLI (`aws`), which is not on PATH: {AWS_CLI_HINT}"
        )
    return found


def open_tunnel(
    tunnel: Tunnel, aws: str, run: Callable[..., subprocess.CompletedProcess[Any]] = subprocess.run
) -> int:
    """Run the tunnel until the user ends it; return the AWS CLI's exit status."""
    return run(tunnel.command(aws), check=False).returncode

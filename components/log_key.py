"""LogKey: the customer-managed KMS key every CloudWatch log group of the stack is encrypted with.

CloudWatch Logs encrypts with its own service principal, so the key's policy names
`logs.<region>.amazonaws.com` and limits it, through the encryption context, to the stack's log
groups (`components.kms.log_key_policy`). One key for all of them: $1 a month, not one per group.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.kms import stateful


@dataclass(frozen=True)
class LogKeyArgs:
    """What the log key is built from."""

    name_prefix: str
    """`<project>-<stack>`; the alias is `alias/<name_prefix>-logs`."""
    policy: pulumi.Input[str]
    """The key policy (`components.kms.log_key_policy`)."""
    tags: Mapping[str, str]
    """Tags for the key."""
    protect: bool = False
    """Protect the key (prod): deleting it would make every log group unreadable."""


class LogKey(pulumi.ComponentResource):
    """The stack's log encryption key and its alias."""

    key_arn: pulumi.Output[str]
    """The key's ARN, each log group's `kms_key_id`."""

    def __init__(
        self, name: str, args: LogKeyArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("dataplatform:index:LogKey", name, None, opts)
        key = aws.kms.Key(
            f"{name}-key",
            description=f"{args.name_prefix}: CloudWatch log groups",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=args.policy,
            tags=args.tags,
            opts=stateful(self, args.protect),
        )
        aws.kms.Alias(
            f"{name}-key-alias",
            name=f"alias/{args.name_prefix}-logs",
            target_key_id=key.id,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.key_arn = key.arn
        self.register_outputs({"key_arn": self.key_arn})

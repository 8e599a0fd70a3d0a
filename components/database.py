"""Database: RDS PostgreSQL in the private subnets, reachable only from the processor, over TLS.

It owns both ends of the processor-to-database path (the database's ingress rule and the
processor's egress rule), so the Network never needs to know the database exists. Its KMS key
encrypts the storage, Performance Insights and the connection secret; the secret holds the
standard RDS keys (engine, host, port, username, password, dbname) as a secret Output end to end.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.kms import stateful
from components.network import Leg, tcp_between
from components.settings import DatabaseSettings

POSTGRES_PORT = 5432
LOG_EXPORTS = ("postgresql", "upgrade")
ENHANCED_MONITORING_POLICY = "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
"""AWS's managed policy for the enhanced-monitoring role: writes to the RDSOSMetrics log group
only (RDS User Guide, "Setting up and enabling Enhanced Monitoring")."""


@dataclass(frozen=True)
class DatabaseArgs:
    """What the database is built from."""

    name_prefix: str
    """`<project>-<stack>`; the instance identifier is `<name_prefix>-db`."""
    settings: DatabaseSettings
    """Engine version, size, protection and credentials (see `DatabaseSettings`)."""
    vpc_id: pulumi.Input[str]
    """The VPC of the subnets."""
    subnet_ids: Sequence[pulumi.Input[str]]
    """Private subnets in at least two availability zones."""
    client_security_group_id: pulumi.Input[str]
    """The only security group allowed to connect (the processor's)."""
    log_retention_days: int
    """Retention of the exported PostgreSQL logs (one of CloudWatch's values; default 90)."""
    tags: Mapping[str, str]
    """Tags for every taggable resource."""
    log_key_arn: pulumi.Input[str] | None = None
    """The customer-managed key the exported logs' groups are encrypted with (`LogKey`)."""
    key_policy: pulumi.Input[str] | None = None
    """The database key's policy (`components.kms.stack_key_policy`); None keeps AWS's
    default."""
    protect: bool = False
    """Protect the instance, its key and its secret (prod): Pulumi refuses to delete or replace
    them and `pulumi destroy` leaves them in the account. Default false (dev)."""


def connection_secret(
    *, host: str, port: int, username: str, password: str, dbname: str
) -> dict[str, str | int]:
    """The connection document in the key names RDS itself uses for its secrets."""
    return {
        "engine": "postgres",
        "host": host,
        "port": port,
        "username": username,
        "password": password,
        "dbname": dbname,
    }


def parameters(log_min_duration_ms: int) -> list[aws.rds.ParameterGroupParameterArgsDict]:
    """Server parameters: refuse any connection that is not TLS; log every DDL statement,
    every statement slower than `log_min_duration_ms`, and every connection and disconnection
    (the exported `postgresql` log, so an audit trail outside the instance). All are dynamic:
    applied without a reboot."""
    return [
        {"name": "log_connections", "value": "1"},
        {"name": "log_disconnections", "value": "1"},
        {"name": "log_min_duration_statement", "value": str(log_min_duration_ms)},
        {"name": "log_statement", "value": "ddl"},
        {"name": "rds.force_ssl", "value": "1"},
    ]


def monitoring_trust_policy(account: str) -> str:
    """Only RDS's enhanced monitoring, for this account, may assume the monitoring role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "monitoring.rds.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                    "Condition": {"StringEquals": {"aws:SourceAccount": account}},
                }
            ],
        },
        sort_keys=True,
    )


def final_snapshot_identifier(identifier: str) -> str:
    """The snapshot RDS takes when the instance is deleted, named after it."""
    return f"{identifier}-final"


def _max_allocated_storage(allocated_gb: int, max_allocated_gb: int) -> int:
    """Storage autoscaling's ceiling: equal to the allocated storage means none, which RDS
    spells 0."""
    return max_allocated_gb if max_allocated_gb > allocated_gb else 0


def log_group_name(identifier: str, export: str) -> str:
    """The log group RDS exports `export` logs of instance `identifier` to."""
    return f"/aws/rds/instance/{identifier}/{export}"


class Database(pulumi.ComponentResource):
    """An encrypted, private PostgreSQL instance and the secret the processor connects with."""

    resource_id: pulumi.Output[str]
    """The instance's DbiResourceId: unlike its identifier and address, new for a new instance."""
    address: pulumi.Output[str]
    """The instance's DNS name."""
    port: pulumi.Output[int]
    """The port PostgreSQL listens on (5432)."""
    endpoint: pulumi.Output[str]
    """`address:port`."""
    secret_arn: pulumi.Output[str]
    """The Secrets Manager secret holding the connection JSON."""
    kms_key_arn: pulumi.Output[str]
    """The key that encrypts the storage and the secret (the processor needs kms:Decrypt)."""
    security_group_id: pulumi.Output[str]
    """The database's security group."""

    def __init__(
        self, name: str, args: DatabaseArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("dataplatform:index:Database", name, None, opts)
        identifier = f"{args.name_prefix}-db"
        key = self._key(name, args)
        security_group, subnet_group = self._network(name, args)
        password = pulumi.Output.secret(args.settings.password)
        instance = self._instance(
            name, args, identifier, key, security_group, subnet_group, password
        )
        secret = self._secret(name, args, key, instance, password)

        self.resource_id = instance.resource_id
        self.address = instance.address
        self.port = instance.port
        self.endpoint = instance.endpoint
        self.secret_arn = secret.arn
        self.kms_key_arn = key.arn
        self.security_group_id = security_group.id
        self.register_outputs(
            {
                "resource_id": self.resource_id,
                "address": self.address,
                "port": self.port,
                "endpoint": self.endpoint,
                "secret_arn": self.secret_arn,
                "kms_key_arn": self.kms_key_arn,
                "security_group_id": self.security_group_id,
            }
        )

    def _key(self, name: str, args: DatabaseArgs) -> aws.kms.Key:
        """The key for the storage, Performance Insights and the secret, with an alias."""
        child = pulumi.ResourceOptions(parent=self)
        prefix = args.name_prefix
        key = aws.kms.Key(
            f"{name}-key",
            description=f"{prefix}: database storage, Performance Insights and secret",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=args.key_policy,
            tags=args.tags,
            opts=stateful(self, args.protect),
        )
        aws.kms.Alias(
            f"{name}-key-alias", name=f"alias/{prefix}-database", target_key_id=key.id, opts=child
        )
        return key

    def _network(
        self, name: str, args: DatabaseArgs
    ) -> tuple[aws.ec2.SecurityGroup, aws.rds.SubnetGroup]:
        """The security group with both ends of the processor's 5432 path, and the subnets."""
        child = pulumi.ResourceOptions(parent=self)
        prefix = args.name_prefix
        security_group = aws.ec2.SecurityGroup(
            f"{name}-sg",
            vpc_id=args.vpc_id,
            description="PostgreSQL: 5432 from the processor only",
            tags={**args.tags, "Name": f"{prefix}-database"},
            opts=child,
        )
        tcp_between(
            args.client_security_group_id,
            security_group.id,
            POSTGRES_PORT,
            egress=Leg(f"{name}-processor-egress", "PostgreSQL to the database"),
            ingress=Leg(f"{name}-from-processor", "PostgreSQL from the processor"),
            tags=args.tags,
            opts=child,
        )
        subnet_group = aws.rds.SubnetGroup(
            f"{name}-subnets",
            subnet_ids=list(args.subnet_ids),
            description=f"{prefix}: private subnets",
            tags=args.tags,
            opts=child,
        )
        return security_group, subnet_group

    def _instance(
        self,
        name: str,
        args: DatabaseArgs,
        identifier: str,
        key: aws.kms.Key,
        security_group: aws.ec2.SecurityGroup,
        subnet_group: aws.rds.SubnetGroup,
        password: pulumi.Output[str],
    ) -> aws.rds.Instance:
        """The instance, its TLS-only parameter group and the log groups it exports to."""
        child = pulumi.ResourceOptions(parent=self)
        settings = args.settings
        parameter_group = aws.rds.ParameterGroup(
            f"{name}-parameters",
            family=settings.postgres_version.parameter_group_family,
            description=f"{args.name_prefix}: TLS required",
            parameters=parameters(settings.log_min_duration_ms),
            tags=args.tags,
            opts=child,
        )
        monitoring_role, *monitoring_role_ready = self._monitoring_role(name, args)
        # Created before the instance so the exported logs get a retention instead of RDS
        # creating the groups itself with "never expire".
        log_groups = [
            aws.cloudwatch.LogGroup(
                f"{name}-log-{export}",
                name=log_group_name(identifier, export),
                retention_in_days=args.log_retention_days,
                kms_key_id=args.log_key_arn,
                tags=args.tags,
                opts=child,
            )
            for export in LOG_EXPORTS
        ]
        return aws.rds.Instance(
            f"{name}-instance",
            identifier=identifier,
            engine="postgres",
            engine_version=settings.postgres_version.value,
            instance_class=settings.instance_class,
            allocated_storage=settings.allocated_storage_gb,
            max_allocated_storage=_max_allocated_storage(
                settings.allocated_storage_gb, settings.max_allocated_storage_gb
            ),
            storage_type="gp3",
            storage_encrypted=True,
            kms_key_id=key.arn,
            db_name=settings.db_name,
            username=settings.username,
            password=password,
            port=POSTGRES_PORT,
            db_subnet_group_name=subnet_group.name,
            vpc_security_group_ids=[security_group.id],
            parameter_group_name=parameter_group.name,
            publicly_accessible=False,
            multi_az=settings.multi_az,
            backup_retention_period=settings.backup_retention_days,
            copy_tags_to_snapshot=True,
            deletion_protection=settings.deletion_protection,
            skip_final_snapshot=settings.skip_final_snapshot,
            final_snapshot_identifier=final_snapshot_identifier(identifier),
            auto_minor_version_upgrade=True,
            performance_insights_enabled=True,
            performance_insights_kms_key_id=key.arn,
            performance_insights_retention_period=settings.performance_insights_retention_days,
            enabled_cloudwatch_logs_exports=list(LOG_EXPORTS),
            # Always on: the processor logs in as its own role with IAM tokens (etl/database.py).
            iam_database_authentication_enabled=True,
            monitoring_interval=settings.monitoring_interval_seconds,
            monitoring_role_arn=monitoring_role.arn,
            tags=args.tags,
            # The identifier is fixed (the log groups are named after it), so a replacement
            # must delete the old instance first; in prod `protect` refuses it altogether.
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[*log_groups, *monitoring_role_ready],
                delete_before_replace=True,
                protect=args.protect,
                retain_on_delete=args.protect,
            ),
        )

    def _monitoring_role(
        self, name: str, args: DatabaseArgs
    ) -> tuple[aws.iam.Role, aws.iam.RolePolicyAttachment]:
        """The role enhanced monitoring publishes OS metrics with, and its one policy."""
        child = pulumi.ResourceOptions(parent=self)
        account = aws.get_caller_identity_output(
            opts=pulumi.InvokeOutputOptions(parent=self)
        ).account_id
        role = aws.iam.Role(
            f"{name}-monitoring-role",
            assume_role_policy=account.apply(monitoring_trust_policy),
            description=f"{args.name_prefix}: RDS enhanced monitoring",
            tags=args.tags,
            opts=child,
        )
        attachment = aws.iam.RolePolicyAttachment(
            f"{name}-monitoring-policy",
            role=role.name,
            policy_arn=ENHANCED_MONITORING_POLICY,
            opts=child,
        )
        return role, attachment

    def _secret(
        self,
        name: str,
        args: DatabaseArgs,
        key: aws.kms.Key,
        instance: aws.rds.Instance,
        password: pulumi.Output[str],
    ) -> aws.secretsmanager.Secret:
        """The connection secret, encrypted with the database's key, secret end to end."""
        child = pulumi.ResourceOptions(parent=self)
        settings = args.settings
        secret = aws.secretsmanager.Secret(
            f"{name}-secret",
            name_prefix=f"{args.name_prefix}/database-",
            description=f"{args.name_prefix}: PostgreSQL connection for the processor",
            kms_key_id=key.arn,
            tags=args.tags,
            opts=stateful(self, args.protect),
        )
        document = pulumi.Output.all(instance.address, instance.port, password).apply(
            lambda values: connection_secret(
                host=values[0],
                port=values[1],
                username=settings.username,
                password=values[2],
                dbname=settings.db_name,
            )
        )
        aws.secretsmanager.SecretVersion(
            f"{name}-secret-value",
            secret_id=secret.id,
            secret_string=pulumi.Output.json_dumps(document).apply(pulumi.Output.secret),
            opts=child,
        )
        return secret

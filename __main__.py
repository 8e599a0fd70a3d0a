"""The dataplatform stack: what `pulumi up -s <stack>` deploys.

- Network: a VPC with two private subnets, an S3 gateway endpoint and a Secrets Manager interface
  endpoint (no NAT, no internet route), and the processor's security group.
- DataLake: one private, KMS-encrypted, versioned, TLS-only bucket with the zones raw/,
  processed/, rejects/, reports/ and quarantine/, each with its lifecycle.
- Database: RDS PostgreSQL (TLS required, encrypted, private, backed up) and a Secrets Manager
  secret with its connection.
- Processor: the Lambda running the ETL on every raw/ object via an SQS queue with a dead-letter
  queue, its least-privilege role, log group, alarms, and a migration run on every deploy that
  changes `etl/migrations/`.
- DatabaseAccess (`dbTunnel`): an EC2 Instance Connect Endpoint and a jump host, the way
  `dataplatform db-tunnel` reaches PostgreSQL without any inbound port.
- Catalog: a Glue database with tables over processed/, rejects/ and master/ (partition
  projection), an Athena workgroup with enforced, encrypted results and a scan limit, named
  queries, and a read-only analyst role.

Settings come from the stack's config (`Pulumi.<stack>.yaml`, defaults in `Pulumi.yaml`), and are
validated before anything is created. See docs/infrastructure.md.
"""

from pathlib import Path

import pulumi

from components.access import DatabaseAccess, DatabaseAccessArgs
from components.catalog import Catalog, CatalogArgs
from components.data_lake import DataLake, DataLakeArgs
from components.database import Database, DatabaseArgs, log_group_name
from components.kms import log_key_policy_output, stack_key_policy_output
from components.log_key import LogKey, LogKeyArgs
from components.network import Network, NetworkArgs, flow_log_group_name
from components.processor import (
    CodeSigningPolicy,
    Processor,
    ProcessorArgs,
    function_log_group_name,
)
from components.settings import load_settings
from etl.core.settings import json_problem

ROOT = Path(__file__).resolve().parent
settings = load_settings(pulumi.Config(), root=ROOT, thresholds_problem=json_problem)
if warning := settings.processor.memory_warning():
    pulumi.log.warn(warning)
prefix, tags = settings.name_prefix, settings.tags

# The keys' policy admits the stack's deploy role from CreateKey on (components/kms.py).
key_policy = stack_key_policy_output(settings.project, settings.stack)
# Every log group is encrypted with one key, which CloudWatch Logs may use for these only.
log_groups = [
    flow_log_group_name(prefix),
    log_group_name(f"{prefix}-db", ""),
    function_log_group_name(f"{prefix}-processor"),
]
log_key = LogKey(
    "logs",
    LogKeyArgs(
        prefix,
        log_key_policy_output(settings.project, settings.stack, log_groups),
        tags,
        protect=settings.protect_stateful,
    ),
)
network = Network(
    "network",
    NetworkArgs(
        prefix,
        settings.network.vpc_cidr,
        tags,
        log_key_arn=log_key.key_arn,
        log_retention_days=settings.log_retention_days,
    ),
)
lake = DataLake(
    "lake",
    DataLakeArgs(
        prefix,
        settings.lake,
        tags,
        key_policy=key_policy,
        protect=settings.protect_stateful,
        log_retention_days=settings.log_retention_days,
        replica_key_policy=(
            stack_key_policy_output(
                settings.project, settings.stack, region=settings.lake.replica_region
            )
            if settings.lake.replica_region
            else None
        ),
    ),
)
database = Database(
    "database",
    DatabaseArgs(
        name_prefix=prefix,
        settings=settings.database,
        vpc_id=network.vpc_id,
        subnet_ids=network.private_subnet_ids,
        client_security_group_id=network.processor_security_group_id,
        log_retention_days=settings.log_retention_days,
        tags=tags,
        log_key_arn=log_key.key_arn,
        key_policy=key_policy,
        protect=settings.protect_stateful,
    ),
)
processor = Processor(
    "processor",
    ProcessorArgs(
        name_prefix=prefix,
        settings=settings.processor,
        bucket_name=lake.bucket_name,
        bucket_arn=lake.bucket_arn,
        lake_key_arn=lake.kms_key_arn,
        secret_arn=database.secret_arn,
        secret_key_arn=database.kms_key_arn,
        subnet_ids=network.private_subnet_ids,
        vpc_id=network.vpc_id,
        security_group_id=network.processor_security_group_id,
        database_resource_id=database.resource_id,
        database_address=database.address,
        database_port=database.port,
        database_name=settings.database.db_name,
        migrations_dir=ROOT / "etl" / "migrations",
        master_data_files=[
            ROOT / "etl" / "core" / "master_data.py",
            ROOT / "etl" / "core" / "data" / "taxi_zone_lookup.csv",
        ],
        log_retention_days=settings.log_retention_days,
        alarm_topic_arn=settings.alarm_topic_arn,
        tags=tags,
        log_key_arn=log_key.key_arn,
        code_signing_policy=(
            CodeSigningPolicy.ENFORCE if settings.protect_stateful else CodeSigningPolicy.WARN
        ),
        migrations_depend_on=[database, *network.egress_ready],
    ),
)

access = (
    DatabaseAccess(
        "access",
        DatabaseAccessArgs(
            name_prefix=prefix,
            vpc_id=network.vpc_id,
            subnet_id=network.private_subnet_ids[0],
            database_security_group_id=database.security_group_id,
            tags=tags,
        ),
    )
    if settings.database.tunnel
    else None
)
catalog = Catalog(
    "catalog",
    CatalogArgs(
        name_prefix=prefix,
        settings=settings.catalog,
        bucket_name=lake.bucket_name,
        bucket_arn=lake.bucket_arn,
        lake_key_arn=lake.kms_key_arn,
        tags=tags,
        force_destroy=settings.lake.force_destroy,
    ),
)

pulumi.export("bucketName", lake.bucket_name)
pulumi.export("queueUrl", processor.queue_url)
pulumi.export("deadLetterQueueUrl", processor.dead_letter_queue_url)
pulumi.export("functionName", processor.function_name)
pulumi.export("databaseEndpoint", database.endpoint)
pulumi.export("databaseSecretArn", database.secret_arn)
pulumi.export("glueDatabase", catalog.database_name)
pulumi.export("athenaWorkgroup", catalog.workgroup_name)
pulumi.export("analystRoleArn", catalog.analyst_role_arn)
pulumi.export("databaseName", settings.database.db_name)
pulumi.export("databaseUsername", settings.database.username)
if access is not None:
    pulumi.export("dbTunnelEndpointId", access.endpoint_id)
    pulumi.export("dbTunnelInstanceId", access.jump_host_id)

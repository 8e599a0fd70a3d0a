"""Processor: the S3-triggered Lambda that runs the ETL, its queue, its role, its alarms.

raw/ ObjectCreated events go to an SQS queue (not straight to Lambda) so that a failing file is
retried with back-off and, after `max_receive_count` receives, parked in a dead-letter queue that
raises an alarm instead of being lost. The function reports partial batch failures, so one bad
file never re-runs its batch-mates. Its role can read raw/, write the four output zones, log in to
the database as the processor's own user (IAM authentication), read the master secret (for the
migrate action) and consume one queue; its code is the prebuilt bundle uploaded under
`artifacts/`, keyed by its sha256 so the key (and the function) change exactly when the bundle's
bytes do. Migrations run at deploy time: an invocation with `{"action": "migrate"}`, re-run when
the SQL files change.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import pulumi
import pulumi_aws as aws

from components.data_lake import ARTIFACTS_PREFIX
from components.settings import ProcessorSettings
from etl.contract import (
    DB_AUTH_ENV,
    DB_HOST_ENV,
    DB_NAME_ENV,
    DB_PORT_ENV,
    DB_SECRET_ARN_ENV,
    DB_USER_ENV,
    ETL_SETTINGS_ENV,
    HANDLER,
    LAKE_BUCKET_ENV,
    LOG_LEVEL_ENV,
    PROCESSOR_DB_USER,
    RUNTIME,
    S3_ACCESS,
    DbAuth,
    Zone,
    migrate_event,
)

# AWS recommends a queue visibility timeout of at least six times the function timeout.
VISIBILITY_TIMEOUT_FACTOR = 6
QUEUE_RETENTION_SECONDS = 4 * 24 * 3600
# An SQS message keeps its original enqueue time in the dead-letter queue, so the DLQ must keep
# messages longer than the source queue; 14 days is SQS's maximum.
DLQ_RETENTION_SECONDS = 14 * 24 * 3600
ALARM_PERIOD_SECONDS = 300

# The actions Lambda needs to attach the function to the VPC (AWSLambdaVPCAccessExecutionRole).
# Per the Service Authorization Reference ("Actions defined by Amazon EC2"), CreateNetworkInterface
# authorizes a network-interface, a subnet and security groups; DeleteNetworkInterface,
# AssignPrivateIpAddresses and UnassignPrivateIpAddresses a network-interface; all of them with
# the ec2:Vpc condition key. Only the two Describe actions have no resource type: they alone
# are on "*".
VPC_INTERFACE_ACTIONS = (
    "ec2:AssignPrivateIpAddresses",
    "ec2:DeleteNetworkInterface",
    "ec2:UnassignPrivateIpAddresses",
)
VPC_CREATE_ACTIONS = ("ec2:CreateNetworkInterface",)
VPC_DESCRIBE_ACTIONS = ("ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets")
VPC_ACCESS_ACTIONS = tuple(
    sorted((*VPC_INTERFACE_ACTIONS, *VPC_CREATE_ACTIONS, *VPC_DESCRIBE_ACTIONS))
)
# X-Ray's PutTraceSegments and PutTelemetryRecords have no resource types (Service Authorization
# Reference, "Actions defined by AWS X-Ray"): "*" is the only resource they take.
TRACING_ACTIONS = ("xray:PutTelemetryRecords", "xray:PutTraceSegments")
SIGNING_PLATFORM = "AWSLambda-SHA384-ECDSA"
"""AWS Signer's platform for Lambda code (the only one Lambda code signing accepts)."""
SIGNATURE_VALIDITY_MONTHS = 60
"""How long a signature stays valid: past it, Lambda refuses to deploy the signed bundle."""
SIGNED_PREFIX = f"{ARTIFACTS_PREFIX}processor/signed/"
"""Where the signing job writes the signed bundle (under artifacts/, outside every zone)."""


class CodeSigningPolicy(StrEnum):
    """What Lambda does with a bundle whose signature does not validate."""

    ENFORCE = "Enforce"
    WARN = "Warn"


@dataclass(frozen=True)
class BundleDigest:
    """The two spellings of a bundle's sha256 that S3 keys and Lambda want."""

    hex: str
    """Lowercase hex, used in the S3 key."""
    base64: str
    """Standard base64, what Lambda reports as `CodeSha256` (the function's `source_code_hash`)."""


def bundle_digest(content: bytes) -> BundleDigest:
    """The sha256 of a bundle's bytes, in hex and base64."""
    digest = hashlib.sha256(content).digest()
    return BundleDigest(hex=digest.hex(), base64=base64.b64encode(digest).decode("ascii"))


def bundle_key(digest: BundleDigest) -> str:
    """The S3 key of a bundle: content-addressed, so it changes exactly when the bytes do."""
    return f"{ARTIFACTS_PREFIX}processor/{digest.hex}.zip"


def read_migrations(directory: Path) -> dict[str, bytes]:
    """Every `*.sql` file directly in `directory` by name; an absent directory has none."""
    if not directory.is_dir():
        return {}
    return {path.name: path.read_bytes() for path in sorted(directory.glob("*.sql"))}


def migrations_digest(files: Mapping[str, bytes]) -> str:
    """A sha256 over the migrations' names and contents, independent of the order given."""
    listing = [[name, hashlib.sha256(files[name]).hexdigest()] for name in sorted(files)]
    return hashlib.sha256(json.dumps(listing).encode("utf-8")).hexdigest()


def _statement(sid: str, actions: Sequence[str], resources: Sequence[str]) -> dict[str, object]:
    return {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": list(resources)}


def _zone_statements(bucket_arn: str) -> list[dict[str, object]]:
    """The object actions of each lake zone, from the table the processor's code declares."""
    return [
        _statement(f"{prefix.strip('/').capitalize()}Zone", actions, [f"{bucket_arn}/{prefix}*"])
        for prefix, actions in S3_ACCESS.items()
    ]


def db_user_arn(*, region: str, account_id: str, resource_id: str, user: str) -> str:
    """The ARN `rds-db:connect` is authorized against: one database user of one instance,
    `arn:aws:rds-db:<region>:<account>:dbuser:<DbiResourceId>/<user>` (Service Authorization
    Reference, Amazon RDS IAM Authentication, resource type db-user:
    https://docs.aws.amazon.com/service-authorization/latest/reference/list_amazonrdsiamauthentication.html;
    RDS User Guide, "Creating and using an IAM policy for IAM database access":
    https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.IAMDBAuth.IAMPolicy.html).
    The DbiResourceId, unlike the identifier, is new for a new instance, so the grant cannot
    carry over to a different database under the same name."""
    return f"arn:aws:rds-db:{region}:{account_id}:dbuser:{resource_id}/{user}"


def processor_policy(
    *,
    bucket_arn: str,
    lake_key_arn: str,
    secret_arn: str,
    secret_key_arn: str,
    queue_arn: str,
    log_group_arn: str,
    database_user_arn: str,
    vpc_arn: str,
    subnet_arns: Sequence[str],
    security_group_arn: str,
    network_interfaces_arn: str,
) -> str:
    """The processor role's only permissions, each on the one resource it concerns.

    Loads log in to the database as the processor's own role with IAM tokens
    (`database_user_arn`). The master secret stays readable because the deploy-time migration
    runs through this same function (`{"action": "migrate"}`) and migrations need the owner of
    the schema; the code reads it for that action only. A separate migration function with its
    own role would take the master secret out of the processor's reach, at the cost of a second
    function, log group and role per stack (docs/infrastructure.md, Database authentication).
    `network_interfaces_arn` is `arn:aws:ec2:<region>:<account>:network-interface/*`.
    """
    in_vpc = {"ArnEquals": {"ec2:Vpc": vpc_arn}}
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                *_zone_statements(bucket_arn),
                _statement("UseLakeKey", ["kms:Decrypt", "kms:GenerateDataKey"], [lake_key_arn]),
                _statement("ConnectAsProcessorUser", ["rds-db:connect"], [database_user_arn]),
                _statement("ReadDatabaseSecret", ["secretsmanager:GetSecretValue"], [secret_arn]),
                _statement("DecryptDatabaseSecret", ["kms:Decrypt"], [secret_key_arn]),
                _statement(
                    "ConsumeQueue",
                    [
                        "sqs:ChangeMessageVisibility",
                        "sqs:DeleteMessage",
                        "sqs:GetQueueAttributes",
                        "sqs:ReceiveMessage",
                    ],
                    [queue_arn],
                ),
                _statement(
                    "WriteOwnLogs",
                    ["logs:CreateLogStream", "logs:PutLogEvents"],
                    [f"{log_group_arn}:*"],
                ),
                {
                    **_statement(
                        "CreateInterfacesInOwnSubnets",
                        VPC_CREATE_ACTIONS,
                        [network_interfaces_arn, *sorted(subnet_arns), security_group_arn],
                    ),
                    "Condition": in_vpc,
                },
                {
                    **_statement(
                        "ManageInterfacesInOwnVpc", VPC_INTERFACE_ACTIONS, [network_interfaces_arn]
                    ),
                    "Condition": in_vpc,
                },
                _statement("DescribeNetwork", VPC_DESCRIBE_ACTIONS, ["*"]),
                _statement("WriteTraces", TRACING_ACTIONS, ["*"]),
            ],
        },
        sort_keys=True,
    )


def assume_role_policy() -> str:
    """Only the Lambda service may assume the processor's role."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole",
                }
            ],
        },
        sort_keys=True,
    )


def queue_policy(*, queue_arn: str, bucket_arn: str, account_id: str) -> str:
    """Only the lake bucket (in this account) may send to the queue, and only over TLS."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Sid": "AllowLakeNotifications",
                    "Effect": "Allow",
                    "Principal": {"Service": "s3.amazonaws.com"},
                    "Action": "sqs:SendMessage",
                    "Resource": queue_arn,
                    "Condition": {
                        "ArnEquals": {"aws:SourceArn": bucket_arn},
                        "StringEquals": {"aws:SourceAccount": account_id},
                    },
                },
                {
                    "Sid": "DenyInsecureTransport",
                    "Effect": "Deny",
                    "Principal": "*",
                    "Action": "sqs:*",
                    "Resource": queue_arn,
                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                },
            ],
        },
        sort_keys=True,
    )


def redrive_policy(dead_letter_arn: str, max_receive_count: int) -> str:
    """Move a message to the dead-letter queue after `max_receive_count` receives."""
    return json.dumps(
        {"deadLetterTargetArn": dead_letter_arn, "maxReceiveCount": max_receive_count},
        sort_keys=True,
    )


def redrive_allow_policy(source_queue_arn: str) -> str:
    """Only the processor's queue may use the dead-letter queue."""
    return json.dumps(
        {"redrivePermission": "byQueue", "sourceQueueArns": [source_queue_arn]}, sort_keys=True
    )


def _scaling_config(
    settings: ProcessorSettings,
) -> aws.lambda_.EventSourceMappingScalingConfigArgsDict:
    """Cap the queue's poller below the function's reserved concurrency.

    Uncapped, the poller would scale past the reservation and have its invocations throttled,
    burning receives until messages reach the dead-letter queue; capped at the reservation, a
    busy queue would throttle the deploy-time migration and fail `pulumi up`. So it gets all
    but one execution (at least 2, SQS's minimum; the settings guarantee both).
    """
    return {"maximum_concurrency": settings.poller_concurrency}


def _alarm_actions(topic_arn: str | None) -> list[str]:
    """What an alarm notifies on entering and leaving ALARM: the topic, or nothing."""
    return [topic_arn] if topic_arn else []


def _signed_key(signed: Sequence[aws.signer.outputs.SigningJobSignedObject] | None) -> str:
    """The S3 key of the signed bundle a signing job wrote."""
    for item in signed or []:
        for location in item.s3s or []:
            if location.key:
                return location.key
    raise ValueError("the signing job reported no signed object")


def function_log_group_name(function_name: str) -> str:
    """The log group Lambda writes a function's logs to."""
    return f"/aws/lambda/{function_name}"


def _read_existing(paths: Sequence[Path]) -> dict[str, bytes]:
    """The bytes of each of `paths` that is a file, by file name; absent ones are skipped."""
    return {path.name: path.read_bytes() for path in paths if path.is_file()}


@dataclass(frozen=True)
class _Queues:
    """The queues a processor step creates, for the steps that wire to them."""

    queue: aws.sqs.Queue
    """The queue S3 notifies and the function consumes."""
    dead_letter: aws.sqs.Queue
    """Where messages go after `max_receive_count` receives."""
    send_policy: aws.sqs.QueuePolicy
    """Lets the bucket send to the queue; S3 checks it when the notification is created."""


@dataclass(frozen=True)
class ProcessorArgs:
    """What the processor is built from: its settings and the resources it is wired to."""

    name_prefix: str
    """`<project>-<stack>`; the function is `<name_prefix>-processor`."""
    settings: ProcessorSettings
    """Runtime size, queue behaviour and bundle path (see `ProcessorSettings`)."""
    bucket_name: pulumi.Input[str]
    """The lake bucket: event source, data, and home of the code bundle."""
    bucket_arn: pulumi.Input[str]
    """The lake bucket's ARN, for the role and the queue policy."""
    lake_key_arn: pulumi.Input[str]
    """The lake's KMS key (objects are read and written through it)."""
    secret_arn: pulumi.Input[str]
    """The database connection secret; its ARN is the function's `DB_SECRET_ARN_ENV`."""
    secret_key_arn: pulumi.Input[str]
    """The KMS key encrypting that secret."""
    subnet_ids: Sequence[pulumi.Input[str]]
    """Private subnets the function runs in (at least two AZs)."""
    vpc_id: pulumi.Input[str]
    """The VPC of the subnets: the role may manage network interfaces in it only."""
    security_group_id: pulumi.Input[str]
    """The processor's security group."""
    database_resource_id: pulumi.Input[str]
    """The database instance's DbiResourceId: a new instance (even under the same identifier
    and address) gets a new one, which re-runs the migrations on the empty database; and what
    the role's `rds-db:connect` names."""
    database_address: pulumi.Input[str]
    """The database's host name (`DB_HOST_ENV`): what the function's IAM tokens are signed for."""
    database_port: pulumi.Input[int]
    """The database's port (`DB_PORT_ENV`)."""
    database_name: str
    """The database the processor loads into (`DB_NAME_ENV`)."""
    migrations_dir: Path
    """Where the `*.sql` migrations live (`etl/migrations`); absent means none."""
    master_data_files: Sequence[Path]
    """The sources of the master data a migration run upserts (the zone lookup, the codes);
    absent files are skipped, like an absent migrations folder."""
    log_retention_days: int
    """Retention of the function's log group (one of CloudWatch's values; default 90)."""
    alarm_topic_arn: str | None
    """SNS topic the alarms notify, or None for alarms without actions."""
    tags: Mapping[str, str]
    """Tags for every taggable resource."""
    log_key_arn: pulumi.Input[str] | None = None
    """The customer-managed key the function's log group is encrypted with (`LogKey`)."""
    code_signing_policy: CodeSigningPolicy = CodeSigningPolicy.ENFORCE
    """What Lambda does with a bundle that is not signed by the stack's profile: refuse it
    (Enforce, prod) or deploy it and log a warning (Warn, dev)."""
    migrations_depend_on: Sequence[pulumi.Resource] = ()
    """Resources that must exist before migrating: the Database component and the network
    paths to S3 and Secrets Manager (`Network.egress_ready`); default none."""


class Processor(pulumi.ComponentResource):
    """The Lambda processor with its queue, dead-letter queue, role, logs, alarms and code."""

    function_name: pulumi.Output[str]
    """The Lambda function's name."""
    function_arn: pulumi.Output[str]
    """The Lambda function's ARN."""
    queue_url: pulumi.Output[str]
    """The queue S3 notifies; send a message here to reprocess an object."""
    queue_arn: pulumi.Output[str]
    """The queue's ARN."""
    dead_letter_queue_url: pulumi.Output[str]
    """Where messages land after `max_receive_count` failed receives."""
    role_arn: pulumi.Output[str]
    """The function's execution role."""

    def __init__(
        self, name: str, args: ProcessorArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("dataplatform:index:Processor", name, None, opts)
        function_name = f"{args.name_prefix}-processor"
        digest = bundle_digest(args.settings.bundle_path.read_bytes())
        queues = self._queues(name, args, function_name)
        self._notification(name, args, queues)
        bundle = self._bundle(name, args, digest)
        log_group = self._log_group(name, args, function_name)
        role, role_policy = self._role(name, args, function_name, queues.queue, log_group)
        signed_key, signing_config = self._signing(name, args, bundle)
        function = self._function(
            name,
            args,
            function_name,
            digest,
            (bundle, signed_key, signing_config),
            role,
            role_policy,
            log_group,
        )
        self._trigger(name, args, queues.queue, function)
        self._migrations(name, args, function)
        self._alarms(name, args, function_name, queues.dead_letter, function)

        self.function_name = function.name
        self.function_arn = function.arn
        self.queue_url = queues.queue.url
        self.queue_arn = queues.queue.arn
        self.dead_letter_queue_url = queues.dead_letter.url
        self.role_arn = role.arn
        self.register_outputs(
            {
                "function_name": self.function_name,
                "function_arn": self.function_arn,
                "queue_url": self.queue_url,
                "queue_arn": self.queue_arn,
                "dead_letter_queue_url": self.dead_letter_queue_url,
                "role_arn": self.role_arn,
            }
        )

    def _queues(self, name: str, args: ProcessorArgs, function_name: str) -> _Queues:
        """The queue S3 notifies, its dead-letter queue, and who may use each."""
        child = pulumi.ResourceOptions(parent=self)
        account_id = aws.get_caller_identity_output(
            opts=pulumi.InvokeOutputOptions(parent=self)
        ).account_id
        dead_letter_queue = aws.sqs.Queue(
            f"{name}-dlq",
            name=f"{function_name}-dlq",
            message_retention_seconds=DLQ_RETENTION_SECONDS,
            sqs_managed_sse_enabled=True,
            tags=args.tags,
            opts=child,
        )
        # SSE-SQS rather than a KMS key: S3 cannot publish to a queue encrypted with the AWS
        # managed SQS key, and the messages carry object keys, not data.
        queue = aws.sqs.Queue(
            f"{name}-queue",
            name=function_name,
            visibility_timeout_seconds=VISIBILITY_TIMEOUT_FACTOR * args.settings.timeout_seconds,
            message_retention_seconds=QUEUE_RETENTION_SECONDS,
            redrive_policy=dead_letter_queue.arn.apply(
                lambda arn: redrive_policy(arn, args.settings.max_receive_count)
            ),
            sqs_managed_sse_enabled=True,
            tags=args.tags,
            opts=child,
        )
        aws.sqs.RedriveAllowPolicy(
            f"{name}-dlq-redrive-allow",
            queue_url=dead_letter_queue.url,
            redrive_allow_policy=queue.arn.apply(redrive_allow_policy),
            opts=child,
        )
        send_policy = aws.sqs.QueuePolicy(
            f"{name}-queue-policy",
            queue_url=queue.url,
            policy=pulumi.Output.all(queue.arn, args.bucket_arn, account_id).apply(
                lambda values: queue_policy(
                    queue_arn=values[0], bucket_arn=values[1], account_id=values[2]
                )
            ),
            opts=child,
        )
        return _Queues(queue=queue, dead_letter=dead_letter_queue, send_policy=send_policy)

    def _notification(self, name: str, args: ProcessorArgs, queues: _Queues) -> None:
        """raw/ ObjectCreated events to the queue."""
        aws.s3.BucketNotification(
            f"{name}-notification",
            bucket=args.bucket_name,
            queues=[
                {
                    "id": "raw-objects",
                    "queue_arn": queues.queue.arn,
                    "events": ["s3:ObjectCreated:*"],
                    "filter_prefix": Zone.RAW.prefix,
                }
            ],
            # S3 checks that it may send to the queue when the notification is created.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[queues.send_policy]),
        )

    def _bundle(
        self, name: str, args: ProcessorArgs, digest: BundleDigest
    ) -> aws.s3.BucketObjectv2:
        """The code bundle in the lake, under its content-addressed key."""
        return aws.s3.BucketObjectv2(
            f"{name}-bundle",
            bucket=args.bucket_name,
            key=bundle_key(digest),
            source=pulumi.FileAsset(str(args.settings.bundle_path)),
            content_type="application/zip",
            server_side_encryption="aws:kms",
            kms_key_id=args.lake_key_arn,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _log_group(
        self, name: str, args: ProcessorArgs, function_name: str
    ) -> aws.cloudwatch.LogGroup:
        """The function's log group, created here so that it has a retention."""
        return aws.cloudwatch.LogGroup(
            f"{name}-logs",
            name=function_log_group_name(function_name),
            retention_in_days=args.log_retention_days,
            kms_key_id=args.log_key_arn,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _role(
        self,
        name: str,
        args: ProcessorArgs,
        function_name: str,
        queue: aws.sqs.Queue,
        log_group: aws.cloudwatch.LogGroup,
    ) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        """The execution role and its one inline policy (see `processor_policy`)."""
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        region = aws.get_region_output(opts=invoke).region
        database_user = pulumi.Output.all(region, account, args.database_resource_id).apply(
            lambda values: db_user_arn(
                region=values[0],
                account_id=values[1],
                resource_id=values[2],
                user=PROCESSOR_DB_USER,
            )
        )
        role = aws.iam.Role(
            f"{name}-role",
            assume_role_policy=assume_role_policy(),
            description=f"{function_name}: least-privilege execution role",
            tags=args.tags,
            opts=child,
        )
        role_policy = aws.iam.RolePolicy(
            f"{name}-role-policy",
            role=role.id,
            policy=pulumi.Output.all(
                args.bucket_arn,
                args.lake_key_arn,
                args.secret_arn,
                args.secret_key_arn,
                queue.arn,
                log_group.arn,
                database_user,
                args.vpc_id,
                args.security_group_id,
                account,
                region,
                *args.subnet_ids,
            ).apply(
                lambda values: processor_policy(
                    bucket_arn=values[0],
                    lake_key_arn=values[1],
                    secret_arn=values[2],
                    secret_key_arn=values[3],
                    queue_arn=values[4],
                    log_group_arn=values[5],
                    database_user_arn=values[6],
                    vpc_arn=f"arn:aws:ec2:{values[10]}:{values[9]}:vpc/{values[7]}",
                    security_group_arn=(
                        f"arn:aws:ec2:{values[10]}:{values[9]}:security-group/{values[8]}"
                    ),
                    subnet_arns=[
                        f"arn:aws:ec2:{values[10]}:{values[9]}:subnet/{subnet}"
                        for subnet in values[11:]
                    ],
                    network_interfaces_arn=(
                        f"arn:aws:ec2:{values[10]}:{values[9]}:network-interface/*"
                    ),
                )
            ),
            opts=child,
        )
        return role, role_policy

    def _function(
        self,
        name: str,
        args: ProcessorArgs,
        function_name: str,
        digest: BundleDigest,
        code: tuple[aws.s3.BucketObjectv2, pulumi.Output[str], aws.lambda_.CodeSigningConfig],
        role: aws.iam.Role,
        role_policy: aws.iam.RolePolicy,
        log_group: aws.cloudwatch.LogGroup,
    ) -> aws.lambda_.Function:
        """The Lambda function, in the VPC, running the signed bundle, traced by X-Ray, its
        environment encrypted with the database key (which its role may already decrypt)."""
        settings = args.settings
        bundle, signed_key, signing_config = code
        return aws.lambda_.Function(
            f"{name}-function",
            name=function_name,
            role=role.arn,
            runtime=RUNTIME,
            handler=HANDLER,
            architectures=[settings.architecture.value],
            memory_size=settings.memory_mb,
            timeout=settings.timeout_seconds,
            ephemeral_storage={"size": settings.ephemeral_storage_mb},
            reserved_concurrent_executions=settings.reserved_concurrency,
            s3_bucket=bundle.bucket,
            s3_key=signed_key,
            # The unsigned bundle's digest: it changes exactly when the code does.
            source_code_hash=digest.base64,
            code_signing_config_arn=signing_config.arn,
            tracing_config={"mode": "Active"},
            kms_key_arn=args.secret_key_arn,
            vpc_config={
                "subnet_ids": list(args.subnet_ids),
                "security_group_ids": [args.security_group_id],
            },
            environment={
                "variables": {
                    DB_AUTH_ENV: DbAuth.IAM.value,
                    DB_HOST_ENV: args.database_address,
                    DB_PORT_ENV: pulumi.Output.from_input(args.database_port).apply(str),
                    DB_NAME_ENV: args.database_name,
                    DB_USER_ENV: PROCESSOR_DB_USER,
                    # The master user's secret, for the migrate action only.
                    DB_SECRET_ARN_ENV: args.secret_arn,
                    LAKE_BUCKET_ENV: args.bucket_name,
                    LOG_LEVEL_ENV: settings.log_level.value,
                    **({ETL_SETTINGS_ENV: settings.etl_settings} if settings.etl_settings else {}),
                }
            },
            logging_config={
                "log_format": "JSON",
                "log_group": log_group.name,
                "application_log_level": settings.log_level.lambda_level,
                "system_log_level": "INFO",
            },
            tags=args.tags,
            # Without its permissions the function cannot attach to the VPC or write logs.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[role_policy]),
        )

    def _signing(
        self, name: str, args: ProcessorArgs, bundle: aws.s3.BucketObjectv2
    ) -> tuple[pulumi.Output[str], aws.lambda_.CodeSigningConfig]:
        """The bundle signed by the stack's AWS Signer profile, and the code-signing config that
        makes Lambda check it: the signed object's key, and the config."""
        child = pulumi.ResourceOptions(parent=self)
        profile = aws.signer.SigningProfile(
            f"{name}-signing-profile",
            # Signer allows letters, digits and underscores only.
            name=f"{args.name_prefix}_processor".replace("-", "_"),
            platform_id=SIGNING_PLATFORM,
            signature_validity_period={"value": SIGNATURE_VALIDITY_MONTHS, "type": "MONTHS"},
            tags=args.tags,
            opts=child,
        )
        job = aws.signer.SigningJob(
            f"{name}-signing-job",
            profile_name=profile.name,
            source={
                "s3": {"bucket": bundle.bucket, "key": bundle.key, "version": bundle.version_id}
            },
            destination={"s3": {"bucket": bundle.bucket, "prefix": SIGNED_PREFIX}},
            ignore_signing_job_failure=False,
            opts=child,
        )
        signing_config = aws.lambda_.CodeSigningConfig(
            f"{name}-code-signing",
            description=f"{args.name_prefix}: only bundles signed by {args.name_prefix}'s profile",
            allowed_publishers={"signing_profile_version_arns": [profile.version_arn]},
            policies={"untrusted_artifact_on_deployment": args.code_signing_policy.value},
            tags=args.tags,
            opts=child,
        )
        signed_key = job.signed_objects.apply(_signed_key)
        return signed_key, signing_config

    def _trigger(
        self, name: str, args: ProcessorArgs, queue: aws.sqs.Queue, function: aws.lambda_.Function
    ) -> None:
        """The queue's poller, reporting partial batch failures."""
        aws.lambda_.EventSourceMapping(
            f"{name}-trigger",
            event_source_arn=queue.arn,
            function_name=function.arn,
            batch_size=args.settings.batch_size,
            function_response_types=["ReportBatchItemFailures"],
            scaling_config=_scaling_config(args.settings),
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _migrations(self, name: str, args: ProcessorArgs, function: aws.lambda_.Function) -> None:
        """The deploy-time migrate invocation, re-run when its inputs change."""
        aws.lambda_.Invocation(
            f"{name}-migrate",
            function_name=function.name,
            input=json.dumps(migrate_event(), sort_keys=True),
            triggers={
                "migrations": migrations_digest(read_migrations(args.migrations_dir)),
                # Every migrate run also upserts the master data (zones, codes): a change to
                # its sources must reach the database too.
                "masterData": migrations_digest(_read_existing(args.master_data_files)),
                "database": args.database_resource_id,
            },
            opts=pulumi.ResourceOptions(parent=self, depends_on=list(args.migrations_depend_on)),
        )

    def _alarms(
        self,
        name: str,
        args: ProcessorArgs,
        function_name: str,
        dead_letter_queue: aws.sqs.Queue,
        function: aws.lambda_.Function,
    ) -> None:
        """An alarm on any message in the dead-letter queue and one on any function error."""
        self._alarm(
            f"{name}-dlq-alarm",
            args,
            description=f"Messages in {function_name}-dlq: files that failed every retry",
            namespace="AWS/SQS",
            metric_name="ApproximateNumberOfMessagesVisible",
            dimensions={"QueueName": dead_letter_queue.name},
            statistic="Maximum",
        )
        self._alarm(
            f"{name}-errors-alarm",
            args,
            description=f"{function_name} raised errors (each one will be retried)",
            namespace="AWS/Lambda",
            metric_name="Errors",
            dimensions={"FunctionName": function.name},
            statistic="Sum",
        )

    def _alarm(
        self,
        resource_name: str,
        args: ProcessorArgs,
        *,
        description: str,
        namespace: str,
        metric_name: str,
        dimensions: Mapping[str, pulumi.Input[str]],
        statistic: str,
    ) -> None:
        """An alarm that fires when the metric is above zero in any one period."""
        actions = _alarm_actions(args.alarm_topic_arn)
        aws.cloudwatch.MetricAlarm(
            resource_name,
            alarm_description=description,
            namespace=namespace,
            metric_name=metric_name,
            dimensions=dimensions,
            statistic=statistic,
            period=ALARM_PERIOD_SECONDS,
            evaluation_periods=1,
            threshold=0,
            comparison_operator="GreaterThanThreshold",
            treat_missing_data="notBreaching",
            alarm_actions=actions,
            ok_actions=actions,
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

"""Catalog: the lake as tables Athena can query, a workgroup that bounds and encrypts every query,
named queries, and the analyst role that may run them.

- One Glue database per stack (`<project>_<stack>`) and its tables, from
  `components/catalog_tables.json` (generated from the ETL's schemas by `dataplatform.catalog`):
  one table of clean trips per dataset (`yellow_trips`, `green_trips`), since each dataset has
  its own columns and a table's columns are then exactly what its Parquet files hold; `rejects`
  over every dataset (only the columns every rejects file has, the input columns differ per
  vintage); and the master tables written by the migration.
- Partition projection on `year`/`month` (and `dataset` for rejects): Athena computes the
  partitions from the table's properties, so no crawler, no `MSCK REPAIR` and no partition
  writes from the processor. Property names from the Athena User Guide, "Set up partition
  projection" and "Supported types for partition projection".
- The workgroup enforces its configuration (a client cannot send results elsewhere or
  unencrypted): results under `athena-results/` of the lake, SSE-KMS with the lake key, a
  per-query scan limit per stack, Athena engine version 3 pinned.
- Catalog encryption: metadata and connection passwords under the lake key. The setting is one
  per account and region (`glueCatalogEncryption` turns it off for a second stack).
- The analyst role may read the catalog, the queryable zones and master data, run queries in the
  workgroup and use the lake key; the processor's role gains nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pulumi
import pulumi_aws as aws

from components.data_lake import ATHENA_RESULTS_PREFIX
from components.settings import CatalogSettings
from etl.contract import MASTER_PREFIX, PROCESSED_PREFIX, REJECTS_PREFIX

TABLES_DOCUMENT = Path(__file__).with_name("catalog_tables.json")
RESULTS_PREFIX = ATHENA_RESULTS_PREFIX
"""Where the workgroup writes query results: outside every zone the processor writes (they
expire after 30 days, `components.data_lake.lifecycle_rules`)."""
ENGINE_VERSION = "Athena engine version 3"
FIRST_YEAR = 2009
"""TLC's first published trip records."""
LAST_YEAR = 2039
"""The last year partition projection enumerates; a query without a year filter lists every
year's prefixes, so the range is not open-ended. Raise it before 2040."""
PARQUET_INPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
ANALYST_ZONES = (PROCESSED_PREFIX, REJECTS_PREFIX, MASTER_PREFIX)
"""The lake prefixes the catalog's tables read, and so the analyst may."""


@dataclass(frozen=True)
class CatalogArgs:
    """What the catalog is built from."""

    name_prefix: str
    """`<project>-<stack>`; the database is its snake_case form, the workgroup and the analyst
    role are `<name_prefix>-analytics` and `<name_prefix>-analyst`."""
    settings: CatalogSettings
    """Scan limit and catalog encryption (see `CatalogSettings`)."""
    bucket_name: pulumi.Input[str]
    """The lake bucket the tables read and the results go to."""
    bucket_arn: pulumi.Input[str]
    """Its ARN."""
    lake_key_arn: pulumi.Input[str]
    """The lake's key: encrypts the results and the catalog."""
    tags: Mapping[str, str]
    """Tags for every taggable resource."""
    force_destroy: bool = False
    """Let `pulumi destroy` delete the workgroup with its saved queries (dev)."""


def database_name(name_prefix: str) -> str:
    """The Glue database of a stack: Athena names may not contain hyphens."""
    return name_prefix.replace("-", "_")


def load_tables(path: Path = TABLES_DOCUMENT) -> dict[str, Any]:
    """The generated table document."""
    document = json.loads(path.read_text())
    assert isinstance(document, dict)
    return document


def projection_parameters(
    table: Mapping[str, Any], bucket: str, datasets: list[str]
) -> dict[str, str]:
    """The table properties that turn on partition projection for `table`'s partition keys."""
    if not table["partition_keys"]:
        return {}
    parameters = {
        "projection.enabled": "true",
        "storage.location.template": f"s3://{bucket}/{table['location_template']}",
    }
    for name, _type in table["partition_keys"]:
        if name == "dataset":
            parameters |= {"projection.dataset.type": "enum"}
            parameters["projection.dataset.values"] = ",".join(datasets)
        elif name == "year":
            parameters |= {
                "projection.year.type": "integer",
                "projection.year.range": f"{FIRST_YEAR},{LAST_YEAR}",
            }
        elif name == "month":
            parameters |= {
                "projection.month.type": "integer",
                "projection.month.range": "1,12",
                # The lake writes month=01: two digits, zero-padded.
                "projection.month.digits": "2",
            }
        else:
            raise ValueError(f"table {table['name']}: no projection for partition key {name}")
    return parameters


NAMED_QUERIES: dict[str, tuple[str, str]] = {
    "trips-per-day": (
        "Yellow trips per pickup day in January 2024",
        """SELECT pickup_date, count(*) AS trips
FROM {database}.yellow_trips
WHERE year = 2024 AND month = 1
GROUP BY pickup_date
ORDER BY pickup_date""",
    ),
    "top-pickup-zones": (
        "The 10 zones with the most yellow pickups in January 2024, with their names",
        """SELECT z.borough, z.zone, count(*) AS pickups
FROM {database}.yellow_trips AS t
JOIN {database}.zones AS z ON z.location_id = t.pu_location_id
WHERE t.year = 2024 AND t.month = 1
GROUP BY z.borough, z.zone
ORDER BY pickups DESC
LIMIT 10""",
    ),
    "reject-reasons-per-month": (
        "How many rows each reject reason removed, per dataset and file month",
        """SELECT dataset, year, month, reject_reason, count(*) AS rows_rejected
FROM {database}.rejects
GROUP BY dataset, year, month, reject_reason
ORDER BY dataset, year, month, rows_rejected DESC""",
    ),
    "clean-vs-rejected": (
        "Clean and rejected yellow rows of January 2024, and the rejected share",
        """WITH clean AS (
  SELECT count(*) AS n FROM {database}.yellow_trips WHERE year = 2024 AND month = 1
), rejected AS (
  SELECT count(*) AS n FROM {database}.rejects
  WHERE dataset = 'yellow' AND year = 2024 AND month = 1
)
SELECT clean.n AS clean_rows, rejected.n AS rejected_rows,
       round(100.0 * rejected.n / nullif(clean.n + rejected.n, 0), 2) AS rejected_percent
FROM clean CROSS JOIN rejected""",
    ),
}
"""The saved queries: name -> (what it answers, SQL with `{database}` for the stack's database).
docs/queries.md lists them too."""


def named_queries(database: str) -> dict[str, tuple[str, str]]:
    """The saved queries of a stack, its database filled in (a name the program makes)."""
    return {
        name: (description, text.replace("{database}", database))
        for name, (description, text) in NAMED_QUERIES.items()
    }


def analyst_policy(
    *,
    bucket_arn: str,
    lake_key_arn: str,
    workgroup_arn: str,
    region: str,
    account: str,
    database: str,
) -> str:
    """The analyst role's permissions: query in the workgroup, read the catalog's database and
    tables, read the queryable zones, write and read results, use the lake key."""
    glue = f"arn:aws:glue:{region}:{account}"
    statements = [
        {
            "Sid": "QueryInWorkgroup",
            "Effect": "Allow",
            "Action": [
                "athena:GetNamedQuery",
                "athena:GetQueryExecution",
                "athena:GetQueryResults",
                "athena:GetWorkGroup",
                "athena:ListNamedQueries",
                "athena:ListQueryExecutions",
                "athena:StartQueryExecution",
                "athena:StopQueryExecution",
            ],
            "Resource": [workgroup_arn],
        },
        {
            "Sid": "ReadCatalog",
            "Effect": "Allow",
            "Action": [
                "glue:GetDatabase",
                "glue:GetPartition",
                "glue:GetPartitions",
                "glue:GetTable",
                "glue:GetTables",
            ],
            "Resource": [
                f"{glue}:catalog",
                f"{glue}:database/{database}",
                f"{glue}:table/{database}/*",
            ],
        },
        {
            "Sid": "ReadQueryableZones",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": [f"{bucket_arn}/{prefix}*" for prefix in ANALYST_ZONES],
        },
        {
            "Sid": "ListQueryableZones",
            "Effect": "Allow",
            "Action": ["s3:GetBucketLocation", "s3:ListBucket"],
            "Resource": [bucket_arn],
            "Condition": {
                "StringLike": {
                    "s3:prefix": [f"{prefix}*" for prefix in (*ANALYST_ZONES, RESULTS_PREFIX)]
                }
            },
        },
        {
            "Sid": "QueryResults",
            "Effect": "Allow",
            "Action": [
                "s3:AbortMultipartUpload",
                "s3:GetObject",
                "s3:ListMultipartUploadParts",
                "s3:PutObject",
            ],
            "Resource": [f"{bucket_arn}/{RESULTS_PREFIX}*"],
        },
        {
            "Sid": "UseLakeKey",
            "Effect": "Allow",
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            "Resource": [lake_key_arn],
        },
    ]
    return json.dumps({"Version": "2012-10-17", "Statement": statements}, sort_keys=True)


def analyst_trust_policy(account: str) -> str:
    """Who may assume the analyst role: principals of this account that IAM allows to."""
    return json.dumps(
        {
            "Version": "2012-10-17",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                    "Action": "sts:AssumeRole",
                }
            ],
        },
        sort_keys=True,
    )


class Catalog(pulumi.ComponentResource):
    """The Glue database and tables over the lake, the Athena workgroup and the analyst role."""

    database_name: pulumi.Output[str]
    """The Glue database (`<project>_<stack>`)."""
    workgroup_name: pulumi.Output[str]
    """The Athena workgroup analysts query in."""
    analyst_role_arn: pulumi.Output[str]
    """The role that may query the lake."""

    def __init__(
        self, name: str, args: CatalogArgs, opts: pulumi.ResourceOptions | None = None
    ) -> None:
        super().__init__("dataplatform:index:Catalog", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        invoke = pulumi.InvokeOutputOptions(parent=self)
        account = aws.get_caller_identity_output(opts=invoke).account_id
        region = aws.get_region_output(opts=invoke).region
        document = load_tables()

        if args.settings.catalog_encryption:
            aws.glue.DataCatalogEncryptionSettings(
                f"{name}-encryption",
                data_catalog_encryption_settings={
                    "encryption_at_rest": {
                        "catalog_encryption_mode": "SSE-KMS",
                        "sse_aws_kms_key_id": args.lake_key_arn,
                    },
                    "connection_password_encryption": {
                        "return_connection_password_encrypted": True,
                        "aws_kms_key_id": args.lake_key_arn,
                    },
                },
                opts=child,
            )
        database = aws.glue.CatalogDatabase(
            f"{name}-database",
            name=database_name(args.name_prefix),
            description=f"{args.name_prefix}: the data lake's clean trips, rejects and master data",
            tags=args.tags,
            opts=child,
        )
        for table in document["tables"]:
            self._table(name, table, database, args, document["datasets"])
        workgroup = self._workgroup(name, args)
        for query, (description, text) in named_queries(database_name(args.name_prefix)).items():
            aws.athena.NamedQuery(
                f"{name}-query-{query}",
                name=query,
                description=description,
                database=database.name,
                workgroup=workgroup.name,
                query=text,
                opts=child,
            )
        role = aws.iam.Role(
            f"{name}-analyst-role",
            name=f"{args.name_prefix}-analyst",
            description=f"{args.name_prefix}: query the lake with Athena (read only)",
            assume_role_policy=account.apply(analyst_trust_policy),
            max_session_duration=3600,
            tags=args.tags,
            opts=child,
        )
        aws.iam.RolePolicy(
            f"{name}-analyst-policy",
            role=role.id,
            policy=pulumi.Output.all(
                args.bucket_arn, args.lake_key_arn, workgroup.arn, region, account
            ).apply(
                lambda values: analyst_policy(
                    bucket_arn=values[0],
                    lake_key_arn=values[1],
                    workgroup_arn=values[2],
                    region=values[3],
                    account=values[4],
                    database=database_name(args.name_prefix),
                )
            ),
            opts=child,
        )

        self.database_name = database.name
        self.workgroup_name = workgroup.name
        self.analyst_role_arn = role.arn
        self.register_outputs(
            {
                "database_name": self.database_name,
                "workgroup_name": self.workgroup_name,
                "analyst_role_arn": self.analyst_role_arn,
            }
        )

    def _table(
        self,
        name: str,
        table: Mapping[str, Any],
        database: aws.glue.CatalogDatabase,
        args: CatalogArgs,
        datasets: list[str],
    ) -> aws.glue.CatalogTable:
        """One external Parquet table over its lake prefix."""
        bucket = pulumi.Output.from_input(args.bucket_name)
        return aws.glue.CatalogTable(
            f"{name}-table-{table['name']}",
            name=table["name"],
            database_name=database.name,
            description=table["description"],
            table_type="EXTERNAL_TABLE",
            parameters=bucket.apply(
                lambda bucket_name: {
                    "EXTERNAL": "TRUE",
                    "classification": "parquet",
                    **projection_parameters(table, bucket_name, datasets),
                }
            ),
            partition_keys=[{"name": key, "type": type_} for key, type_ in table["partition_keys"]],
            storage_descriptor={
                "location": bucket.apply(
                    lambda bucket_name: f"s3://{bucket_name}/{table['prefix']}"
                ),
                "input_format": PARQUET_INPUT,
                "output_format": PARQUET_OUTPUT,
                "ser_de_info": {"serialization_library": PARQUET_SERDE},
                "columns": [{"name": column, "type": type_} for column, type_ in table["columns"]],
            },
            opts=pulumi.ResourceOptions(parent=self),
        )

    def _workgroup(self, name: str, args: CatalogArgs) -> aws.athena.Workgroup:
        """The workgroup: enforced, encrypted results in the lake, a scan limit, engine v3."""
        bucket = pulumi.Output.from_input(args.bucket_name)
        return aws.athena.Workgroup(
            f"{name}-workgroup",
            name=f"{args.name_prefix}-analytics",
            description=f"{args.name_prefix}: queries over the lake, results encrypted",
            state="ENABLED",
            force_destroy=args.force_destroy,
            configuration={
                "enforce_workgroup_configuration": True,
                "publish_cloudwatch_metrics_enabled": True,
                "bytes_scanned_cutoff_per_query": args.settings.scan_limit_bytes,
                "engine_version": {"selected_engine_version": ENGINE_VERSION},
                "result_configuration": {
                    "output_location": bucket.apply(lambda b: f"s3://{b}/{RESULTS_PREFIX}"),
                    "encryption_configuration": {
                        "encryption_option": "SSE_KMS",
                        "kms_key_arn": args.lake_key_arn,
                    },
                },
            },
            tags=args.tags,
            opts=pulumi.ResourceOptions(parent=self),
        )

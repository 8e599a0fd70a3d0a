"""The Glue catalog, the Athena workgroup and the analyst role, asserted on what the program
registers for each stack."""

from __future__ import annotations

from dataplatform.mocks import ProgramRun
from etl.core.naming import Month
from etl.lake import output_keys
from tests.infra.support import inputs, policy_document, setting_int, statements

TABLE = "aws:glue/catalogTable:CatalogTable"
WORKGROUP = "aws:athena/workgroup:Workgroup"


def _bucket(run: ProgramRun) -> str:
    return str(run.one("aws:s3/bucket:Bucket", "lake-bucket").outputs["bucket"])


def _lake_key(run: ProgramRun) -> str:
    return str(run.one("aws:kms/key:Key", "lake-key").outputs["arn"])


def test_one_glue_database_per_stack(stack_run: ProgramRun) -> None:
    # Rule: each stack has its own database, named after it (Athena names hold no hyphens).
    database = stack_run.one("aws:glue/catalogDatabase:CatalogDatabase")
    assert inputs(database)["name"] == f"dataplatform_{stack_run.stack}", database.urn
    tables = stack_run.by_type(TABLE)
    assert {inputs(t)["databaseName"] for t in tables} == {inputs(database)["name"]}


def test_partitioned_tables_project_the_lakes_own_partition_folders(stack_run: ProgramRun) -> None:
    # Rule: partition projection, no crawler: the template filled in with a month is the
    # folder `etl.lake.output_keys` writes that month's files to.
    bucket = _bucket(stack_run)
    month = Month(2024, 3)
    expected = {
        "yellow_trips": output_keys("yellow", month, "raw/yellow/x.parquet").processed,
        "green_trips": output_keys("green", month, "raw/green/x.parquet").processed,
        "rejects": output_keys("green", month, "raw/green/x.parquet").rejects,
    }
    for name, key in expected.items():
        table = stack_run.one(TABLE, f"catalog-table-{name}")
        parameters = inputs(table)["parameters"]
        assert parameters["projection.enabled"] == "true", table.urn
        template = parameters["storage.location.template"]
        filled = (
            template.replace("${dataset}", "green")
            .replace("${year}", "2024")
            .replace("${month}", "03")  # `projection.month.digits` 2 pads 3 to 03
        )
        assert f"s3://{bucket}/{key}".startswith(filled), (table.urn, template)
        assert parameters["projection.month.digits"] == "2", table.urn
        assert parameters["projection.month.range"] == "1,12", table.urn
        assert parameters["projection.year.type"] == "integer", table.urn
        keys = [k["name"] for k in inputs(table)["partitionKeys"]]
        assert keys[-2:] == ["year", "month"], table.urn


def test_rejects_are_one_table_partitioned_by_dataset(stack_run: ProgramRun) -> None:
    # Rule: the rejects of every dataset share one table; dataset is an enum partition.
    table = stack_run.one(TABLE, "catalog-table-rejects")
    parameters = inputs(table)["parameters"]
    assert parameters["projection.dataset.type"] == "enum", table.urn
    assert set(parameters["projection.dataset.values"].split(",")) == {"yellow", "green"}


def test_tables_are_external_parquet(stack_run: ProgramRun) -> None:
    # Rule: tables only describe the lake's Parquet files; dropping one never deletes data.
    for table in stack_run.by_type(TABLE):
        values = inputs(table)
        assert values["tableType"] == "EXTERNAL_TABLE", table.urn
        serde = values["storageDescriptor"]["serDeInfo"]["serializationLibrary"]
        assert serde.endswith("ParquetHiveSerDe"), table.urn
        assert values["storageDescriptor"]["location"].startswith(f"s3://{_bucket(stack_run)}/")


def test_catalog_is_encrypted_with_the_lake_key(stack_run: ProgramRun) -> None:
    # Rule: catalog metadata and connection passwords are encrypted with the lake's CMK.
    settings = stack_run.one("aws:glue/dataCatalogEncryptionSettings:DataCatalogEncryptionSettings")
    values = inputs(settings)["dataCatalogEncryptionSettings"]
    key = _lake_key(stack_run)
    assert values["encryptionAtRest"] == {
        "catalogEncryptionMode": "SSE-KMS",
        "sseAwsKmsKeyId": key,
    }, settings.urn
    assert values["connectionPasswordEncryption"] == {
        "returnConnectionPasswordEncrypted": True,
        "awsKmsKeyId": key,
    }, settings.urn


def test_workgroup_enforces_encrypted_results_in_the_lake(stack_run: ProgramRun) -> None:
    # Rule: clients cannot override where results go or that they are SSE-KMS with the lake key.
    workgroup = stack_run.one(WORKGROUP)
    configuration = inputs(workgroup)["configuration"]
    assert configuration["enforceWorkgroupConfiguration"] is True, workgroup.urn
    results = configuration["resultConfiguration"]
    assert results["outputLocation"] == f"s3://{_bucket(stack_run)}/athena-results/"
    assert results["encryptionConfiguration"] == {
        "encryptionOption": "SSE_KMS",
        "kmsKeyArn": _lake_key(stack_run),
    }, workgroup.urn


def test_workgroup_scan_limit_is_the_stacks_setting(stack_run: ProgramRun) -> None:
    # Rule: a query that would scan more than athenaScanLimitGb is cancelled.
    configuration = inputs(stack_run.one(WORKGROUP))["configuration"]
    limit_gb = setting_int(stack_run.stack, "athenaScanLimitGb")
    assert configuration["bytesScannedCutoffPerQuery"] == limit_gb * 1024**3


def test_prod_may_scan_more_than_dev(dev_run: ProgramRun, prod_run: ProgramRun) -> None:
    # Rule: dev's limit keeps a mistake cheap; prod's admits scans over the whole history.
    def limit(run: ProgramRun) -> int:
        return int(inputs(run.one(WORKGROUP))["configuration"]["bytesScannedCutoffPerQuery"])

    assert limit(dev_run) < limit(prod_run)


def test_workgroup_pins_the_engine_version(stack_run: ProgramRun) -> None:
    # Rule: an engine upgrade is a reviewed change, not something Athena does on its own.
    configuration = inputs(stack_run.one(WORKGROUP))["configuration"]
    assert configuration["engineVersion"] == {"selectedEngineVersion": "Athena engine version 3"}


def test_named_queries_run_in_the_stacks_workgroup_and_database(stack_run: ProgramRun) -> None:
    # Rule: the saved queries name this stack's tables, so they run as saved.
    queries = stack_run.by_type("aws:athena/namedQuery:NamedQuery")
    names = {inputs(q)["name"] for q in queries}
    assert names == {
        "trips-per-day",
        "top-pickup-zones",
        "reject-reasons-per-month",
        "clean-vs-rejected",
    }
    database = f"dataplatform_{stack_run.stack}"
    workgroup = inputs(stack_run.one(WORKGROUP))["name"]
    for query in queries:
        values = inputs(query)
        assert (values["database"], values["workgroup"]) == (database, workgroup), query.urn
        assert f"{database}." in values["query"], query.urn


def _processor_policy(run: ProgramRun) -> list[dict[str, object]]:
    policy = next(
        p for p in run.by_type("aws:iam/rolePolicy:RolePolicy") if p.name.startswith("processor")
    )
    return statements(policy_document(policy))


def test_processor_gains_no_access_to_the_catalog_queries_or_results(
    stack_run: ProgramRun,
) -> None:
    # Rule: the processor writes the lake; it may not query it or read what analysts read.
    found = _processor_policy(stack_run)
    actions = [str(a) for s in found for a in s["Action"]]  # type: ignore[attr-defined]
    assert not [a for a in actions if a.split(":")[0] in {"glue", "athena"}]
    bucket_arn = f"arn:aws:s3:::{_bucket(stack_run)}"
    readable = {
        str(resource)
        for s in found
        if "s3:GetObject" in s["Action"]  # type: ignore[operator]
        for resource in s["Resource"]  # type: ignore[attr-defined]
    }
    assert readable == {f"{bucket_arn}/raw/*"}
    master = next(s for s in found if s["Resource"] == [f"{bucket_arn}/master/*"])
    assert master["Action"] == ["s3:PutObject"]


def test_analyst_role_reads_the_queryable_zones_and_writes_only_results(
    stack_run: ProgramRun,
) -> None:
    # Rule: the analyst reads processed/, rejects/, master/ and results, writes only results,
    # never raw/ or quarantine/.
    policy = stack_run.one("aws:iam/rolePolicy:RolePolicy", "catalog-analyst-policy")
    found = statements(policy_document(policy))
    bucket_arn = f"arn:aws:s3:::{_bucket(stack_run)}"

    def resources(action: str) -> set[str]:
        return {r for s in found if action in s["Action"] for r in s["Resource"]}

    zones = {f"{bucket_arn}/{zone}/*" for zone in ("processed", "rejects", "master")}
    results = f"{bucket_arn}/athena-results/*"
    assert resources("s3:GetObject") == zones | {results}
    assert resources("s3:PutObject") == {results}
    assert resources("kms:Decrypt") == {_lake_key(stack_run)}
    workgroup = stack_run.one(WORKGROUP).outputs["arn"]
    assert resources("athena:StartQueryExecution") == {workgroup}
    assert not [
        a for s in found for a in s["Action"] if a.startswith(("glue:Create", "glue:Delete"))
    ]


def test_query_results_expire(stack_run: ProgramRun) -> None:
    # Rule: results are copies of queried data; the lake deletes them after 30 days.
    lifecycle = stack_run.one(
        "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "lake-lifecycle"
    )
    (rule,) = [
        r for r in inputs(lifecycle)["rules"] if r["filter"] == {"prefix": "athena-results/"}
    ]
    assert rule["expiration"] == {"days": 30}, lifecycle.urn

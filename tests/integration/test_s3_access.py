"""The S3 actions the processor declares (`etl.lake.S3_ACCESS`, what its IAM policy must allow)
cover every S3 call it makes, on every path: load, redelivery, quarantine, failed write."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from botocore.awsrequest import AWSResponse

from etl import handler as handler_module
from etl.contract import S3_ACCESS
from etl.handler import handler
from tests.integration.conftest import Platform, parquet_bytes, s3_event, yellow_rows
from tests.integration.test_faults import s3_error

WRITES = {"PutObject", "CreateMultipartUpload", "UploadPart", "CompleteMultipartUpload"}


def required_actions(operation: str, params: dict[str, Any]) -> list[tuple[str, str]]:
    """(IAM action, key) pairs an S3 API call needs."""
    key = params["Key"]
    if operation in {"GetObject", "HeadObject"}:
        return [("s3:GetObjectVersion" if params.get("VersionId") else "s3:GetObject", key)]
    if operation in WRITES:
        return [("s3:PutObject", key)]
    if operation == "DeleteObject":
        return [("s3:DeleteObjectVersion" if params.get("VersionId") else "s3:DeleteObject", key)]
    if operation in {"CopyObject", "UploadPartCopy"}:
        source_key, versioned = copy_source(params["CopySource"])
        read = "s3:GetObjectVersion" if versioned else "s3:GetObject"
        return [("s3:PutObject", key), (read, source_key)]
    raise AssertionError(f"the processor called S3 {operation}, which no policy grants")


def copy_source(source: str | dict[str, str]) -> tuple[str, bool]:
    """(key, whether a version is named) of a CopySource, as a dict or as botocore's
    `bucket/key?versionId=...` string."""
    if isinstance(source, dict):
        return source["Key"], bool(source.get("VersionId"))
    path, _, query = source.partition("?versionId=")
    return unquote(path).split("/", 1)[1], bool(query)


def allowed(action: str, key: str) -> bool:
    return any(key.startswith(prefix) and action in S3_ACCESS[prefix] for prefix in S3_ACCESS)


def test_declared_s3_access_covers_every_call(platform: Platform) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        calls.append((model.name, dict(params)))

    def deny_rejects(request: Any, **_: Any) -> AWSResponse | None:
        return s3_error(request.url, 403, "AccessDenied") if "/rejects/" in request.url else None

    events = handler_module.runtime().s3.meta.events
    recorder: Any = record
    denier: Any = deny_rejects
    events.register("before-parameter-build.s3", recorder)

    platform.put_raw("yellow_tripdata_2024-01.parquet", parquet_bytes(yellow_rows(5)))
    platform.put_raw("yellow_tripdata_2024-02.parquet", b"PAR1 not really")
    loaded = platform.receive_event()
    handler(loaded, None)
    handler(loaded, None)  # redelivery: the old report is deleted first
    events.register("before-send.s3.PutObject", denier)
    handler(loaded, None)  # failed write: partial outputs are deleted
    events.unregister("before-send.s3.PutObject", denier)
    handler(s3_event(platform.bucket, "raw/yellow/yellow_tripdata_2024-03.parquet"), None)

    operations = {operation for operation, _ in calls}
    assert {"GetObject", "PutObject", "DeleteObject"} <= operations
    assert operations & {"CopyObject", "UploadPartCopy"}
    needed = [pair for operation, params in calls for pair in required_actions(operation, params)]
    assert [pair for pair in needed if not allowed(*pair)] == []

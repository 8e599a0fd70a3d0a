"""Failures a user can fix, as one line: the cause and the next step.

The CLI's commands let library exceptions (botocore, psycopg, the file system, a missing optional
dependency) travel up unchanged; `explain` turns the anticipated ones into a `DataplatformError`
in one place, so no command repeats the translation and every command gets it. Nothing here
imports boto3 or psycopg: an exception from them means they are already loaded.
"""

from __future__ import annotations

import errno
import os
import re
import sys
from pathlib import PurePath
from typing import Any
from urllib.parse import urlsplit

from etl.core.errors import DataplatformError, UsageError

DEBUG_ENV = "DATAPLATFORM_DEBUG"
"""Set to 1 (like `--debug`) to see the traceback of any failure."""

POSTGRES_SCHEMES = ("postgresql", "postgres")
PULUMI_INSTALL_HINT = (
    "install it with `curl -fsSL https://get.pulumi.com | sh` "
    "(or see https://www.pulumi.com/docs/iac/download-install/) and retry"
)

# Optional dependencies → the extra that installs them (pyproject's optional-dependencies).
EXTRA_OF_MODULE = {
    "pulumi": "infra",
    "pulumi_aws": "infra",
    "pulumi_random": "infra",
    "yaml": "infra",
    "moto": "demo",
    "pgserver": "demo",
}

_AWS_CREDENTIALS_HINT = (
    "configure them with `aws configure` or `aws sso login`, or set AWS_PROFILE "
    "(or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY), then retry"
)
_MISSING_BUCKET_CODES = frozenset({"NoSuchBucket"})
_MISSING_QUEUE_CODES = frozenset(
    {"AWS.SimpleQueueService.NonExistentQueue", "QueueDoesNotExist", "NonExistentQueue"}
)
_CREDENTIAL_CODES = frozenset(
    {"InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken", "InvalidClientTokenId"}
)


class MissingExtra(DataplatformError):
    """A command needs an optional dependency that is not installed."""


def debug_requested() -> bool:
    """Whether DATAPLATFORM_DEBUG asks for tracebacks."""
    return os.environ.get(DEBUG_ENV, "").strip().lower() in {"1", "true", "yes", "on"}


def check_database_url(url: str, option: str = "--database-url") -> str:
    """`url` if it is a postgresql:// URL (or libpq's `host=... dbname=...` keyword form); a
    usage error naming the option otherwise."""
    if "://" not in url and re.match(r"^\s*\w+\s*=", url):
        return url
    scheme = urlsplit(url).scheme
    if scheme not in POSTGRES_SCHEMES:
        shown = f"{scheme}://" if scheme else repr(url.split("@")[-1][:40])
        raise UsageError(
            f"{option} must be a postgresql:// URL, not {shown}: "
            "e.g. postgresql://USER@HOST:5432/DBNAME (password in PGPASSWORD)"
        )
    return url


def explain(error: BaseException) -> DataplatformError | None:
    """The one-line error for an anticipated failure, or None for anything else (a bug)."""
    if isinstance(error, DataplatformError):
        return error
    module = type(error).__module__.split(".")[0]
    if module == "botocore":
        return _explain_aws(error)
    if module == "psycopg":
        return _explain_postgres(error)
    if isinstance(error, ModuleNotFoundError):
        return _explain_import(error)
    if isinstance(error, OSError):
        return _explain_os(error)
    return None


def _explain_aws(error: BaseException) -> DataplatformError | None:
    exceptions = sys.modules["botocore.exceptions"]
    if isinstance(error, exceptions.NoCredentialsError | exceptions.PartialCredentialsError):
        return DataplatformError(f"no AWS credentials found: {_AWS_CREDENTIALS_HINT}")
    if isinstance(error, exceptions.NoRegionError):
        return DataplatformError(
            "no AWS region set: export AWS_REGION=us-east-1 (the stack's aws:region), "
            "or `aws configure set region REGION`"
        )
    if isinstance(error, exceptions.EndpointConnectionError | exceptions.ConnectTimeoutError):
        endpoint = getattr(error, "kwargs", {}).get("endpoint_url", "the AWS endpoint")
        return DataplatformError(
            f"cannot reach {endpoint}: check the network, AWS_ENDPOINT_URL or --s3-endpoint "
            "(is the local endpoint running?)"
        )
    if isinstance(error, exceptions.ClientError):
        return _explain_client_error(error)
    if isinstance(error, exceptions.BotoCoreError):
        return DataplatformError(f"AWS request failed: {error}")
    return None


def _explain_client_error(error: Any) -> DataplatformError:
    details = error.response.get("Error", {})
    code = str(details.get("Code", ""))
    message = str(details.get("Message", "")).strip()
    operation = error.operation_name
    if code in _MISSING_BUCKET_CODES:
        bucket = details.get("BucketName") or "the bucket"
        return DataplatformError(
            f"bucket {bucket} does not exist in this account and region: check --bucket "
            "(the stack's is `pulumi stack output bucketName -s STACK`, or use --stack)"
        )
    if code in _MISSING_QUEUE_CODES:
        return DataplatformError(
            "the queue does not exist in this account and region: check --queue-url "
            "(the stack's is `pulumi stack output queueUrl -s STACK`)"
        )
    if code in _CREDENTIAL_CODES:
        return DataplatformError(f"AWS rejected the credentials ({code}): {_AWS_CREDENTIALS_HINT}")
    if code in {"AccessDenied", "AccessDeniedException"} or code.endswith("AccessDenied"):
        return DataplatformError(
            f"AWS denied {operation}: {message or code} (use credentials allowed to do it, "
            "e.g. another AWS_PROFILE)"
        )
    return DataplatformError(f"AWS {operation} failed: {code}: {message}")


def _explain_postgres(error: BaseException) -> DataplatformError | None:
    psycopg = sys.modules["psycopg"]
    text = str(error).strip().splitlines()
    first = text[0] if text else type(error).__name__
    if isinstance(error, psycopg.OperationalError):
        return DataplatformError(
            f"cannot connect to the database: {first} (check --database-url, "
            "postgresql://USER@HOST:PORT/DBNAME, and PGPASSWORD; is the server running?)"
        )
    if isinstance(error, psycopg.ProgrammingError) and "connection info" in first:
        return UsageError(
            f"--database-url is not a PostgreSQL URL ({first}): "
            "use postgresql://USER@HOST:PORT/DBNAME"
        )
    return None


def _explain_import(error: ModuleNotFoundError) -> DataplatformError | None:
    top = (error.name or "").split(".")[0]
    extra = EXTRA_OF_MODULE.get(top)
    if extra is None:
        return None
    return MissingExtra(
        f"this command needs the '{extra}' extra ({top} is not installed): in your clone, "
        f"uv tool install --force '.[{extra}]' (or uv sync to work in the clone)"
    )


def _explain_os(error: OSError) -> DataplatformError | None:
    where = error.filename or "a file"
    reason = error.strerror or type(error).__name__
    if error.errno == errno.ENOENT and PurePath(str(where)).name == "pulumi":
        return DataplatformError(f"the Pulumi CLI (`pulumi`) is not on PATH: {PULUMI_INSTALL_HINT}")
    if error.errno in {errno.EACCES, errno.EPERM, errno.EROFS}:
        return DataplatformError(
            f"cannot write {where}: {reason}: choose a directory you can write to (--out)"
        )
    if error.errno in {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EEXIST}:
        return DataplatformError(
            f"cannot create or use {where} ({reason}): choose an output directory you can "
            "create and write to (--out)"
        )
    if error.errno == errno.ENOSPC:
        return DataplatformError(f"no space left writing {where}: free space or use another --out")
    return None

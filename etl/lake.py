"""The data lake in S3: where a raw object's outputs go, and writing them so that a failure leaves
nothing half-done visible.

Layout (one bucket, zone prefixes):

    raw/<any prefix>/<file>                                input
    processed/<dataset>/year=YYYY/month=MM/<stem>.parquet  clean rows
    rejects/<dataset>/year=YYYY/month=MM/<stem>.parquet    every input column + reject_reason
    reports/<dataset>/year=YYYY/month=MM/<stem>.html       quality report for people
    reports/<dataset>/year=YYYY/month=MM/<stem>.json       quality report: the completion marker
    reports/index.html                                     every object's report or quarantine
    quarantine/<raw key> + quarantine/<raw key>.error.json unprocessable input, byte for byte
    master/<table>/<table>.parquet                         master data, written by the migration

`<stem>` is the raw file's name without suffixes and 12 hex digits of the SHA-256 of its whole
key under raw/ (`lake_stem`): the same key always writes the same outputs (a redelivery or a
new version replaces them), and two objects never share them, whatever their names.

Outputs of a stem are complete if and only if its JSON report exists: `write_outputs` deletes the
old report first, writes the Parquet files and the HTML page (in a thread, while the database
load runs in the caller's), and writes the JSON report last, once both are done. If any write
(or the load) fails it deletes all of them (best effort) before raising, so after a failed attempt
readers see neither a partial set nor a stale report; the retry writes them again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import polars as pl
from botocore.exceptions import ClientError

from etl.contract import (
    PROCESSED_PREFIX,
    QUARANTINE_PREFIX,
    RAW_PREFIX,
    REJECTS_PREFIX,
    REPORTS_PREFIX,
    master_data_key,
)
from etl.core.errors import QUARANTINE_ERROR_SUFFIX, UnprocessableInput
from etl.core.naming import Month, output_stem
from etl.core.pipeline import ProcessResult
from etl.core.report_html import IndexEntry, render_html, render_index
from etl.events import SourceObject
from etl.loader import LoadSummary
from etl.logs import ms_since

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client

_log = logging.getLogger("dataplatform.lake")
_MISSING = frozenset({"NoSuchKey", "NoSuchVersion", "404", "NotFound"})
_T = TypeVar("_T")


@dataclass(frozen=True)
class OutputKeys:
    """The S3 keys of one processed object's outputs."""

    processed: str
    rejects: str
    report_html: str
    report: str
    """The JSON report: written last, it marks the set complete."""

    def all(self) -> tuple[str, ...]:
        """Every output key, in the order they are written (JSON report last)."""
        return (self.processed, self.rejects, self.report_html, self.report)


STEM_DIGEST_DIGITS = 12
"""Hex digits of the key's SHA-256 in an output name: 48 bits, and only two objects with the same
file name in the same dataset and month could ever collide."""


def lake_stem(source_key: str) -> str:
    """The base name of raw object `source_key`'s outputs, derived from its whole key under raw/
    (`raw/yellow/corrected/yellow_tripdata_2024-09.parquet` ->
    `yellow_tripdata_2024-09-<12 hex digits>`)."""
    under_raw = source_key.removeprefix(RAW_PREFIX)
    digest = hashlib.sha256(under_raw.encode()).hexdigest()[:STEM_DIGEST_DIGITS]
    return f"{output_stem(under_raw)}-{digest}"


def output_keys(dataset: str, month: Month, source_key: str) -> OutputKeys:
    """Where the outputs of raw object `source_key` go: its dataset's Hive partition of the
    month (`year=YYYY/month=MM`, as Glue and Athena read it), named by `lake_stem`."""
    stem = lake_stem(source_key)
    partition = f"{dataset}/year={month.year:04d}/month={month.month:02d}/{stem}"
    return OutputKeys(
        processed=f"{PROCESSED_PREFIX}{partition}.parquet",
        rejects=f"{REJECTS_PREFIX}{partition}.parquet",
        report_html=f"{REPORTS_PREFIX}{partition}.html",
        report=f"{REPORTS_PREFIX}{partition}.json",
    )


INDEX_KEY = f"{REPORTS_PREFIX}index.html"
"""The page linking every object's report (or why it was quarantined), with its counts."""


def index_entries(summaries: list[LoadSummary]) -> list[IndexEntry]:
    """The index's rows: each loaded object links its HTML report, each quarantined one its
    error document, relative to `reports/`."""
    entries = []
    for summary in summaries:
        if summary.status == "quarantined":
            _, error_key = quarantine_keys(summary.source_key)
            entries.append(
                IndexEntry(
                    name=summary.source_key,
                    href=f"../{error_key}",
                    quarantined=summary.error or "quarantined",
                )
            )
        elif summary.dataset is not None and summary.month is not None:
            month = Month(summary.month.year, summary.month.month)
            keys = output_keys(summary.dataset, month, summary.source_key)
            entries.append(
                IndexEntry(
                    name=summary.source_key,
                    href=keys.report_html.removeprefix(REPORTS_PREFIX),
                    dataset=summary.dataset,
                    month=str(month),
                    rows_in=summary.rows_in or 0,
                    rows_clean=summary.rows_clean or 0,
                    rows_rejected=summary.rows_rejected or 0,
                )
            )
    return entries


def quarantine_keys(key: str) -> tuple[str, str]:
    """The quarantined copy of raw object `key` and its error document."""
    target = f"{QUARANTINE_PREFIX}{key}"
    return target, f"{target}{QUARANTINE_ERROR_SUFFIX}"


@dataclass(frozen=True)
class Downloaded:
    """A raw object fetched to local disk, and which version of it that was."""

    path: Path
    version_id: str | None
    etag: str | None
    size: int


class ObjectGone(Exception):
    """The raw object (or the version the event named) no longer exists."""


def is_missing(error: ClientError) -> bool:
    """Whether an S3 error says the object or version does not exist."""
    return str(error.response.get("Error", {}).get("Code")) in _MISSING


class Lake:
    """Reads raw objects and writes outputs and quarantine copies through one S3 client."""

    def __init__(self, s3: S3Client) -> None:
        self.s3 = s3

    def download(self, obj: SourceObject, directory: Path) -> Downloaded:
        """Fetch the object (the event's version, if it names one) into `directory`."""
        extra: dict[str, Any] = {"VersionId": obj.version_id} if obj.version_id else {}
        try:
            response = self.s3.get_object(Bucket=obj.bucket, Key=obj.key, **extra)
        except ClientError as error:
            if is_missing(error):
                raise ObjectGone(obj.key) from error
            raise
        path = directory / (obj.key.rsplit("/", 1)[-1] or "object")
        with path.open("wb") as handle:
            # 1 MB reads: with 8 MB ones, 18 MB of read buffers stayed resident afterwards.
            shutil.copyfileobj(response["Body"], handle, length=1024 * 1024)
        return Downloaded(
            path=path,
            version_id=response.get("VersionId") or obj.version_id,
            etag=_unquote_etag(response.get("ETag")) or obj.etag,
            size=path.stat().st_size,
        )

    def write_outputs(
        self,
        bucket: str,
        keys: OutputKeys,
        result: ProcessResult,
        report: dict[str, Any],
        directory: Path,
        metadata: dict[str, str],
        *,
        alongside: Callable[[], _T],
        timings: dict[str, float],
    ) -> _T:
        """Write the clean rows, the rejects and the HTML page while `alongside` (the database
        load) runs in this thread, then, once both are done, the JSON report: last, so that it
        marks complete outputs. On failure of either, remove them all and raise. Returns what
        `alongside` returned; `timings` gets `write_s3` (the data writes, in their own thread)
        and `write_report`."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="lake-write") as pool:
            data = pool.submit(self._write_data, bucket, keys, result, report, directory, metadata)
            try:
                value = alongside()
                timings["write_s3"] = data.result()
                clock = time.perf_counter()
                self.s3.put_object(
                    Bucket=bucket,
                    Key=keys.report,
                    Body=(json.dumps(report, indent=2, default=str) + "\n").encode(),
                    ContentType="application/json",
                    Metadata=metadata,
                )
                timings["write_report"] = ms_since(clock)
            except BaseException:
                wait([data])
                self._remove(bucket, keys.all())
                raise
        return value

    def _write_data(
        self,
        bucket: str,
        keys: OutputKeys,
        result: ProcessResult,
        report: dict[str, Any],
        directory: Path,
        metadata: dict[str, str],
    ) -> float:
        """Everything but the JSON report, whose earlier version goes first; the ms it took."""
        clock = time.perf_counter()
        self.s3.delete_object(Bucket=bucket, Key=keys.report)
        clean_path = directory / "clean.parquet"
        rejects_path = directory / "rejects.parquet"
        result.write_clean(clean_path)
        result.rejects.write_parquet(rejects_path)
        parquet = {"ContentType": "application/vnd.apache.parquet", "Metadata": metadata}
        self.s3.upload_file(str(clean_path), bucket, keys.processed, ExtraArgs=parquet)
        self.s3.upload_file(str(rejects_path), bucket, keys.rejects, ExtraArgs=parquet)
        self.s3.put_object(
            Bucket=bucket,
            Key=keys.report_html,
            Body=render_html(report).encode(),
            ContentType="text/html; charset=utf-8",
            Metadata=metadata,
        )
        return ms_since(clock)

    def quarantine(
        self, obj: SourceObject, downloaded: Downloaded, error: UnprocessableInput
    ) -> None:
        """Copy the raw object byte for byte to quarantine/ and write its error document (last,
        so that it marks a complete quarantine)."""
        target, error_key = quarantine_keys(obj.key)
        source: dict[str, str] = {"Bucket": obj.bucket, "Key": obj.key}
        if downloaded.version_id:
            source["VersionId"] = downloaded.version_id
        # Server-side copy: byte-identical, and multipart for large objects.
        self.s3.copy(source, obj.bucket, target)  # type: ignore[arg-type]
        details = error.quarantine_document(
            obj.key,
            bucket=obj.bucket,
            source_version_id=downloaded.version_id,
            source_etag=downloaded.etag,
        )
        self.s3.put_object(
            Bucket=obj.bucket,
            Key=error_key,
            Body=(json.dumps(details, indent=2) + "\n").encode(),
            ContentType="application/json",
        )

    def write_index(self, bucket: str, summaries: list[LoadSummary]) -> None:
        """Rewrite `reports/index.html` from the objects' outcomes."""
        self.s3.put_object(
            Bucket=bucket,
            Key=INDEX_KEY,
            Body=render_index(index_entries(summaries)).encode(),
            ContentType="text/html; charset=utf-8",
        )

    def write_master_data(
        self, bucket: str, tables: dict[str, pl.DataFrame], directory: Path
    ) -> dict[str, str]:
        """Write each master table as Parquet to its `master/` key (the catalog's tables over
        them let Athena join zone names and code descriptions); return table -> key."""
        written = {}
        for table, frame in sorted(tables.items()):
            path = directory / f"{table}.parquet"
            frame.write_parquet(path)
            key = master_data_key(table)
            self.s3.upload_file(
                str(path),
                bucket,
                key,
                ExtraArgs={"ContentType": "application/vnd.apache.parquet"},
            )
            written[table] = key
        return written

    def _remove(self, bucket: str, keys: tuple[str, ...]) -> None:
        for key in keys:
            try:
                self.s3.delete_object(Bucket=bucket, Key=key)
            except Exception as error:  # cleanup must not mask the write failure
                _log.warning(
                    "could not remove an output after a failed write",
                    extra={
                        "fields": {
                            "event": "output_cleanup_failed",
                            "key": key,
                            "error": type(error).__name__,
                        }
                    },
                )


def _unquote_etag(etag: str | None) -> str | None:
    return etag.strip('"') if etag else None

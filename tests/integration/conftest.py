"""Integration fixtures: moto's server (S3, SQS, Secrets Manager over HTTP) and a real PostgreSQL
(pgserver), each started once per session; every test gets its own bucket, queue, secrets and
database, so tests cannot see each other's data. The processor loads as its own database role
(with a password: pgserver cannot check IAM tokens) and migrates as the superuser."""

from __future__ import annotations

import contextlib
import json
import socket
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote_plus

import boto3
import psycopg
import pytest

from dataplatform.demo.embedded import EmbeddedPostgres
from dataplatform.demo.run import notify_queue_of_raw_uploads
from dataplatform.demo.samples import YELLOW_2020_07
from etl import handler as handler_module
from etl.contract import DB_AUTH_ENV, DB_PROCESSOR_SECRET_ARN_ENV, DB_SECRET_ARN_ENV, DbAuth
from etl.events import sqs_record
from etl.migrate import migrate_url
from tests.tlc import write_parquet, yellow_trip

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_secretsmanager import SecretsManagerClient
    from mypy_boto3_sqs import SQSClient

SAMPLE_CSV = YELLOW_2020_07


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.integration)


@dataclass
class Platform:
    """One test's world: a lake bucket notifying a queue, a database with schema `taxi`, and the
    secrets the processor reads, as the infrastructure would set them up."""

    name: str
    bucket: str
    queue_url: str
    secret_arn: str
    """The processor role's connection (`DB_PROCESSOR_SECRET_ARN`): what every load uses."""
    admin_secret_arn: str
    """The superuser's connection (`DB_SECRET_ARN`): what the migrate action uses."""
    database_url: str
    """The superuser's URL, for the test's own queries."""
    s3: S3Client
    sqs: SQSClient
    secrets: SecretsManagerClient

    def put_raw(self, name: str, body: bytes, dataset: str = "yellow") -> str:
        """Upload a raw file; return its key."""
        key = f"raw/{dataset}/{name}"
        self.s3.put_object(Bucket=self.bucket, Key=key, Body=body)
        return key

    def receive_event(self) -> dict[str, Any]:
        """The SQS messages waiting in the queue, as the Lambda event source mapping would
        deliver them."""
        records: list[dict[str, Any]] = []
        while True:
            response = self.sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10)
            batch = response.get("Messages", [])
            if not batch:
                break
            arn = f"arn:aws:sqs:us-east-1:123456789012:{self.name}"
            records.extend(sqs_record(message, arn) for message in batch)
        return {"Records": records}

    def keys(self, prefix: str = "") -> list[str]:
        """Keys under `prefix`, sorted."""
        response = self.s3.list_objects_v2(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for item in response.get("Contents", []))

    def read(self, key: str) -> bytes:
        """An object's bytes."""
        return self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def query(self, statement: str, params: Any = None) -> list[tuple[Any, ...]]:
        """Rows of a query against this test's database."""
        with psycopg.connect(self.database_url) as conn:
            return conn.execute(statement, params).fetchall()

    def scalar(self, statement: str, params: Any = None) -> Any:
        """The single value of a query."""
        return self.query(statement, params)[0][0]


def _platform(pg: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch) -> Platform:
    name = f"t{uuid.uuid4().hex[:12]}"
    database_url = pg.create_database(name)
    migrate_url(database_url)
    s3 = boto3.client("s3")
    sqs = boto3.client("sqs")
    secrets = boto3.client("secretsmanager")
    bucket = f"lake-{name}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    queue_url = sqs.create_queue(QueueName=name)["QueueUrl"]
    notify_queue_of_raw_uploads(s3, sqs, bucket, queue_url)
    pg.enable_processor_login()
    admin_arn = secrets.create_secret(
        Name=f"{name}-admin", SecretString=json.dumps(pg.secret(name))
    )
    processor_arn = secrets.create_secret(
        Name=name, SecretString=json.dumps(pg.processor_secret(name))
    )
    monkeypatch.setenv(DB_SECRET_ARN_ENV, admin_arn["ARN"])
    monkeypatch.setenv(DB_AUTH_ENV, DbAuth.PASSWORD.value)
    monkeypatch.setenv(DB_PROCESSOR_SECRET_ARN_ENV, processor_arn["ARN"])
    return Platform(
        name,
        bucket,
        queue_url,
        processor_arn["ARN"],
        admin_arn["ARN"],
        database_url,
        s3,
        sqs,
        secrets,
    )


@pytest.fixture
def platform(pg: EmbeddedPostgres, aws: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Platform]:
    """A fresh platform, and a fresh processor container (module state) for the test."""
    handler_module.reset_runtime()
    yield _platform(pg, monkeypatch)
    handler_module.reset_runtime()


def yellow_rows(count: int, start: datetime = datetime(2024, 1, 10, 8, 0)) -> list[dict[str, Any]]:
    """`count` distinct valid yellow trips (2024 schema), one minute apart from `start`."""
    return [
        yellow_trip(
            tpep_pickup_datetime=start + timedelta(minutes=index),
            tpep_dropoff_datetime=start + timedelta(minutes=index + 12),
            fare_amount=10.0 + (index % 50),
            total_amount=20.0 + (index % 50),
        )
        for index in range(count)
    ]


def parquet_bytes(rows: list[dict[str, Any]]) -> bytes:
    """Rows as a TLC-shaped Parquet file's bytes."""
    with tempfile.TemporaryDirectory() as scratch:
        return write_parquet(Path(scratch), "trips.parquet", rows).read_bytes()


def s3_event(
    bucket: str,
    key: str,
    *,
    version_id: str | None = None,
    sequencer: str | None = None,
    event_name: str = "ObjectCreated:Put",
) -> dict[str, Any]:
    """A plain S3 event (S3 invoking the function directly) for one object, key URL-encoded as S3
    encodes it."""
    obj: dict[str, Any] = {"key": quote_plus(key), "size": 1}
    if version_id is not None:
        obj["versionId"] = version_id
    if sequencer is not None:
        obj["sequencer"] = sequencer
    return {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": "us-east-1",
                "eventName": event_name,
                "s3": {"bucket": {"name": bucket}, "object": obj},
            }
        ]
    }


class TcpProxy:
    """Forwards 127.0.0.1:`port` to `target_port` while running: a database that can go away and
    come back at the same address."""

    def __init__(self, port: int, target_port: int) -> None:
        self.port = port
        self.target_port = target_port
        self._listener: socket.socket | None = None
        self._sockets: list[socket.socket] = []

    def start(self) -> None:
        """Listen and forward every connection."""
        listener = socket.create_server(("127.0.0.1", self.port))
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stop(self) -> None:
        """Stop listening and cut every forwarded connection."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        for sock in self._sockets:
            sock.close()
        self._sockets.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            self._sockets += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    finally:
        for sock in (source, sink):
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on (now)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port

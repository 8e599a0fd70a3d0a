"""AWS failures a user can fix, through the CLI against moto's server: one line each, non-zero."""

from __future__ import annotations

import uuid
from pathlib import Path

import boto3
import pytest
from typer.testing import CliRunner

from dataplatform.cli import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def fresh_session(aws: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No cached boto3 session or credentials, and no ~/.aws files, for each test."""
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "1")


def one_line_error(*args: str) -> str:
    result = runner.invoke(app, list(args))
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_missing_bucket() -> None:
    line = one_line_error("backfill", "--bucket", "nosuch-bucket")
    assert line.startswith("error: bucket nosuch-bucket does not exist")
    assert "--bucket" in line


def test_missing_queue(aws: str) -> None:
    bucket = f"b{uuid.uuid4().hex[:12]}"
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="raw/yellow/a.csv", Body=b"x")
    queue = f"{aws}/123456789012/nosuch-queue"
    line = one_line_error("backfill", "--bucket", bucket, "--queue-url", queue)
    assert line.startswith("error: the queue does not exist")
    assert "--queue-url" in line


def test_no_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name)
    line = one_line_error("backfill", "--bucket", "any")
    assert line.startswith("error: no AWS credentials found")
    assert "aws configure" in line


def test_no_region(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_DEFAULT_REGION", "AWS_REGION"):
        monkeypatch.delenv(name)
    line = one_line_error("backfill", "--bucket", "any")
    assert line.startswith("error: no AWS region set")
    assert "AWS_REGION" in line


def test_unreachable_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    line = one_line_error("backfill", "--bucket", "any")
    assert line.startswith("error: cannot reach http://127.0.0.1:1")
    assert "AWS_ENDPOINT_URL" in line


def test_demo_with_an_unreachable_s3_endpoint(tmp_path: Path) -> None:
    line = one_line_error(
        "demo", "--s3-endpoint", "http://127.0.0.1:1", "--rows", "100", "--out", str(tmp_path)
    )
    assert line.startswith("error: cannot reach http://127.0.0.1:1")

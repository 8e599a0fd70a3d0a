"""`dataplatform demo --keep` as a real process: it keeps serving after the summary (the printed
psql URL answers, the lake is listable) and stops everything on Ctrl-C, exiting 0."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import boto3
import psycopg
import pytest
from botocore.config import Config
from botocore.exceptions import EndpointConnectionError

from dataplatform.demo.embedded import DUMMY_AWS_ENVIRONMENT

pytestmark = pytest.mark.e2e

CLI = Path(sys.executable).with_name("dataplatform")
URL = re.compile(r"psql '(postgresql://[^']+)'")
S3 = re.compile(r"endpoint (http://\S+), bucket (\S+)")


def _read_until(process: subprocess.Popen[str], pattern: str, timeout: float) -> str:
    """Everything the process printed up to the line matching `pattern`. Lines are read by a
    thread (a blocking readline), so none sits unseen in the pipe's buffer."""
    assert process.stdout is not None
    lines: queue.Queue[str] = queue.Queue()
    stdout = process.stdout

    def pump() -> None:
        for line in stdout:
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=left)
        except queue.Empty:
            break
        seen.append(line)
        if re.search(pattern, line):
            return "".join(seen)
    raise AssertionError(f"no line matching {pattern!r} in: {''.join(seen)[-2000:]}")


def test_keep_serves_until_ctrl_c_then_stops_everything(tmp_path: Path) -> None:
    environment = {**os.environ, "COLUMNS": "200", "NO_COLOR": "1"}
    errors = tmp_path / "stderr.txt"
    process = subprocess.Popen(
        [str(CLI), "demo", "--keep", "--rows", "500", "--out", str(tmp_path / "out")],
        stdout=subprocess.PIPE,
        stderr=errors.open("w"),
        text=True,
        env=environment,
    )
    try:
        printed = _read_until(process, r"taxi\.loads", timeout=180)
        url_match, s3_match = URL.search(printed), S3.search(printed)
        assert url_match is not None, printed
        assert s3_match is not None, printed
        database_url = url_match[1]
        with psycopg.connect(database_url) as conn:
            trips = conn.execute("SELECT count(*) FROM taxi.trips").fetchone()
        assert trips is not None
        assert trips[0] > 0
        endpoint, bucket = s3_match[1], s3_match[2]
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            aws_access_key_id=DUMMY_AWS_ENVIRONMENT["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=DUMMY_AWS_ENVIRONMENT["AWS_SECRET_ACCESS_KEY"],
            region_name="us-east-1",
            config=Config(retries={"max_attempts": 1}),
        )
        listed = s3.list_objects_v2(Bucket=bucket, Prefix="master/")
        assert len(listed.get("Contents", [])) == 5  # the migration's master data

        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    stderr = errors.read_text()
    assert process.returncode == 0, stderr
    assert "Traceback" not in stderr, stderr
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(database_url, connect_timeout=3).close()
    with pytest.raises(EndpointConnectionError):
        s3.list_buckets()

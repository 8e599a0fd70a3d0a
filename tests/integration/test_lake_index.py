"""The lake's reports index: one page under reports/ linking every object's report (or why it was
quarantined) with its counts, rewritten after each committed outcome."""

from __future__ import annotations

import posixpath
import re

import pytest

from etl.handler import handler
from etl.lake import INDEX_KEY
from tests.integration.conftest import Platform, parquet_bytes, yellow_rows
from tests.integration.test_processor import log_lines


def links(page: str) -> dict[str, str]:
    """The index's links: text -> the key they resolve to from reports/."""
    return {
        text: posixpath.normpath(posixpath.join(posixpath.dirname(INDEX_KEY), href))
        for href, text in re.findall(r"<a href='([^']+)'>([^<]+)</a>", page)
    }


def test_the_index_links_every_report_and_quarantine_with_counts(
    platform: Platform, capsys: pytest.CaptureFixture[str]
) -> None:
    good = platform.put_raw("yellow_tripdata_2024-01.parquet", parquet_bytes(yellow_rows(12)))
    bad = platform.put_raw("yellow_tripdata_2024-02.parquet", b"PAR1 truncated")
    assert handler(platform.receive_event(), None) == {"batchItemFailures": []}

    page = platform.read(INDEX_KEY).decode()
    found = links(page)
    assert set(found) == {good, bad}
    assert found[good] in platform.keys("reports/")
    assert found[good].endswith(".html")
    assert found[bad] == f"quarantine/{bad}.error.json"
    assert found[bad] in platform.keys("quarantine/")
    assert ">12<" in page  # the good file's rows in
    timings = [
        line["timings_ms"]["index"]
        for line in log_lines(capsys.readouterr().out)
        if line.get("event") == "object_processed"
    ]
    assert len(timings) == 2


def test_a_repeat_leaves_the_index_as_it_was(platform: Platform) -> None:
    platform.put_raw("yellow_tripdata_2024-01.parquet", parquet_bytes(yellow_rows(5)))
    event = platform.receive_event()
    assert handler(event, None) == {"batchItemFailures": []}
    versions = platform.s3.list_object_versions(Bucket=platform.bucket, Prefix=INDEX_KEY)
    assert handler(event, None) == {"batchItemFailures": []}
    again = platform.s3.list_object_versions(Bucket=platform.bucket, Prefix=INDEX_KEY)
    assert len(again["Versions"]) == len(versions["Versions"]) == 1

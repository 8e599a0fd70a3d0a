"""The HTML quality report: self-contained, charts of reasons and trips per day, escaped."""

from __future__ import annotations

import re
from datetime import datetime
from pathlib import Path

from dataplatform.local_sink import write_outputs
from etl.core.pipeline import process_file
from etl.core.report_html import render_html
from tests.tlc import write_parquet, yellow_trip


def report_for(tmp_path: Path, name: str = "yellow_tripdata_2024-01.parquet") -> dict[str, object]:
    rows = [
        yellow_trip(),
        yellow_trip(
            tpep_pickup_datetime=datetime(2024, 1, 16, 9, 0),
            tpep_dropoff_datetime=datetime(2024, 1, 16, 9, 10),
        ),
        yellow_trip(VendorID=3),
        yellow_trip(fare_amount=None),
        yellow_trip(fare_amount=None, tip_amount=2.0),
    ]
    return process_file(write_parquet(tmp_path, name, rows)).report


def test_report_counts_clean_trips_per_day(tmp_path: Path) -> None:
    # trips_per_day counts clean rows by pickup date.
    assert report_for(tmp_path)["trips_per_day"] == {"2024-01-15": 1, "2024-01-16": 1}


def test_page_is_self_contained(tmp_path: Path) -> None:
    # No scripts and no external resources: the page opens anywhere, from S3 or a laptop.
    page = render_html(report_for(tmp_path))
    assert "<script" not in page
    assert not re.search(r"(src|href)\s*=\s*['\"]?https?:", page)


def test_page_charts_reasons_and_days(tmp_path: Path) -> None:
    # One bar per reject reason (with its count) and one column per day with clean trips.
    page = render_html(report_for(tmp_path))
    assert page.count("<title>missing_fare: 2</title>") == 1
    assert page.count("<title>invalid_vendor: 1</title>") == 1
    assert page.count("<title>2024-01-15: 1</title>") == 1
    assert page.count("<title>2024-01-16: 1</title>") == 1


def test_page_escapes_what_it_shows(tmp_path: Path) -> None:
    # A hostile file name cannot inject markup into the page.
    report = report_for(tmp_path, "yellow_tripdata_2024-01<script>x.parquet")
    page = render_html(report)
    assert "<script>x" not in page
    assert "&lt;script&gt;x" in page


def test_write_outputs_writes_the_page(tmp_path: Path) -> None:
    # The local outputs include report.html beside report.json.
    result = process_file(
        write_parquet(tmp_path, "yellow_tripdata_2024-01.parquet", [yellow_trip()])
    )
    paths = write_outputs(result, tmp_path / "out")
    assert paths.report_html.read_text().startswith("<!doctype html>")

"""The report answers "why": the pickup range against the month window, a y-axis on trips per
day, each reject reason's share and meaning, sample rejected rows, provenance and thresholds,
absent columns shown as absent; and an index per output directory."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from dataplatform.batch import process_inputs
from dataplatform.demo.samples import YELLOW_2020_07
from etl.core.pipeline import ProcessResult, process_file
from etl.core.report_html import _nice_ceiling, render_html
from tests.repo import ROOT
from tests.tlc import write_csv, write_parquet, yellow_trip

VERSION = re.search(r'^version = "(.+)"', (ROOT / "pyproject.toml").read_text(), re.M)


@pytest.fixture(scope="module")
def sample() -> ProcessResult:
    return process_file(YELLOW_2020_07)


@pytest.fixture(scope="module")
def page(sample: ProcessResult) -> str:
    return render_html(sample.report)


def text_of(page: str) -> str:
    return " ".join(re.sub(r"<[^>]+>", " ", page).split())


def test_pickup_range_and_month_window(page: str) -> None:
    # The real "July 2020" sample starts on June 30th: the page says so next to the window.
    text = text_of(page)
    assert "all rows 2020-06-30 18:11 → 2020-07-01 01:57" in text
    assert "month window 2020-07-01 00:00 → 2020-08-01 00:00 (± 24 h grace)" in text


def test_trips_per_day_has_a_labelled_y_axis(page: str, sample: ProcessResult) -> None:
    chart = page.split("Clean trips per day")[1].split("Schema notes")[0]
    peak = max(sample.report["trips_per_day"].values())
    top = _nice_ceiling(peak)
    assert f">{top:,.0f}</text>" in chart
    assert ">0</text>" in chart
    assert "trips per day</text>" in chart
    assert chart.count("<line") == 5  # gridlines at 0, 25, 50, 75 and 100 %


@pytest.mark.parametrize(
    ("value", "ceiling"), [(3, 5), (10, 10), (262, 500), (101, 200), (2400, 2500)]
)
def test_axis_tops_are_round(value: int, ceiling: float) -> None:
    assert _nice_ceiling(value) == ceiling


def test_each_reason_has_its_share_and_meaning(page: str, sample: ProcessResult) -> None:
    text = text_of(page)
    reasons = sample.report["reasons"]
    assert reasons == {"duration_too_long": 3, "implausible_speed": 1}
    assert "duration_too_long 3 1.1% 75.0% trip longer than max_trip_duration_minutes" in text
    assert "implausible_speed 1 0.4% 25.0% average speed above max_speed_mph" in text


def test_sample_rejected_rows_are_shown(page: str, sample: ProcessResult) -> None:
    samples = sample.report["reject_samples"]
    assert [row["reject_reason"] for row in samples].count("duration_too_long") == 3
    assert {row["source_row"] for row in samples} <= set(
        map(str, sample.rejects.get_column("source_row").to_list())
    )
    section = text_of(page.split("Sample rejected rows")[1].split("Clean trips per day")[0])
    assert all(f"{row['source_row']} {row['reject_reason']}" in section for row in samples)


def test_provenance_and_thresholds(page: str) -> None:
    assert VERSION is not None
    text = text_of(page)
    assert re.search(
        rf"Generated \d{{4}}-\d\d-\d\dT[\d:]+\+00:00 from {YELLOW_2020_07.name} by "
        rf"dataplatform {re.escape(VERSION.group(1))}",
        text,
    )
    assert "max_trip_duration_minutes 720.0" in text
    assert "coordinate_bounds.min_longitude -74.3" in text


def test_absent_columns_are_absent_not_all_null(page: str) -> None:
    # The 2020 CSV has no airport_fee column: not "100.00 %" null, but absent.
    nulls = text_of(page.split("Null rate per column")[1].split("Rule thresholds")[0])
    assert "airport_fee absent from the file" in nulls
    assert "100.00%" not in nulls


def test_index_links_every_report_with_counts(tmp_path: Path) -> None:
    good = write_parquet(tmp_path, "yellow_tripdata_2024-01.parquet", [yellow_trip()] * 2)
    bad = write_csv(tmp_path, "yellow_tripdata_2024-02.csv", ["a", "1"])
    process_inputs([YELLOW_2020_07, good, bad], tmp_path / "out")
    index = (tmp_path / "out" / "index.html").read_text()
    text = text_of(index)
    assert "2 file(s) processed, 1 quarantined; 268 rows in, 5 rejected" in text
    assert f"{YELLOW_2020_07.name} yellow 2020-07 266 262 4 1.5%" in text
    assert "yellow_tripdata_2024-01.parquet yellow 2024-01 2 1 1 50.0%" in text
    assert "href='quarantine/yellow_tripdata_2024-02.csv.error.json'" in index
    stems = sorted(p.stem for p in (tmp_path / "out" / "reports").glob("*.json"))
    for stem in stems:
        assert f"href='reports/{stem}.html'" in index
        assert json.loads((tmp_path / "out" / "reports" / f"{stem}.json").read_text())

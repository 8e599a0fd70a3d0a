"""The demo's summary explains why a July file adds rows to June (the month window's grace)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from dataplatform.demo.run import DemoResult
from dataplatform.demo.view import print_summary


def test_rows_per_month_say_they_are_by_pickup_month(tmp_path: Path) -> None:
    result = DemoResult(
        bucket="b",
        objects=[],
        trips_per_month=[("yellow", "2020-06", 4), ("yellow", "2020-07", 258)],
        processing_seconds=1.0,
        invocations=1,
        log_path=tmp_path / "processor.log",
    )
    console = Console(record=True, width=200)
    print_summary(result, console)
    text = " ".join(console.export_text().split())
    assert "yellow │ 2020-06 │ 4" in text
    assert "By pickup month. A file keeps trips picked up within month_grace_hours (24 h)" in text
    assert "a July file can add rows to June" in text

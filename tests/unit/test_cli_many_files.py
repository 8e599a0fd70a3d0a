"""`dataplatform process` on several files, a directory or a glob: per-file outputs under one
--out, nothing overwritten, a summary, exit 3 if any file was quarantined; the month warning,
where the quarantined copy went, and rule thresholds from --config."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from dataplatform.batch import load_settings
from dataplatform.cli import app
from etl.core.errors import UsageError
from etl.core.settings import CoordinateBounds, EtlSettings
from tests.repo import ROOT
from tests.tlc import write_csv, write_parquet, yellow_trip

runner = CliRunner()


def run(*args: str | Path) -> tuple[int, str, str]:
    result = runner.invoke(app, [str(arg) for arg in args], env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


def two_months(directory: Path) -> list[Path]:
    directory.mkdir(exist_ok=True)
    return [
        write_parquet(directory, "yellow_tripdata_2024-01.parquet", [yellow_trip()]),
        write_parquet(
            directory,
            "yellow_tripdata_2024-02.parquet",
            [
                yellow_trip(
                    tpep_pickup_datetime=yellow_trip()["tpep_pickup_datetime"].replace(month=2),
                    tpep_dropoff_datetime=yellow_trip()["tpep_dropoff_datetime"].replace(month=2),
                ),
                yellow_trip(VendorID=9),
            ],
        ),
    ]


def test_several_files_get_their_own_reports_and_an_index(tmp_path: Path) -> None:
    first, second = two_months(tmp_path / "in")
    out = tmp_path / "out"
    code, stdout, _ = run("process", first, second, "--out", out)
    assert code == 0
    for stem in ("yellow_tripdata_2024-01", "yellow_tripdata_2024-02"):
        assert json.loads((out / "reports" / f"{stem}.json").read_text())["source"].startswith(stem)
        assert (out / "reports" / f"{stem}.html").is_file()
        assert (out / "clean" / f"{stem}.parquet").is_file()
    index = (out / "index.html").read_text()
    assert "href='reports/yellow_tripdata_2024-01.html'" in index
    assert "href='reports/yellow_tripdata_2024-02.html'" in index
    assert "2 files" in stdout  # the summary table's title
    assert "processed" in stdout


def test_a_second_run_into_the_same_out_keeps_the_first_report(tmp_path: Path) -> None:
    first, second = two_months(tmp_path / "in")
    out = tmp_path / "out"
    assert run("process", first, "--out", out)[0] == 0
    before = (out / "reports" / "yellow_tripdata_2024-01.json").read_text()
    assert run("process", second, "--out", out)[0] == 0
    assert (out / "reports" / "yellow_tripdata_2024-01.json").read_text() == before
    assert "yellow_tripdata_2024-01.html" in (out / "index.html").read_text()


def test_a_directory_and_a_glob_are_expanded(tmp_path: Path) -> None:
    two_months(tmp_path / "in")
    (tmp_path / "in" / "notes.txt").write_text("not a trip file")
    code, stdout, _ = run("process", tmp_path / "in", "--out", tmp_path / "a", "--json")
    assert code == 0
    names = [Path(f["source"]).name for f in json.loads(stdout)["files"]]
    assert names == ["yellow_tripdata_2024-01.parquet", "yellow_tripdata_2024-02.parquet"]
    code, stdout, _ = run("process", f"{tmp_path}/in/*-02.parquet", "--out", tmp_path / "b")
    assert code == 0
    assert stdout.startswith("yellow 2024-02: 2 rows in, 1 clean, 1 rejected")


def test_a_quarantined_file_does_not_stop_the_others_and_sets_exit_3(tmp_path: Path) -> None:
    good, _ = two_months(tmp_path / "in")
    bad = write_csv(tmp_path / "in", "yellow_tripdata_2024-03.csv", ["a,b", "1,2"])
    out = tmp_path / "out"
    code, stdout, stderr = run("process", bad, good, "--out", out, "--json")
    document = json.loads(stdout)
    assert code == 3
    assert document["quarantined"] == 1
    assert [f["status"] for f in document["files"]] == ["quarantined", "processed"]
    copy = out / "quarantine" / bad.name
    # The message says where the copy and its reason went.
    assert stderr.splitlines()[0] == (
        f"error: {bad.name}: missing required column tpep_pickup_datetime; copied to {copy} "
        f"(why: {copy}.error.json)"
    )
    assert "missing required column tpep_pickup_datetime" in (out / "index.html").read_text()


def test_two_inputs_with_one_stem_are_refused(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    first = write_parquet(tmp_path / "a", "yellow_tripdata_2024-01.parquet", [yellow_trip()])
    second = tmp_path / "b" / first.name
    shutil.copyfile(first, second)
    code, _, stderr = run("process", first, second, "--out", tmp_path / "out")
    assert code == 2
    assert "would write the same outputs" in stderr
    assert not (tmp_path / "out").exists()


def test_a_missing_input_is_one_line(tmp_path: Path) -> None:
    code, _, stderr = run("process", tmp_path / "nope.csv", "--out", tmp_path / "out")
    assert (code, stderr) == (2, f"error: no such file or directory: {tmp_path / 'nope.csv'}\n")


def test_a_month_that_puts_most_rows_outside_is_a_warning(tmp_path: Path) -> None:
    source = write_parquet(tmp_path, "trips.parquet", [yellow_trip()] * 3)
    code, _, stderr = run(
        "process", source, "--out", tmp_path / "out", "--dataset", "yellow", "--month", "2024-08"
    )
    assert code == 0
    assert stderr.startswith("warning: 3 of 3 rows of trips.parquet pick up outside 2024-08")
    assert "is the month right?" in stderr


def test_the_right_month_gives_no_warning(tmp_path: Path) -> None:
    source = write_parquet(tmp_path, "yellow_tripdata_2024-01.parquet", [yellow_trip()])
    assert run("process", source, "--out", tmp_path / "out")[2] == ""


def test_config_file_sets_thresholds(tmp_path: Path) -> None:
    # A 1-mile limit rejects the standard trip (a few miles) as distance_out_of_bounds.
    source = write_parquet(tmp_path, "yellow_tripdata_2024-01.parquet", [yellow_trip()])
    config = tmp_path / "rules.toml"
    config.write_text("max_distance_miles = 1\n")
    code, _, _ = run("process", source, "--out", tmp_path / "out", "--config", config)
    report = json.loads((tmp_path / "out" / "reports" / "yellow_tripdata_2024-01.json").read_text())
    assert code == 0
    assert report["settings"]["max_distance_miles"] == 1.0
    assert report["reasons"] == {"distance_out_of_bounds": 1}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("max_speed = 3\n", "rules.toml: unknown setting 'max_speed'"),
        ("max_speed_mph = 'fast'\n", "rules.toml: max_speed_mph must be a number, not 'fast'"),
        ("max_speed_mph = 0\n", "rules.toml: max_speed_mph=0.0 is out of range"),
        ("refund_payment_types = [3.5]\n", "refund_payment_types must be a list of integers"),
        ("[coordinate_bounds]\nwest = 1\n", "unknown setting coordinate_bounds.west"),
        ("max_speed_mph = \n", "rules.toml is not valid TOML"),
    ],
)
def test_bad_config_is_one_line_before_any_work(tmp_path: Path, text: str, message: str) -> None:
    source = write_parquet(tmp_path, "yellow_tripdata_2024-01.parquet", [yellow_trip()])
    config = tmp_path / "rules.toml"
    config.write_text(text)
    code, _, stderr = run("process", source, "--out", tmp_path / "out", "--config", config)
    assert code == 2
    assert stderr.count("\n") == 1
    assert message in stderr
    assert not (tmp_path / "out").exists()


def test_the_documented_defaults_are_the_defaults() -> None:
    # docs/etl-settings.toml is the one place the defaults are written down for users.
    assert load_settings(ROOT / "docs" / "etl-settings.toml") == EtlSettings()


def test_partial_bounds_keep_the_other_defaults(tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("[coordinate_bounds]\nmin_latitude = 40.5\n")
    assert load_settings(config).coordinate_bounds == CoordinateBounds(min_latitude=40.5)
    with pytest.raises(UsageError):
        load_settings(tmp_path / "missing.toml")

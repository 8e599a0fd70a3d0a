"""The `dataplatform process` contract: outputs on success, quarantine and exit 3 otherwise."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import polars as pl
import pytest
from typer.testing import CliRunner

from dataplatform.cli import app
from dataplatform.demo.samples import YELLOW_2020_07
from tests.tlc import write_csv, write_parquet, yellow_trip

runner = CliRunner()


def run(*args: str | Path) -> tuple[int, str, str]:
    result = runner.invoke(app, [str(arg) for arg in args])
    return result.exit_code, result.stdout, result.stderr


def test_success_writes_clean_rejects_and_report(tmp_path: Path, sample_csv: Path) -> None:
    # Contract: exit 0, DIR/clean/*.parquet, DIR/rejects/*.parquet, DIR/reports/<stem>.json.
    out = tmp_path / "out"
    code, stdout, _ = run("process", sample_csv, "--out", out)
    assert code == 0, stdout
    report = json.loads((out / "reports" / f"{sample_csv.name.split('.')[0]}.json").read_text())
    clean = pl.read_parquet(next((out / "clean").glob("*.parquet")))
    rejects = pl.read_parquet(next((out / "rejects").glob("*.parquet")))
    assert report["rows_in"] == 266
    assert report["rows_clean"] == clean.height
    assert report["rows_rejected"] == rejects.height
    assert report["rows_in"] == report["rows_clean"] + report["rows_rejected"]
    assert sum(report["reasons"].values()) == rejects.height
    assert {"timings_ms", "null_rate", "pickup_range", "schema"} <= report.keys()


def test_rejects_keep_input_columns_and_reason(tmp_path: Path) -> None:
    # A reject keeps every input column as read (names and types) plus reject_reason.
    source = write_parquet(tmp_path, "yellow_tripdata_2024-01.parquet", [yellow_trip(VendorID=9)])
    out = tmp_path / "out"
    assert run("process", source, "--out", out)[0] == 0
    rejects = pl.read_parquet(out / "rejects" / "yellow_tripdata_2024-01.parquet")
    original = pl.read_parquet(source)
    assert rejects.select(original.columns).equals(original)
    assert rejects.get_column("reject_reason").to_list() == ["invalid_vendor"]


def test_options_override_the_file_name(tmp_path: Path) -> None:
    # --dataset and --month serve files whose names say nothing.
    source = write_parquet(tmp_path, "trips.parquet", [yellow_trip()])
    out = tmp_path / "out"
    code, stdout, _ = run(
        "process", source, "--out", out, "--dataset", "yellow", "--month", "2024-01"
    )
    assert code == 0
    assert "1 clean" in stdout


def test_bad_month_option_is_a_usage_error(tmp_path: Path) -> None:
    # A malformed --month stops before reading anything, with exit 2 and no quarantine.
    source = write_parquet(tmp_path, "trips.parquet", [yellow_trip()])
    code, _, stderr = run("process", source, "--out", tmp_path / "out", "--month", "2024-13")
    assert code == 2
    assert "YYYY-MM" in stderr
    assert not (tmp_path / "out").exists()


def truncated_parquet(directory: Path) -> Path:
    path = write_parquet(directory, "full.parquet", [yellow_trip()] * 50)
    data = path.read_bytes()
    target = directory / "yellow_tripdata_2024-01.parquet"
    target.write_bytes(data[: len(data) // 2])
    return target


def gzip_of_half_a_csv(directory: Path) -> Path:
    text = YELLOW_2020_07.read_bytes()
    data = gzip.compress(text)
    target = directory / "yellow_tripdata_2020-07.csv.gz"
    target.write_bytes(data[: len(data) // 2])
    return target


QUARANTINE_CASES: dict[str, tuple[Callable[[Path], Path], str]] = {
    "empty file": (lambda d: _write(d / "yellow_tripdata_2024-01.parquet", b""), "empty"),
    "truncated parquet": (truncated_parquet, "truncated"),
    "truncated gzip": (gzip_of_half_a_csv, "truncated"),
    "not a table": (
        lambda d: _write(d / "yellow_tripdata_2024-01.csv", bytes(range(256)) * 4),
        "not a text table",
    ),
    "required column missing": (
        lambda d: write_csv(
            d,
            "yellow_tripdata_2024-01.csv",
            ["VendorID,tpep_dropoff_datetime", "1,2024-01-01 00:00:00"],
        ),
        "tpep_pickup_datetime",
    ),
    "location columns missing": (
        lambda d: write_parquet(
            d,
            "yellow_tripdata_2024-01.parquet",
            [{k: v for k, v in yellow_trip().items() if k != "DOLocationID"}],
        ),
        "DOLocationID",
    ),
    "unknown dataset": (
        lambda d: write_parquet(d, "fhv_tripdata_2024-01.parquet", [yellow_trip()]),
        "unknown dataset 'fhv'",
    ),
    "name says nothing": (
        lambda d: write_parquet(d, "trips.parquet", [yellow_trip()]),
        "cannot tell the dataset",
    ),
    "duplicate header": (
        lambda d: write_csv(d, "yellow_tripdata_2024-01.csv", ["VendorID,VendorID", "1,1"]),
        "repeats column 'VendorID'",
    ),
}


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


@pytest.mark.parametrize("case", list(QUARANTINE_CASES))
def test_unprocessable_input_is_quarantined(tmp_path: Path, case: str) -> None:
    # Contract: exit 3, one stderr line, no traceback, an exact copy, .error.json with the cause.
    make, cause = QUARANTINE_CASES[case]
    source_dir = tmp_path / "in"
    source_dir.mkdir()
    source = make(source_dir)
    out = tmp_path / "out"
    code, _, stderr = run("process", source, "--out", out)
    assert code == 3
    assert len(stderr.strip().splitlines()) == 1
    assert "Traceback" not in stderr
    copy = out / "quarantine" / source.name
    assert copy.read_bytes() == source.read_bytes()
    error = json.loads((out / "quarantine" / f"{source.name}.error.json").read_text())
    assert cause in error["reason"]
    assert cause in stderr
    assert not (out / "clean").exists()


def test_missing_column_error_names_the_column(tmp_path: Path) -> None:
    # The quarantine reason for a missing column is the column's own name as TLC spells it.
    trip = yellow_trip()
    del trip["tpep_dropoff_datetime"]
    source = write_parquet(tmp_path, "yellow_tripdata_2024-01.parquet", [trip])
    code, _, _ = run("process", source, "--out", tmp_path / "out")
    error = json.loads(
        (tmp_path / "out" / "quarantine" / "yellow_tripdata_2024-01.parquet.error.json").read_text()
    )
    assert code == 3
    assert error["code"] == "missing_column"
    assert error["reason"] == "missing required column tpep_dropoff_datetime"


def test_header_only_csv_is_an_empty_result_not_an_error(tmp_path: Path) -> None:
    # A table with no rows is valid input: zero rows in, zero out.
    header = ",".join(yellow_trip())
    source = write_csv(tmp_path, "yellow_tripdata_2024-01.csv", [header])
    code, _, _ = run("process", source, "--out", tmp_path / "out")
    report = json.loads((tmp_path / "out" / "reports" / "yellow_tripdata_2024-01.json").read_text())
    assert code == 0
    assert (report["rows_in"], report["rows_clean"], report["rows_rejected"]) == (0, 0, 0)


def test_gzipped_csv_is_processed(tmp_path: Path, sample_csv: Path) -> None:
    # .csv.gz is read like its CSV.
    source = tmp_path / "yellow_tripdata_2020-07.csv.gz"
    source.write_bytes(gzip.compress(sample_csv.read_bytes()))
    code, _, _ = run("process", source, "--out", tmp_path / "out")
    report = json.loads((tmp_path / "out" / "reports" / "yellow_tripdata_2020-07.json").read_text())
    assert code == 0
    assert report["format"] == "csv.gz"
    assert report["rows_in"] == 266


COMMANDS = ["process", "synth", "bundle", "migrate", "rotate-db-password", "demo", "backfill"]


def test_every_command_is_listed() -> None:
    # The root help lists every command with its summary.
    result = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert all(command in result.stdout for command in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_explains_itself(command: str) -> None:
    # Every command has --help with a summary and a description beyond its options.
    result = runner.invoke(app, [command, "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    usage = result.stdout.partition("Options")[0]
    assert f"Usage: dataplatform {command}" in usage
    assert len(usage.split(f"Usage: dataplatform {command}")[1].split()) > 15, usage


def test_process_help_names_quarantine_and_options() -> None:
    # The contract's parts a newcomer needs are in process --help.
    result = runner.invoke(app, ["process", "--help"], env={"COLUMNS": "200"})
    assert "quarantine" in result.stdout
    assert "--dataset" in result.stdout


def test_the_console_script_flushes_its_output_and_keeps_the_exit_status(tmp_path: Path) -> None:
    # `process` ends with a fast exit (no interpreter teardown): what it printed must still
    # reach a pipe, and the status must still be 0 for success and 3 for a quarantined file.
    script = Path(sys.executable).parent / "dataplatform"
    good = write_parquet(tmp_path, "yellow_tripdata_2024-01.parquet", [yellow_trip()])
    bad = tmp_path / "yellow_tripdata_2024-02.parquet"
    bad.write_bytes(b"PAR1 truncated")
    done = subprocess.run(
        [script, "process", good, "--out", tmp_path / "good"], capture_output=True, text=True
    )
    failed = subprocess.run(
        [script, "process", bad, "--out", tmp_path / "bad"], capture_output=True, text=True
    )
    report = tmp_path / "good" / "reports" / "yellow_tripdata_2024-01.html"
    assert (done.returncode, done.stdout.strip()) == (
        0,
        f"yellow 2024-01: 1 rows in, 1 clean, 0 rejected -> {report}",
    )
    assert report.is_file()
    assert failed.returncode == 3
    assert failed.stderr.startswith(f"error: {bad.name}: not a readable Parquet file")
    assert failed.stderr.count("\n") == 1


def test_out_under_a_regular_file_is_one_line_not_a_traceback(tmp_path: Path) -> None:
    # Issue 14, case 6: --out under a regular file raised NotADirectoryError with a traceback.
    # It is one line naming the path and the fix, and the file is left alone.
    blocker = tmp_path / "blocker"
    blocker.write_text("a file")
    code, stdout, stderr = run("process", YELLOW_2020_07, "--out", blocker / "out")
    assert code == 1
    assert "Traceback" not in stdout + stderr
    assert stderr.strip() == (
        f"error: cannot create or use {blocker / 'out'} (Not a directory): choose an output "
        "directory you can create and write to (--out)"
    )
    assert blocker.read_text() == "a file"


def test_an_internal_error_quarantines_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # No traceback even for a bug: the file is quarantined as internal_error, exit 3.
    def broken(*_: object) -> None:
        raise KeyError("unforeseen")

    monkeypatch.setattr("etl.core.transform.derive", broken)
    out = tmp_path / "out"
    code, _, stderr = run("process", YELLOW_2020_07, "--out", out)
    assert code == 3
    assert len(stderr.strip().splitlines()) == 1
    assert "internal error while processing the file (KeyError: 'unforeseen')" in stderr
    error = json.loads((out / "quarantine" / f"{YELLOW_2020_07.name}.error.json").read_text())
    assert error["code"] == "internal_error"


def _issue_14_inputs(directory: Path) -> dict[str, tuple[Path, int]]:
    """The issue's crashing inputs, each as a file, with the exit status `process` gives it."""
    sample = YELLOW_2020_07.read_bytes()
    lines = YELLOW_2020_07.read_text().splitlines()
    bare_cr = [lines[0], lines[1].replace(",N,", ',"N\r",'), *lines[2:]]
    frame = pl.DataFrame([yellow_trip(), yellow_trip(VendorID=9)])
    fare_text = pl.col("fare_amount").cast(pl.String)
    cases: dict[str, tuple[bytes | pl.DataFrame, int]] = {
        "cr": (sample.replace(b"\n", b"\r"), 0),
        "bare-cr": ("\n".join(bare_cr).encode(), 0),
        "own-names": (frame.with_columns(source_row=pl.lit(1), raw_line=pl.lit("x")), 0),
        "categorical": (frame.with_columns(fare_text.cast(pl.Categorical)), 0),
        "binary": (frame.with_columns(fare_text.cast(pl.Binary)), 0),
        "struct": (frame.with_columns(fare_amount=pl.struct("fare_amount")), 3),
    }
    directory.mkdir(parents=True)
    files = {}
    for case, (content, code) in cases.items():
        if isinstance(content, bytes):
            path = directory / f"yellow_tripdata_2020-07_{case}.csv"
            path.write_bytes(content)
        else:
            path = directory / f"yellow_tripdata_2024-01_{case}.parquet"
            content.write_parquet(path)
        files[case] = (path, code)
    return files


def test_the_issues_inputs_exit_0_or_3_in_one_line_each(tmp_path: Path) -> None:
    # Issue 14, cases 1-5 through the command: processed (0) or quarantined (3), never a
    # traceback; the struct one is the only quarantine.
    for case, (path, expected) in _issue_14_inputs(tmp_path / "in").items():
        code, stdout, stderr = run("process", path, "--out", tmp_path / "out" / case)
        assert code == expected, (case, stdout, stderr)
        assert "Traceback" not in stdout + stderr, case
        assert len(stderr.strip().splitlines()) == (1 if expected == 3 else 0), (case, stderr)


def test_the_issues_inputs_through_the_console_script(tmp_path: Path) -> None:
    # The same, once as a real process: all six in one run, one line for the quarantined file.
    script = Path(sys.executable).parent / "dataplatform"
    files = _issue_14_inputs(tmp_path / "in")
    done = subprocess.run(
        [script, "process", *(path for path, _ in files.values()), "--out", tmp_path / "out"],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 3
    assert "Traceback" not in done.stdout + done.stderr
    assert done.stderr.count("\n") == 1
    assert "unsupported_type" in done.stderr or "is stored as" in done.stderr

"""The Lambda bundle size gate (.ci/bundle_size_gate.py) on small generated zips."""

from __future__ import annotations

import zipfile
from pathlib import Path

import bundle_size_gate as gate
import pytest


def make_zip(path: Path, entries: dict[str, int]) -> Path:
    """A zip whose entries hold the given number of (highly compressible) bytes."""
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, size in entries.items():
            archive.writestr(name, b"\0" * size)
    return path


def test_measure_reads_unzipped_sizes_and_groups_by_top_level(tmp_path: Path) -> None:
    bundle = make_zip(
        tmp_path / "b.zip", {"polars/a.so": 3000, "polars/b.py": 1000, "etl/x.py": 500}
    )
    size = gate.measure(bundle)
    assert size.unzipped_bytes == 4500
    assert size.files == 3
    assert size.largest == [("polars", 4000), ("etl", 500)]
    assert size.zipped_bytes == bundle.stat().st_size < 4500


def test_a_bundle_over_the_unzipped_budget_fails() -> None:
    size = gate.BundleSize(zipped_bytes=10, unzipped_bytes=3 * gate.MB, files=1, largest=[])
    assert gate.problems(size, max_unzipped_mb=3, max_zipped_mb=None) == []
    [problem] = gate.problems(size, max_unzipped_mb=2.5, max_zipped_mb=None)
    assert "unzipped 3.0 MB exceeds the budget of 2.5 MB" in problem


def test_a_zipped_budget_is_checked_only_when_given() -> None:
    size = gate.BundleSize(zipped_bytes=2 * gate.MB, unzipped_bytes=1, files=1, largest=[])
    assert gate.problems(size, max_unzipped_mb=250, max_zipped_mb=None) == []
    assert gate.problems(size, max_unzipped_mb=250, max_zipped_mb=1) != []


def test_an_empty_bundle_fails(tmp_path: Path) -> None:
    size = gate.measure(make_zip(tmp_path / "empty.zip", {}))
    assert gate.problems(size, max_unzipped_mb=250, max_zipped_mb=None) == [
        "the bundle holds no file"
    ]


def test_the_default_budget_is_lambdas_quota() -> None:
    assert gate.LAMBDA_UNZIPPED_LIMIT_MB == 250


def test_main_passes_a_small_bundle_and_writes_the_job_summary(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    summary = tmp_path / "summary.md"
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    bundle = make_zip(tmp_path / "processor.zip", {"handler.py": 100})
    assert gate.main([str(bundle)]) == 0
    assert "Bundle size gate passed" in summary.read_text(encoding="utf-8")


def test_main_fails_a_bundle_over_budget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    bundle = make_zip(tmp_path / "processor.zip", {"big.bin": 2 * gate.MB})
    assert gate.main([str(bundle), "--max-unzipped-mb", "1"]) == 1


@pytest.mark.parametrize("content", [None, b"not a zip"])
def test_main_refuses_a_missing_or_broken_bundle(tmp_path: Path, content: bytes | None) -> None:
    bundle = tmp_path / "processor.zip"
    if content is not None:
        bundle.write_bytes(content)
    assert gate.main([str(bundle)]) == 2

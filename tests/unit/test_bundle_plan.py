"""The bundle's plan and zip writer: determinism and cache keys, without installing anything."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from dataplatform.bundle import BundleTarget, package_sources, plan_bundle, prune, write_zip
from etl.contract import Architecture
from etl.core.errors import UsageError
from tests.repo import tracked_files

ROOT = Path(__file__).parents[2]
REQUIREMENTS = ("polars==2.1.0", "psycopg==3.3.9")


def test_zip_is_byte_identical_whatever_the_file_times(tmp_path: Path) -> None:
    # Same contents give the same bytes: timestamps and creation order do not leak in.
    for index, name in enumerate(("b.py", "a.py")):
        path = tmp_path / "src" / name
        path.parent.mkdir(exist_ok=True)
        path.write_text(f"value = {index}\n")
    files = [(p.name, p) for p in (tmp_path / "src").iterdir()]
    write_zip(files, tmp_path / "one.zip")
    (tmp_path / "src" / "a.py").touch()
    write_zip(list(reversed(files)), tmp_path / "two.zip")
    assert (tmp_path / "one.zip").read_bytes() == (tmp_path / "two.zip").read_bytes()
    with zipfile.ZipFile(tmp_path / "one.zip") as archive:
        assert [i.filename for i in archive.infolist()] == ["a.py", "b.py"]
        assert {i.date_time for i in archive.infolist()} == {(1980, 1, 1, 0, 0, 0)}


def test_key_changes_with_the_target_and_the_requirements() -> None:
    # The cache key covers the target and the lock: either change means a rebuild.
    base = plan_bundle(ROOT, BundleTarget(), REQUIREMENTS).key
    assert plan_bundle(ROOT, BundleTarget(), REQUIREMENTS).key == base
    assert plan_bundle(ROOT, BundleTarget(arch=Architecture.X86_64), REQUIREMENTS).key != base
    assert plan_bundle(ROOT, BundleTarget(python_version="3.12"), REQUIREMENTS).key != base
    assert plan_bundle(ROOT, BundleTarget(), ("polars==2.0.0",)).key != base


def test_key_changes_when_a_source_changes(tmp_path: Path) -> None:
    # Editing any file of the package changes the key.
    (tmp_path / "etl").mkdir()
    module = tmp_path / "etl" / "handler.py"
    module.write_text("x = 1\n")
    before = plan_bundle(tmp_path, BundleTarget(), REQUIREMENTS).key
    module.write_text("x = 2\n")
    assert plan_bundle(tmp_path, BundleTarget(), REQUIREMENTS).key != before


def test_the_package_is_etl_whole_and_nothing_else() -> None:
    # Every file the repository holds under etl/ ships, data and SQL included; nothing else does.
    names = {name for name, _ in package_sources(ROOT)}
    assert names == tracked_files("etl")


def test_a_new_etl_file_ships_without_being_listed(tmp_path: Path) -> None:
    # No allow-list or deny-list to keep: whatever lands under etl/ is bundled, caches aside.
    for relative in ("etl/handler.py", "etl/new/module.py", "etl/new/table.json"):
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text("\n")
    (tmp_path / "etl/__pycache__").mkdir()
    (tmp_path / "etl/__pycache__/handler.cpython-311.pyc").write_bytes(b"")
    (tmp_path / "dataplatform").mkdir()
    (tmp_path / "dataplatform/cli.py").write_text("\n")
    names = [name for name, _ in package_sources(tmp_path)]
    assert names == ["etl/handler.py", "etl/new/module.py", "etl/new/table.json"]


def test_prune_keeps_only_the_needed_botocore_models(tmp_path: Path) -> None:
    # Caches, stubs, tests and unused service models go; the used models stay.
    for relative in (
        "botocore/data/s3/2006-03-01/service-2.json.gz",
        "botocore/data/ec2/2016-11-15/service-2.json.gz",
        "botocore/data/endpoints.json",
        "pkg/__pycache__/m.cpython-313.pyc",
        "pkg/tests/test_m.py",
        "pkg/m.pyi",
        "pkg/m.py",
    ):
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x")
    prune(tmp_path, ("s3",))
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file())
    assert left == [
        "botocore/data/endpoints.json",
        "botocore/data/s3/2006-03-01/service-2.json.gz",
        "pkg/m.py",
    ]


@pytest.mark.parametrize("version", ["3", "3.13.1", "three"])
def test_bad_python_version_is_refused(version: str) -> None:
    # The runtime version is X.Y; anything else stops with a usage error.
    with pytest.raises(UsageError, match=r"X\.Y"):
        BundleTarget(python_version=version)


def test_platform_tags() -> None:
    # Wheels for Amazon Linux 2023 (glibc 2.34), per architecture.
    assert BundleTarget(arch=Architecture.ARM64).platform == "aarch64-manylinux_2_34"
    assert BundleTarget(arch=Architecture.X86_64).platform == "x86_64-manylinux_2_34"

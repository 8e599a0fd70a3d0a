"""The Lambda bundle built for real (for this machine's Python, so that it can be imported):
deterministic, within Lambda's limit, importable alone."""

from __future__ import annotations

import os
import sys
import zipfile
from pathlib import Path

import pytest

from components.settings import bundle_target
from dataplatform import bundle as bundle_module
from dataplatform.bundle import (
    LAMBDA_UNZIPPED_LIMIT,
    SIZE_BUDGET,
    BundleError,
    BundleResult,
    BundleTarget,
    build_bundle,
    locked_requirements,
)
from etl.contract import Architecture
from tests.repo import tracked_files

ROOT = Path(__file__).parents[2]
PROJECT_TOPS = frozenset(
    {"etl", "dataplatform", "components", "tests", "policy", "bootstrap", "__main__.py"}
)
"""The first path component of every file of the project that could end up in a zip."""
LOCAL = BundleTarget(
    python_version=f"{sys.version_info.major}.{sys.version_info.minor}",
    arch=Architecture.ARM64 if os.uname().machine == "aarch64" else Architecture.X86_64,
)


REDUCED = BundleTarget(
    python_version=LOCAL.python_version,
    arch=Architecture.X86_64 if LOCAL.arch is Architecture.ARM64 else Architecture.ARM64,
)
"""The other architecture: its builds are never imported here, so they skip the import check."""


@pytest.fixture(scope="module")
def build(tmp_path_factory: pytest.TempPathFactory) -> BundleResult:
    """The real bundle, built once from scratch for this machine."""
    return build_bundle(ROOT, tmp_path_factory.mktemp("full"), LOCAL, use_cache=False)


@pytest.fixture(scope="module")
def reduced_builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[BundleResult, BundleResult]:
    """Two builds from scratch, in different directories, of a reduced plan: the project's
    sources and one locked dependency with shared libraries (psycopg's binary wheel), through
    every step of the real build (install, prune, strip, bytecode, zip) at a tenth of its cost."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(bundle_module, "locked_requirements", _psycopg_only)
        first = build_bundle(ROOT, tmp_path_factory.mktemp("one"), REDUCED, use_cache=False)
        second = build_bundle(ROOT, tmp_path_factory.mktemp("two"), REDUCED, use_cache=False)
    return first, second


def _psycopg_only(root: Path) -> tuple[str, ...]:
    locked = locked_requirements(root)
    return tuple(line for line in locked if line.startswith("psycopg"))


def test_two_builds_have_one_sha256(reduced_builds: tuple[BundleResult, BundleResult]) -> None:
    # Deterministic: same inputs, same bytes, so Pulumi sees no change when nothing changed.
    first, second = reduced_builds
    with zipfile.ZipFile(first.path) as archive:
        names = archive.namelist()
    assert any(name.startswith("psycopg_binary/") and ".so" in name for name in names), names
    assert any(name.endswith(".pyc") for name in names), names
    assert first.sha256 == second.sha256
    assert first.path.read_bytes() == second.path.read_bytes()


def test_bundle_is_within_lambdas_limit_and_our_budget(build: BundleResult) -> None:
    # Unzipped size under Lambda's 262,144,000 bytes and under our budget (SIZE_BUDGET).
    bundle = build
    assert bundle.unzipped_bytes < SIZE_BUDGET < LAMBDA_UNZIPPED_LIMIT
    assert bundle.zipped_bytes < bundle.unzipped_bytes


def test_handler_imports_from_the_bundle_alone(build: BundleResult) -> None:
    # `python -I -S` with only the unzipped bundle on the path imports etl.handler, from
    # precompiled modules.
    bundle = build
    assert bundle.import_ms is not None
    assert bundle.bytecode


def test_bundle_holds_the_runtime_and_nothing_local(build: BundleResult) -> None:
    # The handler, its data and migrations, polars/psycopg/numpy/boto3; no CLI, demo, tests or
    # pyarrow.
    with zipfile.ZipFile(build.path) as archive:
        names = set(archive.namelist())
    tops = {name.split("/", 1)[0] for name in names}
    assert {"etl/handler.py", "etl/core/data/taxi_zone_lookup.csv", "etl/contract.py"} <= names
    assert any(name.startswith("etl/migrations/") and name.endswith(".sql") for name in names)
    assert {"polars", "psycopg", "numpy", "boto3", "botocore"} <= tops
    assert not {"pyarrow", "pandas", "typer", "pytest", "moto", "pulumi"} & tops
    project = {name for name in names if name.split("/", 1)[0] in PROJECT_TOPS}
    sources = {name for name in project if "/__pycache__/" not in name}
    assert sources == tracked_files("etl"), sources ^ tracked_files("etl")
    assert all(name.startswith("etl/") for name in project), sorted(project)
    assert not any("/tests/" in name or name.endswith(".pyi") for name in names)
    models = {n.split("/")[2] for n in names if n.startswith("botocore/data/") and n.count("/") > 3}
    assert models == {"s3", "sqs", "secretsmanager", "sts"}


def test_cached_build_is_reused(
    reduced_builds: tuple[BundleResult, BundleResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A second build of unchanged inputs comes from the cache, with the same bytes.
    first = reduced_builds[0]
    monkeypatch.setattr(bundle_module, "locked_requirements", _psycopg_only)
    again = build_bundle(ROOT, first.path.parent, REDUCED)
    assert again.cached
    assert again.sha256 == first.sha256


def test_over_the_limit_is_refused(
    reduced_builds: tuple[BundleResult, BundleResult], monkeypatch: pytest.MonkeyPatch
) -> None:
    # Above Lambda's unzipped limit the build fails with a message saying what to do.
    monkeypatch.setattr(bundle_module, "locked_requirements", _psycopg_only)
    monkeypatch.setattr(bundle_module, "LAMBDA_UNZIPPED_LIMIT", 1_000_000)
    with pytest.raises(BundleError, match=r"over Lambda's limit of 1,000,000"):
        build_bundle(ROOT, reduced_builds[0].path.parent, REDUCED)


def test_the_bundle_records_its_target(
    reduced_builds: tuple[BundleResult, BundleResult], build: BundleResult
) -> None:
    # The program compares this record with processorArchitecture before creating anything.
    assert bundle_target(reduced_builds[0].path) == (REDUCED.arch.value, REDUCED.python_version)
    assert bundle_target(build.path) == (LOCAL.arch.value, LOCAL.python_version)

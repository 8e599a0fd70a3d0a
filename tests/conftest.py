"""Services shared by the integration and end-to-end tests: moto's server (S3, SQS, Secrets
Manager over HTTP) and a real PostgreSQL (pgserver), each started once per session, on demand."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import botocore.loaders
import botocore.session
import pytest
from xdist.scheduler import LoadGroupScheduling  # type: ignore[import-untyped]

from dataplatform.demo.embedded import EmbeddedPostgres, aws_environment, moto_server, postgres

MODULES_WITH_MODULE_FIXTURES = frozenset(
    {
        "tests/bootstrap/test_bootstrap.py",
        "tests/e2e/test_demo.py",
        "tests/infra/test_catalog_schema.py",
        "tests/infra/test_permissions.py",
        "tests/infra/test_synth.py",
        "tests/integration/test_analyst_role.py",
        "tests/integration/test_bundle.py",
        "tests/integration/test_processor_role.py",
        "tests/policy/test_pack_server.py",
        "tests/unit/test_report_answers_why.py",
    }
)
"""Modules whose tests share a module-scoped fixture (a demo run, a bundle build, a program run):
each is sent whole to one test worker (see `pytest_xdist_make_scheduler`)."""


BYTECODE_CACHE = Path(sys.prefix) / "pycache"
"""Where the test processes keep bytecode when the environment says not to write any beside the
sources (PYTHONDONTWRITEBYTECODE): inside the virtual environment, which git ignores and which
goes with the checkout."""


def pytest_configure(config: pytest.Config) -> None:
    """Let this process, the test workers and every Python the tests start share compiled
    bytecode, kept in `BYTECODE_CACHE`, when PYTHONDONTWRITEBYTECODE forbids the usual
    `__pycache__` folders.

    Without any cache every process compiles every module it imports from source, pulumi-aws's
    600 generated modules included: both workers and each CLI subprocess paid it again. The
    cache mirrors each source's absolute path (PYTHONPYCACHEPREFIX), so nothing is written in
    the checkout, and Python checks each entry against its source's time and size, as it does
    for `__pycache__`. A prefix the environment already names, or bytecode already allowed, is
    left as it is.
    """
    if not os.environ.get("PYTHONDONTWRITEBYTECODE") or os.environ.get("PYTHONPYCACHEPREFIX"):
        return
    if not os.access(sys.prefix, os.W_OK):
        return
    del os.environ["PYTHONDONTWRITEBYTECODE"]
    os.environ["PYTHONPYCACHEPREFIX"] = str(BYTECODE_CACHE)
    sys.dont_write_bytecode = False
    sys.pycache_prefix = str(BYTECODE_CACHE)


class ModuleFixtureScheduling(LoadGroupScheduling):  # type: ignore[misc]
    """xdist's `loadgroup` scheduling, with each of `MODULES_WITH_MODULE_FIXTURES` as one group.

    Plain `load` hands the first quarter of the tests out one by one in turn, so both workers
    drew tests of the demo's module and each ran the whole demo (7.7 s twice, measured), and the
    same could happen to the bundle build (12 s). xdist's own `xdist_group` marks cannot do this
    under pytest 9 (xdist 3.8 renames the node id through an attribute pytest 9 no longer
    reads), so the groups are named here, by module. The groups go out first (xdist orders work
    by size), then the other tests, each worker kept `QUEUED` tests ahead: xdist's loadgroup
    keeps only two, and a worker that finishes them before the controller answers waits idle
    (most tests take milliseconds, and the controller shares the cores with the workers).
    """

    QUEUED = 8

    def _reschedule(self, node: object) -> None:
        if getattr(node, "shutting_down", False):
            return
        if not self.workqueue:
            node.shutdown()  # type: ignore[attr-defined]
            return
        while self.workqueue and self._pending_of(self.assigned_work[node]) < self.QUEUED:
            self._assign_work_unit(node)

    def _split_scope(self, nodeid: str) -> str:
        module = nodeid.split("::", 1)[0]
        if module in MODULES_WITH_MODULE_FIXTURES:
            return module
        scope: str = super()._split_scope(nodeid)
        return scope


def pytest_xdist_make_scheduler(
    config: pytest.Config, log: object
) -> ModuleFixtureScheduling | None:
    """Use `ModuleFixtureScheduling` for `--dist loadgroup` (pyproject's addopts)."""
    if config.getvalue("dist") != "loadgroup":
        return None
    return ModuleFixtureScheduling(config, log)


@pytest.fixture(scope="session", autouse=True)
def one_botocore_loader() -> Iterator[None]:
    """Every botocore session of a test process shares one loader of botocore's JSON models.

    Each new session (the handler's `Runtime.from_environment` makes one, as a Lambda container
    does once) otherwise parses the endpoint, partition and service models again: 220 ms for a
    session and its four clients against 38 ms with the loader shared, measured, and the tests
    build a Runtime about 50 times per run. A loader only reads and caches those files; the
    sessions, clients, credentials and configuration stay each test's own.
    """
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            botocore.session, "create_loader", functools.cache(botocore.loaders.create_loader)
        )
        yield


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server for the whole session."""
    with moto_server() as endpoint:
        yield endpoint


MEMORY = Path("/dev/shm")
"""A memory-backed directory (Linux): the session's server keeps its data there when it can."""


@pytest.fixture(scope="session")
def pg() -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL server for the whole session (password authentication on 127.0.0.1).

    Its data lives in memory where the machine has a memory-backed directory: every test creates
    a database (CREATE DATABASE copies about 8 MB of files), measured 0.17 s each in memory
    against 0.42 s on this machine's disk, and the data is never needed after the session.
    """
    in_memory = MEMORY.is_dir() and os.access(MEMORY, os.W_OK)
    with postgres(parent=MEMORY if in_memory else None) as server:
        yield server


@pytest.fixture
def aws(moto_endpoint: str) -> Iterator[str]:
    """The AWS environment pointed at moto's server for one test."""
    with aws_environment(moto_endpoint):
        yield moto_endpoint

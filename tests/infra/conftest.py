"""The infrastructure program, run once per stack per session under Pulumi's mocks.

`stack_run` is parametrised over dev and prod, so every test that takes it asserts its property
for both stacks. Config is the stacks' real files (assembled as the engine would), plus the test
password and a tiny deterministic bundle, seeded before the program runs; `preview=False`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from dataplatform.mocks import ProgramRun
from tests.infra.support import STACKS, run_stack, write_bundle


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Silence the DeprecationWarnings pulumi-aws emits when its modules are imported.

    They name classes this program never constructs; constructing a deprecated resource or
    argument is caught separately, from the warnings the program logs to the engine.
    """
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(
                pytest.mark.filterwarnings("ignore:.*has been deprecated:DeprecationWarning")
            )


@pytest.fixture(scope="session")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny prebuilt processor bundle."""
    return write_bundle(tmp_path_factory.mktemp("bundle") / "processor.zip")


@pytest.fixture(scope="session")
def runs(bundle: Path) -> Callable[[str], ProgramRun]:
    """The program's run for a stack, computed once per session."""
    cache: dict[str, ProgramRun] = {}

    def get(stack: str) -> ProgramRun:
        if stack not in cache:
            cache[stack] = run_stack(stack, bundle)
        return cache[stack]

    return get


@pytest.fixture(params=STACKS)
def stack_run(request: pytest.FixtureRequest, runs: Callable[[str], ProgramRun]) -> ProgramRun:
    """Everything the program registered and exported for one stack (dev, then prod)."""
    return runs(str(request.param))


@pytest.fixture
def dev_run(runs: Callable[[str], ProgramRun]) -> ProgramRun:
    """The dev stack's run."""
    return runs("dev")


@pytest.fixture
def prod_run(runs: Callable[[str], ProgramRun]) -> ProgramRun:
    """The prod stack's run."""
    return runs("prod")

"""The suite's own scheduling over test workers: a module-scoped fixture runs once."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import MODULES_WITH_MODULE_FIXTURES, ModuleFixtureScheduling

ROOT = Path(__file__).parents[2]
MODULE_FIXTURE = re.compile(r'^@pytest\.fixture\(scope="module"', re.MULTILINE)


def test_every_module_with_a_module_fixture_is_listed() -> None:
    # Rule: a module whose tests share a module-scoped fixture is scheduled as one group.
    found = {
        path.relative_to(ROOT).as_posix()
        for path in (ROOT / "tests").rglob("test_*.py")
        if MODULE_FIXTURE.search(path.read_text(encoding="utf-8"))
    }
    assert found == MODULES_WITH_MODULE_FIXTURES


def test_listed_modules_are_one_group_and_other_tests_their_own() -> None:
    # A listed module's tests (and parameters) share one scope; any other test is its own.
    # (Splitting reads no state: the scheduler needs no workers for it.)
    scheduling = ModuleFixtureScheduling.__new__(ModuleFixtureScheduling)
    demo = "tests/e2e/test_demo.py"
    assert scheduling._split_scope(f"{demo}::test_a") == demo
    assert scheduling._split_scope(f"{demo}::test_b[x]") == demo
    other = "tests/unit/test_rules.py::test_a[1]"
    assert scheduling._split_scope(other) == other

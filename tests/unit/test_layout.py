"""The layout's import rules, read from every module's imports (including those inside functions).

- `etl/` is the Lambda asset: it imports nothing of `components`, `dataplatform` or `tests`, and
  none of the laptop and infrastructure libraries.
- `etl/core/` is the pure Polars ETL: polars, the standard library and itself.
- `components/` imports from `etl` only the contract module (the program, `__main__.py`, also
  the thresholds' check).
- only tests and benchmarks import `dataplatform` (besides `dataplatform` itself).
- `policy/` imports nothing of ours.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
OURS = frozenset({"etl", "components", "dataplatform", "tests", "platform_bootstrap"})
NEVER_IN_ETL = frozenset(
    {"typer", "rich", "moto", "pgserver", "pulumi", "pulumi_aws", "pulumi_random"}
)


@dataclass(frozen=True)
class Import:
    """One imported module, where it is imported."""

    importer: str
    """The importing file, relative to the project root."""
    line: int
    module: str
    """The full dotted name of what is imported (`etl.core.rules`, `polars`)."""

    @property
    def top(self) -> str:
        return self.module.split(".", 1)[0]

    def __str__(self) -> str:
        return f"{self.importer}:{self.line} imports {self.module}"


def module_name(path: Path) -> str:
    """`etl/core/rules.py` -> `etl.core.rules`; a package's `__init__.py` names the package."""
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> Iterator[Import]:
    """Every module `path` imports. `from a import b` yields `a.b` where `a.b` is one of our
    modules (a submodule import), else `a`."""
    tree = ast.parse(path.read_text(), filename=str(path))
    importer = path.relative_to(ROOT).as_posix()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield Import(importer, node.lineno, alias.name)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                raise AssertionError(f"{importer}:{node.lineno}: use absolute imports")
            base = node.module or ""
            if base == "__future__":
                continue
            for alias in node.names:
                candidate = f"{base}.{alias.name}"
                is_module = _module_path(candidate) is not None
                yield Import(importer, node.lineno, candidate if is_module else base)


def _module_path(module: str) -> Path | None:
    relative = Path(*module.split("."))
    for path in (ROOT / relative.with_suffix(".py"), ROOT / relative / "__init__.py"):
        if path.is_file():
            return path
    return None


def python_files(*folders: str) -> list[Path]:
    return sorted(
        path
        for folder in folders
        for path in (ROOT / folder).rglob("*.py")
        if not {".venv", "venv", "build"} & set(path.relative_to(ROOT).parts)
    )


def imports_in(*folders: str) -> list[Import]:
    return [found for path in python_files(*folders) for found in imports_of(path)]


def is_stdlib(module: str) -> bool:
    return module.split(".", 1)[0] in sys.stdlib_module_names


def test_etl_imports_no_laptop_or_infrastructure_code() -> None:
    # Rule: the Lambda asset needs nothing that only a laptop, an operator or Pulumi runs.
    broken = [
        str(found)
        for found in imports_in("etl")
        if found.top in {"components", "dataplatform", "tests"} | NEVER_IN_ETL
    ]
    assert broken == []


def test_etl_core_imports_only_polars_the_standard_library_and_itself() -> None:
    # Rule: the pure ETL is I/O-agnostic: no boto3, psycopg or other etl modules.
    broken = [
        str(found)
        for found in imports_in("etl/core")
        if not (
            found.top == "polars" or is_stdlib(found.module) or found.module.startswith("etl.core")
        )
    ]
    assert broken == []


def test_components_import_only_the_contract_from_etl() -> None:
    # Rule: the infrastructure and the runtime share one module, and nothing else.
    broken = [
        str(found)
        for found in imports_in("components")
        if found.top == "etl" and found.module != "etl.contract"
    ]
    assert broken == []


def test_the_program_takes_only_the_contract_and_the_thresholds_check_from_etl() -> None:
    # Rule: `__main__.py` hands the ETL's own threshold check to the settings (so a bad
    # `etlSettings` stops the program before any resource); it loads nothing else of the ETL,
    # and that check needs nothing but the standard library.
    allowed = {"etl.contract", "etl.core.settings"}
    broken = [
        str(found)
        for found in imports_in("__main__.py")
        if found.top == "etl" and found.module not in allowed
    ]
    assert broken == []
    settings_imports = imports_of(ROOT / "etl/core/settings.py")
    assert all(
        is_stdlib(found.module) or found.module == "etl.core.errors" for found in settings_imports
    )


def test_contract_is_standard_library_only() -> None:
    # Rule: the Pulumi program reads the contract without loading the ETL or its libraries.
    broken = [
        str(found) for found in imports_of(ROOT / "etl/contract.py") if not is_stdlib(found.module)
    ]
    assert broken == []


def test_only_tests_and_benchmarks_import_dataplatform() -> None:
    # Rule: the operator's package is a leaf: nothing shipped or deployed depends on it.
    folders = ("etl", "components", "policy", "bootstrap", ".ci", "__main__.py")
    broken = [str(found) for found in imports_in(*folders) if found.top == "dataplatform"]
    assert broken == []


def test_policy_pack_imports_nothing_of_ours() -> None:
    # Rule: the policy pack runs in its own virtualenv, from its own folder only.
    broken = [str(found) for found in imports_in("policy") if found.top in OURS]
    assert broken == []


def test_every_etl_module_is_reachable_from_the_handler() -> None:
    # Rule: the bundle is etl/ whole, so a module the handler never reaches is dead weight.
    modules = {module_name(path) for path in python_files("etl")}
    assert reachable("etl.handler") >= modules, sorted(modules - reachable("etl.handler"))


def reachable(start: str) -> set[str]:
    """The project modules `start` reaches through imports, with the packages that hold them."""
    seen: set[str] = set()
    pending = [start]
    while pending:
        module = pending.pop()
        if module in seen or (path := _module_path(module)) is None:
            continue
        seen.add(module)
        parts = module.split(".")
        pending.extend(".".join(parts[:end]) for end in range(1, len(parts)))
        pending.extend(found.module for found in imports_of(path) if found.top in OURS)
    return seen


@pytest.mark.parametrize(
    ("source", "rule"),
    [
        ("import typer\n", test_etl_imports_no_laptop_or_infrastructure_code),
        ("from dataplatform import cli\n", test_etl_imports_no_laptop_or_infrastructure_code),
        ("import boto3\n", test_etl_core_imports_only_polars_the_standard_library_and_itself),
        (
            "from etl import loader\n",
            test_etl_core_imports_only_polars_the_standard_library_and_itself,
        ),
    ],
)
def test_a_forbidden_import_fails_its_rule(
    source: str, rule: Callable[[], None], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # The rules above can fail: a copy of the project with one bad import breaks them.
    copy = tmp_path / "project"
    for path in python_files("etl"):
        target = copy / path.relative_to(ROOT)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(path.read_text())
    (copy / "etl/core/rules.py").write_text(source + (ROOT / "etl/core/rules.py").read_text())
    monkeypatch.setattr(sys.modules[__name__], "ROOT", copy)
    with pytest.raises(AssertionError):
        rule()

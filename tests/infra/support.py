"""Helpers shared by the infrastructure tests: config assembly, a test bundle, policy lookups."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path
from typing import Any

from components.settings import BUNDLE_KEY, PASSWORD_KEY
from dataplatform.mocks import ProgramRun, RecordedResource, RecordingMocks, run_program, unwrap
from dataplatform.synth import load_stack_config
from etl.contract import BUNDLE_MANIFEST, PYTHON_VERSION, Architecture, bundle_manifest

ROOT = Path(__file__).resolve().parents[2]
PROGRAM = ROOT / "__main__.py"
PROJECT = "dataplatform"
STACKS = ("dev", "prod")
# Valid for RDS and distinctive enough to search for in everything the program recorded.
TEST_PASSWORD = "Infra-Test-Pw-7c1e9a"


def write_bundle(
    path: Path,
    body: str = "def handler(event, context):\n    return {}\n",
    architecture: Architecture | None = Architecture.ARM64,
    python_version: str = PYTHON_VERSION,
) -> Path:
    """A tiny deterministic processor bundle (fixed timestamps and modes) that records its
    target as `dataplatform bundle` does (`architecture` None: records none)."""
    entries = {"etl/handler.py": body}
    if architecture is not None:
        entries[BUNDLE_MANIFEST] = bundle_manifest(architecture, python_version)
    with zipfile.ZipFile(path, "w") as archive:
        for name, text in sorted(entries.items()):
            entry = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            entry.external_attr = 0o644 << 16
            archive.writestr(entry, text)
    return path


def stack_config(stack: str, bundle: Path, **overrides: str) -> tuple[dict[str, str], list[str]]:
    """The stack's real config (Pulumi.yaml defaults under Pulumi.<stack>.yaml) for the tests.

    `overrides` use short keys (`processorMemoryMb="64"`); None-like removal is not needed.
    """
    loaded = load_stack_config(ROOT, stack)
    values = dict(loaded.values)
    values[f"{PROJECT}:{PASSWORD_KEY}"] = TEST_PASSWORD
    values[f"{PROJECT}:{BUNDLE_KEY}"] = str(bundle)
    values.update({f"{PROJECT}:{key}": value for key, value in overrides.items()})
    return values, loaded.secret_keys


def run_stack(
    stack: str, bundle: Path, mocks: RecordingMocks | None = None, **overrides: str
) -> ProgramRun:
    """Run the real program for `stack` under mocks, with config overrides."""
    config, secret_keys = stack_config(stack, bundle, **overrides)
    return run_program(
        PROGRAM,
        project=PROJECT,
        stack=stack,
        config=config,
        secret_keys=secret_keys,
        recording_mocks=mocks,
    )


def policy_document(resource: RecordedResource, key: str = "policy") -> dict[str, Any]:
    """A JSON policy input of a resource, parsed."""
    document = json.loads(unwrap(resource.inputs)[key])
    assert isinstance(document, dict), f"{resource.urn}: {key} is not a JSON object"
    return document


def statements(document: dict[str, Any]) -> list[dict[str, Any]]:
    """A policy's statements, with Action and Resource always as lists."""
    result = []
    for statement in document["Statement"]:
        normalised = dict(statement)
        for field in ("Action", "Resource"):
            if isinstance(normalised.get(field), str):
                normalised[field] = [normalised[field]]
        result.append(normalised)
    return result


def inputs(resource: RecordedResource) -> dict[str, Any]:
    """A resource's inputs with secrets unwrapped (to assert on their content)."""
    value = unwrap(resource.inputs)
    assert isinstance(value, dict)
    return value


def setting(stack: str, key: str) -> str:
    """The value a stack's config gives `key` (stack file over Pulumi.yaml default), as a string."""
    return load_stack_config(ROOT, stack).values[f"{PROJECT}:{key}"]


def setting_int(stack: str, key: str) -> int:
    """An integer setting of a stack."""
    return int(setting(stack, key))


def region(stack: str) -> str:
    """The AWS region a stack deploys to (`aws:region` in its stack file)."""
    return load_stack_config(ROOT, stack).values["aws:region"]

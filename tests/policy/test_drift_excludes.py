"""The drift check leaves two resources out of its refresh by URN (.github/workflows/drift.yml):
those URNs must be resources the program really declares, or the check would read them after all.

Here rather than in tests/ci because it uses this package's session-wide synth manifests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def excluded_urns(stack: str) -> list[str]:
    """The URNs the drift workflow passes to --exclude, for `stack`."""
    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "drift.yml").read_text("utf-8"))
    [step] = [s for s in workflow["jobs"]["check"]["steps"] if "--exclude" in str(s.get("run"))]
    return [
        str(step["env"][name]).replace("${{ matrix.stack }}", stack)
        for name in ("CONNECTION_VALUE", "BUNDLE_OBJECT")
    ]


def urns(manifest: dict[str, Any]) -> set[str]:
    """Every resource's URN, from its type, name and parent's type, as Pulumi builds it."""
    types = {r["name"]: r["type"] for r in manifest["resources"]}
    found = set()
    for resource in manifest["resources"]:
        chain = resource["type"]
        if resource["parent"]:
            chain = f"{types[resource['parent']]}${chain}"
        found.add(
            f"urn:pulumi:{manifest['stack']}::{manifest['project']}::{chain}::{resource['name']}"
        )
    return found


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_excluded_urns_are_the_secret_value_and_the_bundle_object(
    stack: str, manifests: Callable[[str], dict[str, Any]]
) -> None:
    manifest = manifests(stack)
    secret, bundle = excluded_urns(stack)
    assert {secret, bundle} <= urns(manifest)
    assert "aws:secretsmanager/secretVersion:SecretVersion::" in secret
    assert "aws:s3/bucketObjectv2:BucketObjectv2::" in bundle

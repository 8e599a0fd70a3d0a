"""Both stacks' `dataplatform synth` manifests, computed once per session for the policy tests."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from dataplatform.synth import synth

Manifest = dict[str, Any]


@pytest.fixture(scope="session")
def manifests() -> Callable[[str], Manifest]:
    """The manifest of a stack (the real program under mocks, secrets redacted), cached."""
    cache: dict[str, Manifest] = {}

    def get(stack: str) -> Manifest:
        if stack not in cache:
            cache[stack] = json.loads(synth(stack))
        return cache[stack]

    return get

"""Services shared by the integration and end-to-end tests: moto's server (S3, SQS, Secrets
Manager over HTTP) and a real PostgreSQL (pgserver), each started once per session, on demand."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from dataplatform.demo.embedded import EmbeddedPostgres, aws_environment, moto_server, postgres


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """moto's server for the whole session."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def pg() -> Iterator[EmbeddedPostgres]:
    """A PostgreSQL server for the whole session (password authentication on 127.0.0.1)."""
    with postgres() as server:
        yield server


@pytest.fixture
def aws(moto_endpoint: str) -> Iterator[str]:
    """The AWS environment pointed at moto's server for one test."""
    with aws_environment(moto_endpoint):
        yield moto_endpoint

"""The policy pack started the way the Pulumi CLI starts it, and asked over gRPC.

`pulumi preview --policy-pack policy` runs `python -m pulumi.policy <engine> policy`, which runs
`policy/__main__.py`; the pack prints its port and serves the Analyzer protocol. This test does
the same and sends an engine-shaped request: the whole chain from `__main__.py` to a mandatory
diagnostic is exercised without the CLI.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import grpc
import platform_rules
import pytest
from google.protobuf import empty_pb2, struct_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

ROOT = Path(__file__).resolve().parents[2]
QUEUE = "aws:sqs/queue:Queue"


@pytest.fixture(scope="module")
def analyzer() -> Iterator[analyzer_pb2_grpc.AnalyzerStub]:
    """A stub talking to the pack, served by a subprocess like the CLI's."""
    process = subprocess.Popen(
        [sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(ROOT / "policy")],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        port = process.stdout.readline().strip()
        assert port.isdigit(), f"the pack did not print its port: {port!r}"
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            grpc.channel_ready_future(channel).result(timeout=10)
            yield analyzer_pb2_grpc.AnalyzerStub(channel)
    finally:
        process.kill()
        process.wait(timeout=10)


def analyze(
    stub: analyzer_pb2_grpc.AnalyzerStub, resource_type: str, props: dict[str, object]
) -> list[analyzer_pb2.AnalyzeDiagnostic]:
    properties = struct_pb2.Struct()
    properties.update(props)
    request = analyzer_pb2.AnalyzeRequest(
        type=resource_type,
        properties=properties,
        urn=f"urn:pulumi:dev::dataplatform::{resource_type}::q",
        name="q",
    )
    return list(stub.Analyze(request, timeout=10).diagnostics)


def test_the_served_pack_lists_every_policy(analyzer: analyzer_pb2_grpc.AnalyzerStub) -> None:
    info = analyzer.GetAnalyzerInfo(empty_pb2.Empty(), timeout=10)
    assert info.name == "dataplatform-security"
    assert [p.name for p in info.policies] == [
        *(rule.name for rule in platform_rules.RULES),
        *(rule.name for rule in platform_rules.STACK_RULES),
    ]
    assert {p.enforcementLevel for p in info.policies} == {analyzer_pb2.MANDATORY}


def test_the_served_pack_reports_a_violation_as_mandatory(
    analyzer: analyzer_pb2_grpc.AnalyzerStub,
) -> None:
    assert analyze(analyzer, QUEUE, {"name": "q", "sqsManagedSseEnabled": True}) == []
    [diagnostic] = analyze(analyzer, QUEUE, {"name": "q", "sqsManagedSseEnabled": False})
    assert diagnostic.policyName == "sqs-encryption"
    assert diagnostic.enforcementLevel == analyzer_pb2.MANDATORY
    assert "sqsManagedSseEnabled" in diagnostic.message

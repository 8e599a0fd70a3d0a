"""The CLI stays light: `dataplatform process` pays only for Polars, not for AWS or Pulumi."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("boto3", "botocore", "pulumi", "pulumi_aws", "psycopg", "moto", "pgserver", "numpy")


def test_importing_the_cli_loads_no_heavy_library() -> None:
    # Commands import what they need inside their bodies; the module itself must not.
    code = (
        f"import sys, dataplatform.cli; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert loaded == ""

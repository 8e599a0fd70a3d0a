#!/usr/bin/env bash
# The policy pack's own virtualenv (policy/venv, named in policy/PulumiPolicy.yaml), built with uv
# from policy/requirements.txt before Pulumi runs the pack, so that Pulumi finds it ready instead
# of creating it with pip.
set -euo pipefail
cd "$(dirname "$0")/.."
uv venv --quiet --seed --allow-existing policy/venv
uv pip install --quiet --python policy/venv -r policy/requirements.txt

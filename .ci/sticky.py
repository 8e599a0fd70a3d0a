"""GitHub's side of the review: the sticky PR comment, drift issues, and what a merged PR reviewed.

Everything goes through `gh api` (preinstalled on GitHub's runners, authenticated by `GH_TOKEN`),
and every listing through `gh api --paginate`, so a comment or an issue is found however many
pages precede it: pulumi/actions reads only the first page of comments, and a busy PR then gets
a second preview comment while the stale one stays. A comment or issue is ours when the bot wrote
it and it holds the hidden marker (`review.MARKER`); one a user pasted the marker into is left
alone. Bodies travel as JSON on stdin, never through a shell.

Standard library only, run with the runner's `python3` (see review.py for why).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import review

BOT = "github-actions[bot]"
"""The author of comments and issues made with a workflow's GITHUB_TOKEN."""
DRIFT_LABEL = "drift"

Api = Callable[[Sequence[str], Mapping[str, Any] | None], str]
"""`gh api ARGS` with an optional JSON body on stdin; returns stdout."""


class GitHubError(Exception):
    """`gh api` failed; the message is gh's."""


def gh_api(args: Sequence[str], body: Mapping[str, Any] | None = None) -> str:
    """The real `gh api`."""
    command = ["gh", "api", *args]
    if body is not None:
        command += ["--input", "-"]
    result = subprocess.run(
        command,
        input=json.dumps(body) if body is not None else None,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise GitHubError(f"gh api {' '.join(args[:3])}: {result.stderr.strip()}")
    return result.stdout


def pages(text: str) -> Iterator[Any]:
    """The items of `gh api --paginate` output: one JSON array per page, back to back."""
    decoder = json.JSONDecoder()
    position = 0
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        if position >= len(text):
            return
        page, position = decoder.raw_decode(text, position)
        yield from page if isinstance(page, list) else [page]


def listing(api: Api, path: str) -> list[dict[str, Any]]:
    """Every item of a paginated listing, 100 a page."""
    separator = "&" if "?" in path else "?"
    return list(pages(api(["--paginate", f"{path}{separator}per_page=100"], None)))


def find_marked(items: Sequence[Mapping[str, Any]], marker: str) -> Mapping[str, Any] | None:
    """The bot's first comment or issue whose body holds `marker`."""
    for item in items:
        if (item.get("user") or {}).get("login") == BOT and marker in (item.get("body") or ""):
            return item
    return None


def upsert_comment(api: Api, repo: str, pr: int, body: str, marker: str = review.MARKER) -> str:
    """Edit the PR's review comment in place, or post it; returns "updated" or "created"."""
    found = find_marked(listing(api, f"repos/{repo}/issues/{pr}/comments"), marker)
    if found is not None:
        api(["-X", "PATCH", f"repos/{repo}/issues/comments/{found['id']}"], {"body": body})
        return "updated"
    api(["-X", "POST", f"repos/{repo}/issues/{pr}/comments"], {"body": body})
    return "created"


def labels(api: Api, repo: str, pr: int) -> list[str]:
    """The PR's labels now (not the event's: a label added since counts on a re-run)."""
    pull = json.loads(api([f"repos/{repo}/pulls/{pr}"], None))
    return [str(label["name"]) for label in pull.get("labels") or []]


def drift_issue(
    api: Api, repo: str, stack: str, body: str, *, drifted: bool, run_url: str | None
) -> str:
    """Open or update the stack's drift issue when it drifted; close it when it did not."""
    marker = review.DRIFT_MARKER.format(stack=stack)
    issues = [i for i in listing(api, f"repos/{repo}/issues?state=open") if "pull_request" not in i]
    found = find_marked(issues, marker)
    if drifted:
        if found is not None:
            api(["-X", "PATCH", f"repos/{repo}/issues/{found['number']}"], {"body": body})
            return "updated"
        title = f"Drift in stack {stack}: the cloud differs from the code"
        api(
            ["-X", "POST", f"repos/{repo}/issues"],
            {"title": title, "body": body, "labels": [DRIFT_LABEL]},
        )
        return "opened"
    if found is None:
        return "nothing to do"
    where = f" ([run]({run_url}))" if run_url else ""
    api(
        ["-X", "POST", f"repos/{repo}/issues/{found['number']}/comments"],
        {"body": f"No drift any more in `{stack}`{where}: closing."},
    )
    api(
        ["-X", "PATCH", f"repos/{repo}/issues/{found['number']}"],
        {"state": "closed", "state_reason": "completed"},
    )
    return "closed"


_HASHES = re.compile(r"<!-- bundle-sha256 ([^>]*)-->")


def reviewed_bundles(api: Api, repo: str, sha: str) -> tuple[int | None, dict[str, str]]:
    """The merged PR of commit `sha` and the bundle sha256 per stack its review comment records."""
    pulls = json.loads(api([f"repos/{repo}/commits/{sha}/pulls"], None))
    merged = [p for p in pulls if p.get("merged_at")]
    if not merged:
        return None, {}
    number = int(merged[0]["number"])
    found = find_marked(listing(api, f"repos/{repo}/issues/{number}/comments"), review.MARKER)
    if found is None:
        return number, {}
    match = _HASHES.search(str(found.get("body", "")))
    items = match[1].split() if match else []
    return number, dict(item.split("=", 1) for item in items if "=" in item)


def check_bundle(
    api: Api, repo: str, sha: str, bundle: Path, stacks: Sequence[str]
) -> tuple[bool, str]:
    """Whether `bundle` is the one the merged PR's preview reported for every stack, and why."""
    actual = hashlib.sha256(bundle.read_bytes()).hexdigest()
    number, reviewed = reviewed_bundles(api, repo, sha)
    if number is None:
        return False, f"commit {sha[:12]} came from no merged pull request: nothing was reviewed"
    missing = [s for s in stacks if s not in reviewed]
    if missing:
        return False, (
            f"PR #{number}'s review records no bundle for {', '.join(missing)} (its preview did "
            "not finish, or came from a fork): nothing to compare with"
        )
    differing = [s for s in stacks if reviewed[s] != actual]
    if differing:
        return False, (
            f"the bundle built for {sha[:12]} (sha256 {actual}) is not the one PR #{number}'s "
            f"preview reported for {', '.join(differing)} ({reviewed[differing[0]]}): main moved "
            "since the preview; update the PR's branch or re-run its preview before merging"
        )
    return True, f"bundle sha256 {actual} is the one PR #{number}'s preview reported"


# --- command line ----------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sticky.py", description="The review's GitHub side, through `gh api`."
    )
    commands = parser.add_subparsers(
        dest="command", required=True, metavar="{comment,labels,drift-issue,check-bundle}"
    )

    def command(name: str, help_: str, example: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_, description=help_, epilog=f"example: {example}")
        sub.add_argument("--repo", required=True, help="owner/name")
        return sub

    comment = command(
        "comment",
        "edit the PR's review comment in place (found by its marker on any page), or post it",
        "python3 .ci/sticky.py comment --repo acme/dataplatform --pr 17 --body comment.md",
    )
    comment.add_argument("--pr", type=int, required=True)
    comment.add_argument("--body", type=Path, required=True, help="review.py's comment.md")
    label = command(
        "labels",
        "write the PR's current labels, one a line",
        "python3 .ci/sticky.py labels --repo acme/dataplatform --pr 17 --out labels.txt",
    )
    label.add_argument("--pr", type=int, required=True)
    label.add_argument("--out", type=Path, required=True)
    drift = command(
        "drift-issue",
        "open or update the stack's drift issue when it drifted, close it when not",
        "python3 .ci/sticky.py drift-issue --repo acme/dataplatform --stack prod "
        "--review build/drift/prod/review",
    )
    drift.add_argument("--stack", required=True)
    drift.add_argument("--review", type=Path, required=True, help="review.py render --kind drift")
    drift.add_argument("--run-url")
    bundle = command(
        "check-bundle",
        "exit 1 unless the bundle is the one the merged PR's preview reported",
        "python3 .ci/sticky.py check-bundle --repo acme/dataplatform --sha $GITHUB_SHA "
        "--bundle build/lambda/processor.zip",
    )
    bundle.add_argument("--sha", required=True, help="the commit being deployed")
    bundle.add_argument("--bundle", type=Path, required=True)
    bundle.add_argument("--stacks", nargs="+", default=["dev", "prod"])
    return parser


def main(argv: Sequence[str] | None = None, api: Api = gh_api) -> int:
    """`python3 .ci/sticky.py COMMAND ...`; see `--help`."""
    options = _parser().parse_args(argv)
    try:
        if options.command == "comment":
            body = options.body.read_text(encoding="utf-8")
            print(f"review comment {upsert_comment(api, options.repo, options.pr, body)}")
        elif options.command == "labels":
            found = labels(api, options.repo, options.pr)
            options.out.write_text("".join(f"{name}\n" for name in found), encoding="utf-8")
        elif options.command == "drift-issue":
            verdict = json.loads((options.review / "verdict.json").read_text(encoding="utf-8"))
            if verdict["failed"]:
                print(
                    f"::error title=drift::the drift check of {options.stack} failed: see the log"
                )
                return 1
            drifted = verdict["changes"].get(options.stack, 0) > 0
            body = (options.review / "comment.md").read_text(encoding="utf-8")
            done = drift_issue(
                api, options.repo, options.stack, body, drifted=drifted, run_url=options.run_url
            )
            print(f"drift issue of {options.stack}: {done}")
        else:
            ok, why = check_bundle(api, options.repo, options.sha, options.bundle, options.stacks)
            print(why if ok else f"::error title=reviewed bundle::{why}")
            return 0 if ok else 1
    except (GitHubError, OSError, ValueError, KeyError) as error:
        print(f"::error title={options.command}::{error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

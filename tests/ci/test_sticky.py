"""The review's GitHub side (.ci/sticky.py) against a fake GitHub that pages like the real one."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import review
import sticky

REPO = "acme/dataplatform"
PAGE = 100


class FakeGitHub:
    """Comments, issues and pulls of one repository, served to `gh api` arguments.

    Listings only come whole with `--paginate` (as gh prints them: one JSON array per page);
    without it, only the first page, which is what made pulumi/actions miss its own comment.
    """

    def __init__(self) -> None:
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.issues: list[dict[str, Any]] = []
        self.pulls: dict[int, dict[str, Any]] = {}
        self.commit_pulls: dict[str, list[dict[str, Any]]] = {}
        self.calls: list[tuple[list[str], Mapping[str, Any] | None]] = []
        self.next_id = 1000

    def comment(self, pr: int, body: str, login: str = sticky.BOT) -> dict[str, Any]:
        self.next_id += 1
        item = {"id": self.next_id, "user": {"login": login}, "body": body}
        self.comments.setdefault(pr, []).append(item)
        return item

    def _list(self, items: list[dict[str, Any]], paginate: bool) -> str:
        chunks = [items[i : i + PAGE] for i in range(0, len(items), PAGE)] or [[]]
        return "\n".join(json.dumps(chunk) for chunk in (chunks if paginate else chunks[:1]))

    def __call__(self, args: Sequence[str], body: Mapping[str, Any] | None) -> str:
        self.calls.append((list(args), body))
        args = list(args)
        paginate = "--paginate" in args
        method = args[args.index("-X") + 1] if "-X" in args else "GET"
        path = args[-1].split("?")[0]
        parts = path.split("/")[3:]  # after repos/acme/dataplatform
        if parts[0] == "issues" and parts[-1] == "comments" and len(parts) == 3:
            pr = int(parts[1])
            if method == "POST":
                assert body is not None
                return json.dumps(self.comment(pr, str(body["body"])))
            return self._list(self.comments.get(pr, []), paginate)
        if parts[:2] == ["issues", "comments"] and method == "PATCH":
            [item] = [c for cs in self.comments.values() for c in cs if c["id"] == int(parts[2])]
            item.update(body or {})
            return json.dumps(item)
        if parts == ["issues"]:
            if method == "POST":
                assert body is not None
                issue = {
                    "number": len(self.issues) + 1,
                    "state": "open",
                    "user": {"login": sticky.BOT},
                    **body,
                }
                self.issues.append(issue)
                return json.dumps(issue)
            return self._list([i for i in self.issues if i["state"] == "open"], paginate)
        if parts[0] == "issues" and len(parts) == 2 and method == "PATCH":
            [issue] = [i for i in self.issues if i["number"] == int(parts[1])]
            issue.update(body or {})
            return json.dumps(issue)
        if parts[0] == "pulls":
            return json.dumps(self.pulls[int(parts[1])])
        if parts[0] == "commits" and parts[2] == "pulls":
            return json.dumps(self.commit_pulls.get(parts[1], []))
        raise AssertionError(f"unexpected call {args}")


@pytest.fixture
def github() -> FakeGitHub:
    return FakeGitHub()


def test_the_comment_on_a_later_page_is_edited_not_duplicated(github: FakeGitHub) -> None:
    for n in range(150):
        github.comment(17, f"review comment {n}", login="someone")
    ours = github.comment(17, f"{review.MARKER}\nold green preview")
    assert sticky.upsert_comment(github, REPO, 17, f"{review.MARKER}\n❌ failed") == "updated"
    assert ours["body"] == f"{review.MARKER}\n❌ failed"
    assert len(github.comments[17]) == 151
    listing_args = github.calls[0][0]
    assert listing_args == ["--paginate", f"repos/{REPO}/issues/17/comments?per_page=100"]


def test_a_comment_that_quotes_the_marker_is_not_ours(github: FakeGitHub) -> None:
    quoted = github.comment(17, f"why does {review.MARKER} show?", login="reviewer")
    assert sticky.upsert_comment(github, REPO, 17, f"{review.MARKER}\nnew") == "created"
    assert quoted["body"] == f"why does {review.MARKER} show?"
    assert github.comments[17][-1]["user"]["login"] == sticky.BOT


def test_labels_are_read_now_from_the_pull_request(github: FakeGitHub, tmp_path: Path) -> None:
    github.pulls[17] = {"labels": [{"name": "documentation"}, {"name": review.ACCEPT_LABEL}]}
    out = tmp_path / "labels.txt"
    assert sticky.main(["labels", "--repo", REPO, "--pr", "17", "--out", str(out)], github) == 0
    assert out.read_text(encoding="utf-8") == f"documentation\n{review.ACCEPT_LABEL}\n"


def test_drift_opens_then_updates_then_closes_one_issue_per_stack(github: FakeGitHub) -> None:
    github.issues.append(  # a pull request is an issue to the API: never ours
        {"number": 99, "state": "open", "pull_request": {}, "user": {"login": sticky.BOT},
         "body": review.DRIFT_MARKER.format(stack="prod")}
    )  # fmt: skip
    body = review.DRIFT_MARKER.format(stack="prod") + "\n1 to update"
    assert sticky.drift_issue(github, REPO, "prod", body, drifted=True, run_url=None) == "opened"
    [issue] = [i for i in github.issues if "pull_request" not in i]
    assert issue["labels"] == [sticky.DRIFT_LABEL]
    assert "prod" in issue["title"]
    dev = review.DRIFT_MARKER.format(stack="dev") + "\nother stack"
    assert sticky.drift_issue(github, REPO, "dev", dev, drifted=True, run_url=None) == "opened"
    again = body + " and 1 to delete"
    assert sticky.drift_issue(github, REPO, "prod", again, drifted=True, run_url=None) == "updated"
    assert issue["body"] == again
    done = sticky.drift_issue(github, REPO, "prod", "", drifted=False, run_url="https://run/1")
    assert done == "closed"
    assert issue["state"] == "closed"
    assert (
        "No drift any more in `prod` ([run](https://run/1))"
        in github.comments[issue["number"]][0]["body"]
    )
    assert sticky.drift_issue(github, REPO, "prod", "", drifted=False, run_url=None) == (
        "nothing to do"
    )
    assert [i["state"] for i in github.issues if "dev" in i.get("title", "")] == ["open"]


def drift_review(tmp_path: Path, *, failed: bool, changes: int) -> Path:
    folder = tmp_path / "review"
    folder.mkdir()
    verdict = {"failed": ["prod"] if failed else [], "changes": {"prod": changes}}
    (folder / "verdict.json").write_text(json.dumps(verdict), encoding="utf-8")
    (folder / "comment.md").write_text(review.DRIFT_MARKER.format(stack="prod"), encoding="utf-8")
    return folder


def test_a_failed_drift_check_fails_and_touches_no_issue(
    github: FakeGitHub, tmp_path: Path
) -> None:
    folder = drift_review(tmp_path, failed=True, changes=0)
    args = ["drift-issue", "--repo", REPO, "--stack", "prod", "--review", str(folder)]
    assert sticky.main(args, github) == 1
    assert github.calls == []


def test_a_drift_opens_the_issue_from_the_rendered_review(
    github: FakeGitHub, tmp_path: Path
) -> None:
    folder = drift_review(tmp_path, failed=False, changes=3)
    args = ["drift-issue", "--repo", REPO, "--stack", "prod", "--review", str(folder)]
    assert sticky.main(args, github) == 0
    assert github.issues[0]["body"] == review.DRIFT_MARKER.format(stack="prod")


def merged_pr(github: FakeGitHub, sha: str, hashes: dict[str, str]) -> None:
    github.commit_pulls[sha] = [{"number": 17, "merged_at": "2026-12-01T20:00:00Z"}]
    recorded = " ".join(f"{stack}={value}" for stack, value in hashes.items())
    github.comment(17, f"{review.MARKER}\n...\n<!-- bundle-sha256 {recorded} -->\n")


def test_the_reviewed_bundle_passes_and_any_other_is_refused(
    github: FakeGitHub, tmp_path: Path
) -> None:
    bundle = tmp_path / "processor.zip"
    bundle.write_bytes(b"the bundle's bytes")
    digest = hashlib.sha256(b"the bundle's bytes").hexdigest()
    merged_pr(github, "a" * 40, {"dev": digest, "prod": digest})
    ok, why = sticky.check_bundle(github, REPO, "a" * 40, bundle, ["dev", "prod"])
    assert ok, why
    bundle.write_bytes(b"rebuilt after the review")
    ok, why = sticky.check_bundle(github, REPO, "a" * 40, bundle, ["dev", "prod"])
    assert not ok
    assert "is not the one PR #17's preview reported for dev, prod" in why


def test_no_merged_pr_or_no_recorded_hash_refuses(github: FakeGitHub, tmp_path: Path) -> None:
    bundle = tmp_path / "processor.zip"
    bundle.write_bytes(b"x")
    ok, why = sticky.check_bundle(github, REPO, "b" * 40, bundle, ["dev", "prod"])
    assert not ok
    assert "no merged pull request" in why
    merged_pr(github, "c" * 40, {"dev": hashlib.sha256(b"x").hexdigest()})
    ok, why = sticky.check_bundle(github, REPO, "c" * 40, bundle, ["dev", "prod"])
    assert not ok
    assert "records no bundle for prod" in why


def test_the_real_gh_gets_the_body_as_json_on_stdin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = tmp_path / "record.json"
    fake = tmp_path / "gh"
    fake.write_text(
        "#!/usr/bin/env python3\n"
        "import json, sys\n"
        f"open({str(record)!r}, 'w').write(json.dumps([sys.argv[1:], sys.stdin.read()]))\n"
        "print('{}')\n",
        encoding="utf-8",
    )
    fake.chmod(fake.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    body = {"body": "it's $(not) `run`"}
    sticky.gh_api(["-X", "PATCH", f"repos/{REPO}/issues/comments/1"], body)
    args, stdin = json.loads(record.read_text(encoding="utf-8"))
    assert args == ["api", "-X", "PATCH", f"repos/{REPO}/issues/comments/1", "--input", "-"]
    assert json.loads(stdin) == body


def test_a_gh_failure_is_one_error_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    def broken(args: Sequence[str], body: Mapping[str, Any] | None) -> str:
        raise sticky.GitHubError("gh api repos/x: HTTP 403: Resource not accessible")

    (tmp_path / "c.md").write_text("x", encoding="utf-8")
    args = ["comment", "--repo", REPO, "--pr", "1", "--body", str(tmp_path / "c.md")]
    assert sticky.main(args, broken) == 1
    assert "HTTP 403" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["comment", "labels", "drift-issue", "check-bundle"])
def test_every_command_has_help_with_an_example(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        sticky.main([command, "--help"])
    assert done.value.code == 0
    assert f"example: python3 .ci/sticky.py {command}" in capsys.readouterr().out

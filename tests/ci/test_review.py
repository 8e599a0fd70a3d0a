"""The PR review renderer (.ci/review.py) over preview fixtures in `pulumi preview --json`'s shape.

The fixtures and where their shape comes from: tests/ci/fixtures/previews/README.md.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import review

FIXTURES = Path(__file__).parent / "fixtures" / "previews"
RUN = "https://github.com/acme/dataplatform/actions/runs/42"


def reports(case: str) -> list[review.StackReport]:
    return [review.load_preview(stack, FIXTURES / case / stack) for stack in ("dev", "prod")]


def rendered(case: str, labels: tuple[str, ...] = ()) -> review.Rendered:
    return review.render(reports(case), labels=labels, run_url=RUN, commit="0123456789abcdef")


def header_row(comment: str, stack: str) -> list[str]:
    [row] = [line for line in comment.splitlines() if line.startswith(f"| `{stack}` |")]
    return [cell.strip() for cell in row.strip("|").split("|")]


def section(comment: str, title: str) -> str:
    """The text of a `### title` section, up to the next heading or <details>."""
    start = comment.index(f"### {title}")
    end = min(
        (i for i in (comment.find("\n### ", start + 1), comment.find("<details>", start)) if i > 0),
        default=len(comment),
    )
    return comment[start:end]


def balanced(comment: str) -> None:
    assert comment.count("<details>") == comment.count("</details>")
    fences = [line for line in comment.splitlines() if re.fullmatch(r"`{3,}\w*", line)]
    assert len(fences) % 2 == 0, "an unclosed code fence"


# --- the fixtures -----------------------------------------------------------------------------


def test_no_changes_is_green_with_nothing_to_flag() -> None:
    result = rendered("no-changes")
    assert result.comment.splitlines()[0] == review.MARKER
    for stack in ("dev", "prod"):
        row = header_row(result.comment, stack)
        assert row[1] == "✅ preview"
        assert row[2:6] == ["0", "0", "0", "0"]
        assert row[6] == "✅ dataplatform-security v1.0.0"
    assert "No stateful resource is replaced or deleted" in result.comment
    assert "plan is incomplete" not in result.comment
    assert result.failed == []
    assert result.blocked == []
    assert not result.truncated
    balanced(result.comment)


def test_updates_only_count_and_show_each_property_without_flagging_them() -> None:
    result = rendered("updates-only")
    assert header_row(result.comment, "dev")[2:6] == ["0", "2", "0", "0"]
    assert header_row(result.comment, "prod")[2:6] == ["0", "1", "0", "0"]
    # A log group's update keeps its logs: not a data-loss line.
    assert "Could lose data" not in result.comment
    assert "~   retentionInDays: 14 => 30" in result.comment
    assert "~   memorySize: 1024 => 2048" in result.comment
    assert '+   tags.Owner: "data-team"' in result.comment
    assert result.failed == []
    assert result.blocked == []


def test_a_prod_database_replacement_leads_in_bold_and_blocks_without_the_label() -> None:
    result = rendered("prod-database-replacement")
    comment = result.comment
    losing = section(comment, "⚠️ Could lose data")
    assert (
        "- **`prod`: replace the database `database-instance` (`aws:rds/instance:Instance`), "
        "replacement forced by `dbName`**"
    ) in losing
    # First: before any diff and before the bundle line.
    assert comment.index("Could lose data") < comment.index("<details>")
    assert comment.index("Could lose data") < comment.index("Processor bundle")
    # The three steps of one replacement are one change, counted once.
    assert header_row(comment, "prod")[2:6] == ["0", "1", "1", "0"]
    assert result.blocked == [
        "prod: replace of the database aws:rds/instance:Instance database-instance"
    ]
    assert f"adds the label `{review.ACCEPT_LABEL}`" in comment
    assert '~   dbName: "dataplatform" => "taxi" (forces replacement)' in comment


def test_the_label_accepts_a_prod_replacement_and_dev_alone_never_blocks() -> None:
    accepted = rendered("prod-database-replacement", labels=(review.ACCEPT_LABEL,))
    assert accepted.blocked == []
    assert f"Accepted with the label `{review.ACCEPT_LABEL}`" in accepted.comment
    assert "**`prod`: replace the database" in accepted.comment  # still shown, still bold
    dev_only = review.render(reports("prod-database-replacement")[:1])
    assert dev_only.blocked == []
    assert "**`dev`: replace the database" in dev_only.comment


def test_a_policy_violation_fails_the_stack_with_rule_resource_and_message() -> None:
    result = rendered("policy-violation")
    comment = result.comment
    row = header_row(comment, "dev")
    assert row[1] == "❌ preview failed"
    assert row[6] == "❌ 1 mandatory violation"
    assert header_row(comment, "prod")[6] == "✅ dataplatform-security v1.0.0"
    failed = section(comment, "❌ `dev`")
    assert (
        "| `sqs-encryption` | mandatory | aws:sqs/queue:Queue processor-queue | SQS queues "
        "encrypt messages at rest.<br>set sqsManagedSseEnabled true or kmsMasterKeyId "
        "(messages encrypted at rest) |"
    ) in failed
    assert result.failed == ["dev"]
    assert "~   sqsManagedSseEnabled: true => false" in comment


def test_a_failed_preview_is_red_with_its_error_never_the_last_green_comment() -> None:
    result = rendered("failed-preview")
    comment = result.comment
    assert result.failed == ["dev", "prod"]
    assert header_row(comment, "prod")[1] == "❌ preview failed"
    assert header_row(comment, "prod")[6] == "❔ no verdict: the preview failed"
    # dev's job died before the preview: no counts to show, and the comment says so.
    assert header_row(comment, "dev")[2:6] == ["–", "–", "–", "–"]
    assert "The job stopped before the preview finished" in section(comment, "❌ `dev`")
    assert "as far as the failed stacks got: their plan is incomplete" in comment
    prod = section(comment, "❌ `prod`")
    assert "logRetentionDays: 0 is not a CloudWatch retention" in prod
    assert "Program exited with non-zero exit code: 1" in prod
    assert review.check_verdict_lines(result) == [
        "the dev stack failed: see the PR comment",
        "the prod stack failed: see the PR comment",
    ]


def test_an_over_long_diff_is_cut_to_fit_with_a_note_and_the_whole_of_it_kept() -> None:
    result = rendered("over-long-diff")
    comment, full = result.comment, result.full
    assert len(full) > review.COMMENT_LIMIT  # the case is real
    assert len(comment) <= review.COMMENT_LIMIT
    assert result.truncated
    notes = re.findall(
        r"✂️ (\d+) more lines cut .* artifact `review-report` of \[this run\]", comment
    )
    assert len(notes) == 2  # each stack keeps a share of the room
    # Everything that matters survives the cut: the header, every stateful delete, the gate.
    assert header_row(comment, "prod")[2:6] == ["54", "0", "0", "54"]
    assert comment.count("**`prod`: delete the") == 10
    assert "**`prod`: delete the database `database-instance`" in comment
    assert len(result.blocked) == 10
    # The full report has every line the comment cut.
    for stack_notes, stack in zip(notes, ("dev", "prod"), strict=True):
        assert int(stack_notes) > 0, stack
    assert full.count("\n") - comment.count("\n") >= sum(int(n) for n in notes) - 10
    balanced(comment)
    balanced(full)


def test_no_secret_gets_through_whatever_its_source() -> None:
    result = rendered("secret-in-diff")
    plaintext = [
        "hunter2-plaintext-in-env",
        "AKIA" + "IOSFODNN7EXAMPLE",  # split, so that no scanner takes the test for a leak
        "Sup3r-S3cret",
        "Pr0d-Pa55word",
        "ghp_" + "abcdefghijklmnopqrstuvwxyz0123456789",
    ]
    for text in (result.comment, result.full):
        assert [secret for secret in plaintext if secret in text] == []
    assert '+   environment.variables.DB_PASSWORD: "[secret]"' in result.comment
    assert "postgresql://dataplatform:[secret]@db.internal:5432" in result.comment
    assert '~   secretString: "[secret]" => "[secret]"' in result.comment
    # The fixture really holds them, so the test can fail.
    raw = (FIXTURES / "secret-in-diff" / "dev" / "preview.json").read_text(encoding="utf-8")
    assert "hunter2-plaintext-in-env" in raw


# --- pieces -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("password=hunter2 next", "password=[secret] next"),
        ('{"dbPassword": "' + 'hunter2"}', '{"dbPassword": "[secret]"}'),
        ("https://user:" + "pw@example.com/x", "https://user:[secret]@example.com/x"),
        ("key AKIA" + "IOSFODNN7EXAMPLE", "key [secret]"),
        ("-----BEGIN RSA " + "PRIVATE KEY-----\nMIIE\n-----END RSA PRIVATE KEY-----", "[secret]"),
        # Type tokens and references are not secrets.
        ("aws:secretsmanager/secret:Secret", "aws:secretsmanager/secret:Secret"),
        ("secretArn: arn:aws:secretsmanager:x", "secretArn: arn:aws:secretsmanager:x"),
        ('"secretString": "[secret]"', '"secretString": "[secret]"'),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert review.redact(text) == expected


def test_blind_hides_values_under_secret_keys_but_not_references() -> None:
    value = {
        "password": "x",
        "secretArn": "arn:1",  # pragma: allowlist secret
        "nested": [{"apiKey": "k"}],
        "name": "n",
    }
    assert review.blind(value) == {
        "password": "[secret]",
        "secretArn": "arn:1",  # pragma: allowlist secret
        "nested": [{"apiKey": "[secret]"}],
        "name": "n",
    }


def test_property_paths_and_urns_parse_as_pulumi_writes_them() -> None:
    assert review.path_tokens('tags["a.b"].c[2]') == ["tags", "a.b", "c", 2]
    assert review.split_urn(
        "urn:pulumi:prod::dataplatform::dataplatform:index:Database$aws:rds/instance:Instance"
        "::database-instance"
    ) == ("aws:rds/instance:Instance", "database-instance")


def test_an_iam_policy_change_is_flagged_and_diffed_line_by_line() -> None:
    old = json.dumps({"Statement": [{"Action": ["s3:GetObject"], "Effect": "Allow"}]})
    new = json.dumps({"Statement": [{"Action": ["s3:*"], "Effect": "Allow"}]})
    urn = "urn:pulumi:dev::dataplatform::aws:iam/rolePolicy:RolePolicy::processor-role-policy"
    step = {
        "op": "update",
        "urn": urn,
        "oldState": {"inputs": {"policy": old}},
        "newState": {"inputs": {"policy": new}},
        "detailedDiff": {"policy": {"kind": "update", "inputDiff": True}},
    }
    [change] = review.changes_from_steps([step])
    assert change.changes_access
    assert '-               "s3:GetObject"' in change.lines
    assert '+               "s3:*"' in change.lines
    assert "        …" in change.lines  # the unchanged rest is elided
    comment = review.render([review.StackReport("dev", "preview", True, True, [change])]).comment
    assert "### 🔐 Access changes" in comment
    assert (
        "**`dev`: update `processor-role-policy` (`aws:iam/rolePolicy:RolePolicy`): `policy`**"
        in comment
    )


def test_the_synth_diff_renders_through_the_same_review(tmp_path: Path) -> None:
    bucket = {"type": "aws:s3/bucket:Bucket", "name": "lake-bucket", "parent": "lake", "inputs": {}}
    queue = {"type": "aws:sqs/queue:Queue", "name": "processor-queue", "inputs": {"a": 1}}
    sha = {"sha256": "ab" * 32, "placeholder": True}
    for side, resources in (("base", [bucket, queue]), ("head", [{**queue, "inputs": {"a": 2}}])):
        for stack in ("dev", "prod"):
            manifest = {"stack": stack, "bundle": sha, "resources": resources}
            (tmp_path / f"{side}-{stack}.json").write_text(json.dumps(manifest), encoding="utf-8")
    synth = [review.load_synth(stack, tmp_path) for stack in ("dev", "prod")]
    result = review.render(synth)
    assert header_row(result.comment, "prod")[1:6] == ["✅ offline synth", "0", "1", "0", "1"]
    assert (
        "**`prod`: delete the lake bucket `lake-bucket` (`aws:s3/bucket:Bucket`)**"
        in result.comment
    )
    assert result.blocked == ["prod: delete of the lake bucket aws:s3/bucket:Bucket lake-bucket"]
    assert "not built offline" in result.comment
    assert "+++ pull-request/prod.json" in result.comment  # synth_diff's unified diff


def test_a_synth_failure_on_the_pull_request_is_a_red_stack(tmp_path: Path) -> None:
    (tmp_path / "head-dev.err").write_text("error: dataplatform:x: bad\n", encoding="utf-8")
    [report] = [review.load_synth("dev", tmp_path)]
    assert not report.ok
    assert "dataplatform:x: bad" in review.render([report]).comment


# --- command line -----------------------------------------------------------------------------


def test_render_writes_the_comment_the_report_and_the_verdict(tmp_path: Path) -> None:
    labels = tmp_path / "labels.txt"
    labels.write_text(f"documentation\n{review.ACCEPT_LABEL}\n", encoding="utf-8")
    case = FIXTURES / "prod-database-replacement"
    args = ["render", "--previews", str(case), "--labels-file", str(labels), "--out", str(tmp_path)]
    assert review.main(args) == 0
    comment = (tmp_path / "comment.md").read_text(encoding="utf-8")
    assert comment.startswith(review.MARKER)
    verdict = json.loads((tmp_path / "verdict.json").read_text(encoding="utf-8"))
    assert verdict["blocked"] == []
    assert verdict["failed"] == []
    assert (
        verdict["bundles"]["prod"]
        == json.loads((case / "prod" / "bundle.json").read_text(encoding="utf-8"))["sha256"]
    )
    assert review.main(["check", str(tmp_path / "verdict.json")]) == 0


def test_check_fails_on_a_block_a_failure_or_no_verdict(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert review.main(["render", "--previews", str(FIXTURES / "prod-database-replacement"),
                        "--out", str(tmp_path)]) == 0  # fmt: skip
    assert review.main(["check", str(tmp_path / "verdict.json")]) == 1
    assert f"adds the label {review.ACCEPT_LABEL}" in capsys.readouterr().out
    assert review.main(["check", str(tmp_path / "missing.json")]) == 1
    assert "the review did not render" in capsys.readouterr().out


def test_drift_renders_one_stack_under_its_own_marker(tmp_path: Path) -> None:
    case = FIXTURES / "updates-only"
    args = ["render", "--kind", "drift", "--previews", str(case), "--stacks", "dev", "--out",
            str(tmp_path)]  # fmt: skip
    assert review.main(args) == 0
    body = (tmp_path / "comment.md").read_text(encoding="utf-8")
    assert body.startswith(review.DRIFT_MARKER.format(stack="dev"))
    assert header_row(body, "dev")[1] == "✅ drift check"
    assert json.loads((tmp_path / "verdict.json").read_text(encoding="utf-8"))["changes"] == {
        "dev": 2
    }


@pytest.mark.parametrize("command", ["render", "check", "redact"])
def test_every_command_has_help_with_an_example(
    command: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        review.main([command, "--help"])
    assert done.value.code == 0
    text = capsys.readouterr().out
    assert "example: python3 .ci/review.py " + command in text
    if command == "render":
        assert "{preview,drift}" in text


def test_a_drift_is_the_finding_not_a_failure_of_the_check() -> None:
    # --expect-no-changes exits 255 when there are changes: for a PR preview that fails, for
    # the drift check it is what it looks for.
    drift = review.load_preview("prod", FIXTURES / "drift" / "prod", "drift")
    assert drift.ok
    assert [(c.op, c.name) for c in drift.changed] == [("update", "processor-queue")]
    assert not review.load_preview("prod", FIXTURES / "drift" / "prod", "preview").ok
    calm = review.load_preview("dev", FIXTURES / "drift" / "dev", "drift")
    assert calm.ok
    assert calm.changed == []
    body = review.render([drift], title="Drift", intro="why", artifact="drift-report-prod")
    assert "~   visibilityTimeoutSeconds: 900 => 3600" in body.comment
    assert body.failed == []


def test_the_docs_show_what_the_renderer_writes() -> None:
    docs = (Path(__file__).parents[2] / "docs" / "ci-cd.md").read_text(encoding="utf-8")
    example = review.render(
        reports("prod-database-replacement"),
        run_url="https://github.com/acme/dataplatform/actions/runs/123",
        commit="0123456789abcdef",
    ).comment.rstrip("\n")
    assert f"````markdown\n{example}\n````" in docs
    assert f"**The label `{review.ACCEPT_LABEL}`**" in docs


def test_redact_scrubs_the_raw_output_in_place_and_keeps_it_readable(tmp_path: Path) -> None:
    shutil.copytree(FIXTURES / "secret-in-diff", tmp_path / "raw")
    assert review.main(["redact", str(tmp_path / "raw")]) == 0
    for stack in ("dev", "prod"):
        folder = tmp_path / "raw" / stack
        text = "".join(p.read_text(encoding="utf-8") for p in sorted(folder.iterdir()))
        for secret in ("hunter2-plaintext-in-env", "Sup3r-S3cret", "Pr0d-Pa55word", "ghp_"):
            assert secret not in text, (stack, secret)
        json.loads((folder / "preview.json").read_text(encoding="utf-8"))  # still JSON
        for line in (folder / "events.jsonl").read_text(encoding="utf-8").splitlines():
            json.loads(line)
    # And the review of the scrubbed output is the review of the original.
    scrubbed = [review.load_preview(s, tmp_path / "raw" / s) for s in ("dev", "prod")]
    assert review.render(scrubbed).comment == review.render(reports("secret-in-diff")).comment

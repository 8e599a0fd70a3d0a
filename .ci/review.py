"""The pull request's infrastructure review: one Markdown comment for every stack, risk first.

Input is what each stack's preview job leaves behind (`pulumi preview --json` on stdout, the
`--event-log` JSON lines, stderr, the exit code, `dataplatform bundle`'s line), or, for pull
requests without cloud credentials, the offline synth manifests (compared by `synth_diff`). The
output is one comment: a line per stack (✅/❌, counts, policy pack), then in bold every replace
or delete of a stateful resource and every IAM or security group change, then the errors and
policy violations of a failed preview, the processor bundle's sha256 and size, and the full
diff of each stack in a collapsed `<details>`, cut to fit GitHub's comment limit (the whole
report goes to the run's artifact). Secrets appear as `[secret]`, whatever their source.

Why `.ci/` and not `dataplatform/`: only CI runs this, and it must run precisely when something
went wrong, including when `uv sync` or the bundle build failed before the preview did. So it is
standard library only and runs with the runner's `python3`, like `synth_diff.py` beside it, whose
comparison it reuses; a `dataplatform` subcommand would need the synced environment it is meant
to report on. Run it locally the same way: `python3 .ci/review.py render --help`.
"""

from __future__ import annotations

import argparse
import difflib
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import synth_diff

MARKER = "<!-- dataplatform-preview -->"
"""Hidden first line of the sticky PR comment; `sticky.py` finds the comment by it."""
DRIFT_MARKER = "<!-- dataplatform-drift:{stack} -->"
ACCEPT_LABEL = "accept-prod-data-loss"
"""The PR label that lets a prod replace/delete of a stateful resource pass review."""
GATED_STACKS = frozenset({"prod"})
COMMENT_LIMIT = 65_536
"""GitHub refuses a comment body longer than this (in characters)."""
COMMENT_BUDGET = COMMENT_LIMIT - 1_536
"""What the renderer aims for: room for the truncation notes and the footer."""
MAX_LISTED = 60
"""Risky changes, violations and errors listed per section before "and N more"."""
MAX_ERROR_CHARS = 3_000
MAX_VALUE_CHARS = 2_000
ARTIFACT = "review-report"
"""The review job's artifact: the whole report and the raw preview output."""

STATEFUL_TYPES = {
    "aws:s3/bucket:Bucket": "lake bucket",
    "aws:s3/bucketV2:BucketV2": "lake bucket",
    "aws:rds/instance:Instance": "database",
    "aws:rds/cluster:Cluster": "database",
    "aws:kms/key:Key": "KMS key",
    "aws:secretsmanager/secret:Secret": "secret",  # pragma: allowlist secret
    "aws:cloudwatch/logGroup:LogGroup": "log group",
    "aws:sqs/queue:Queue": "queue",
}
"""Resource types whose replacement or deletion loses data (objects, rows, keys, logs, messages)."""
ACCESS_TYPE_PREFIXES = (
    "aws:iam/",
    "aws:ec2/securityGroup:",
    "aws:ec2/securityGroupRule:",
    "aws:ec2/defaultSecurityGroup:",
    "aws:vpc/securityGroupIngressRule:",
    "aws:vpc/securityGroupEgressRule:",
)
"""IAM and security group resources: any change to them changes who may reach what."""

REPLACING_OPS = frozenset({"replace", "create-replacement", "delete-replaced"})
DELETING_OPS = frozenset({"delete", "discard"})
UNCHANGED_OPS = frozenset({"same", "read"})
COUNTED = ("create", "update", "replace", "delete")
OP_SIGNS = {
    "create": "+",
    "update": "~",
    "replace": "+-",
    "delete": "-",
    "refresh": "~",
    "import": "=",
}

SECRET_KEY = re.compile(
    r"(?i)(password|passwd|passphrase|secret(?!sManager)|token|api[-_]?key|private[-_]?key|"
    r"credentials?)(?![a-z]*(arn|id|name|kmskeyid)$)"
)
"""Property names whose string values are secrets (`dbPassword`, `secretString`, `apiKey`),
but not the names of references to them (`secretArn`, `kmsKeyId`)."""
SECRET_TEXT = [
    # Cloud and forge credentials, by their documented formats.
    (re.compile(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b"), "[secret]"),
    (re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}\b"), "[secret]"),
    (re.compile(r"\bgithub_pat_[A-Za-z0-9_]{40,}\b"), "[secret]"),
    (re.compile(r"\bpul-[0-9a-f]{40}\b"), "[secret]"),
    (re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}\b"), "[secret]"),
    (
        re.compile(
            r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?(-----END [A-Z ]*PRIVATE KEY-----|\Z)", re.S
        ),
        "[secret]",
    ),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\b"), "[secret]"),
    # user:password@ in a URL.
    (re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://[^/\s:@]+):[^@\s/]+@"), r"\1:[secret]@"),
    # "password": "x", password=x, password: x (a colon then a space: not a type token).
    (
        re.compile(
            r"(?i)(\"[a-z_]*(?:password|passwd|passphrase|secret|token|api[-_]?key)[a-z_]*\"\s*:\s*\")"
            r"(?!\[secret\])[^\"]+(\")"
        ),
        r"\1[secret]\2",
    ),
    (
        re.compile(
            r"(?i)\b([a-z_]*(?:password|passwd|passphrase|token|api[-_]?key)[a-z_]*)"
            r"(\s*=\s*|:\s+)(?!\[secret\])[^\s\"',;&]+"
        ),
        r"\1\2[secret]",
    ),
]
"""Secret-looking text in free-form output (errors, messages), replaced before anything is shown."""


def redact(text: str) -> str:
    """`text` with everything that looks like a credential replaced by `[secret]`."""
    for pattern, replacement in SECRET_TEXT:
        text = pattern.sub(replacement, text)
    return text


# --- the model -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One resource's planned operation."""

    op: str
    type: str
    name: str
    lines: tuple[str, ...] = ()
    """The property-level diff, one line each (`~ retentionInDays: 14 => 30`)."""
    paths: tuple[str, ...] = ()
    """The properties that differ (or force the replacement)."""
    replace_reasons: tuple[str, ...] = ()

    @property
    def stateful(self) -> str | None:
        """What data the resource holds, when it holds any."""
        return STATEFUL_TYPES.get(self.type)

    @property
    def loses_data(self) -> bool:
        """A replace or delete of a resource that holds data."""
        return self.stateful is not None and self.op in ("replace", "delete")

    @property
    def changes_access(self) -> bool:
        """A change of any kind to IAM or a security group."""
        return self.type.startswith(ACCESS_TYPE_PREFIXES)


@dataclass(frozen=True)
class Violation:
    """A policy pack's finding."""

    pack: str
    policy: str
    level: str
    resource: str
    message: str


@dataclass(frozen=True)
class Bundle:
    """The processor bundle a stack was previewed with."""

    sha256: str
    zipped_bytes: int | None = None
    unzipped_bytes: int | None = None
    placeholder: bool = False
    """The synth's stand-in hash: no bundle was built."""


@dataclass
class StackReport:
    """Everything the comment says about one stack."""

    stack: str
    source: str
    """"preview" (a real `pulumi preview`), "synth" (offline), or "drift" (`--refresh`)."""
    ran: bool
    """The command ran to the end and printed its result."""
    ok: bool
    """It succeeded: exit status 0 and no error."""
    changes: list[Change] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    policy_packs: dict[str, str] = field(default_factory=dict)
    violations: list[Violation] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    bundle: Bundle | None = None
    diff_text: str | None = None
    """A ready-made diff (synth's unified diff); otherwise built from `changes`."""

    @property
    def changed(self) -> list[Change]:
        """The changes that do something."""
        return [c for c in self.changes if c.op not in UNCHANGED_OPS]


# --- reading `pulumi preview --json` -------------------------------------------------------


def split_urn(urn: str) -> tuple[str, str]:
    """(type, name) of `urn:pulumi:<stack>::<project>::<parent$...$type>::<name>`."""
    parts = urn.split("::", 3)
    if len(parts) < 4:
        return "(unknown)", urn
    return parts[2].rsplit("$", 1)[-1], parts[3]


_PATH_TOKEN = re.compile(r'\["((?:[^"\\]|\\.)*)"\]|\[(\d+)\]|\.?([^.\[\]]+)')


def path_tokens(path: str) -> list[str | int]:
    """Pulumi's property path `a.b[0]["c.d"]` as keys and indexes."""
    tokens: list[str | int] = []
    for quoted, index, plain in _PATH_TOKEN.findall(path):
        if index:
            tokens.append(int(index))
        else:
            tokens.append(quoted or plain)
    return tokens


_MISSING = object()


def lookup(value: Any, tokens: Sequence[str | int]) -> Any:
    """The value at `tokens`, or `_MISSING`."""
    for token in tokens:
        found = (isinstance(token, int) and isinstance(value, list) and token < len(value)) or (
            isinstance(token, str) and isinstance(value, dict) and token in value
        )
        if not found:
            return _MISSING
        value = value[token]
    return value


def blind(value: Any, key: str = "") -> Any:
    """`value` with every string under a secret-looking key replaced by `[secret]`."""
    if isinstance(value, dict):
        return {k: blind(v, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [blind(v, key) for v in value]
    if isinstance(value, str) and key and SECRET_KEY.search(key) and value != "[secret]":
        return "[secret]"
    return value


def show(value: Any, key: str = "") -> str:
    """A property value as one line of JSON, secrets blinded (cut when very long)."""
    text = json.dumps(blind(value, key), sort_keys=True, ensure_ascii=False)
    if len(text) > MAX_VALUE_CHARS:
        text = f"{text[: MAX_VALUE_CHARS - 1]}… ({len(text)} characters)"
    return text


def _document(value: Any) -> list[str] | None:
    """The lines of a JSON document held in a string (an IAM policy), pretty; else None."""
    if not isinstance(value, str) or not value.lstrip().startswith(("{", "[")):
        return None
    try:
        parsed = json.loads(value)
    except ValueError:
        return None
    return json.dumps(blind(parsed), indent=2, sort_keys=True).splitlines()


def value_lines(sign: str, path: str, value: Any, key: str = "") -> list[str]:
    """`value` under `path` as diff lines: leaves one a line, JSON documents pretty."""
    key = key or path.rsplit(".", 1)[-1]
    if isinstance(value, dict) and value:
        return [
            line
            for k in sorted(value)
            for line in value_lines(sign, f"{path}.{k}", value[k], str(k))
        ]
    document = _document(value)
    if document is not None and len(document) > 1:
        return [f"{sign}   {path}:", *(f"{sign}       {line}" for line in document)]
    return [f"{sign}   {path}: {show(value, key)}"]


def _changed_value(path: str, key: str, before: Any, after: Any, forces: str) -> list[str]:
    old_doc, new_doc = _document(before), _document(after)
    if old_doc is not None and new_doc is not None:
        body = list(difflib.unified_diff(old_doc, new_doc, lineterm="", n=2))[2:]
        shown = [
            "        …" if line.startswith("@@") else f"{line[0]}       {line[1:]}" for line in body
        ]
        return [f"~   {path}:{forces}", *shown]
    return [f"~   {path}: {show(before, key)} => {show(after, key)}{forces}"]


def _inputs(state: Mapping[str, Any] | None) -> dict[str, Any]:
    inputs = dict((state or {}).get("inputs") or {})
    inputs.pop("__defaults", None)
    return inputs


def _property_lines(step: Mapping[str, Any], op: str) -> tuple[list[str], list[str]]:
    """The property diff of a step as lines, and the paths that differ."""
    old, new = _inputs(step.get("oldState")), _inputs(step.get("newState"))
    if op == "create":
        lines = [line for key in sorted(new) for line in value_lines("+", key, new[key])]
        return lines, sorted(new)
    if op == "delete":
        lines = [line for key in sorted(old) for line in value_lines("-", key, old[key])]
        return lines, []
    detailed: Mapping[str, Any] = step.get("detailedDiff") or {}
    paths = sorted(detailed) or sorted(
        {str(p) for p in [*(step.get("diffReasons") or []), *(step.get("replaceReasons") or [])]}
    )
    lines = []
    for path in paths:
        tokens = path_tokens(path)
        key = next((str(t) for t in reversed(tokens) if isinstance(t, str)), path)
        kind = str((detailed.get(path) or {}).get("kind", "update"))
        before, after = lookup(old, tokens), lookup(new, tokens)
        forces = " (forces replacement)" if kind.endswith("-replace") else ""
        if kind.startswith("add") or before is _MISSING:
            shown = show(after, key) if after is not _MISSING else "(known after apply)"
            lines.append(f"+   {path}: {shown}{forces}")
        elif kind.startswith("delete") or after is _MISSING:
            lines.append(f"-   {path}: {show(before, key)}{forces}")
        else:
            lines.extend(_changed_value(path, key, before, after, forces))
    return lines, paths


def changes_from_steps(steps: Iterable[Mapping[str, Any]]) -> list[Change]:
    """One change per resource: a replacement's three steps become one `replace`."""
    by_urn: dict[str, list[Mapping[str, Any]]] = {}
    for step in steps:
        by_urn.setdefault(str(step.get("urn", "")), []).append(step)
    changes = []
    for urn, group in by_urn.items():
        ops = {str(s.get("op", "")) for s in group}
        type_, name = split_urn(urn)
        if type_ == "pulumi:pulumi:Stack" and ops <= UNCHANGED_OPS:
            continue
        if ops & REPLACING_OPS:
            op = "replace"
            step = next((s for s in group if s.get("op") == "replace"), group[0])
        elif ops & DELETING_OPS:
            op, step = "delete", group[0]
        else:
            step = group[0]
            op = str(step.get("op", "update"))
        reasons = tuple(sorted({str(r) for s in group for r in s.get("replaceReasons") or []}))
        lines, paths = _property_lines(step, "update" if op == "replace" else op)
        changes.append(
            Change(op, type_, name, tuple(lines), tuple(paths), reasons if op == "replace" else ())
        )
    return changes


def _counts(summary: Mapping[str, Any] | None, changes: Sequence[Change]) -> dict[str, int]:
    if summary:
        return {str(op): int(n) for op, n in summary.items() if op not in UNCHANGED_OPS and n}
    counts: dict[str, int] = {}
    for change in changes:
        if change.op not in UNCHANGED_OPS:
            counts[change.op] = counts.get(change.op, 0) + 1
    return counts


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def read_events(path: Path) -> list[dict[str, Any]]:
    """The engine events of `--event-log` (one JSON object a line); unreadable lines skipped."""
    events = []
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return []
    for line in text.splitlines():
        try:
            event = json.loads(line)
        except ValueError:
            continue  # a line cut short when the CLI was killed
        if isinstance(event, dict):
            events.append(event)
    return events


def _bundle(path: Path) -> Bundle | None:
    data = _read_json(path)
    if not isinstance(data, dict) or not isinstance(data.get("sha256"), str):
        return None
    return Bundle(
        sha256=data["sha256"],
        zipped_bytes=data.get("zipped_bytes"),
        unzipped_bytes=data.get("unzipped_bytes"),
        placeholder=bool(data.get("placeholder")),
    )


def load_preview(stack: str, directory: Path, source: str = "preview") -> StackReport:
    """One stack's report from its preview job's files (any of them may be missing).

    `preview.json`: `pulumi preview --json`'s digest; `events.jsonl`: `--event-log`; `stderr.txt`;
    `exit-code`; `bundle.json`: `dataplatform bundle`'s line.
    """
    digest = _read_json(directory / "preview.json")
    events = read_events(directory / "events.jsonl")
    try:
        exit_code: int | None = int((directory / "exit-code").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        exit_code = None
    ran = isinstance(digest, dict) and exit_code is not None
    digest = digest if isinstance(digest, dict) else {}
    changes = changes_from_steps(digest.get("steps") or [])
    errors = [
        str(d.get("message", "")).strip()
        for d in digest.get("diagnostics") or []
        if d.get("severity") == "error"
    ]
    violations, packs = [], {}
    for event in events:
        if policy := event.get("policyEvent"):
            urn = str(policy.get("resourceUrn") or "")
            violations.append(
                Violation(
                    pack=str(policy.get("policyPackName", "")),
                    policy=str(policy.get("policyName", "")),
                    level=str(policy.get("enforcementLevel", "")),
                    resource=" ".join(split_urn(urn)) if urn else "(the stack)",
                    message=str(policy.get("message", "")).strip(),
                )
            )
        if summary := event.get("summaryEvent"):
            # The CLI writes this one field in PascalCase (apitype.SummaryEvent).
            packs = {str(k): str(v) for k, v in (summary.get("PolicyPacks") or {}).items()}
        if error := (event.get("diagnosticEvent") or {}):
            message = str(error.get("prefix", "")) + str(error.get("message", ""))
            if error.get("severity") == "error" and not digest and message.strip():
                errors.append(message.strip())
    # `--expect-no-changes` exits non-zero when there are changes: for a drift check that is
    # the finding, not a failure.
    drift_found = source == "drift" and any(c.op not in UNCHANGED_OPS for c in changes)
    if exit_code is None:
        errors.append("The job stopped before the preview finished: see the run's log.")
    elif exit_code != 0 and drift_found and not errors:
        exit_code = 0
    elif exit_code != 0 and not errors and not any(v.level == "mandatory" for v in violations):
        stderr = _text(directory / "stderr.txt")
        errors.append(stderr or f"pulumi exited with status {exit_code}")
    return StackReport(
        stack=stack,
        source=source,
        ran=ran,
        ok=ran and exit_code == 0 and not errors,
        changes=changes,
        counts=_counts(digest.get("changeSummary"), changes),
        policy_packs=packs,
        violations=violations,
        errors=errors,
        bundle=_bundle(directory / "bundle.json"),
    )


def _text(path: Path) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").strip()
    except OSError:
        return ""
    return text[-MAX_ERROR_CHARS:]


# --- reading the offline synth manifests --------------------------------------------------


def load_synth(stack: str, manifests: Path) -> StackReport:
    """One stack's report from `synth-both.sh`'s manifests, through `synth_diff.compare`."""
    head_text = synth_diff.read_text(manifests / f"head-{stack}.json")
    base_text = synth_diff.read_text(manifests / f"base-{stack}.json")
    if head_text is None:
        error = _text(manifests / f"head-{stack}.err") or _text(manifests / "head-sync.err")
        return StackReport(
            stack, "synth", ran=False, ok=False, errors=[error or "dataplatform synth failed"]
        )
    head = json.loads(head_text)
    diff = synth_diff.compare(json.loads(base_text) if base_text else None, head)
    changes = [Change("create", *key) for key in diff.added]
    changes += [Change("delete", *key) for key in diff.removed]
    changes += [
        Change("update", *key, paths=tuple(paths), lines=tuple(f"    ~ {p}" for p in paths))
        for key, paths in diff.changed.items()
    ]
    bundle = head.get("bundle") or {}
    return StackReport(
        stack=stack,
        source="synth",
        ran=True,
        ok=True,
        changes=changes,
        counts=_counts(None, changes),
        bundle=Bundle(str(bundle["sha256"]), placeholder=bool(bundle.get("placeholder")))
        if bundle.get("sha256")
        else None,
        diff_text=synth_diff.unified(base_text or "", head_text, stack) if not diff.empty else "",
    )


# --- rendering -------------------------------------------------------------------------------


def gate(reports: Sequence[StackReport], labels: Iterable[str]) -> list[str]:
    """Why the review must fail: prod changes that lose data, unless the PR accepts them."""
    if ACCEPT_LABEL in set(labels):
        return []
    return [
        f"{report.stack}: {change.op} of the {change.stateful} {change.type} {change.name}"
        for report in reports
        if report.stack in GATED_STACKS
        for change in report.changes
        if change.loses_data
    ]


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace("|", "\\|").replace("\n", "<br>")


def _fence(text: str, language: str = "text") -> str:
    """`text` in a code fence longer than any backtick run inside it."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{language}\n{text}\n{ticks}"


def _listed(items: Sequence[str], noun: str) -> list[str]:
    shown = list(items[:MAX_LISTED])
    if len(items) > MAX_LISTED:
        shown.append(f"- … and {len(items) - MAX_LISTED} more {noun}: see the full report.")
    return shown


def _size(n: int | None) -> str:
    return f"{n / (1024 * 1024):.1f} MB" if n is not None else "size unknown"


def policy_cell(report: StackReport) -> str:
    """The policy pack's result for the header line."""
    mandatory = [v for v in report.violations if v.level == "mandatory"]
    advisory = [v for v in report.violations if v.level != "mandatory"]
    packs = ", ".join(f"{name} {version}" for name, version in sorted(report.policy_packs.items()))
    if mandatory:
        return f"❌ {len(mandatory)} mandatory violation{'s' if len(mandatory) > 1 else ''}"
    if advisory:
        return f"⚠️ {len(advisory)} advisory"
    if report.source == "synth":
        return "offline: in `ci.yml`'s tests"
    if not report.ok:
        return "❔ no verdict: the preview failed"
    if packs:
        return f"✅ {packs}"
    return "❔ did not run" if not report.ok else "❔ no result reported"


def status_cell(report: StackReport) -> str:
    """✅/❌ and what ran."""
    what = {"preview": "preview", "synth": "offline synth", "drift": "drift check"}[report.source]
    if report.ok:
        return f"✅ {what}"
    return f"❌ {what} failed"


def header(reports: Sequence[StackReport]) -> list[str]:
    """A line per stack: status, counts, policy."""
    lines = [
        "| Stack | Result | Create | Update | Replace | Delete | Policy pack |",
        "|---|---|--:|--:|--:|--:|---|",
    ]
    for report in reports:
        counts = [str(report.counts.get(op, 0)) if report.ran else "–" for op in COUNTED]
        other = {k: v for k, v in report.counts.items() if k not in COUNTED}
        extra = (
            " (" + ", ".join(f"{v} {k}" for k, v in sorted(other.items())) + ")" if other else ""
        )
        lines.append(
            f"| `{report.stack}` | {status_cell(report)}{extra} | {' | '.join(counts)} "
            f"| {policy_cell(report)} |"
        )
    return lines


def _describe(stack: str, change: Change) -> str:
    what = f"{change.op} the {change.stateful}" if change.stateful else change.op
    text = f"`{stack}`: {what} `{change.name}` (`{change.type}`)"
    if change.replace_reasons:
        text += ", replacement forced by " + ", ".join(f"`{r}`" for r in change.replace_reasons)
    elif change.paths and change.op == "update":
        shown = ", ".join(f"`{p}`" for p in change.paths[:8])
        text += f": {shown}" + (
            f" and {len(change.paths) - 8} more" if len(change.paths) > 8 else ""
        )
    return text


def risks(reports: Sequence[StackReport], labels: Iterable[str]) -> list[str]:
    """What could lose data, then access changes, then the label's verdict. Bold: read first."""
    losing = [_describe(r.stack, c) for r in reports for c in r.changes if c.loses_data]
    access = [_describe(r.stack, c) for r in reports for c in r.changed if c.changes_access]
    out: list[str] = []
    if losing:
        out += ["### ⚠️ Could lose data", ""]
        out += _listed([f"- **{line}**" for line in losing], "stateful changes")
        out.append("")
    if access:
        out += ["### 🔐 Access changes (IAM, security groups)", ""]
        out += _listed([f"- **{line}**" for line in access], "access changes")
        out.append("")
    if not losing and not access:
        line = "No stateful resource is replaced or deleted; no IAM or security group change."
        if any(not r.ok for r in reports):
            line += " That is as far as the failed stacks got: their plan is incomplete."
        out += [line, ""]
    blocked = gate(reports, labels)
    if blocked:
        out += [
            f"⛔ **This replaces or deletes data in prod. The review fails until a maintainer who "
            f"has checked the backups adds the label `{ACCEPT_LABEL}`** (docs/ci-cd.md).",
            "",
        ]
    elif any(r.stack in GATED_STACKS and c.loses_data for r in reports for c in r.changes):
        out += [f"🏷️ Accepted with the label `{ACCEPT_LABEL}`.", ""]
    return out


def failures(reports: Sequence[StackReport]) -> list[str]:
    """Errors and policy violations of every stack that failed."""
    out: list[str] = []
    for report in reports:
        if report.ok:
            continue
        out += [f"### ❌ `{report.stack}`: {status_cell(report)[2:]}", ""]
        if report.violations:
            out += ["| Rule | Level | Resource | Message |", "|---|---|---|---|"]
            out += _listed(
                [
                    f"| `{_cell(v.policy)}` | {_cell(v.level)} | {_cell(v.resource)} "
                    f"| {_cell(v.message)} |"
                    for v in report.violations
                ],
                "violations",
            )
            out.append("")
        for error in report.errors[:MAX_LISTED]:
            out += [_fence(error[-MAX_ERROR_CHARS:]), ""]
    return out


def bundle_lines(reports: Sequence[StackReport]) -> list[str]:
    """The processor bundle's sha256 and size, once if every stack had the same."""
    bundles = {r.stack: r.bundle for r in reports if r.bundle is not None}
    if not bundles:
        return ["**Processor bundle**: not reported (the bundle step did not finish).", ""]
    distinct = set(bundles.values())
    if len(distinct) == 1:
        [bundle] = distinct
        if bundle.placeholder:
            return [
                f"**Processor bundle**: not built offline (placeholder `{bundle.sha256[:12]}`).",
                "",
            ]
        return [
            f"**Processor bundle** `processor.zip`: sha256 `{bundle.sha256}`, "
            f"{_size(bundle.zipped_bytes)} zipped, {_size(bundle.unzipped_bytes)} unzipped.",
            "",
        ]
    return [
        *(
            f"**Processor bundle** for `{stack}`: sha256 `{b.sha256}`, {_size(b.zipped_bytes)}"
            for stack, b in bundles.items()
        ),
        "",
    ]


def diff_text(report: StackReport) -> str:
    """The whole diff of one stack, one resource at a time."""
    if report.diff_text is not None:
        return report.diff_text
    lines = []
    for change in report.changed:
        sign = OP_SIGNS.get(change.op, "~")
        lines.append(f"{sign} {change.type} {change.name} ({change.op})")
        lines.extend(change.lines)
    return "\n".join(lines)


def details(report: StackReport, text: str, note: str = "") -> str:
    """One stack's diff, collapsed."""
    n = len(report.changed)
    summary = f"<code>{report.stack}</code>: full diff ({n} change{'' if n == 1 else 's'})"
    body = _fence(text, "diff") if text else "No change."
    return "\n".join(
        [
            f"<details><summary>{summary}</summary>",
            "",
            body,
            *([note] if note else []),
            "",
            "</details>",
            "",
        ]
    )


def cut(text: str, budget: int) -> tuple[str, int]:
    """`text` cut at a line boundary to at most `budget` characters, and the lines cut."""
    if len(text) <= budget:
        return text, 0
    kept = text[: max(budget, 0)].rsplit("\n", 1)[0] if budget > 0 else ""
    return kept, text.count("\n") - kept.count("\n") + (0 if kept else 1)


@dataclass(frozen=True)
class Rendered:
    """The comment, the untruncated report, and the review's verdict."""

    comment: str
    full: str
    blocked: list[str]
    failed: list[str]
    truncated: bool


def render(
    reports: Sequence[StackReport],
    *,
    labels: Iterable[str] = (),
    run_url: str | None = None,
    commit: str | None = None,
    marker: str = MARKER,
    title: str = "Infrastructure preview",
    intro: str | None = None,
    artifact: str = ARTIFACT,
    budget: int = COMMENT_BUDGET,
) -> Rendered:
    """The comment for `reports`, within `budget` characters (the diffs are cut first)."""
    labels = list(labels)
    subject = f" of `{commit[:12]}`" if commit else ""
    top = [marker, f"## {title}{subject}", "", *([intro, ""] if intro else []), *header(reports)]
    top.append("")
    if any(r.source == "synth" for r in reports):
        top += [
            "Offline synth diff (no cloud credentials: a fork, or a repository without the "
            "preview variables): the real program under Pulumi's mocks, compared with the base "
            "branch. It cannot show replacements, which only the provider knows.",
            "",
        ]
    top += risks(reports, labels) + failures(reports) + bundle_lines(reports)
    footer = []
    if run_url:
        footer.append(
            f"<sub>[This run]({run_url}); the whole report is its artifact `{artifact}`.</sub>"
        )
    hashes = " ".join(f"{r.stack}={r.bundle.sha256}" for r in reports if r.bundle)
    footer.append(f"<!-- bundle-sha256 {hashes} -->\n")
    head = redact("\n".join(top))
    tail = "\n".join(footer)
    diffs = [redact(diff_text(r)) for r in reports]
    full = "\n".join([head, *(details(r, d) for r, d in zip(reports, diffs, strict=True)), tail])

    room = budget - len(head) - len(tail) - sum(len(details(r, "")) + 200 for r in reports)
    truncated = False
    # Smaller diffs first, so one huge stack does not crowd out a small one.
    shares: dict[str, str] = {}
    for report, text in sorted(zip(reports, diffs, strict=True), key=lambda pair: len(pair[1])):
        remaining = [r for r in reports if r.stack not in shares and r is not report]
        share = max(room // (len(remaining) + 1), 0)
        kept, lines_cut = cut(text, share)
        room -= len(kept)
        note = ""
        if lines_cut:
            truncated = True
            where = f"[this run]({run_url})" if run_url else "this run"
            note = (
                f"\n✂️ {lines_cut} more lines cut to fit GitHub's comment limit: the whole "
                f"diff is in the artifact `{artifact}` of {where}."
            )
        shares[report.stack] = details(report, kept, note)
    sections = [shares[r.stack] for r in reports]
    comment = "\n".join([head, *sections, tail])
    return Rendered(
        comment=comment,
        full=full,
        blocked=gate(reports, labels),
        failed=[r.stack for r in reports if not r.ok],
        truncated=truncated,
    )


# --- command line --------------------------------------------------------------------------


def _labels(path: Path | None) -> list[str]:
    if path is None or not path.is_file():
        return []
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="review.py",
        description="The pull request's infrastructure review: one comment for every stack.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="{render,check,redact}")
    render_ = commands.add_parser(
        "render",
        help="write comment.md (fits a GitHub comment), full.md and verdict.json",
        description="Render the review of previews (or offline synth manifests) of the stacks.",
        epilog="example: python3 .ci/review.py render --previews build/review "
        "--stacks dev prod --labels-file build/review/labels.txt --out build/review",
    )
    source = render_.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--previews",
        type=Path,
        help="a folder per stack with preview.json (`pulumi preview --json`), events.jsonl "
        "(`--event-log`), stderr.txt, exit-code and bundle.json, any of them possibly missing",
    )
    source.add_argument("--synth", type=Path, help="synth-both.sh's folder (offline diff)")
    render_.add_argument(
        "--kind",
        choices=["preview", "drift"],
        default="preview",
        help="preview: the sticky PR comment (default); drift: the body of one stack's drift "
        "issue, from `pulumi preview --refresh --expect-no-changes`",
    )
    render_.add_argument(
        "--stacks", nargs="+", default=list(synth_diff.STACKS), help="in order (default: dev prod)"
    )
    render_.add_argument("--labels-file", type=Path, help="the PR's labels, one a line")
    render_.add_argument("--run-url", help="link to this workflow run, for the notes")
    render_.add_argument("--commit", help="the commit previewed")
    render_.add_argument(
        "--artifact",
        default=ARTIFACT,
        help=f"the run's artifact with the whole report ({ARTIFACT})",
    )
    render_.add_argument("--out", type=Path, required=True, help="folder for the three files")
    check = commands.add_parser(
        "check",
        help="exit 1 when verdict.json says a stack failed or prod loses data unlabelled",
        description="Fail the job after the comment is posted, with one line per reason.",
        epilog="example: python3 .ci/review.py check build/review/verdict.json",
    )
    check.add_argument("verdict", type=Path, help="render's verdict.json")
    scrub = commands.add_parser(
        "redact",
        help="replace secret-looking text in files, in place, before they become an artifact",
        description="Apply the renderer's text redaction to every file under the folders: the "
        "raw preview output is uploaded for the review job, and readable by the repository's "
        "readers for its retention.",
        epilog="example: python3 .ci/review.py redact build/review/dev",
    )
    scrub.add_argument("folders", type=Path, nargs="+", help="folders to scrub, recursively")
    return parser


def redact_files(folders: Iterable[Path]) -> int:
    """Redact every text file under `folders` in place; returns how many changed."""
    changed = 0
    for folder in folders:
        for path in sorted(p for p in folder.rglob("*") if p.is_file()):
            try:
                text = path.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                continue
            scrubbed = redact(text)
            if scrubbed != text:
                path.write_text(scrubbed, encoding="utf-8")
                changed += 1
    return changed


def main(argv: Sequence[str] | None = None) -> int:
    """`python3 .ci/review.py {render,check,redact} ...`; see `--help`."""
    options = _parser().parse_args(argv)
    if options.command == "check":
        return check_verdict(options.verdict)
    if options.command == "redact":
        print(f"redacted {redact_files(options.folders)} file(s)")
        return 0
    if options.synth is not None:
        reports = [load_synth(stack, options.synth) for stack in options.stacks]
    else:
        reports = [load_preview(s, options.previews / s, options.kind) for s in options.stacks]
    if options.kind == "drift":
        rendered = render(
            reports,
            run_url=options.run_url,
            marker=DRIFT_MARKER.format(stack=" ".join(options.stacks)),
            title="Drift: the cloud differs from the stack's code",
            intro="`pulumi preview --refresh` against main: `-` is what the account holds now, "
            "`+` what the code says, so the next deploy undoes a change made by hand (or applies "
            "a merge still waiting for its deploy). Make the change in code, or let the deploy "
            "revert it; this issue closes itself once they agree.",
            artifact=options.artifact,
        )
    else:
        rendered = render(
            reports,
            labels=_labels(options.labels_file),
            run_url=options.run_url,
            commit=options.commit,
            artifact=options.artifact,
        )
    options.out.mkdir(parents=True, exist_ok=True)
    (options.out / "comment.md").write_text(rendered.comment, encoding="utf-8")
    (options.out / "full.md").write_text(rendered.full, encoding="utf-8")
    verdict = {
        "failed": rendered.failed,
        "blocked": rendered.blocked,
        "truncated": rendered.truncated,
        "changes": {r.stack: len(r.changed) for r in reports},
        "bundles": {r.stack: r.bundle.sha256 for r in reports if r.bundle},
    }
    (options.out / "verdict.json").write_text(json.dumps(verdict, indent=2), encoding="utf-8")
    print(f"review: {len(rendered.comment)} characters written to {options.out / 'comment.md'}")
    return 0


def check_verdict_lines(verdict: Rendered | Mapping[str, Any]) -> list[str]:
    """Why the review fails, one line per reason; empty when it passes."""
    if isinstance(verdict, Rendered):
        failed, blocked = verdict.failed, verdict.blocked
    else:
        failed, blocked = verdict.get("failed", []), verdict.get("blocked", [])
    return [f"the {stack} stack failed: see the PR comment" for stack in failed] + [
        f"{reason} loses data; a maintainer adds the label {ACCEPT_LABEL} to accept it "
        "(docs/ci-cd.md)"
        for reason in blocked
    ]


def check_verdict(path: Path) -> int:
    """0 when the review passes; otherwise 1, with a GitHub error annotation per reason."""
    try:
        verdict = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        print(f"::error title=review::no verdict at {path} ({error}): the review did not render")
        return 1
    lines = check_verdict_lines(verdict)
    for line in lines:
        print(f"::error title=review::{line}")
    return 1 if lines else 0


if __name__ == "__main__":
    raise SystemExit(main())

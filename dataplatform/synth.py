"""`dataplatform synth`: what `pulumi up -s <stack>` would create, without AWS, CLI or network.

It runs the real `__main__.py` under Pulumi's mocks runtime (`dataplatform.mocks`) with the stack's
config as the engine would assemble it (`Pulumi.yaml` defaults overlaid by `Pulumi.<stack>.yaml`)
and prints every registered resource: its type, logical name, parent, dependencies and inputs,
sorted, with every secret replaced by `[secret]`. Secure config values (and `dbPassword`, which
stack files only hold encrypted) are replaced by a placeholder that passes validation; a missing
processor bundle by a tiny fixed placeholder zip, flagged in the output. Mocked ids, ARNs and the
bucket's random suffix are derived from names, so two runs print the same bytes: CI can diff a
PR's infrastructure even where no credentials exist (fork PRs).

Run it as `dataplatform synth --stack dev` or `python -m dataplatform.synth --stack dev`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Any, Literal

# PyYAML comes with pulumi (a runtime dependency of both); stack files are YAML.
import yaml

from components.settings import BUNDLE_KEY, SettingsError
from dataplatform.mocks import ProgramRun, RecordedResource, is_secret, run_program
from etl.contract import BUNDLE_MANIFEST, DEFAULT_ARCHITECTURE, Architecture, bundle_manifest
from etl.core.errors import UsageError

PROJECT_ROOT = Path(__file__).resolve().parent.parent
REDACTED = "[secret]"
# Passes the password rules so that the program runs; never printed (inputs carrying it are
# secret and redacted).
PLACEHOLDER_SECRET = "synth-placeholder-secret"  # noqa: S105 - a placeholder, not a credential
# Input names that hold credentials whatever their secrecy flag says (belt and braces).
SECRET_INPUT_NAMES = frozenset(
    {"password", "passwordWo", "secretString", "secretStringWo", "secretBinary"}
)
Format = Literal["json", "mermaid"]


class SynthError(UsageError):
    """The stack cannot be synthesised as asked (unknown stack, unreadable stack file)."""


@dataclass(frozen=True)
class StackConfig:
    """A stack's config as the engine would pass it to the program."""

    project: str
    values: dict[str, str]
    """Full keys (`project:key`, `aws:region`) to string values."""
    secret_keys: list[str]
    """Keys whose values are secrets (secure in the stack file or declared `secret: true`)."""


def _scalar(value: Any) -> str:
    """A YAML value as the engine passes config: strings as-is, booleans lowercase, rest JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, sort_keys=True)


_SAFE_LOADER: type[yaml.SafeLoader] | type[yaml.CSafeLoader] = getattr(
    yaml, "CSafeLoader", yaml.SafeLoader
)
"""PyYAML's safe loader in C (libyaml) where the wheel has it: 0.8 ms for Pulumi.yaml against
13 ms in pure Python, and every synth and test run reads the stack files many times."""


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
        loaded = yaml.load(text, Loader=_SAFE_LOADER)  # noqa: S506 - a safe loader
    except (OSError, yaml.YAMLError) as error:
        raise SynthError(f"cannot read {path.name}: {error}") from None
    return loaded if isinstance(loaded, dict) else {}


def stack_names(root: Path) -> list[str]:
    """The stacks that have a settings file next to `Pulumi.yaml`."""
    return sorted(path.name.split(".")[1] for path in root.glob("Pulumi.*.yaml"))


def load_stack_config(root: Path, stack: str) -> StackConfig:
    """`Pulumi.yaml` defaults overlaid by `Pulumi.<stack>.yaml`, secure values replaced."""
    project_file = _read_yaml(root / "Pulumi.yaml")
    project = str(project_file.get("name", ""))
    stack_file = root / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        known = ", ".join(stack_names(root)) or "none"
        raise SynthError(f"no stack file Pulumi.{stack}.yaml (stacks here: {known})")

    values: dict[str, str] = {}
    secret_keys: set[str] = set()
    declared: Mapping[str, Any] = project_file.get("config") or {}
    for key, declaration in declared.items():
        full_key = key if ":" in key else f"{project}:{key}"
        if isinstance(declaration, dict):
            if declaration.get("secret"):
                # What `pulumi config set --secret` would have stored; a plaintext value in the
                # stack file below replaces it and is no secret (the program refuses that).
                secret_keys.add(full_key)
                values[full_key] = PLACEHOLDER_SECRET
            elif "default" in declaration:
                values[full_key] = _scalar(declaration["default"])
            elif "value" in declaration:
                values[full_key] = _scalar(declaration["value"])
        else:
            values[full_key] = _scalar(declaration)

    for key, value in (_read_yaml(stack_file).get("config") or {}).items():
        full_key = key if ":" in key else f"{project}:{key}"
        if isinstance(value, dict) and "secure" in value:
            secret_keys.add(full_key)
            values[full_key] = PLACEHOLDER_SECRET
        else:
            secret_keys.discard(full_key)
            values[full_key] = _scalar(value)
    return StackConfig(project=project, values=values, secret_keys=sorted(secret_keys))


def placeholder_bundle(architecture: Architecture = DEFAULT_ARCHITECTURE) -> bytes:
    """A fixed, tiny zip standing in for the processor bundle when it has not been built,
    recording the stack's architecture as its target (as a real build for it would)."""
    entries = {
        BUNDLE_MANIFEST: bundle_manifest(architecture) + "\n",
        "PLACEHOLDER.txt": "dataplatform synth: the processor bundle was not built\n",
    }
    with tempfile.SpooledTemporaryFile() as buffer:
        with zipfile.ZipFile(buffer, "w") as archive:
            for name, text in sorted(entries.items()):
                entry = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                entry.external_attr = 0o644 << 16
                archive.writestr(entry, text)
        buffer.seek(0)
        return buffer.read()


@contextmanager
def _bundle_for(config: StackConfig, root: Path) -> Iterator[tuple[StackConfig, dict[str, Any]]]:
    """The config with a usable bundle path, and what the manifest says about the bundle."""
    key = f"{config.project}:{BUNDLE_KEY}"
    configured = config.values.get(key, "")
    path = Path(configured) if Path(configured).is_absolute() else root / configured
    if path.is_file():
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        yield config, {"path": configured, "placeholder": False, "sha256": digest}
        return
    with tempfile.TemporaryDirectory(prefix="dataplatform-synth-") as directory:
        placeholder = Path(directory) / "processor.zip"
        arch = config.values.get(f"{config.project}:processorArchitecture", "")
        known = {member.value: member for member in Architecture}
        content = placeholder_bundle(known.get(arch, DEFAULT_ARCHITECTURE))
        placeholder.write_bytes(content)
        values = {**config.values, key: str(placeholder)}
        info = {
            "path": configured,
            "placeholder": True,
            "sha256": hashlib.sha256(content).hexdigest(),
        }
        yield StackConfig(config.project, values, config.secret_keys), info


def redact(value: Any, name: str | None = None) -> Any:
    """A recorded value made printable and deterministic, with every secret replaced."""
    if is_secret(value) or (name in SECRET_INPUT_NAMES and value is not None):
        return REDACTED
    if isinstance(value, dict):
        return {key: redact(item, key) for key, item in sorted(value.items())}
    if isinstance(value, list | tuple):
        return [redact(item) for item in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)  # protobuf carries every number as a double
    if value is None or isinstance(value, str | int | float | bool):
        return value
    path = getattr(value, "path", None)
    if isinstance(path, str):  # a FileAsset or FileArchive: its content, not where it lives
        file = Path(path)
        digest = hashlib.sha256(file.read_bytes()).hexdigest() if file.is_file() else None
        return {"asset": type(value).__name__, "sha256": digest}
    raise TypeError(f"cannot render {type(value).__name__} in a manifest")


def manifest(
    run: ProgramRun, *, project: str, stack: str, bundle: Mapping[str, Any]
) -> dict[str, Any]:
    """The printable description of a run: resources, exports, bundle; secrets redacted."""
    names = {resource.urn: resource.name for resource in run.resources}
    resources = [
        {
            "type": resource.type,
            "name": resource.name,
            "parent": names.get(resource.parent) if resource.parent else None,
            "dependsOn": sorted(names.get(urn, urn) for urn in resource.dependencies),
            "inputs": redact(resource.inputs),
            # Only the options that are on: protect, retainOnDelete, deleteBeforeReplace.
            **({"options": on} if (on := {k: v for k, v in resource.options.items() if v}) else {}),
        }
        for resource in sorted(run.resources, key=lambda r: (r.type, r.name))
    ]
    exports = {
        name: REDACTED if export.secret else redact(export.value)
        for name, export in sorted(run.exports.items())
    }
    return {
        "project": project,
        "stack": stack,
        "bundle": dict(bundle),
        "resources": resources,
        "exports": exports,
        "warnings": list(run.warnings),
    }


def render_json(document: Mapping[str, Any]) -> str:
    """The manifest as stable JSON (sorted keys, two-space indent, trailing newline)."""
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _short_type(type_: str) -> str:
    """`aws:s3/bucketPolicy:BucketPolicy` -> `aws.s3.BucketPolicy`."""
    package, module, kind = type_.split(":")
    module = module.split("/")[0]
    return f"{package}.{kind}" if module == "index" else f"{package}.{module}.{kind}"


def _component_of(resource: RecordedResource, by_urn: Mapping[str, RecordedResource]) -> str | None:
    """The URN of the component a resource belongs to (itself, for a component)."""
    current: RecordedResource | None = resource
    while current is not None and current.custom:
        current = by_urn.get(current.parent) if current.parent else None
    return current.urn if current is not None else None


COMPONENT_ORDER = (
    "DataLake",
    "AccessLogBucket",
    "BucketReplica",
    "Processor",
    "Database",
    "DatabaseAccess",
    "Catalog",
    "Network",
    "LogKey",
)
"""Components top to bottom in the diagram: along the data path first (the lake with its
guards), then what carries it, then the key of every log group."""
DATA_PATH = (
    ("aws:s3/bucket:Bucket", "raw/ ObjectCreated"),
    ("aws:sqs/queue:Queue", "event source mapping"),
    ("aws:lambda/function:Function", "COPY over TLS, 5432"),
    ("aws:rds/instance:Instance", ""),
)
"""The resources a trip file's data passes through, with the label of the edge leaving each."""


def _node_id(resource: RecordedResource) -> str:
    return "n_" + "".join(c if c.isalnum() else "_" for c in resource.name)


def _data_path(run: ProgramRun) -> list[tuple[RecordedResource, RecordedResource, str]]:
    """Edges bucket → queue → function → database. The queue is the one the function's event
    source mapping reads (not the dead-letter queue)."""
    by_urn = {resource.urn: resource for resource in run.resources}
    mappings = [
        r for r in run.resources if r.type == "aws:lambda/eventSourceMapping:EventSourceMapping"
    ]
    fed: set[str] = {dep for mapping in mappings for dep in mapping.dependencies}
    # The bucket whose events reach the queue (not the access-log bucket or the replica).
    notifying: set[str] = {
        dep
        for r in run.resources
        if r.type == "aws:s3/bucketNotification:BucketNotification"
        for dep in r.dependencies
    }
    stops: list[tuple[RecordedResource, str]] = []
    for type_, label in DATA_PATH:
        candidates = [r for r in run.resources if r.type == type_]
        if type_ == "aws:sqs/queue:Queue":
            candidates = [r for r in candidates if r.urn in fed] or candidates
        if type_ == "aws:s3/bucket:Bucket":
            candidates = [r for r in candidates if r.urn in notifying] or candidates
        if len(candidates) != 1 and type_ != "aws:sqs/queue:Queue":
            return []
        if not candidates:
            return []
        stops.append((by_urn[candidates[0].urn], label))
    return [(a, b, label) for (a, label), (b, _) in pairwise(stops)]


def render_mermaid(run: ProgramRun, *, stack: str, bundle: Mapping[str, Any]) -> str:
    """A Mermaid flowchart read top to bottom: one subgraph per component (in data-path order)
    with its resources and the dependencies between them, and the data path as bold labelled
    edges: bucket → queue → function → database."""
    by_urn = {resource.urn: resource for resource in run.resources}

    def order(component: RecordedResource) -> tuple[int, str]:
        kind = component.type.rsplit(":", 1)[-1]
        rank = COMPONENT_ORDER.index(kind) if kind in COMPONENT_ORDER else len(COMPONENT_ORDER)
        return rank, component.name

    components = sorted((r for r in run.resources if not r.custom), key=order)
    ids = {component.urn: f"c{index}" for index, component in enumerate(components)}
    note = " (placeholder bundle)" if bundle.get("placeholder") else ""
    # ELK keeps each subgraph compact and the subgraphs stacked; a renderer without it falls
    # back to its default layout.
    lines = [
        "---",
        "config:",
        "  layout: elk",
        "---",
        f"%% dataplatform synth --stack {stack}{note}",
        "flowchart TB",
    ]
    inner: list[str] = []
    for component in components:
        kind = component.type.rsplit(":", 1)[-1]
        lines.append(f'    subgraph {ids[component.urn]}["{kind}: {component.name}"]')
        lines.append("        direction TB")
        members = sorted(
            (r for r in run.resources if r.custom and _component_of(r, by_urn) == component.urn),
            key=lambda r: (r.type, r.name),
        )
        names = {member.urn for member in members}
        for member in members:
            lines.append(
                f'        {_node_id(member)}["{_short_type(member.type)}<br/>{member.name}"]'
            )
            inner.extend(
                f"        {_node_id(by_urn[dep])} --> {_node_id(member)}"
                for dep in sorted(member.dependencies)
                if dep in names and dep != member.urn
            )
        lines.extend(sorted(set(inner)))
        inner.clear()
        lines.append("    end")
    path = _data_path(run)
    lines.extend(
        f'    {_node_id(a)} == "{label}" ==> {_node_id(b)}'
        if label
        else f"    {_node_id(a)} ==> {_node_id(b)}"
        for a, b, label in path
    )
    # Invisible links stack the components in order (without them Mermaid puts unconnected
    # subgraphs side by side, and dependency edges would pull the network to the top).
    ordered = [ids[component.urn] for component in components]
    lines.extend(f"    {a} ~~~ {b}" for a, b in pairwise(ordered))
    return "\n".join(lines) + "\n"


def run_stack(stack: str, *, root: Path = PROJECT_ROOT) -> tuple[ProgramRun, dict[str, Any]]:
    """Run the program of `root` for `stack` under mocks: the run and the bundle it used."""
    config = load_stack_config(root, stack)
    with _bundle_for(config, root) as (usable, bundle):
        try:
            run = run_program(
                root / "__main__.py",
                project=usable.project,
                stack=stack,
                config=usable.values,
                secret_keys=usable.secret_keys,
            )
        except SettingsError as error:
            raise SynthError(str(error)) from None
    return run, bundle


def synth(stack: str, output_format: Format = "json", *, root: Path = PROJECT_ROOT) -> str:
    """Run the program of `root` for `stack` under mocks and render it in `output_format`."""
    config = load_stack_config(root, stack)
    run, bundle = run_stack(stack, root=root)
    if output_format == "mermaid":
        return render_mermaid(run, stack=stack, bundle=bundle)
    return render_json(manifest(run, project=config.project, stack=stack, bundle=bundle))


def main(argv: list[str] | None = None) -> int:
    """`python -m dataplatform.synth --stack dev [--format mermaid]`."""
    parser = argparse.ArgumentParser(prog="python -m dataplatform.synth", description=__doc__)
    parser.add_argument("--stack", required=True)
    parser.add_argument("--format", choices=["json", "mermaid"], default="json")
    options = parser.parse_args(argv)
    try:
        sys.stdout.write(synth(options.stack, options.format))
    except UsageError as error:
        print(f"error: {error}", file=sys.stderr)
        return error.exit_code
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

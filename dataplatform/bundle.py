"""Build the Lambda bundle: the `etl` package and its runtime dependencies as one deterministic zip.

Plan as data, then execute. `plan_bundle` gathers everything the zip depends on (the target, the
locked requirements, the hash of every source file); its JSON is hashed into the cache key, so the
same inputs give the same key and, the zip being deterministic, the same sha256.

Dependencies come from Lambda-platform wheels only (`uv pip install --python-platform ...
--only-binary :all:`), never from this machine's interpreter. They are stripped of what Lambda
does not need: bytecode caches, type stubs, test folders, the symbol tables of shared libraries
(polars' 178 MB library loses 40 MB), and every botocore service model but the ones the processor
calls. boto3 is bundled rather than taken from the runtime so that the SDK in production is the one
the tests ran against (AWS's own advice for functions that must not change under them).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from etl.contract import (
    BUNDLE_MANIFEST,
    DEFAULT_ARCHITECTURE,
    PYTHON_VERSION,
    Architecture,
    bundle_manifest,
)
from etl.core.errors import DataplatformError, UsageError

LAMBDA_UNZIPPED_LIMIT = 262_144_000
"""Lambda's limit on a function's unzipped code size, in bytes."""
SIZE_BUDGET = 240 * 1024 * 1024
"""What we aim for, under the limit, so that dependencies can grow. It was 200 MB until NumPy
(the binary COPY encoder's, 54 MB unzipped with its OpenBLAS, which `import numpy` loads) took
the x86_64 bundle with bytecode from 170 to 225 MB."""
BUNDLE_NAME = "processor.zip"
BUILDER_VERSION = 5
"""Bump when the build steps change, so that cached builds are not reused."""
LAMBDA_GROUP = "lambda"
"""The uv dependency group listing what the bundle carries."""
BOTOCORE_SERVICES = ("s3", "sqs", "secretsmanager", "sts")
"""botocore service models kept: the services the processor calls (sts for credentials)."""

PACKAGE = "etl"
"""The package that is the Lambda asset, bundled whole: every file under it but caches."""
PRUNED_DIRECTORIES = frozenset({"__pycache__", "tests", "test"})
PRUNED_SUFFIXES = frozenset({".pyc", ".pyi"})
ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)
ZIP_LEVEL = 1
"""Deflate level of the zip. Measured on polars' 120 MB shared library: level 1 compresses 3x
faster than zlib's default 6 (4.5 s against 13.3 s) for a 10 % larger file (47.9 MB against
43.7 MB). The bundle reaches Lambda through S3, where a few MB more cost nothing, and Lambda
inflates level 1 no slower."""
LAMBDA_TASK_ROOT = "/var/task"
"""Where Lambda unpacks the bundle."""


@dataclass(frozen=True)
class BundleTarget:
    """The Lambda runtime the bundle is built for."""

    python_version: str = PYTHON_VERSION
    """Python of the Lambda runtime (python3.13 by default), as X.Y."""
    arch: Architecture = DEFAULT_ARCHITECTURE
    """Architecture of the function (arm64 by default: Graviton, cheaper per GB-second)."""

    def __post_init__(self) -> None:
        parts = self.python_version.split(".")
        if len(parts) != 2 or not all(part.isdigit() for part in parts):
            raise UsageError(f"python version {self.python_version!r} is not X.Y (e.g. 3.13)")

    @property
    def platform(self) -> str:
        """uv's `--python-platform` for the runtime (Amazon Linux 2023: glibc 2.34)."""
        machine = "aarch64" if self.arch is Architecture.ARM64 else "x86_64"
        return f"{machine}-manylinux_2_34"

    def matches_this_machine(self) -> bool:
        """Whether the bundle can be imported by this interpreter (same Python and CPU)."""
        here = f"{sys.version_info.major}.{sys.version_info.minor}"
        machine = os.uname().machine
        return (
            here == self.python_version
            and {"x86_64": Architecture.X86_64, "aarch64": Architecture.ARM64}.get(machine)
            is self.arch
        )


@dataclass(frozen=True)
class BuildPlan:
    """Everything the bundle's bytes depend on. Its hash is the cache key."""

    target: BundleTarget
    requirements: tuple[str, ...]
    """Pinned requirement lines from the lock file."""
    sources: tuple[tuple[str, str], ...]
    """(path in the zip, sha256 of the file) for each file of the package."""
    botocore_services: tuple[str, ...] = BOTOCORE_SERVICES
    bytecode_interpreter: str | None = None
    """The target Python that precompiles the bundle's modules, if this machine has one (see
    `find_interpreter`). Its path is not part of the key, only whether there is one."""
    builder_version: int = BUILDER_VERSION

    @property
    def key(self) -> str:
        """A short content hash of the plan."""
        fields = asdict(self)
        fields["bytecode_interpreter"] = self.bytecode_interpreter is not None
        document = json.dumps(fields, sort_keys=True)
        return hashlib.sha256(document.encode()).hexdigest()[:20]


@dataclass(frozen=True)
class BundleResult:
    """What `dataplatform bundle` prints."""

    path: Path
    sha256: str
    zipped_bytes: int
    unzipped_bytes: int
    cached: bool
    bytecode: bool
    """Whether the modules ship precompiled (Lambda cannot write bytecode caches at run time,
    so without them every cold start compiles every module it imports: 0.65 s instead of 0.22 s
    for the handler on this machine)."""
    import_ms: float | None
    """Time to import the handler from the bundle alone; None when the target is another
    Python or CPU than this machine's."""

    def as_json(self) -> str:
        """One line of JSON."""
        fields = {**asdict(self), "path": str(self.path)}
        return json.dumps(fields, sort_keys=True)


class BundleError(DataplatformError):
    """The bundle cannot be built or is too large."""


def package_sources(root: Path) -> list[tuple[str, Path]]:
    """The package's files, which all go into the zip: (path in the zip, file), sorted. Only
    this machine's bytecode caches stay out (the build compiles its own for the target)."""
    return [
        (path.relative_to(root).as_posix(), path)
        for path in sorted((root / PACKAGE).rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix not in PRUNED_SUFFIXES
    ]


def locked_requirements(root: Path) -> tuple[str, ...]:
    """The bundle's requirements, pinned by uv.lock (`uv export` of the `lambda` group)."""
    command = [
        "uv",
        "export",
        "--frozen",
        "--only-group",
        LAMBDA_GROUP,
        "--no-hashes",
        "--no-header",
        "--no-annotate",
        "--no-emit-project",
    ]
    try:
        output = subprocess.run(
            command, cwd=root, check=True, capture_output=True, text=True
        ).stdout
    except FileNotFoundError:
        raise BundleError("uv is not installed: see https://docs.astral.sh/uv/") from None
    except subprocess.CalledProcessError as error:
        raise BundleError(f"uv export failed: {error.stderr.strip()}") from None
    return tuple(line.strip() for line in output.splitlines() if line.strip())


def plan_bundle(
    root: Path,
    target: BundleTarget,
    requirements: Sequence[str],
    bytecode_interpreter: Path | None = None,
) -> BuildPlan:
    """The build plan for the project at `root`."""
    sources = tuple(
        (name, hashlib.sha256(path.read_bytes()).hexdigest())
        for name, path in package_sources(root)
    )
    return BuildPlan(
        target=target,
        requirements=tuple(requirements),
        sources=sources,
        bytecode_interpreter=str(bytecode_interpreter) if bytecode_interpreter else None,
    )


def find_interpreter(python_version: str) -> Path | None:
    """A local interpreter of the target's Python version (this one, or one uv already has),
    to precompile the bundle with; None if there is none (nothing is downloaded)."""
    if f"{sys.version_info.major}.{sys.version_info.minor}" == python_version:
        return Path(getattr(sys, "_base_executable", sys.executable))
    found = subprocess.run(
        ["uv", "python", "find", "--no-python-downloads", "--system", python_version],
        capture_output=True,
        text=True,
        check=False,
    )
    path = found.stdout.strip()
    return Path(path) if found.returncode == 0 and path else None


def build_bundle(
    root: Path,
    out_dir: Path,
    target: BundleTarget,
    *,
    use_cache: bool = True,
    progress: Callable[[str], None] | None = None,
) -> BundleResult:
    """Build (or reuse) the bundle for `target` into `out_dir/processor.zip`; `progress` hears
    the name of each step as it starts."""
    step = progress or (lambda name: None)
    step("reading uv.lock")
    requirements = locked_requirements(root)
    step(f"looking for a Python {target.python_version} interpreter")
    plan = plan_bundle(root, target, requirements, find_interpreter(target.python_version))
    out_dir.mkdir(parents=True, exist_ok=True)
    cached_zip = out_dir / f"processor-{plan.key}.zip"
    cached = use_cache and cached_zip.exists()
    if not cached:
        with tempfile.TemporaryDirectory(dir=out_dir, prefix=".build-") as directory:
            site = Path(directory) / "site"
            step(f"installing {len(plan.requirements)} Lambda wheels ({target.platform})")
            install_dependencies(plan, site)
            step("pruning and stripping")
            prune(site, plan.botocore_services)
            strip_shared_libraries(site)
            for name, path in package_sources(root):
                (site / name).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(path, site / name)
            write_manifest(site, plan.target)
            if plan.bytecode_interpreter is not None:
                step("precompiling bytecode")
                compile_bytecode(Path(plan.bytecode_interpreter), site)
            step("writing the zip")
            write_zip(_tree(site), cached_zip)
    step("checking the size")
    unzipped = unzipped_size(cached_zip)
    if unzipped > LAMBDA_UNZIPPED_LIMIT:
        raise BundleError(
            f"the bundle unzips to {unzipped:,} bytes, over Lambda's limit of "
            f"{LAMBDA_UNZIPPED_LIMIT:,}: remove dependencies from the 'lambda' group"
        )
    final = out_dir / BUNDLE_NAME
    _copy_atomically(cached_zip, final)
    if target.matches_this_machine():
        step("timing the handler's import")
    return BundleResult(
        path=final,
        sha256=hashlib.sha256(final.read_bytes()).hexdigest(),
        zipped_bytes=final.stat().st_size,
        unzipped_bytes=unzipped,
        cached=cached,
        bytecode=plan.bytecode_interpreter is not None,
        import_ms=measure_handler_import(final) if target.matches_this_machine() else None,
    )


def write_manifest(site: Path, target: BundleTarget) -> None:
    """Record the target inside the bundle, where the program checks it against the stack's
    `processorArchitecture` before creating anything."""
    (site / BUNDLE_MANIFEST).write_text(
        bundle_manifest(target.arch, target.python_version) + "\n", encoding="utf-8"
    )


def install_dependencies(plan: BuildPlan, site: Path) -> None:
    """Install the pinned requirements from Lambda-platform wheels into `site`."""
    site.mkdir(parents=True)
    requirements = site.parent / "requirements.txt"
    requirements.write_text("\n".join(plan.requirements) + "\n")
    command = [
        "uv",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--target",
        str(site),
        "--python-version",
        plan.target.python_version,
        "--python-platform",
        plan.target.platform,
        "--only-binary",
        ":all:",
        "--no-compile",
        "-r",
        str(requirements),
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise BundleError(f"installing Lambda wheels failed: {result.stderr.strip()}")


def compile_bytecode(python: Path, site: Path) -> None:
    """Precompile every module for the target Python, reproducibly: `unchecked-hash` bytecode
    (valid whatever the files' times, never rewritten), paths as Lambda sees them (/var/task),
    and a fixed hash seed so that set constants marshal in the same order every time."""
    result = subprocess.run(
        [
            str(python),
            "-m",
            "compileall",
            "-q",
            "--invalidation-mode",
            "unchecked-hash",
            "-s",
            str(site),
            "-p",
            LAMBDA_TASK_ROOT,
            str(site),
        ],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": os.environ.get("PATH", ""), "PYTHONHASHSEED": "0"},
    )
    if result.returncode != 0:
        raise BundleError(f"precompiling the bundle failed: {result.stdout.strip()[-300:]}")


def prune(site: Path, botocore_services: Sequence[str]) -> None:
    """Remove what Lambda never reads: caches, stubs, tests, unused botocore models."""
    for path in sorted(site.rglob("*"), reverse=True):
        if path.is_dir() and path.name in PRUNED_DIRECTORIES:
            shutil.rmtree(path)
        elif path.is_file() and path.suffix in PRUNED_SUFFIXES:
            path.unlink()
    models = site / "botocore" / "data"
    if models.is_dir():
        for service in models.iterdir():
            if service.is_dir() and service.name not in botocore_services:
                shutil.rmtree(service)


def strip_shared_libraries(site: Path) -> None:
    """Drop the symbol tables of shared libraries (`--strip-unneeded` keeps what the dynamic
    loader needs). llvm-strip reads every architecture; without it the libraries stay as they
    are, still correct, only larger.

    Packages repaired by auditwheel (those with a `<package>.libs` folder beside them) are left
    alone: patchelf rewrote their program headers, and llvm-strip's rewrite of those does not
    load (numpy's `_multiarray_umath`: "ELF load command address/offset not page-aligned")."""
    strip = shutil.which("llvm-strip")
    if strip is None:
        return
    repaired = {path.name.removesuffix(".libs") for path in site.glob("*.libs") if path.is_dir()}
    libraries = sorted(
        p
        for p in site.rglob("*.so*")
        if p.is_file()
        and p.relative_to(site).parts[0].removesuffix(".libs") not in repaired
        and _is_elf(p)
    )
    for library in libraries:
        subprocess.run([strip, "--strip-unneeded", str(library)], check=True)


def _is_elf(path: Path) -> bool:
    with path.open("rb") as handle:
        return handle.read(4) == b"\x7fELF"


def _tree(site: Path) -> list[tuple[str, Path]]:
    return [(p.relative_to(site).as_posix(), p) for p in sorted(site.rglob("*")) if p.is_file()]


def write_zip(files: Iterable[tuple[str, Path]], target: Path) -> None:
    """Write a deterministic zip: entries sorted by name, fixed timestamps and modes, fixed
    compression level. Written beside `target` and moved into place, so a reader never sees a
    half-written file."""
    temporary = target.with_name(f".{target.name}.tmp")
    with zipfile.ZipFile(temporary, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, path in sorted(files):
            info = zipfile.ZipInfo(name, date_time=ZIP_EPOCH)
            executable = os.access(path, os.X_OK) and path.suffix != ".py"
            info.external_attr = ((0o100755 if executable else 0o100644) & 0xFFFF) << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            # writestr is the public way to set a level per entry (`open(info, "w")` ignores
            # the archive's level and always deflates at zlib's default).
            archive.writestr(info, path.read_bytes(), compresslevel=ZIP_LEVEL)
    temporary.replace(target)


def unzipped_size(bundle: Path) -> int:
    """Total uncompressed size of the zip's entries, as Lambda counts it."""
    with zipfile.ZipFile(bundle) as archive:
        return sum(info.file_size for info in archive.infolist())


def measure_handler_import(bundle: Path) -> float:
    """Import `etl.handler` from the unzipped bundle alone, in an isolated interpreter (no site
    packages, no environment), and return how long the import took in milliseconds."""
    with tempfile.TemporaryDirectory() as directory:
        with zipfile.ZipFile(bundle) as archive:
            archive.extractall(directory)
        code = (
            "import sys, time; sys.path.insert(0, sys.argv[1]); t = time.perf_counter(); "
            "import etl.handler; print((time.perf_counter() - t) * 1000)"
        )
        python = getattr(sys, "_base_executable", sys.executable)
        result = subprocess.run(
            [python, "-I", "-S", "-c", code, directory],
            capture_output=True,
            text=True,
            check=False,
            env={"PATH": os.environ.get("PATH", ""), "AWS_DEFAULT_REGION": "us-east-1"},
        )
    if result.returncode != 0:
        lines = result.stderr.strip().splitlines()
        raise BundleError(
            f"the handler does not import from the bundle: {lines[-1] if lines else ''}"
        )
    return round(float(result.stdout.strip()), 1)


def _copy_atomically(source: Path, target: Path) -> None:
    temporary = target.with_name(f".{target.name}.tmp")
    shutil.copyfile(source, temporary)
    temporary.replace(target)

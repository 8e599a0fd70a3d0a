"""Time the ETL against the I/O floor and a vectorised pandas version, as whole processes.

    uv run python benchmarks/etl_benchmark.py [--rows 2000000] [--memory-rows 3000000] [--repeat 7]

Generates a realistic 2024-style yellow month (a few % bad rows) with
`dataplatform.demo.synthetic`, then runs each contender as its own process (so imports and
start-up count, as they do in a Lambda), in rounds of one run each, and reports the median wall
time, the peak resident memory and the range of each ratio over the rounds:

- floor:   Polars reads the file and writes it back (nothing can be faster and still do I/O)
- process: `dataplatform process FILE --out DIR`
- pandas:  `benchmarks/pandas_etl.py`, the same rules vectorised in pandas

Targets (issue 2): process <= 1.5x floor, >= 3x faster than pandas, peak RSS for 3M rows
<= 1.5 GB.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).parent
FLOOR = "import sys, polars as pl; pl.read_parquet(sys.argv[1]).write_parquet(sys.argv[2])"


@dataclass(frozen=True)
class Measurement:
    """Median wall and CPU seconds and the largest peak RSS over repeated runs."""

    wall: float
    cpu: float
    peak_mb: float
    walls: tuple[float, ...]
    """Wall seconds of each round, in order."""


def ratio_range(numerator: Measurement, denominator: Measurement) -> str:
    """The lowest and highest ratio of two contenders within a round (they ran back to back)."""
    ratios = [n / d for n, d in zip(numerator.walls, denominator.walls, strict=True)]
    return f"rounds {min(ratios):.2f}-{max(ratios):.2f}"


# Children run as on a user's machine: bytecode caches written once (a warm-up run, not timed)
# and used after. Some environments set PYTHONDONTWRITEBYTECODE, which would make every run
# compile every module it imports and hide part of the difference between the contenders.
CHILD_ENVIRONMENT = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_once(command: list[str]) -> tuple[float, float, float]:
    """Run `command` as a child process: wall seconds, CPU seconds, peak RSS in MB."""
    started = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, env=CHILD_ENVIRONMENT)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed: {' '.join(command)}")
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # Linux reports KiB


def measure(commands: dict[str, list[str]], repeat: int) -> dict[str, Measurement]:
    """Run each command once to warm up, then `repeat` rounds of one run each, and measure.
    Rounds interleave the contenders, so a machine that slows down or speeds up during the
    benchmark (a shared host, say) weighs on every contender alike rather than on whichever
    ran at the time."""
    for command in commands.values():
        subprocess.run(command, stdout=subprocess.DEVNULL, env=CHILD_ENVIRONMENT, check=True)
    runs: dict[str, list[tuple[float, float, float]]] = {name: [] for name in commands}
    for _ in range(repeat):
        for name, command in commands.items():
            runs[name].append(run_once(command))
    return {
        name: Measurement(
            wall=statistics.median(run[0] for run in measured),
            cpu=statistics.median(run[1] for run in measured),
            peak_mb=max(run[2] for run in measured),
            walls=tuple(run[0] for run in measured),
        )
        for name, measured in runs.items()
    }


def generate(path: Path, rows: int, seed: int) -> None:
    """Write a synthetic month in a child process, so that this process stays small: a child's
    peak RSS counts the pages it shares with its parent at fork time."""
    code = (
        "import sys; from etl.core.naming import Month; "
        "from dataplatform.demo.synthetic import yellow_month; "
        "yellow_month(Month(2024, 1), int(sys.argv[2]), seed=int(sys.argv[3]))"
        ".write_parquet(sys.argv[1])"
    )
    subprocess.run([sys.executable, "-c", code, str(path), str(rows), str(seed)], check=True)


def contenders(source: Path, work: Path) -> dict[str, list[str]]:
    cli = shutil.which("dataplatform") or str(Path(sys.executable).parent / "dataplatform")
    return {
        "floor": [sys.executable, "-c", FLOOR, str(source), str(work / "floor.parquet")],
        "process": [cli, "process", str(source), "--out", str(work / "process")],
        "pandas": [sys.executable, str(HERE / "pandas_etl.py"), str(source), str(work / "pandas")],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000)
    parser.add_argument("--memory-rows", type=int, default=3_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        work = Path(directory)
        source = work / "yellow_tripdata_2024-01.parquet"
        generate(source, args.rows, seed=7)
        print(f"input: {args.rows:,} rows, {source.stat().st_size / 1e6:.1f} MB Parquet")
        print(f"{'':8s} {'wall (median)':>14s} {'cpu':>8s} {'peak RSS':>10s}")
        results = measure(contenders(source, work), args.repeat)
        for name, m in results.items():
            print(f"{name:8s} {m.wall:12.2f} s {m.cpu:6.2f} s {m.peak_mb:7.0f} MB")
        floor, process, pandas = (results[n] for n in ("floor", "process", "pandas"))
        print(
            f"process / floor  = {process.wall / floor.wall:.2f}x wall   (target <= 1.5x; "
            f"{ratio_range(process, floor)})"
        )
        print(
            f"pandas / process = {pandas.wall / process.wall:.2f}x wall   (target >= 3x; "
            f"{ratio_range(pandas, process)})"
        )

        big = work / "big" / "yellow_tripdata_2024-01.parquet"
        big.parent.mkdir()
        generate(big, args.memory_rows, seed=11)
        process_big = {"process": contenders(big, work / "big")["process"]}
        peak = measure(process_big, 1)["process"].peak_mb
        print(f"process peak RSS at {args.memory_rows:,} rows: {peak:.0f} MB   (target <= 1536 MB)")


if __name__ == "__main__":
    main()

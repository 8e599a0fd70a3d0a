"""`etl.allocator`: in the processor, Polars' allocator returns freed memory to the system within
milliseconds, even when nothing allocates afterwards.

Each case runs in a fresh interpreter, as a Lambda container starts: jemalloc reads its options
once, when Polars loads it, so this cannot be seen from the test process (Polars is loaded)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from etl.allocator import MALLOC_CONF_ENV

FREE_A_BIG_FRAME = """
import json, sys, time
{first_import}
import polars as pl

def resident_mb():
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

before = resident_mb()
frame = pl.select(pl.int_range(0, 40_000_000).alias("row"))  # 320 MB
held = resident_mb() - before
del frame
time.sleep(0.5)  # idle: nothing allocates that would make jemalloc purge by itself
print(json.dumps({{"held_mb": held, "kept_after_free_mb": resident_mb() - before}}))
"""


def _free_a_big_frame(first_import: str) -> dict[str, float]:
    # A container's environment: no allocator options inherited from this process's Polars.
    environment = {name: value for name, value in os.environ.items() if name != MALLOC_CONF_ENV}
    completed = subprocess.run(
        [sys.executable, "-c", FREE_A_BIG_FRAME.format(first_import=first_import)],
        capture_output=True,
        text=True,
        check=True,
        env=environment,
    )
    result: dict[str, float] = json.loads(completed.stdout)
    return result


def test_the_processor_gives_freed_frames_back_while_idle() -> None:
    processor = _free_a_big_frame("import etl.handler")
    assert processor["held_mb"] > 300
    assert processor["kept_after_free_mb"] < 50


def test_without_it_polars_keeps_freed_pages_for_a_while() -> None:
    # The contrast that makes the setting worth having: Polars' own defaults keep the pages
    # (jemalloc without a background thread purges only when the process allocates again).
    plain = _free_a_big_frame("")
    assert plain["held_mb"] > 300
    assert plain["kept_after_free_mb"] > 250

"""Make Polars' allocator give freed memory back to the system within milliseconds, in the
processor.

Polars' Linux wheels allocate through jemalloc, which keeps freed pages a while in case they
are needed again (Polars asks for 0.5 s dirty and 1 s muzzy decay), and without a background
thread only purges them when the process allocates again. The processor frees the rows as read,
and the work of validating them, just before it writes and loads the clean rows: pages kept in
between count against the function's memory.

Why 10 ms and a background thread, not 0 (measured, 3M-row month, `benchmarks/e2e_benchmark.py`
and the encoder alone):
- With no decay at all, every page the binary COPY encoder frees is returned at once and faulted
  in again for the next batch: computing and encoding the clean rows ran 2.6-3.3 s per million
  rows instead of 1.0-1.2 s (any decay from 3 to 1,000 ms), and the load of 3M rows took 13.9 s
  against 9.9 s at 10 ms and 9.3 s at 100 ms (medians of 3 rounds, runs one after the other).
- 10 ms keeps pages long enough for the next batch to reuse them, at a cost in memory: with
  jemalloc's usual four arenas per CPU the 3M-row peak was 695-700 MB, against 676-681 MB with
  no decay and 726-747 MB at 100 ms.
- The background thread purges on time even when nothing allocates (between invocations, or
  while the load waits on PostgreSQL); without it jemalloc only purges on its next allocation.
- One arena per CPU instead of four: pages one thread frees are reused by the others sooner.
  The 3M-row peak: 677-692 MB against 698-712 MB (2 interleaved pairs of 3 rounds, on 2 CPUs),
  the load's time unchanged within noise; in the end-to-end benchmark 684-689 MB (medians).

jemalloc reads its options once, at its first allocation, from `_RJEM_MALLOC_CONF`. Polars'
`__init__` sets that variable itself before it loads its Rust library, appending any value
already there, so a value set before `import polars` takes effect. Lambda cannot set it for
us: environment keys must match `[a-zA-Z][a-zA-Z0-9_]+` (AWS Lambda API reference,
`Environment`). So `etl.handler` imports this module before anything imports Polars. An
operator's own setting wins.
"""

from __future__ import annotations

import os
import sys
from typing import Final

MALLOC_CONF_ENV: Final = "_RJEM_MALLOC_CONF"
RETURN_FREED_MEMORY_SOON: Final = (
    f"background_thread:true,dirty_decay_ms:10,muzzy_decay_ms:0,narenas:{os.cpu_count() or 1}"
)

if "polars" not in sys.modules:  # once Polars is loaded its allocator has read its options
    os.environ.setdefault(MALLOC_CONF_ENV, RETURN_FREED_MEMORY_SOON)

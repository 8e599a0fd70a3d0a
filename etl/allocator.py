"""Make Polars' allocator give freed memory back to the system at once, in the processor.

Polars' Linux wheels allocate through jemalloc, which keeps freed pages a while in case they
are needed again (Polars asks for 0.5 s dirty and 1 s muzzy decay). The processor frees the
rows as read, and the work of validating them, before it writes and loads the clean rows, and
those steps allocate from other threads: pages kept in between count against the function's
memory. Returning them at once (decay 0) lowered the peak RSS of a 3M-row month by about
80 MB (`benchmarks/e2e_benchmark.py`).

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
RETURN_FREED_MEMORY_AT_ONCE: Final = "dirty_decay_ms:0,muzzy_decay_ms:0"

if "polars" not in sys.modules:  # once Polars is loaded its allocator has read its options
    os.environ.setdefault(MALLOC_CONF_ENV, RETURN_FREED_MEMORY_AT_ONCE)

"""MySQL → stage → warehouse ingestion: table config, extract, stage, load, CLI.

Arrow's allocator: jemalloc (``ARROW_DEFAULT_MEMORY_POOL``) on Linux, unless the
environment names another; ``ingestion.stage`` makes it hand freed pages back within
10 ms (``pyarrow.jemalloc_set_decay_ms``). pyarrow's default, mimalloc, keeps what a batch
freed committed for reuse, which costs an extract or a load ~40 MB of RSS over the
batches it holds; the C library's allocator keeps a heap that grows with the rows
written. Arrow reads the variable once, when pyarrow is imported, so it is set here,
before any module of the package imports pyarrow: a process that imported pyarrow
earlier keeps the pool it chose.
"""

import os
import sys

if sys.platform == "linux":  # pyarrow's Linux wheels ship jemalloc
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "jemalloc")

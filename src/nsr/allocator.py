"""glibc malloc settings for `nsr` jobs: freed tensor memory stays in the heap for the next step.

torch's CPU tensors come from malloc. glibc serves blocks above its mmap threshold (128 KiB at
start, adjusted as blocks are freed) with fresh pages and unmaps them on free, and trims the heap's
free top, so the activations of every decode and training step land on new pages that the kernel
faults in and zeroes. The embedded study took 26 million minor page faults and 119 s of system
time that way (9% of its CPU). A fixed mmap threshold of 16 MiB and a trim threshold of 128 MiB keep
those blocks for reuse; blocks above 16 MiB (a large model's weights on the host) are still mapped
and given back on free, so a paper-scale job holds no more memory than before. Results do not change:
only where memory comes from. Set either glibc variable (MALLOC_MMAP_THRESHOLD_,
MALLOC_TRIM_THRESHOLD_) to keep glibc's own behaviour or your settings.
"""

from __future__ import annotations

import ctypes
import os
import sys

# mallopt parameters (glibc malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD = 16 << 20
TRIM_THRESHOLD = 128 << 20
GLIBC_VARIABLES = ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")


def keep_freed_memory(environ=os.environ) -> bool:
    """Applies the thresholds to this process (glibc on Linux); whether they were applied."""
    if not sys.platform.startswith("linux") or any(name in environ for name in GLIBC_VARIABLES):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to set
        return False
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))

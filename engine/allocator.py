"""Keep freed memory for reuse instead of handing it back to the OS after every step.

A step of the generic engine allocates a fresh ndarray per node and frees them all when
the graph goes (a Hessian-vector product at batch 500: about 150 arrays of 32 KB).
glibc's malloc gives the top of its heap back to the OS as soon as more than 128 KB of
it is free, so the next step faults every page back in (4 KiB at a time, the kernel
zeroing each): measured here, a third of the time of a Hessian-vector product. torch
avoids this with its caching allocator; for numpy the allocator's own thresholds do it.

``keep_freed_memory`` raises glibc's trim threshold (freed memory up to that size stays
in the heap) and fixes the mmap threshold (arrays up to that size come from the heap,
not from fresh mappings). It runs once when the engine is imported, on glibc only, and
does nothing where the thresholds were set in the environment (``MALLOC_TRIM_THRESHOLD_``,
``MALLOC_MMAP_THRESHOLD_``) or ``BACKPROP_LAB_MALLOC=default`` asks for glibc's defaults.
The cost: a process keeps up to ``TRIM_THRESHOLD`` of freed memory resident.
"""

from __future__ import annotations

import ctypes
import os
import sys

TRIM_THRESHOLD = 64 * 1024 * 1024
MMAP_THRESHOLD = 8 * 1024 * 1024
_M_TRIM_THRESHOLD = -1  # <malloc.h>
_M_MMAP_THRESHOLD = -3

applied = False  # whether this process runs with the thresholds above


def keep_freed_memory() -> bool:
    """Set glibc's malloc thresholds (see the module doc); True when they were set."""
    global applied
    if applied:
        return True
    if not sys.platform.startswith("linux") or os.environ.get("BACKPROP_LAB_MALLOC") == "default":
        return False
    if "MALLOC_TRIM_THRESHOLD_" in os.environ or "MALLOC_MMAP_THRESHOLD_" in os.environ:
        return False
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
        libc.gnu_get_libc_version  # noqa: B018  (glibc only: musl has no such thresholds)
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    applied = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD)
    )
    return applied

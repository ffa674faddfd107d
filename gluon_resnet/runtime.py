"""Process set-up that must happen before MXNet loads: threads and the allocator.

Measured on a 2-core CPU (docs/DESIGN.md section 6): MXNet picks one OpenMP thread by
default there, and glibc returning large activation buffers to the OS every step
costs another 10-20 %. Both are fixed here, once, at package import; a user's
explicit OMP_NUM_THREADS / MXNET_* / GLIBC_TUNABLES settings win.
"""
from __future__ import annotations

import ctypes
import os
import sys

# glibc mallopt parameter numbers (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4


def usable_cores() -> int:
    """Cores this process may run on (affinity-aware, unlike os.cpu_count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def configure_threads() -> int:
    """Default OpenMP/MXNet thread counts to the usable cores; return the count in force.
    An empty or malformed OMP_NUM_THREADS counts as unset."""
    if not os.environ.get("OMP_NUM_THREADS", "").strip().isdigit():
        os.environ.pop("OMP_NUM_THREADS", None)
    if "mxnet" in sys.modules and "OMP_NUM_THREADS" not in os.environ:
        # Too late: MXNet read its settings at load and kept its default, half the cores
        # (src/engine/openmp.cc). Say so rather than record a thread count not in force.
        return max(1, usable_cores() // 2)
    os.environ.setdefault("OMP_NUM_THREADS", str(usable_cores()))
    os.environ.setdefault("MXNET_CPU_WORKER_NTHREADS", "1")
    return int(os.environ["OMP_NUM_THREADS"])


def keep_heap_memory() -> bool:
    """Stop glibc from unmapping/trimming freed buffers (same effect as the GLIBC_TUNABLES
    in docs/DESIGN.md section 6, applied from inside a running process). False when not glibc
    or when the user set GLIBC_TUNABLES themselves."""
    if "GLIBC_TUNABLES" in os.environ:
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(_M_MMAP_MAX, 0) == 1
        ok &= libc.mallopt(_M_TRIM_THRESHOLD, 1 << 36) == 1
        return bool(ok)
    except (OSError, AttributeError):
        return False


# The user's own choice, if any, read before configure_threads() fills in the default:
# parallel workers share the cores out among themselves unless the user chose.
USER_THREADS = os.environ.get("OMP_NUM_THREADS", "").strip() or None
THREADS = configure_threads()
HEAP_KEPT = keep_heap_memory()

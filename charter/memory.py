"""Process-wide memory settings for short, heavy commands (``charter verify``).

Each Z3 context allocates and, when it is freed, releases blocks of about 8 MB (a verify
makes a context per non-linear question, see ``compiler/verify/solver.py``).  glibc serves
blocks that large with ``mmap`` and gives them back with ``munmap``, so the next context
page-faults the same 8 MB in again: on asset_royalties 16 such round trips, half of the
command's ~90,000 page faults and ~0.1 s of its system CPU (measured with ``strace`` and
``wait4``; ``benchmarks/bench_startup.py`` shows the ``sys`` column).  Raising glibc's mmap
threshold to its maximum (32 MB on 64-bit) keeps such blocks in the heap for the next
context.  Only for processes that end soon: a long-lived one (``charter serve``, the language
server) would keep its peak heap, so they do not call this.
"""

from __future__ import annotations

import sys

M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter number (malloc.h)
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # glibc's largest accepted value on 64-bit


def keep_freed_blocks() -> bool:
    """Ask glibc to reuse freed blocks below 32 MB instead of unmapping them; True when it
    agreed.  Nothing happens (False) off Linux or where the C library has no ``mallopt``."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        import ctypes

        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError, ImportError):
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX) == 1

"""Keep freed host memory in the training process instead of handing it back to the kernel.

PyTorch's CPU tensors come from glibc's malloc. By default glibc maps blocks above a sliding
threshold with their own mmap and returns the top of its heap to the kernel once enough of it is
free, so a training round, which frees and reallocates the same tensors every time, faults their
pages in again (zero-filled by the kernel) on each round. Fixing both thresholds keeps those pages:
the VAE of `bench/bench_step_time.py` went from 300 to 480 page faults per round to 0 to 3, and
from 11.0 to 15.7 ms a round to 11.2 to 11.7 ms (bench/README.md, "Page faults"). Setting only one
of the two switches off glibc's sliding threshold and faults more, so it is both or neither.
"""

from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h
MMAP_THRESHOLD = 32 << 20  # glibc's largest on 64-bit: larger blocks (a resident dataset) keep their own mmap
TRIM_THRESHOLD = 512 << 20  # at most this much freed memory stays mapped at the top of the heap


def keep_freed_memory() -> bool:
    """Fix glibc's thresholds for this process; False where the C library is not glibc (nothing changed)."""
    return set_malloc_thresholds(MMAP_THRESHOLD, TRIM_THRESHOLD)


def set_malloc_thresholds(mmap_threshold: int, trim_threshold: int) -> bool:
    """Fix glibc's mmap and trim thresholds (bytes) for this process; False where it is not glibc."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL("libc.so.6").mallopt
    except (OSError, AttributeError):  # musl and other C libraries: no mallopt, their own policy
        return False
    if not mallopt(_M_MMAP_THRESHOLD, mmap_threshold):
        return False
    return bool(mallopt(_M_TRIM_THRESHOLD, trim_threshold))

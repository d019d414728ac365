"""Keep the step's window buffers in the process heap instead of handing them back to the kernel.

A training step allocates tens of megabytes of window-sized arrays (input projections, the
factors recorded for backward, gradients of the pre-activations) and frees them at its end.
glibc serves every allocation above its mmap threshold (128 KiB, adapting up to 32 MiB) with a
fresh mmap and unmaps it on free, and trims the heap's free top back to the kernel; either way
the next step touches new pages, which the kernel must fault in and zero: about 6,300 page
faults and 20-30 ms of system time per 2x384 step, 7% of the step (benchmarks/README.md,
"Against the GEMM bound"). With mmap off and trimming raised, freed buffers are reused by the
next step.

For training the peak is unchanged (each step needs the same buffers at once, and the
Train stage's peak still does not grow with the corpus, tests/test_bounded_memory.py): the
process keeps that peak resident between steps instead of returning and re-faulting it. Where
allocations vary in size from one use to the next, heap fragmentation can raise the peak
instead, so the setting is for training only and `release_freed_memory` puts the defaults back
(stages/train.py calls it when training ends; Luigi may run Evaluate next in the same
process). Process-wide, and only possible on glibc; elsewhere both functions do nothing.
"""
import ctypes
import platform

import numpy as np

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4   # mallopt numbers, glibc's malloc.h
TRIM_THRESHOLD = 1 << 30                 # free heap top kept up to 1 GiB before trimming
DEFAULTS = {M_MMAP_MAX: 65536, M_MMAP_THRESHOLD: 128 * 1024, M_TRIM_THRESHOLD: 128 * 1024}
_STATE = {"on": False}


def _libc():
    """glibc's handle, or None where the settings do not exist (other libcs, other systems)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(None)
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def keep_freed_memory():
    """Switch glibc's malloc to reuse freed window buffers; True if it took effect. Idempotent.

    Called by the Trainer: training repeats the same allocations step after step.
    """
    libc = _libc()
    if libc is None:
        return False
    if not _STATE["on"]:
        _STATE["on"] = bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    return _STATE["on"]


def release_freed_memory():
    """Back to glibc's default thresholds, and free heap memory returned to the kernel.

    For work after training in the same process (Luigi runs Train and Evaluate in one): with
    mmap off, large temporaries of varying sizes fragment the heap, and the Evaluate stage's
    peak grew with the corpus (154 -> 175 MB for a 20x corpus, tests/test_bounded_memory.py).
    """
    libc = _libc()
    if libc is None:
        return
    for param, value in DEFAULTS.items():
        libc.mallopt(param, value)
    libc.malloc_trim(0)
    _STATE["on"] = False


PAGE = 4096


def empty(shape, dtype=np.float32):
    """An uninitialised array whose data starts on a page boundary.

    The time loops stream several (B, H) arrays at once, reading some while writing others.
    Heap buffers start at arbitrary offsets within a page, and when an input lies a few cache
    lines ahead of an output modulo 4 KiB the CPU may hold its loads behind stores they do not
    really depend on ("4K aliasing"). With every loop array page-aligned, and (B, H) slabs a
    whole number of pages, an operation's inputs and outputs share their offset in the page.
    Measured with the loops' own work (benchmarks/loop_overhead.py, alternating): the
    elementwise part of a 2x384 step 74.7 / 42.7 us (forward / backward) aligned against
    80.3 / 44.3 with heap arrays at varying offsets.
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(nbytes + PAGE, np.uint8)
    start = -raw.ctypes.data % PAGE
    return raw[start:start + nbytes].view(dtype).reshape(shape)

"""Keep the step's window buffers in the process heap instead of handing them back to the kernel.

A training step allocates tens of megabytes of window-sized arrays (input projections, the
factors recorded for backward, gradients of the pre-activations) and frees them at its end.
glibc serves every allocation above its mmap threshold (128 KiB, adapting up to 32 MiB) with a
fresh mmap and unmaps it on free, and trims the heap's free top back to the kernel; either way
the next step touches new pages, which the kernel must fault in and zero: about 6,300 page
faults and 20-30 ms of system time per 2x384 step, 7% of the step (benchmarks/README.md,
"Page faults"). With mmap off and trimming raised, freed buffers are reused by the next step.

Peak memory is unchanged (each step needs the same buffers at once); what changes is that the
process keeps that peak resident between steps instead of returning and re-faulting it. The
setting is process-wide and only possible on glibc; elsewhere `keep_freed_memory` does nothing.
"""
import ctypes
import platform

import numpy as np

M_TRIM_THRESHOLD, M_MMAP_MAX = -1, -4   # mallopt parameter numbers from glibc's malloc.h
TRIM_THRESHOLD = 1 << 30                 # free heap top kept up to 1 GiB before trimming
_DONE = []


def keep_freed_memory():
    """Switch glibc's malloc to reuse freed window buffers; True if it took effect. Idempotent."""
    if _DONE:
        return _DONE[0]
    ok = False
    if platform.system() == "Linux" and platform.libc_ver()[0] == "glibc":
        try:
            mallopt = ctypes.CDLL(None).mallopt
        except (OSError, AttributeError):
            mallopt = None
        if mallopt is not None:
            ok = bool(mallopt(M_MMAP_MAX, 0)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    _DONE.append(ok)
    return ok


PAGE = 4096


def empty(shape, dtype=np.float32):
    """An uninitialised array whose data starts on a page boundary.

    The time loops stream several (B, H) arrays at once, reading some while writing others.
    Heap buffers start at arbitrary offsets within a page, and when an input lies a little
    ahead of an output modulo 4 KiB, the CPU takes each load for a possible reload of a store
    still in flight ("4K aliasing") and the loop slows severalfold: the same record of backward
    factors took 27 or 56 us a step at 2x384 depending on where malloc had put the arrays
    (benchmarks/README.md, "Page faults and alignment"). With every loop array page-aligned,
    and (B, H) slabs a whole number of pages, the inputs and outputs of an operation share
    their offset within the page, which never aliases.
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(nbytes + PAGE, np.uint8)
    start = -raw.ctypes.data % PAGE
    return raw[start:start + nbytes].view(dtype).reshape(shape)

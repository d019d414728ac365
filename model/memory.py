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

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
instead (Evaluate's peak grew 154 -> 175 MB for a 20x corpus with the setting left on), so it
holds only inside `reuse_freed_memory()`, which stages/train.py wraps around training: Luigi
may run other stages next in the same process. Process-wide, and only possible on glibc;
elsewhere the context manager does nothing.
"""
import ctypes
import platform
from contextlib import contextmanager

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD, M_MMAP_MAX = -1, -3, -4   # mallopt numbers, glibc's malloc.h
TRIM_THRESHOLD = 1 << 30                 # free heap top kept up to 1 GiB before trimming
# glibc's initial values. Setting any of these options switches off its adaptive mmap threshold
# for good, so on the way out the threshold is fixed at 128 KiB rather than adaptive again:
# large temporaries are mmapped and returned on free, which is what keeps later stages lean.
INITIAL = {M_MMAP_MAX: 65536, M_MMAP_THRESHOLD: 128 * 1024, M_TRIM_THRESHOLD: 128 * 1024}
_DEPTH = [0]


def _libc():
    """glibc's handle, or None where the settings do not exist (other libcs, other systems)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        libc = ctypes.CDLL(None)
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


@contextmanager
def reuse_freed_memory():
    """Inside: freed buffers stay in the heap for the next step. Yields whether that took effect.

    On the way out (outermost use only) glibc's initial thresholds are set again, with the
    mmap threshold fixed (see INITIAL), and the heap's free memory is returned to the kernel.
    Nothing is changed, then or now, where the setting could not be taken.
    """
    libc = _libc()
    taken = libc is not None and (_DEPTH[0] > 0 or (
        bool(libc.mallopt(M_MMAP_MAX, 0)) and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))))
    _DEPTH[0] += taken
    try:
        yield taken
    finally:
        if taken:
            _DEPTH[0] -= 1
            if _DEPTH[0] == 0:
                for param, value in INITIAL.items():
                    libc.mallopt(param, value)
                libc.malloc_trim(0)

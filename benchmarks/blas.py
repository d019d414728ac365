"""Read and set the number of BLAS threads of this process (OpenBLAS, as NumPy's wheels ship it).

The benchmarks compare runs at one BLAS thread and at BLAS's own setting in one process; the
engine itself never changes it (data-parallel ranks are started with OPENBLAS_NUM_THREADS set).
OpenBLAS's own calls, found in the library NumPy has loaded; None / no effect where that is not
OpenBLAS.
"""
import ctypes
import functools

import numpy as np  # noqa: F401  (loads the BLAS library this module looks for)

NAMES = ("openblas_{}_num_threads", "scipy_openblas_{}_num_threads64_", "openblas_{}_num_threads64_")


@functools.lru_cache(maxsize=1)
def _openblas():
    with open("/proc/self/maps") as fh:
        paths = sorted({line.split()[-1] for line in fh if "openblas" in line.lower() and "/" in line})
    for path in paths:
        lib = ctypes.CDLL(path)
        for name in NAMES:
            if hasattr(lib, name.format("get")):
                return getattr(lib, name.format("get")), getattr(lib, name.format("set"))
    return None


def blas_threads():
    """BLAS's thread count now, or None if it cannot be read."""
    calls = _openblas()
    return int(calls[0]()) if calls else None


def set_blas_threads(n):
    """Set BLAS's thread count for the process (no effect where BLAS is not OpenBLAS)."""
    calls = _openblas()
    if calls:
        calls[1](int(n))
    return blas_threads()

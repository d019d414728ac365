"""Do two Python threads overlap the work of one recurrent step? GEMMs fully, small ufuncs partly.

    python benchmarks/thread_overlap.py [--batch 64 --hidden 512]

Times a loop of (B, H) x (H, 3H) GEMMs (single-threaded BLAS) and a loop of the cell's kind of
elementwise calls on (B, H) arrays, first in one thread, then the same loop in each of two
threads at once. `ratio` = two threads' wall time / one thread's: 1.0 means the two threads
overlapped perfectly (two cores busy), 2.0 means they ran one after the other (medians of
`--repeats` timings: the two-thread times spread widely). Prints one JSON line. Both kinds
of work overlap well in isolation, so what makes the threaded steps (model/parallel.py,
model/wavefront.py) slower at B = 64 lies in how a step combines them (benchmarks/README.md).
"""
import argparse
import json
import statistics
import threading
import time

import numpy as np
from threadpoolctl import threadpool_limits


def gemm_loop(B, H, n=200):
    w = np.random.default_rng(0).standard_normal((H, 3 * H)).astype(np.float32)
    h, out = np.ones((B, H), np.float32), np.empty((B, 3 * H), np.float32)
    for _ in range(n):
        np.matmul(h, w, out=out)


def elementwise_loop(B, H, n=200):
    """Calls like the cell's: a transcendental on a gate block, in-place products and sums."""
    a = np.ones((B, 3 * H), np.float32)
    c, t = np.ones((B, H), np.float32), np.empty((B, H), np.float32)
    for _ in range(n):
        for _ in range(8):
            np.tanh(a[:, :H], out=t)
            c *= t
            c += t


def wall(fn, threads, B, H):
    ts = [threading.Thread(target=fn, args=(B, H)) for _ in range(threads)]
    t0 = time.perf_counter()
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--repeats", type=int, default=15, help="timings of each; medians reported")
    a = p.parse_args()
    out = {"batch": a.batch, "hidden": a.hidden}
    with threadpool_limits(limits=1, user_api="blas"):
        for name, fn in (("gemm", gemm_loop), ("elementwise", elementwise_loop)):
            wall(fn, 1, a.batch, a.hidden)                                 # warm-up
            one = statistics.median(wall(fn, 1, a.batch, a.hidden) for _ in range(a.repeats))
            two = statistics.median(wall(fn, 2, a.batch, a.hidden) for _ in range(a.repeats))
            out[name] = {"one_thread_s": round(one, 4), "two_threads_s": round(two, 4),
                         "ratio": round(two / one, 2)}
    print(json.dumps(out))


if __name__ == "__main__":
    main()

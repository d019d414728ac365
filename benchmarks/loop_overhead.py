"""What the two time loops spend beyond their matrix products, per step of one layer.

    python benchmarks/loop_overhead.py --hidden 384 [--batch 64 --seq 100 --windows 15]

For one layer on a (T, B) window of character ids: `layer_forward` (recording the backward
factors) and `layer_backward`, against the same T recurrent GEMMs run alone; the difference is
the elementwise work of the loops. Both are run twice, alternating window by window: with the
engine's page-aligned buffers (model/cell.py, `empty`) and with plain heap arrays in their place.
Also: minor page faults per training step of a 2-layer Trainer after warm-up. One JSON line of
medians.
"""
import argparse
import json
import os
import resource
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import model.cell as cell  # noqa: E402
from model import CIFGLSTM, Trainer, TrainSettings  # noqa: E402
from model.cell import empty  # noqa: E402
from model.heap import reuse_freed_memory  # noqa: E402


def plain_empty(shape, dtype=np.float32):
    """np.empty behind a small, varying offset, as heap arrays land within a page."""
    dtype = np.dtype(dtype)
    n = int(np.prod(shape))
    pad = int(np.random.default_rng().integers(1, 64)) * 16 // dtype.itemsize
    return np.empty(n + pad, dtype)[pad:].reshape(shape)


def window(H, B, T, alloc, rng, Wh, table, ids):
    """(forward s, backward s) for one window with `alloc` as the loop's allocator."""
    cell.empty = alloc
    xw = alloc((T, B, 3 * H))
    np.take(table, ids, axis=0, out=xw, mode="clip")
    z = np.zeros((B, H), np.float32)
    dh = alloc((T, B, H))
    dh[...] = rng.standard_normal((T, B, H), dtype=np.float32) * 1e-3
    t0 = time.perf_counter()
    _, _, cache = cell.layer_forward(xw, z, z, Wh, for_backward=True)
    t1 = time.perf_counter()
    cell.layer_backward(dh, z, z, cache)
    t2 = time.perf_counter()
    cell.empty = empty
    return t1 - t0, t2 - t1


def loop_gemms(H, B, T, Wh, WhT):
    h, rec = np.ones((B, H), np.float32), np.empty((B, 3 * H), np.float32)
    da, dh = np.ones((B, 3 * H), np.float32), np.empty((B, H), np.float32)
    t0 = time.perf_counter()
    for _ in range(T):
        np.matmul(h, Wh, out=rec)
    t1 = time.perf_counter()
    for _ in range(T):
        np.matmul(da, WhT, out=dh)
    return t1 - t0, time.perf_counter() - t1


def faults_per_step(H, B, T, steps=4):
    net = CIFGLSTM(65, H, 2, 65, seed=0, char_inputs=True)
    data = np.random.default_rng(0).integers(0, 65, B * T * (steps + 4)).astype(np.uint8)
    tr = Trainer(net, data, TrainSettings(batch_size=B, seq_len=T, steps=10 ** 9))
    for _ in range(2):
        tr.train_step()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(steps):
        tr.train_step()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before) / steps


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=384)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seq", type=int, default=100)
    p.add_argument("--windows", type=int, default=15)
    a = p.parse_args()
    H, B, T = a.hidden, a.batch, a.seq
    rng = np.random.default_rng(0)
    Wh = (rng.standard_normal((H, 3 * H)) / np.sqrt(H)).astype(np.float32)
    WhT = np.ascontiguousarray(Wh.T)
    table = rng.standard_normal((65, 3 * H)).astype(np.float32)
    ids = rng.integers(0, 65, (T, B))
    runs = {"aligned": [], "plain": [], "gemms": []}
    with reuse_freed_memory():   # as in the Train stage
        faults = faults_per_step(H, B, T)
        for _ in range(a.windows + 1):
            for name, alloc in (("aligned", empty), ("plain", plain_empty)):
                runs[name].append(window(H, B, T, alloc, rng, Wh, table, ids))
            runs["gemms"].append(loop_gemms(H, B, T, Wh, WhT))
    med = {k: [statistics.median(r[j] for r in v[1:]) for j in (0, 1)] for k, v in runs.items()}
    out = {"hidden": H, "batch": B, "seq": T, "page_faults_per_train_step": faults,
           "loop_gemms_us_per_step": [round(1e6 * x / T, 1) for x in med["gemms"]]}
    for name in ("aligned", "plain"):
        out[f"{name}_loops_us_per_step"] = [round(1e6 * x / T, 1) for x in med[name]]
        out[f"{name}_elementwise_us_per_step"] = [round(1e6 * (x - g) / T, 1)
                                                  for x, g in zip(med[name], med["gemms"])]
    print(json.dumps(out))   # [forward, backward] pairs


if __name__ == "__main__":
    main()

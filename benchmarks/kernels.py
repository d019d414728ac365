"""The kernel choices inside the engine, timed against their alternatives.

    python benchmarks/kernels.py [--hidden 512 --batch 64 --seq 100 --vocab 65]

Prints one JSON line of medians (microseconds or milliseconds):
- the backward loop's `da_t @ W_h^T` with a contiguous copy of W_h^T (NN) vs the transposed view;
- the embedding gradient (scatter-add of T*B rows into V rows): np.add.at, sort + reduceat,
  and the one-hot-transpose GEMM the engine uses;
- float32 vs float64 peak of a 2048 x 2048 matrix product (best of ten);
- one step's gate activations (sigmoid on o and i, tanh on g) on the GEMM's row layout, where
  each gate is a strided (B, H) view, against a gate-major (G, B, H) copy (the copy included);
- the bias gradient (column sums of the (T*B, 3H) da) as .sum(0) and as a GEMV with ones;
- the clipping norm with a float64 copy and as a float32 BLAS dot.
"""
import argparse
import json

import numpy as np

from gemm_bound import median_time  # same folder
from train_throughput import gemm_peak_gflops  # same folder: the same peak measurement




def recurrent_gemm(B, H, G, rng):
    da = rng.standard_normal((B, G * H), dtype=np.float32)
    Wh = rng.standard_normal((H, G * H), dtype=np.float32)
    WhT, out = np.ascontiguousarray(Wh.T), np.empty((B, H), np.float32)
    return {"loop_gemm_transposed_view_us": 1e6 * median_time(lambda: np.matmul(da, Wh.T, out=out), 200),
            "loop_gemm_contiguous_nn_us": 1e6 * median_time(lambda: np.matmul(da, WhT, out=out), 200)}


def embedding_grad(N, V, GH, rng):
    ids = rng.integers(0, V, N)
    da = rng.standard_normal((N, GH), dtype=np.float32)
    G = np.zeros((V, GH), np.float32)

    def add_at():
        G[...] = 0
        np.add.at(G, ids, da)

    def reduceat():
        order = np.argsort(ids, kind="stable")
        s = ids[order]
        starts = np.flatnonzero(np.r_[True, s[1:] != s[:-1]])
        G[...] = 0
        G[s[starts]] = np.add.reduceat(da[order], starts, axis=0)

    def one_hot_gemm():
        oh = np.zeros((V, N), np.float32)
        oh[ids, np.arange(N)] = 1
        np.matmul(oh, da, out=G)
    return {f"embedding_grad_{f.__name__}_ms": 1e3 * median_time(f, 5) for f in (add_at, reduceat, one_hot_gemm)}


def gate_layouts(B, H, rng):
    """Sigmoid on [o, i], tanh on g, for one step: strided gate views vs a gate-major copy."""
    x = rng.standard_normal((B, 3 * H), dtype=np.float32)
    a, work = np.empty((3, B, H), np.float32), np.empty_like(x)

    def strided():
        np.copyto(work, x)
        s = work[:, :2 * H]
        s *= 0.5
        np.tanh(s, out=s)
        s *= 0.5
        s += 0.5
        np.tanh(work[:, 2 * H:], out=work[:, 2 * H:])

    def gate_major():
        np.copyto(a, x.reshape(B, 3, H).transpose(1, 0, 2))
        s = a[:2]
        s *= 0.5
        np.tanh(a, out=a)
        s *= 0.5
        s += 0.5
    return {"gates_strided_views_us": 1e6 * median_time(strided, 500),
            "gates_gate_major_copy_us": 1e6 * median_time(gate_major, 500)}


def reductions(N, GH, n_params, rng):
    da = rng.standard_normal((N, GH), dtype=np.float32)
    ones, out = np.ones(N, np.float32), np.empty(GH, np.float32)
    g = rng.standard_normal(n_params, dtype=np.float32)
    return {"bias_grad_sum0_us": 1e6 * median_time(lambda: da.sum(axis=0), 50),
            "bias_grad_gemv_us": 1e6 * median_time(lambda: np.matmul(ones, da, out=out), 50),
            "norm_float64_copy_us": 1e6 * median_time(lambda: np.dot(g.astype(np.float64), g), 50),
            "norm_float32_dot_us": 1e6 * median_time(lambda: np.dot(g, g), 50)}


def gemm_peaks():
    return {f"gemm_peak_{dt.__name__}_gflops": gemm_peak_gflops(dtype=dt) for dt in (np.float32, np.float64)}


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seq", type=int, default=100)
    p.add_argument("--vocab", type=int, default=65)
    a = p.parse_args()
    rng = np.random.default_rng(0)
    res = {**recurrent_gemm(a.batch, a.hidden, 3, rng),
           **embedding_grad(a.batch * a.seq, a.vocab, 3 * a.hidden, rng),
           **gate_layouts(a.batch, a.hidden, rng),
           **reductions(a.batch * a.seq, 3 * a.hidden, 5 * a.hidden * 3 * a.hidden, rng), **gemm_peaks()}
    print(json.dumps({k: round(v, 1) for k, v in res.items()}))


if __name__ == "__main__":
    main()

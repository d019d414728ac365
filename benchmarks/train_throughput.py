"""Training and sampling throughput of the NumPy engine, against its GEMM bound.

    python benchmarks/train_throughput.py --hidden 512 --layers 2 --batch 64 --seq 100

Prints one JSON line. The headline is `bound_fraction` = chars_per_s / gemm_bound_chars_per_s,
where the bound is what a step would cost doing nothing but its own matrix products, each GEMM
shape timed alone in the same run with the same BLAS threads (benchmarks/gemm_bound.py).
`--blas-threads N` sets BLAS threads for the whole run (default: BLAS's own setting).
Secondary: `mfu`, model FLOPs (6 per character for every weight used in a matrix product, none
for the layer-0 row gather) over the rate of one large square float32 GEMM - that peak varies
between machines far more than the engine does, so it cannot show progress.
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from model import CIFGLSTM, Trainer, TrainSettings, generate  # noqa: E402
from model.heap import reuse_freed_memory  # noqa: E402
from blas import blas_threads, set_blas_threads  # noqa: E402
from gemm_bound import gemm_bound  # noqa: E402


def gemm_peak_gflops(n=2048, repeats=10, dtype=np.float32):
    """Best of several large GEMMs: the rate this machine can reach at all."""
    a = np.random.default_rng(0).standard_normal((n, n)).astype(dtype)
    b = a.copy()
    np.matmul(a, b)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        np.matmul(a, b)
        times.append(time.perf_counter() - t0)
    return 2 * n ** 3 / min(times) / 1e9


def matmul_weights(net):
    """Weights that take part in a matrix product per character (the layer-0 gather excluded)."""
    n = net.H * net.G * net.H + net.H * net.K              # W_h of layer 0, read-out
    n += (net.L - 1) * (2 * net.H) * net.G * net.H          # full W of upper layers
    return n


def train_rate(args):
    vocab = 65
    net = CIFGLSTM(vocab, args.hidden, args.layers, vocab, seed=0, cell=args.cell, dropout=args.dropout)
    data = np.random.default_rng(0).integers(0, vocab, args.batch * args.seq * (args.steps + 3) + 1)
    tr = Trainer(net, data.astype(np.uint8), TrainSettings(batch_size=args.batch, seq_len=args.seq,
                                                           steps=10 ** 9))
    times = []
    with reuse_freed_memory():   # as the Train stage runs
        tr.train_step()  # warm-up: allocations, BLAS threads
        for _ in range(args.steps):
            t0 = time.perf_counter()
            tr.train_step()
            times.append(time.perf_counter() - t0)
    return net, args.batch * args.seq / statistics.median(times)


def sample_rate(net, num, length):
    t0 = time.perf_counter()
    generate(net, [0], length, num=num, temperature=1.0, seed=0)
    return num * length / (time.perf_counter() - t0)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seq", type=int, default=100)
    p.add_argument("--steps", type=int, default=12, help="timed steps (median reported)")
    p.add_argument("--cell", default="cifg", choices=["cifg", "lstm"])
    p.add_argument("--dropout", type=float, default=0.0)
    p.add_argument("--sample-chars", type=int, default=300)
    p.add_argument("--blas-threads", type=int, default=0, help="BLAS threads (0 = BLAS's default)")
    args = p.parse_args()
    if args.blas_threads:
        set_blas_threads(args.blas_threads)
    out = measure(args)
    print(json.dumps(out))


def measure(args):
    peak = gemm_peak_gflops()
    net, cps = train_rate(args)
    G = 3 if args.cell == "cifg" else 4
    bound_s, _ = gemm_bound(args.hidden, args.layers, args.batch, args.seq, 65, 65, G)
    bound_cps = args.batch * args.seq / bound_s
    gflops = cps * 6 * matmul_weights(net) / 1e9
    return {"hidden": args.hidden, "layers": args.layers, "batch": args.batch, "seq": args.seq,
            "cell": args.cell, "dropout": args.dropout, "params": net.num_params,
            "blas_threads": blas_threads(),
            "chars_per_s": round(cps),
            "gemm_bound_chars_per_s": round(bound_cps), "bound_fraction": round(cps / bound_cps, 3),
            "gflops": round(gflops, 2), "gemm_peak_gflops": round(peak, 2), "mfu": round(gflops / peak, 3),
            "sample_chars_per_s_batch32": round(sample_rate(net, 32, args.sample_chars)),
            "sample_chars_per_s_1": round(sample_rate(net, 1, args.sample_chars))}


if __name__ == "__main__":
    main()

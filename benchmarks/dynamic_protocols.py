"""Dynamic evaluation's two causal protocols, timed: one stream, or lanes with their own weights.

One stream (model/dynamic.py) runs one character per recurrent step. Lanes that each adapt
their own copy of the weights (the other protocol that never looks ahead) run `lanes`
characters per step, but each lane multiplies by its own matrices: a stack of weights, one
batched product per step. This times, per character, what differs between the two:
  - the whole one-stream pass as built (forward, backward, update, the guard's twin), and
  - the recurrent products both must do (h @ W_h forward, dh @ W_h^T backward, every layer,
    every step) and the segment's weight gradient, as one stream and as a stack of `lanes`.
The stacked form was not built; its kernel time per character bounds what it could gain.

    python benchmarks/dynamic_protocols.py --hidden 384 --lanes 16 --chars 4000
"""
import argparse
import json
import time

import numpy as np

from model import CIFGLSTM
from model.dynamic import DynamicSettings, DynamicStream, gradient_rms

DEFAULTS = {"hidden": 384, "layers": 2, "vocab": 65, "lanes": 16, "segment": 50, "chars": 4000}


def per_char(fn, chars, repeats=3):
    """Median seconds per character of `fn()` (which handles `chars` characters)."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) / chars)
    return float(np.median(times))


def kernels(H, G, layers, lanes, segment, steps, dtype=np.float32):
    """Seconds per character of the recurrent products: one stream vs `lanes` own-weight lanes."""
    rng = np.random.default_rng(0)
    W1 = rng.standard_normal((H, G * H)).astype(dtype)
    Ws = rng.standard_normal((lanes, H, G * H)).astype(dtype)
    h1, d1 = rng.standard_normal((1, H)).astype(dtype), rng.standard_normal((1, G * H)).astype(dtype)
    hs, ds = (rng.standard_normal((lanes, 1, n)).astype(dtype) for n in (H, G * H))
    seq1, dseq1 = rng.standard_normal((H, segment)).astype(dtype), rng.standard_normal((segment, G * H)).astype(dtype)
    seqs, dseqs = (rng.standard_normal((lanes,) + s.shape).astype(dtype) for s in (seq1, dseq1))

    def one():
        for t in range(steps):
            for _ in range(layers):
                h1 @ W1, d1 @ W1.T
            if t % segment == 0:
                for _ in range(layers):
                    seq1 @ dseq1

    def stacked():
        for t in range(steps):
            for _ in range(layers):
                np.matmul(hs, Ws), np.matmul(ds, Ws.transpose(0, 2, 1))
            if t % segment == 0:
                for _ in range(layers):
                    np.matmul(seqs, dseqs)
    return per_char(one, steps), per_char(stacked, steps * lanes)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name, default in DEFAULTS.items():
        ap.add_argument(f"--{name}", type=int, default=default)
    a = ap.parse_args()
    net = CIFGLSTM(a.vocab, a.hidden, a.layers, a.vocab, seed=0, char_inputs=True)
    ids = np.random.default_rng(1).integers(0, a.vocab, a.chars + 1)
    rms = gradient_rms(net, ids, a.segment, 1, 20)
    settings = DynamicSettings(2e-4, 0.01, a.segment)

    def stream(guard):
        def run():
            s = DynamicStream(net, rms, settings, guard=guard)
            s.score(ids[:a.chars])
            s.close()
        return run
    one_k, lanes_k = kernels(a.hidden, net.G, a.layers, a.lanes, a.segment, 400)
    row = {"bench": "dynamic_protocols", "hidden": a.hidden, "layers": a.layers, "lanes": a.lanes,
           "segment": a.segment, "chars": a.chars,
           "one_stream_us_per_char": round(1e6 * per_char(stream(True), a.chars), 1),
           "one_stream_no_guard_us_per_char": round(1e6 * per_char(stream(False), a.chars), 1),
           "kernel_one_stream_us_per_char": round(1e6 * one_k, 2),
           "kernel_own_weight_lanes_us_per_char": round(1e6 * lanes_k, 2),
           "date": time.strftime("%Y-%m-%d %H:%M"), "load": round(__import__("os").getloadavg()[0], 2)}
    print(json.dumps(row))


if __name__ == "__main__":
    main()

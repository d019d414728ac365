"""train.threads 1 against 2, alternating steps in one process so both see the same machine.

    python benchmarks/threads_ab.py --hidden 512 [--layers 2 --batch 64 --seq 100 --steps 8]

Prints one JSON line: the median chars/s of each setting over `--steps` alternated steps.
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from model import CIFGLSTM, Trainer, TrainSettings  # noqa: E402


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seq", type=int, default=100)
    p.add_argument("--steps", type=int, default=8)
    a = p.parse_args()
    data = np.random.default_rng(0).integers(0, 65, a.batch * a.seq * (2 * a.steps + 4) + 1)
    trainers = {}
    for threads in (1, 2):
        net = CIFGLSTM(65, a.hidden, a.layers, 65, seed=0, char_inputs=True)
        trainers[threads] = Trainer(net, data.astype(np.uint8), TrainSettings(
            batch_size=a.batch, seq_len=a.seq, steps=10 ** 9, threads=threads))
        trainers[threads].train_step()               # warm-up
    times = {1: [], 2: []}
    for _ in range(a.steps):
        for threads, tr in trainers.items():
            t0 = time.perf_counter()
            tr.train_step()
            times[threads].append(time.perf_counter() - t0)
    chars = a.batch * a.seq
    print(json.dumps({"hidden": a.hidden, "layers": a.layers, **{
        f"chars_per_s_threads{k}": round(chars / statistics.median(v)) for k, v in times.items()}}))


if __name__ == "__main__":
    main()

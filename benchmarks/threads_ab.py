"""Ways of running a training step, alternated step by step in one process so all see the same machine.

    python benchmarks/threads_ab.py --hidden 512 [--layers 2 --batch 64 --seq 100 --steps 8]
        [--modes serial,layers,lanes] [--chunks 5]

serial: one thread, BLAS's own threading; layers: the wavefront over layers (model/wavefront.py,
one thread per layer, `--chunks` steps per chunk, several values allowed); lanes: the lanes
split over two threads (model/parallel.py). Prints one JSON line: the median chars/s of each.
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from model import CIFGLSTM, Trainer, TrainSettings, wavefront  # noqa: E402


def trainers(a, data):
    """name -> (trainer, chunk) for every mode (and chunk size) asked for."""
    out = {}
    for mode in a.modes.split(","):
        for chunk in ([int(c) for c in a.chunks.split(",")] if mode == "layers" else [None]):
            net = CIFGLSTM(65, a.hidden, a.layers, 65, seed=0, char_inputs=True)
            threads, parallel = (1, "lanes") if mode == "serial" else (2, mode)
            tr = Trainer(net, data, TrainSettings(batch_size=a.batch, seq_len=a.seq, steps=10 ** 9,
                                                  threads=threads, parallel=parallel))
            out[mode if chunk is None else f"layers{chunk}"] = (tr, chunk)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--seq", type=int, default=100)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--modes", default="serial,layers,lanes")
    p.add_argument("--chunks", default=str(wavefront.CHUNK), help="wavefront chunk sizes, comma-separated")
    a = p.parse_args()
    data = np.random.default_rng(0).integers(0, 65, a.batch * a.seq * (2 * a.steps + 4) + 1)
    runs = trainers(a, data.astype(np.uint8))
    times = {name: [] for name in runs}
    for i in range(a.steps + 1):
        for name, (tr, chunk) in runs.items():
            wavefront.CHUNK = chunk or wavefront.CHUNK
            t0 = time.perf_counter()
            tr.train_step()
            if i:                                    # the first round is a warm-up
                times[name].append(time.perf_counter() - t0)
    chars = a.batch * a.seq
    print(json.dumps({"hidden": a.hidden, "layers": a.layers, **{
        f"chars_per_s_{k}": round(chars / statistics.median(v)) for k, v in times.items()}}))


if __name__ == "__main__":
    main()

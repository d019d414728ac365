"""Which initialisation learns fastest: scale of the character rows and the input-gate bias.

    OPENBLAS_NUM_THREADS=1 python benchmarks/init_ablation.py --text ../shared/data/tinyshakespeare.txt

A small 2-layer CIFG (hidden 128, batch 32 x 64, Adam 3e-3, constant rate after 20 warm-up
steps, no dropout) trained on the first 90% of the text; after every 200 steps it prints the
validation loss on the first 20,000 characters of the last 10% (16 lanes, 100 burn-in).
Each variant starts from the uniform(+-1/sqrt(H)) initialisation and then overrides the
character rows of W0 with N(0, scale^2) (scale 0: keep uniform) and the input-gate bias.
"""
import argparse
import json
import os
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from model import CIFGLSTM, Trainer, TrainSettings, evaluate_stream  # noqa: E402

VARIANTS = [(0.0, -1.0), (1.0, -1.0), (1.0, 0.0), (2.0, 0.0), (1.0, 1.0), (2.0, 1.0), (1.0, 2.0),
            (2.0, 0.5), (0.3, -1.0)]


def run(train_ids, val_ids, vocab_size, scale, input_bias, steps, hidden=128):
    net = CIFGLSTM(vocab_size, hidden, 2, vocab_size, seed=0)
    if scale:
        net.params["W0"][:vocab_size] = np.random.default_rng(1).normal(0, scale, (vocab_size, 3 * hidden))
    for l in range(2):
        net.params[f"b{l}"][:] = 0.0
        net.params[f"b{l}"][hidden:2 * hidden] = input_bias    # gate order [o, i, g]
    tr = Trainer(net, train_ids, TrainSettings(batch_size=32, seq_len=64, steps=steps,
                                               learning_rate=3e-3, warmup_steps=20, decay="constant"))
    curve = []
    for s in range(steps):
        tr.train_step()
        if (s + 1) % 200 == 0:
            curve.append(round(evaluate_stream(net, val_ids, lanes=16, burn_in=100)["nats_per_char"], 3))
    return curve


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--text", required=True)
    p.add_argument("--steps", type=int, default=800)
    p.add_argument("--only", type=int, nargs="*", help="indices into VARIANTS to run (default: all)")
    args = p.parse_args()
    text = open(args.text, encoding="utf-8").read()
    chars = sorted(set(text))
    stoi = {c: i for i, c in enumerate(chars)}
    ids = np.array([stoi[c] for c in text], np.uint8)
    n = int(len(ids) * 0.9)
    for scale, bias in [VARIANTS[i] for i in args.only] if args.only else VARIANTS:
        curve = run(ids[:n], ids[n:n + 20000].astype(np.int64), len(chars), scale, bias, args.steps)
        print(json.dumps({"row_std": scale, "input_gate_bias": bias, "val_every_200_steps": curve}), flush=True)


if __name__ == "__main__":
    main()

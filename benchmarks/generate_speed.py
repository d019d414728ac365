"""Generation speed for one stream: sampling vs beam search, as `python -m pipeline generate` runs them.

    python benchmarks/generate_speed.py [--chars 1000] [--hidden 384 --layers 2 --vocab 65]
    python benchmarks/generate_speed.py --checkpoint artifacts/Train/<fp>/best.ckpt

Prints one JSON line. Each strategy runs through stages.generate.generate_stream (the streamed
path, decoding included) `--repeats` times, interleaved, and the median is reported; the ratios
come from the same run, so they hold up better than the absolute times on a loaded machine.
Without --checkpoint the network has the default config's shape and random weights (the speed
does not depend on the weights; the n-gram ban's cost does a little, through the text).
"""
import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from model import CIFGLSTM, load_model  # noqa: E402
from stages.generate import GenerateSettings, generate_stream  # noqa: E402
from stages.vocab import Vocab  # noqa: E402

CASES = {"sample": {"strategy": "sample"}, "greedy": {"strategy": "greedy"},
         "beam4": {"strategy": "beam", "beam_width": 4},
         "beam4_norepeat12": {"strategy": "beam", "beam_width": 4, "no_repeat_ngram": 12}}


def network(args):
    if args.checkpoint:
        return load_model(args.checkpoint)[0]
    return CIFGLSTM(args.vocab, args.hidden, args.layers, args.vocab, seed=0, char_inputs=True)


def seconds(net, vocab, prime, chars, case):
    s = GenerateSettings(length=chars, **CASES[case])
    t0 = time.perf_counter()
    text = "".join(piece for _, piece in generate_stream(net, vocab, prime, s))
    assert len(text) == chars
    return time.perf_counter() - t0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--chars", type=int, default=1000, help="characters generated per run")
    p.add_argument("--repeats", type=int, default=3, help="runs per strategy (median reported)")
    p.add_argument("--hidden", type=int, default=384, help="hidden size (no --checkpoint)")
    p.add_argument("--layers", type=int, default=2, help="layers (no --checkpoint)")
    p.add_argument("--vocab", type=int, default=65, help="vocabulary size (no --checkpoint)")
    p.add_argument("--checkpoint", help="time a trained model instead of a random one")
    args = p.parse_args()
    net = network(args)
    vocab = Vocab(chars=tuple(chr(32 + i) for i in range(net.K)), counts=(1,) * net.K)
    prime = list(range(min(net.K, 20)))
    times = {case: [] for case in CASES}
    for _ in range(args.repeats):
        for case in CASES:
            times[case].append(seconds(net, vocab, prime, args.chars, case))
    med = {case: statistics.median(t) for case, t in times.items()}
    row = {"chars": args.chars, "hidden": net.H, "layers": net.L, "vocab": net.K,
           "dtype": net.dtype.name, "repeats": args.repeats,
           "checkpoint": args.checkpoint, "threads": os.environ.get("OPENBLAS_NUM_THREADS")}
    for case, s in med.items():
        row[f"{case}_s"] = round(s, 3)
        row[f"{case}_chars_per_s"] = round(args.chars / s)
    row["beam4_over_sample"] = round(med["beam4"] / med["sample"], 2)
    print(json.dumps(row))


if __name__ == "__main__":
    main()

"""How wide the held-out intervals are on a real split, and how often they hold on synthetic text.

    python benchmarks/intervals.py --config pipeline.yaml     # widths on that config's split
    python benchmarks/intervals.py --coverage                 # nominal-rate check, synthetic
    python benchmarks/intervals.py --config pipeline.yaml --bands   # + reference-band widths

--config needs the config's EncodeShards output (`luigi --module pipeline EncodeShards ...`).
It fits the configured n-gram, the one an order below, and the unigram on the training split,
and prints each model's held-out nats/char with its 95% interval and the paired difference of
the two n-grams, exactly as the Evaluate stage computes them (no trained LSTM needed).
--coverage prints, for the regime-switching source of tests/test_uncertainty.py, how often the
intervals contain the exact true loss, at the test's block length and at 20-character blocks.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pipeline.config import load_config  # noqa: E402
from stages.ngram import KneserNeyLM  # noqa: E402
from stages.shards import read_stream  # noqa: E402
from stages.metrics.uncertainty import intervals, paired_difference, verdict_word  # noqa: E402


def widths(config):
    cfg = load_config(config)
    e = cfg.evaluate
    shards = _shards(cfg, config)
    train, val = (read_stream(shards, s).astype(np.int64) for s in ("train", "val"))
    size = int(max(train.max(), val.max())) + 1
    nll = {f"{k}-gram": KneserNeyLM(k, size).fit(train).stream_nll(val, context=train)
           for k in (e.ngram_order, e.ngram_order - 1, 1) if k >= 1}
    cis = intervals(nll, e.block_chars, e.resamples)
    for name, x in nll.items():
        lo, hi = cis[name]
        print(json.dumps({"model": name, "nats_per_char": round(float(x.mean()), 4),
                          "ci95": [round(lo, 4), round(hi, 4)], "width": round(hi - lo, 4),
                          "val_chars": len(val), "blocks": -(-len(val) // e.block_chars)}))
    a, b = list(nll)[:2]
    diff = paired_difference(nll[a], nll[b], e.block_chars, e.resamples)
    print(json.dumps({"difference": f"{a} minus {b}", "mean": round(diff["mean"], 4),
                      "ci95": [round(x, 4) for x in diff["ci95"]],
                      "verdict": f"the {a} {verdict_word(diff['ci95'])} the {b}"}))


def band_widths(config, shapes=((4, 600), (8, 1000), (16, 1000))):
    """Width of each reference band (p95 - p5 over evaluate.reference_draws sets) per sample shape."""
    from stages.metrics.bands import reference_band, reference_sets
    from stages.metrics import MetricContext
    from stages.vocab import Vocab
    cfg = load_config(config)
    shards = _shards(cfg, config)
    vocab = Vocab.load(next(Path(cfg.artifacts_dir).glob("BuildVocab/*/vocab.json")))
    train, val = (vocab.decode(read_stream(shards, s)) for s in ("train", "val"))
    lm = KneserNeyLM(cfg.evaluate.ngram_order, vocab.size).fit(vocab.encode(train))
    half = len(val) // 2
    ctx = MetricContext.build(train, val[half:], lm, lambda t: vocab.encode(t, unknown="skip"))
    for num, length in shapes:
        sets = reference_sets(val[:half], train, cfg.evaluate.reference_draws, num, length, 0)
        _, band = reference_band(sets, ctx, None)
        print(json.dumps({"samples": f"{num}x{length}", "band_width": {
            k: round(b[1] - b[0], 4) for k, b in band.items() if b is not None}}))


def _shards(cfg, config):
    folders = sorted(Path(cfg.artifacts_dir).glob("EncodeShards/*/_COMPLETE"))
    if not folders:
        sys.exit(f"no EncodeShards output under {cfg.artifacts_dir}; run "
                 f"`luigi --module pipeline EncodeShards --config {config} --local-scheduler` first")
    return folders[-1].parent


def coverage():
    from tests import test_uncertainty as t
    nll, truth = t.world.__wrapped__()
    for name in ("unigram", "bigram", "regime0"):
        print(json.dumps({"model": name, "block": t.BLOCK, "coverage": t.coverage(nll[name], truth[name]),
                          "coverage_block20": t.coverage(nll[name], truth[name], block=20),
                          "intervals": t.REPS, "chars_each": t.LENGTH}))
    for block in (t.BLOCK, 20):
        words = [verdict_word(paired_difference(a, b, block, t.RESAMPLES)["ci95"])
                 for a, b in zip(nll["regime0"], nll["mirror0"])]
        print(json.dumps({"equal_models_block": block,
                          "cannot_be_told_apart": words.count("cannot be told apart from") / len(words)}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--config")
    parser.add_argument("--coverage", action="store_true")
    parser.add_argument("--bands", action="store_true",
                        help="with --config: reference-band widths for three sample shapes")
    args = parser.parse_args()
    if args.coverage:
        coverage()
    if args.config:
        widths(args.config)
    if args.config and args.bands:
        band_widths(args.config)

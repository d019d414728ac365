"""Where to centre the dynamic-evaluation grid and which cache order to use, without the
validation split: a pilot on the end of the *training* split. One JSON line per setting.

The model has trained on this text, so the gains here understate those on unseen text; the
pilot only sets the scale (rate, decay) and the cache order that the config then fixes. No
held-out split is read. Dynamic evaluation runs as Evaluate's row does (one stream, the guard
on); the raw lines kept in benchmarks/results/dynamic-pilot.jsonl were measured with the earlier
16 shared lanes.

    OPENBLAS_NUM_THREADS=1 python benchmarks/dynamic_pilot.py --config pipeline.yaml
"""
import argparse
import itertools
import json
import time

import numpy as np

from model import load_model
from model.dynamic import DynamicSettings, dynamic_nll
from model.evaluate import stream_nll
from pipeline.config import load_config
from pipeline.tasks import BuildVocab, EncodeShards, Train
from stages.dynamic_eval import statistics
from stages.ngram_cache import WEIGHTS, cache_probs, mix_nll
from stages.tokens import open_tokens
from stages.vocab import Vocab


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default="pipeline.yaml")
    ap.add_argument("--chars", type=int, default=100_000, help="pilot characters (training tail)")
    ap.add_argument("--rates", type=float, nargs="+", default=[0.001, 0.003, 0.01, 0.03])
    ap.add_argument("--decays", type=float, nargs="+", default=[0.001, 0.01, 0.1])
    ap.add_argument("--orders", type=int, nargs="+", default=[3, 4, 5, 6, 7])
    args = ap.parse_args()
    cfg = load_config(args.config)
    e = cfg.evaluate
    vocab = Vocab.load(BuildVocab(config=args.config).folder() / "vocab.json")
    train = open_tokens(EncodeShards(config=args.config).folder(), "train",
                        expect_vocab_fingerprint=vocab.fingerprint)
    net, _ = load_model(Train(config=args.config).folder() / "best.ckpt")
    n = len(train)
    pilot = np.asarray(train[n - args.chars:n], np.int64)
    before = np.asarray(train[n - args.chars - 400_000:n - args.chars], np.int64)  # stats, context
    ctx = before[-e.burn_in:]
    static = stream_nll(net, pilot, context=ctx, lanes=e.lanes, burn_in=e.burn_in)
    print(json.dumps({"static": round(float(np.nanmean(static)), 4), "chars": args.chars}), flush=True)
    rms = statistics(net, before, e)   # one stream's segments, as Evaluate's row
    for rate, decay in itertools.product(args.rates, args.decays):
        t0 = time.perf_counter()
        dyn, _ = dynamic_nll(net, pilot, DynamicSettings(rate, decay, e.dynamic_segment), rms,
                             context=ctx, burn_in=e.burn_in)
        print(json.dumps({"rate": rate, "decay": decay, "segment": e.dynamic_segment,
                          "dynamic": round(float(np.nanmean(dyn)), 4),
                          "seconds": round(time.perf_counter() - t0, 1)}), flush=True)
    for order in args.orders:
        p = cache_probs(pilot, order, vocab.size)
        best = min((float(np.nanmean(mix_nll(static, p, w))), w) for w in WEIGHTS)
        print(json.dumps({"cache_order": order, "weight": best[1], "cache": round(best[0], 4)}),
              flush=True)


if __name__ == "__main__":
    main()

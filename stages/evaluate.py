"""Evaluate stage: held-out likelihood against baselines, sample metrics in a band, pictures.

Held-out likelihood on the whole validation split (above `evaluate.max_chars`, evenly spaced
blocks of it: stages/heldout_scope.py) is the primary measure: every model (LSTM,
Kneser-Ney n-gram, unigram, uniform) scores every validation character given everything
before it, with the end of the training text as context, over the same vocabulary. The
vocabulary covers the whole corpus, so characters never seen in training still get non-zero
probability from every model; how many there were is reported. Each loss carries a 95%
interval from a block bootstrap over the validation split, and the verdict on LSTM against
n-gram comes from the interval of their paired difference (stages/metrics/uncertainty.py).

Sample metrics are computed for the model's samples and samples of the n-gram (the floor), and
for many sets of real held-out text of the same shape (the reference band, stages/metrics/bands.py), at
the configured temperature and at 1.0.
"""
import json
import math
from pathlib import Path

import numpy as np

from model.evaluate import stream_nll, summarize

from .adaptive_rows import adaptive_nll, add_rows
from .atomic import atomic_write_json, atomic_write_text
from .heldout_scope import fitting_text, scored_validation, seen_in_training
from .metrics import MetricContext
from .metrics.bands import BAND, measure, reference_band, reference_sets, sample_block
from .metrics.uncertainty import LEVEL, intervals, paired_difference, verdict_word
from .ngram import KneserNeyLM
from .sample import encode_prime, generate_texts
from .tokens import open_tokens
from .train import load_trained
from .vocab import Vocab

WINDOW = 256   # the fixed-context protocol of character transformers, for like-for-like numbers


def heldout(net, train_ids, val_ids, vocab_size, cfg, segments=None):
    """Per-model held-out loss dicts with 95% intervals, the fitted n-gram, a verdict sentence and
    the seconds each adaptive row added (stages/adaptive_rows.py).

    `segments`: lengths of the contiguous stretches of the split that `val_ids` joins (default:
    one); bootstrap blocks never straddle two of them.
    """
    ctx = train_ids[-cfg.burn_in:] if cfg.burn_in else None
    lm = KneserNeyLM(cfg.ngram_order, vocab_size).fit(train_ids)
    # 64 windows at a time: as fast as 256, and the forward caches take a quarter of the memory.
    nll = {"lstm": stream_nll(net, val_ids, context=ctx, lanes=cfg.lanes, burn_in=cfg.burn_in),
           "lstm_window256": stream_nll(net, val_ids, window=WINDOW, max_batch=64),
           "ngram": lm.stream_nll(val_ids, context=train_ids),
           "unigram": KneserNeyLM(1, vocab_size).fit(train_ids).stream_nll(val_ids),
           "uniform": np.full(len(val_ids), math.log(vocab_size))}
    extra, info = adaptive_nll(net, train_ids, val_ids, ctx, nll["lstm"], vocab_size, cfg)
    nll.update(extra)
    cuts = np.cumsum(segments or [len(val_ids)])[:-1]
    pieces = {name: np.split(x, cuts) for name, x in nll.items()}
    cis = intervals(pieces, cfg.block_chars, cfg.resamples)
    out = {name: {**summarize(float(np.nansum(x)), int(np.count_nonzero(~np.isnan(x)))),
                  "ci95": cis[name]} for name, x in nll.items()}
    out["lstm"]["protocol"] = (f"state carried through the split in {cfg.lanes} lanes, each after "
                               f"{cfg.burn_in} unscored characters")
    out["lstm_window256"]["protocol"] = f"independent {WINDOW}-character windows from a zero state"
    out["ngram"]["order"] = cfg.ngram_order
    diff = paired_difference(pieces["lstm"], pieces["ngram"], cfg.block_chars, cfg.resamples)
    out["difference"] = {"lstm_minus_ngram": {"mean": diff["mean"], "ci95": diff["ci95"]}}
    seconds = add_rows(out, pieces, info, paired_difference, cfg)
    return out, lm, _verdict(out, diff, cfg), seconds


def _verdict(out, diff, cfg):
    """One sentence: beats / is beaten by / cannot be told apart from, with the interval."""
    ci = diff["ci95"]
    spread = (f"95% interval {ci[0]:+.4f} to {ci[1]:+.4f}" if ci else
              f"no interval: fewer than two {cfg.block_chars:,}-character blocks")
    return (f"The LSTM {verdict_word(ci)} the {cfg.ngram_order}-gram Kneser-Ney baseline: "
            f"{out['lstm']['nats_per_char']:.4f} vs {out['ngram']['nats_per_char']:.4f} nats/char, "
            f"difference {diff['mean']:+.4f} ({spread}, from a block bootstrap over "
            f"{cfg.block_chars:,}-character blocks of the validation split).")


def _meta(folder):
    meta = json.loads(Path(folder, "meta.json").read_text())
    return {"fingerprint": meta["fingerprint"], "config": meta["config"], "seconds": meta["seconds"]}


def evaluate_report(inputs, cfg, folder, step=None):
    """Compute the report from the upstream folders; write report.json/.md and PNGs to folder.

    `step(activity, bounding_key, fraction_done)` is told each phase as it starts; the fractions
    are the shares of the time the phases took in a 10 MB benchmarks/scale.py run (held-out
    scoring ~95%).
    """
    step = step or (lambda activity, key, fraction: None)
    step("reading the scored and fitted characters", "evaluate.max_chars", 0.0)
    vocab = Vocab.load(Path(inputs["BuildVocab"], "vocab.json"))
    train, val = (open_tokens(inputs["EncodeShards"], s, expect_vocab_fingerprint=vocab.fingerprint)
                  for s in ("train", "val"))
    # Bounded by evaluate.max_chars / ngram_max_chars: memory and time do not grow with the corpus.
    val_ids, scored = scored_validation(val, cfg.evaluate.max_chars, cfg.evaluate.lanes)
    train_ids, fitted = fitting_text(train, cfg.evaluate.ngram_max_chars)
    net, model_meta = load_trained(inputs["Train"])
    step("scoring the held-out characters (LSTM, n-gram)", "evaluate.max_chars or evaluate.ngram_max_chars", 0.02)
    held, lm, verdict, adaptive_seconds = heldout(net, train_ids, val_ids, vocab.size, cfg.evaluate,
                                [end - start for start, end in scored["blocks"]])
    step("indexing the training text for the sample metrics", "evaluate.ngram_max_chars", 0.9)
    train_text, val_text = vocab.decode(train_ids), vocab.decode(val_ids)
    # The reference texts come from the first half of the held-out text and are compared with
    # the second half (JS divergence, BLEU), so real text is never compared with itself.
    half = len(val_text) // 2
    ref_source, pool = val_text[:half], val_text[half:]
    ctx = MetricContext.build(train_text, pool, lm, lambda s: vocab.encode(s, unknown="skip"))
    s, e = cfg.sample, cfg.evaluate
    prime_ids = encode_prime(vocab, s.prime, cfg.vocab.unknown)
    prime = vocab.decode(prime_ids)
    model_texts = json.loads(Path(inputs["Sample"], "samples.json").read_text())["samples"]
    step("sampling at temperature 1 and computing the sample metrics", "sample.num_samples", 0.93)
    t1_texts = generate_texts(net, vocab, s.prime, s.length, s.num_samples, 1.0, 0, 1.0, "sample",
                              s.seed, cfg.vocab.unknown)
    names = set(e.metrics) if e.metrics else None
    # One band serves both temperatures: real text does not depend on the sampling settings.
    ref_sets = reference_sets(ref_source, train_text, e.reference_draws, len(model_texts), s.length, s.seed)
    reference = reference_band(ref_sets, ctx, names)
    floor_texts = [vocab.decode(row) for row in
                   lm.sample(s.length, np.random.default_rng(s.seed), prime=prime_ids, num=len(model_texts))]
    floor = measure(floor_texts, ctx, dict.fromkeys(floor_texts, prime), names)
    samples, samples_t1 = (sample_block(texts, floor, prime, ctx, names, reference)
                           for texts in (model_texts, t1_texts))
    train_meta = json.loads(Path(inputs["Train"], "meta.json").read_text())["result"]
    report = {
        "heldout": held, "heldout_verdict": verdict, "adaptive_seconds": adaptive_seconds,
        "intervals": {"level": LEVEL, "block_chars": e.block_chars, "resamples": e.resamples,
                      "reference_draws": e.reference_draws, "band_percentiles": list(BAND)},
        "heldout_scope": {"scored": scored, "fitted": fitted,
                          "text": f"scored: {scored['text']}; baselines and sample-metric training "
                                  f"statistics fitted on {fitted['text']}"},
        "unseen_in_training": _unseen(seen_in_training(train, vocab.size), val_ids, vocab),
        "samples": samples, "samples_t1": samples_t1,
        "sampling": {"temperature": s.temperature, "top_k": s.top_k, "top_p": s.top_p,
                     "strategy": s.strategy, "length": s.length, "num_samples": s.num_samples},
        "sample_texts": model_texts, "reference_texts": [t for t, _ in ref_sets[0]], "floor_texts": floor_texts,
        "model": {"params": net.num_params, "steps": train_meta["steps"],
                  "train_seconds": train_meta["train_seconds"], "chars_per_s": train_meta["chars_per_s"],
                  "best_step": model_meta.get("step")},
        "provenance": {name: _meta(path) for name, path in inputs.items()},
    }
    step("writing the report and pictures", None, 0.97)
    _write(report, Path(inputs["Train"], "metrics.jsonl"), folder)
    return {"lstm_nats_per_char": held["lstm"]["nats_per_char"],
            "ngram_nats_per_char": held["ngram"]["nats_per_char"]}


def _unseen(seen, val_ids, vocab):
    missing = ~seen[val_ids]
    return {"chars": int(missing.sum()), "distinct": sorted({vocab.chars[i] for i in val_ids[missing]})}


def _write(report, metrics_path, folder):
    # Imported here: matplotlib takes a while to load and only this stage draws.
    from .report.markdown import render_markdown
    from .report.render import plot_learning_curve, plot_sample_metrics
    rows = [json.loads(l) for l in metrics_path.read_text().splitlines() if l.strip()]
    baselines = {f"{report['heldout']['ngram']['order']}-gram Kneser-Ney": report["heldout"]["ngram"]["nats_per_char"],
                 "unigram": report["heldout"]["unigram"]["nats_per_char"]}
    images = {"learning_curve": "learning_curve.png", "samples": "samples.png", "samples_t1": "samples_t1.png"}
    plot_learning_curve(rows, baselines, folder / images["learning_curve"])
    plot_sample_metrics(report["samples"], folder / images["samples"],
                        title=f"temperature {report['sampling']['temperature']}")
    plot_sample_metrics(report["samples_t1"], folder / images["samples_t1"], title="temperature 1.0")
    report["learning_curve"] = rows
    atomic_write_json(folder / "report.json", report)
    atomic_write_text(folder / "report.md", render_markdown(report, images))

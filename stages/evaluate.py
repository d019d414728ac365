"""Evaluate stage: held-out likelihood against baselines, sample metrics in a band, pictures.

Held-out likelihood on the test split (above `evaluate.max_chars`, evenly spaced blocks of it:
stages/heldout_scope.py) is the primary measure: every model (LSTM, Kneser-Ney n-gram,
unigram, uniform, and the rows that adapt to the scored text) scores every test character given
everything before it (the validation split and, before it, the training text), over the same
vocabulary. No choice reads the test split: Train picks its best checkpoint on the validation
split and every tuned setting is chosen there. The vocabulary covers the whole corpus, so
characters never seen in training still get non-zero probability from every model; how many
there were is reported. Each loss carries a 95% interval from a block bootstrap over the scored
text, and the verdict on LSTM against n-gram comes from the interval of their paired difference
(stages/metrics/uncertainty.py). Beside them, the static LSTM's loss on the whole held-out tail
(validation and test: the split published tiny-shakespeare figures call validation), for
comparison with peers.

Sample metrics are computed for the model's samples and samples of the n-gram (the floor), and
for many sets of real test text of the same shape (the reference band, stages/metrics/bands.py),
at the configured temperature and at 1.0.
"""
import json
import math
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from model.evaluate import stream_nll, summarize

from .adaptive_rows import adaptive_nll, add_rows
from .atomic import atomic_write_json, atomic_write_text
from .heldout_scope import Joined, fitting_text, scored_split, seen_in_training
from .metrics import MetricContext
from .metrics.bands import BAND, measure, reference_band, reference_sets, sample_block
from .metrics.uncertainty import LEVEL, intervals, paired_difference, verdict_word
from .ngram import KneserNeyLM
from .sample import encode_prime, generate_texts
from .tokens import open_tokens
from .train import load_trained
from .vocab import Vocab

WINDOW = 256   # the fixed-context protocol of character transformers, for like-for-like numbers
TAIL_LABEL = "validation (the split published tiny-shakespeare figures use)"


def held_split(net, stream, name, before, cfg, static=True):
    """The scored ids of a split (capped at evaluate.max_chars), the text before it as context,
    its static LSTM nll (None unless `static`) and its scope."""
    ids, scope = scored_split(stream, cfg.max_chars, cfg.lanes, name)
    back = max(cfg.burn_in, cfg.ngram_order)
    context = np.asarray(before[max(0, len(before) - back):len(before)], np.int64)
    nll = (stream_nll(net, ids, context=context[-cfg.burn_in:] if cfg.burn_in else None,
                      lanes=cfg.lanes, burn_in=cfg.burn_in) if static else None)
    return SimpleNamespace(ids=ids, context=context, static=nll, scope=scope)


def heldout(net, train_ids, val, test, vocab_size, cfg):
    """Per-model held-out loss dicts on `test` with 95% intervals, the fitted n-gram, a verdict
    sentence and the seconds each adaptive row added (stages/adaptive_rows.py).

    `val` and `test` are `held_split`s; bootstrap blocks never straddle two of test's scope blocks.
    """
    lm = KneserNeyLM(cfg.ngram_order, vocab_size).fit(train_ids)
    # 64 windows at a time: as fast as 256, and the forward caches take a quarter of the memory.
    nll = {"lstm": test.static,
           "lstm_window256": stream_nll(net, test.ids, window=WINDOW, max_batch=64),
           "ngram": lm.stream_nll(test.ids, context=test.context),
           "unigram": KneserNeyLM(1, vocab_size).fit(train_ids).stream_nll(test.ids),
           "uniform": np.full(len(test.ids), math.log(vocab_size))}
    extra, info = adaptive_nll(net, train_ids, val, test, vocab_size, cfg)
    nll.update(extra)
    pieces = {name: _pieces(x, test.scope) for name, x in nll.items()}
    out = _rows(pieces, cfg)
    for row in out.values():
        row["split"] = "test"
    out["lstm"]["protocol"] = (f"state carried through the split in {cfg.lanes} lanes, each after "
                               f"{cfg.burn_in} unscored characters")
    out["lstm_window256"]["protocol"] = f"independent {WINDOW}-character windows from a zero state"
    out["ngram"]["order"] = cfg.ngram_order
    diff = paired_difference(pieces["lstm"], pieces["ngram"], cfg.block_chars, cfg.resamples)
    out["difference"] = {"lstm_minus_ngram": {"mean": diff["mean"], "ci95": diff["ci95"]}}
    seconds = add_rows(out, pieces, info, paired_difference, cfg)
    return out, lm, _verdict(out, diff, cfg), seconds


def _pieces(nll, scope):
    """The per-character losses cut at the joins of the scope's blocks."""
    return np.split(nll, np.cumsum([end - start for start, end in scope["blocks"]])[:-1])


def _rows(pieces, cfg):
    cis = intervals(pieces, cfg.block_chars, cfg.resamples)
    return {name: {**summarize(float(sum(np.nansum(x) for x in p)),
                               int(sum(np.count_nonzero(~np.isnan(x)) for x in p))),
                   "ci95": cis[name]} for name, p in pieces.items()}


def validation_figure(net, train, val, test, cfg):
    """The static LSTM row on the held-out tail (validation and test joined), for peers."""
    tail = held_split(net, Joined(val, test), "held-out tail (validation and test)", train, cfg)
    row = _rows({"lstm": _pieces(tail.static, tail.scope)}, cfg)["lstm"]
    return {**row, "split": "val+test", "label": TAIL_LABEL, "scope": tail.scope["text"]}


def _verdict(out, diff, cfg):
    """One sentence: beats / is beaten by / cannot be told apart from, with the interval."""
    ci = diff["ci95"]
    spread = (f"95% interval {ci[0]:+.4f} to {ci[1]:+.4f}" if ci else
              f"no interval: fewer than two {cfg.block_chars:,}-character blocks")
    return (f"The LSTM {verdict_word(ci)} the {cfg.ngram_order}-gram Kneser-Ney baseline on the "
            f"test split: {out['lstm']['nats_per_char']:.4f} vs {out['ngram']['nats_per_char']:.4f} "
            f"nats/char, difference {diff['mean']:+.4f} ({spread}, from a block bootstrap over "
            f"{cfg.block_chars:,}-character blocks of the test split).")


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
    e = cfg.evaluate
    train, val, test = (open_tokens(inputs["EncodeShards"], s, expect_vocab_fingerprint=vocab.fingerprint)
                        for s in ("train", "val", "test"))
    # Bounded by evaluate.max_chars / ngram_max_chars: memory and time do not grow with the corpus.
    train_ids, fitted = fitting_text(train, e.ngram_max_chars)
    net, model_meta = load_trained(inputs["Train"])
    step("scoring the held-out characters (LSTM, n-gram)", "evaluate.max_chars or evaluate.ngram_max_chars", 0.02)
    # The validation split's static losses only tune the cache weight.
    val_split = held_split(net, val, "validation split", train, e, static=e.cache)
    test_split = held_split(net, test, "test split", val, e)
    held, lm, verdict, adaptive_seconds = heldout(net, train_ids, val_split, test_split, vocab.size, e)
    validation = validation_figure(net, train, val, test, e)
    test_ids, scored = test_split.ids, test_split.scope
    step("indexing the training text for the sample metrics", "evaluate.ngram_max_chars", 0.9)
    train_text, test_text = vocab.decode(train_ids), vocab.decode(test_ids)
    # The reference texts come from the first half of the test text and are compared with the
    # second half (JS divergence, BLEU), so real text is never compared with itself.
    half = len(test_text) // 2
    ref_source, pool = test_text[:half], test_text[half:]
    ctx = MetricContext.build(train_text, pool, lm, lambda s: vocab.encode(s, unknown="skip"))
    s = cfg.sample
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
        "validation": validation,
        "intervals": {"level": LEVEL, "block_chars": e.block_chars, "resamples": e.resamples,
                      "reference_draws": e.reference_draws, "band_percentiles": list(BAND)},
        "heldout_scope": {"scored": scored, "fitted": fitted, "tuned_on": val_split.scope,
                          "text": f"scored: {scored['text']}; baselines and sample-metric training "
                                  f"statistics fitted on {fitted['text']}; the best checkpoint and "
                                  f"every tuned setting chosen on the validation split"},
        "unseen_in_training": _unseen(seen_in_training(train, vocab.size), test_ids, vocab),
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

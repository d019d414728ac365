"""The held-out rows that adapt to the text they score, next to the static LSTM row.

    lstm_dynamic        LSTM + dynamic evaluation          (evaluate.dynamic)
    lstm_cache          LSTM + cache                        (evaluate.cache)
    lstm_dynamic_cache  LSTM + dynamic evaluation + cache   (both)

Each is a separate row with its own interval and its paired difference to the static row; the
static row stays the headline (docs/quality.md says why). Every row's per-character losses are
aligned with the static row's, so the bootstrap cuts them into the same blocks.
"""
import time

from model.dynamic import layout

from .dynamic_eval import dynamic_heldout, half_of_positions
from .dynamic_eval import protocol as dynamic_protocol
from .ngram_cache import WEIGHTS, cache_probs, two_fold_mix

LABELS = {"lstm_dynamic": "LSTM + dynamic evaluation", "lstm_cache": "LSTM + cache",
          "lstm_dynamic_cache": "LSTM + dynamic evaluation + cache"}


def adaptive_nll(net, train_ids, val_ids, context, static_nll, vocab_size, cfg):
    """({row: per-character nll}, {row: info with "protocol" and "seconds"}) for the rows on."""
    nll, info = {}, {}
    if not (cfg.dynamic or cfg.cache):
        return nll, info
    half = half_of_positions(layout(val_ids, context, cfg.lanes, cfg.burn_in), len(val_ids))
    if cfg.dynamic:
        nll["lstm_dynamic"], dyn = dynamic_heldout(net, train_ids, val_ids, context, cfg)
        info["lstm_dynamic"] = {**dyn, "protocol": dynamic_protocol(dyn, cfg.burn_in)}
    if cfg.cache:
        t0 = time.perf_counter()
        p = cache_probs(val_ids, cfg.cache_order, vocab_size)
        cache_seconds = time.perf_counter() - t0
        bases = [("lstm_cache", static_nll, "the static LSTM")]
        if cfg.dynamic:
            bases.append(("lstm_dynamic_cache", nll["lstm_dynamic"], "the dynamic-evaluation LSTM"))
        for name, base, what in bases:
            t1 = time.perf_counter()
            nll[name], folds = two_fold_mix(base, p, half)
            # the cache is counted once, in the cache row; the combined row adds only its mixing
            seconds = time.perf_counter() - t1 + (cache_seconds if name == "lstm_cache" else 0.0)
            info[name] = {"folds": folds, "order": cfg.cache_order, "seconds": round(seconds, 2),
                          "protocol": _cache_protocol(what, cfg.cache_order, folds)}
    return nll, info


def _cache_protocol(what, order, folds):
    return (f"{what} mixed with an online {order}-gram Kneser-Ney cache of the validation text "
            f"already scored (each character counted only after it is scored); mixing weight tuned "
            f"two-fold over {list(WEIGHTS)}: half 1 scored with {folds[0]['weight']} chosen on "
            f"half 2, half 2 with {folds[1]['weight']} chosen on half 1 (the halves of the dynamic "
            "row: the first and second half of every lane)")


def add_rows(out, pieces, info, paired_difference, cfg):
    """Protocol, settings and paired difference to the static row for each adaptive row.

    Returns {row: seconds it added}: kept out of the rows, whose figures a rerun reproduces
    bit for bit while the seconds do not (the report keeps them under "adaptive_seconds").
    """
    seconds = {}
    for name, extra in info.items():
        extra = dict(extra)
        seconds[name] = extra.pop("seconds")
        out[name].update(extra)
        diff = paired_difference(pieces[name], pieces["lstm"], cfg.block_chars, cfg.resamples)
        out["difference"][f"{name}_minus_lstm"] = {"mean": diff["mean"], "ci95": diff["ci95"]}
    return seconds


"""The held-out rows that adapt to the text they score, next to the static LSTM row.

    lstm_dynamic        LSTM + dynamic evaluation          (evaluate.dynamic)
    lstm_cache          LSTM + cache                        (evaluate.cache)
    lstm_dynamic_cache  LSTM + dynamic evaluation + cache   (both)

Each is a separate row with its own interval and its paired difference to the static row; the
static row stays the headline (docs/quality.md says why). Every row scores the test split and
its settings are chosen on the validation split; every row's per-character losses are aligned
with the static row's, so the bootstrap cuts them into the same blocks.
"""
import time

from .dynamic_eval import dynamic_heldout
from .dynamic_eval import protocol as dynamic_protocol
from .ngram_cache import WEIGHTS, cache_probs, tuned_mix

LABELS = {"lstm_dynamic": "LSTM + dynamic evaluation", "lstm_cache": "LSTM + cache",
          "lstm_dynamic_cache": "LSTM + dynamic evaluation + cache"}


def adaptive_nll(net, train_ids, val, test, vocab_size, cfg):
    """({row: per-character nll of test}, {row: info with "protocol" and "seconds"}).

    `val` and `test` each carry `ids`, `context` (the text before them) and `static` (the static
    row's per-character nll); every setting is chosen on `val`, every row is scored on `test`.
    """
    nll, info = {}, {}
    if not (cfg.dynamic or cfg.cache):
        return nll, info
    if cfg.dynamic:
        nll["lstm_dynamic"], dyn, tuned_nll = dynamic_heldout(net, train_ids, val.ids, val.context,
                                                              test.ids, test.context, cfg)
        info["lstm_dynamic"] = {**dyn, "protocol": dynamic_protocol(dyn, cfg.burn_in)}
    if cfg.cache:
        t0 = time.perf_counter()
        p_val, p_test = (cache_probs(ids, cfg.cache_order, vocab_size) for ids in (val.ids, test.ids))
        cache_seconds = time.perf_counter() - t0
        bases = [("lstm_cache", val.static, test.static, "the static LSTM")]
        if cfg.dynamic:   # tuned on the stretch the dynamic settings were tuned on (untuned:
            # the static row's validation losses, so dynamic_tune_chars stays unread)
            bases.append(("lstm_dynamic_cache", val.static if tuned_nll is None else tuned_nll,
                          nll["lstm_dynamic"], "the dynamic-evaluation LSTM"))
        for name, val_nll, test_nll, what in bases:
            t1 = time.perf_counter()
            nll[name], mix = tuned_mix(val_nll, p_val[:len(val_nll)], test_nll, p_test)
            # the cache is counted once, in the cache row; the combined row adds only its mixing
            seconds = time.perf_counter() - t1 + (cache_seconds if name == "lstm_cache" else 0.0)
            info[name] = {**mix, "order": cfg.cache_order, "seconds": round(seconds, 2),
                          "protocol": _cache_protocol(what, cfg.cache_order, mix)}
    return nll, info


def _cache_protocol(what, order, mix):
    return (f"{what} mixed with an online {order}-gram Kneser-Ney cache of the text already "
            f"scored (each character counted only after it is scored); mixing weight "
            f"{mix['weight']} chosen over {list(WEIGHTS)} on the first {mix['tuned_chars']:,} "
            "characters of the validation split")


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


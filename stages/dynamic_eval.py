"""The "LSTM + dynamic evaluation" row: tuned on the validation split, scored on the test split.

As Krause et al. (2018) did: the step size and decay are chosen on validation text, and the
test split, which no choice reads, is scored once with them (model/dynamic.py: one stream in
document order, the guard on).

Tuning runs each candidate of a small grid around the configured values, and rate 0 (the trained
model), over the first `dynamic_tune_chars` characters of the validation split (after the end
of the training text as context), from the trained weights, and keeps the lowest loss. The
scored test split is read after the end of the validation split as context, like the static
row. With `dynamic_tune: false` the configured values are used as they are.
"""
import time

import numpy as np

from model.dynamic import DynamicSettings, dynamic_nll, gradient_rms

GRID = (1 / 3, 1.0, 3.0)   # multipliers of the configured rate and decay tried when tuning
STAT_SEGMENTS = 100        # training segments behind the gradient statistics (Krause: a sample)


def candidates(rate, decay):
    """The (rate, decay) pairs tried: rate 0 (the trained model) and the grid around the pair."""
    return [(0.0, decay)] + [(rate * a, decay * b) for a in GRID for b in GRID]


def statistics(net, train_ids, cfg):
    """The gradient RMS of one dynamic step, from the end of the training text."""
    return gradient_rms(net, train_ids, cfg.dynamic_segment, 1, STAT_SEGMENTS)


def tune(net, rms, val_ids, val_context, cfg):
    """(chosen settings, tuning info, nll of the tuning stretch under the chosen settings)."""
    grid = candidates(cfg.dynamic_rate, cfg.dynamic_decay)
    stretch = np.asarray(val_ids[:cfg.dynamic_tune_chars], np.int64)
    results = {}
    for rate, decay in grid:
        nll, _ = dynamic_nll(net, stretch, DynamicSettings(rate, decay, cfg.dynamic_segment), rms,
                             val_context, cfg.burn_in)
        results[(rate, decay)] = (float(np.nanmean(nll)), nll)
    best = min(results, key=lambda k: results[k][0])
    info = {"rate": best[0], "decay": best[1], "tuned_on": "val",
            "tuned_chars": int(np.count_nonzero(~np.isnan(results[best][1]))),
            "grid": [[r, d, loss] for (r, d), (loss, _) in results.items()]}
    return DynamicSettings(best[0], best[1], cfg.dynamic_segment), info, results[best][1]


def dynamic_heldout(net, train_ids, val_ids, val_context, test_ids, test_context, cfg):
    """(per-character nll of test_ids, info dict, nll of the validation stretch it was tuned on:
    None when not tuned)."""
    t0 = time.perf_counter()
    rms = statistics(net, train_ids, cfg)
    if cfg.dynamic_tune:
        settings, info, tuned_nll = tune(net, rms, val_ids, val_context, cfg)
    else:
        settings = DynamicSettings(cfg.dynamic_rate, cfg.dynamic_decay, cfg.dynamic_segment)
        info, tuned_nll = {"rate": settings.rate, "decay": settings.decay, "grid": None}, None
    out, trips = dynamic_nll(net, test_ids, settings, rms, test_context, cfg.burn_in)
    info.update({"segment": cfg.dynamic_segment, "tuned": cfg.dynamic_tune, "guard_trips": trips,
                 "seconds": round(time.perf_counter() - t0, 2)})
    return out, info, tuned_nll


def protocol(info, burn_in):
    """The report's protocol line for the dynamic row."""
    how = (f"rate {info['rate']:.3g} and decay {info['decay']:.3g} chosen on the first "
           f"{info['tuned_chars']:,} characters of the validation split"
           if info["tuned"] else
           f"rate {info['rate']:.3g} and decay {info['decay']:.3g} fixed in the config (not tuned)")
    trips = info["guard_trips"]
    return (f"dynamic evaluation (Krause et al. 2018), one stream in document order: each "
            f"{info['segment']}-character segment is scored, then one RMS-normalised step on it "
            f"updates the weights, decaying toward the trained ones (gradient statistics from "
            f"{STAT_SEGMENTS} segments of training text); after {burn_in} unscored characters; "
            f"{how}; the divergence guard reset the weights {trips} time{'s' if trips != 1 else ''}")

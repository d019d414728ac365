"""The "LSTM + dynamic evaluation" row: Krause's dynamic evaluation, tuned without peeking.

The validation stream is laid out in the static pass's lanes (model/dynamic.py). Its time steps
are cut into two halves at the middle of the scored rows: half 1 is the first half of every
lane's stretch, half 2 the second. One pass scores everything, the recurrent state carried
throughout; the weights start from the trained ones in each half, and the step size and decay
used in a half were chosen on the *other* half:

    tuning on half 2 -> (rate, decay) for half 1;  tuning on half 1 -> (rate, decay) for half 2.

Tuning runs each candidate of a small grid around the configured values (and rate 0, the static
model) over the first `dynamic_tune_chars` scored characters of a half, from the trained
weights, and keeps the lowest loss. So no character is scored with settings chosen on it, and
no character's score depends on weights adapted with settings chosen on its own half. With
`dynamic_tune: false` the configured values are used in both halves.
"""
import math
import time

import numpy as np

from model.dynamic import DynamicSettings, KrauseStep, gradient_rms, layout, run_rows

GRID = (1 / 3, 1.0, 3.0)   # multipliers of the configured rate and decay tried when tuning
STAT_SEGMENTS = 100        # training segments behind the gradient statistics (Krause: a sample)


def halves(lay):
    """Row ranges [(0, mid), (mid, T)] of a layout: the middle of the scored rows."""
    w = lay[2]
    first = int(np.argmax(w.any(axis=1)))
    mid = (first + w.shape[0]) // 2
    return [(0, mid), (mid, w.shape[0])], first


def half_of_positions(lay, n):
    """Per scored id (length n): 0 if scored in half 1, 1 in half 2, -1 if not scored."""
    mid = halves(lay)[0][0][1]
    _, _, w, pos, offset = lay
    out = np.full(n, -1, np.int8)
    rows = np.broadcast_to(np.arange(w.shape[0])[:, None], w.shape)
    out[pos[w] - offset] = (rows[w] >= mid).astype(np.int8)
    return out


def candidates(rate, decay, tune):
    """The (rate, decay) pairs tried: the configured pair alone, or the grid and rate 0."""
    if not tune:
        return [(rate, decay)]
    return [(0.0, decay)] + [(rate * a, decay * b) for a in GRID for b in GRID]


def tuning_rows(lay, half, tune_chars, burn_in):
    """(warm-up start, first tuned row, end): the rows a half is tuned on, after a warm-up of
    `burn_in` unscored rows (half 2 starts mid-stream: its state is read from the text before)."""
    (spans, first) = halves(lay)
    r0, r1 = spans[half]
    start = first if half == 0 else r0
    end = min(r1, start + math.ceil(tune_chars / lay[0].shape[1]))
    warm = 0 if half == 0 else max(0, r0 - burn_in)
    return warm, start, end


def _tune(net, lay, rms, cfg, half, grid):
    """{(rate, decay): mean loss on the tuned rows of `half`}, each from the trained weights."""
    warm, start, end = tuning_rows(lay, half, cfg.dynamic_tune_chars, cfg.burn_in)
    frozen = KrauseStep(net, rms, DynamicSettings(0.0, 0.0, cfg.dynamic_segment))
    # The state at `start`, read without scoring or learning (once for every candidate).
    _, state = run_rows(net, lay, frozen, warm, start) if start > warm else (None, None)
    losses = {}
    for rate, decay in grid:
        step = KrauseStep(net, rms, DynamicSettings(rate, decay, cfg.dynamic_segment))
        try:
            out, _ = run_rows(net, lay, step, start, end, state)
        finally:
            step.restore(net)
        losses[(rate, decay)] = float(np.nanmean(out))
    return losses, int(np.count_nonzero(lay[2][start:end]))


def dynamic_heldout(net, train_ids, val_ids, context, cfg):
    """(per-character nll of val_ids, info dict) for the dynamic-evaluation row."""
    t0 = time.perf_counter()
    lay = layout(val_ids, context, cfg.lanes, cfg.burn_in)
    rms = gradient_rms(net, train_ids, cfg.dynamic_segment, lay[0].shape[1], STAT_SEGMENTS)
    grid = candidates(cfg.dynamic_rate, cfg.dynamic_decay, cfg.dynamic_tune)
    chosen, folds = [], []
    for scored_half in (0, 1):
        tuned_half = 1 - scored_half
        if len(grid) == 1:
            chosen.append(grid[0])
            folds.append({"scored_half": scored_half + 1, "rate": grid[0][0], "decay": grid[0][1],
                          "tuned_on": "fixed in the config"})
            continue
        losses, chars = _tune(net, lay, rms, cfg, tuned_half, grid)
        best = min(losses, key=losses.get)
        chosen.append(best)
        folds.append({"scored_half": scored_half + 1, "tuned_on_half": tuned_half + 1,
                      "tuned_chars": chars, "rate": best[0], "decay": best[1],
                      "grid": [[r, d, l] for (r, d), l in losses.items()]})
    out, state = np.full(len(val_ids), np.nan), None
    for (r0, r1), (rate, decay) in zip(halves(lay)[0], chosen):
        step = KrauseStep(net, rms, DynamicSettings(rate, decay, cfg.dynamic_segment))
        try:
            out, state = run_rows(net, lay, step, r0, r1, state, out)
        finally:
            step.restore(net)   # each half starts from the trained weights
    return out, {"folds": folds, "segment": cfg.dynamic_segment, "lanes": lay[0].shape[1],
                 "tuned": len(grid) > 1, "seconds": round(time.perf_counter() - t0, 2)}


def protocol(info, burn_in):
    """The report's protocol line for the dynamic row."""
    f = info["folds"]
    how = (f"rate and decay tuned two-fold: half 1 scored with ({f[0]['rate']:.3g}, "
           f"{f[0]['decay']:.3g}) chosen on the first {f[0]['tuned_chars']:,} scored characters of "
           f"half 2, half 2 with ({f[1]['rate']:.3g}, {f[1]['decay']:.3g}) chosen on half 1's"
           if info["tuned"] else
           f"rate {f[0]['rate']:.3g} and decay {f[0]['decay']:.3g} fixed in the config (not tuned)")
    return (f"dynamic evaluation (Krause et al. 2018): each {info['segment']}-character segment of "
            f"{info['lanes']} parallel lanes sharing their weights is scored, then one RMS-normalised "
            f"step on it updates the weights, decaying toward the trained ones (gradient statistics "
            f"from {STAT_SEGMENTS} segments of training text); state carried through the split, "
            f"each lane after {burn_in} unscored characters; the weights restart from the trained "
            f"ones at the middle of each lane (the two halves); {how}")

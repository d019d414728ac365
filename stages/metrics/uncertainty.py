"""How much a held-out figure would move on other text: a block bootstrap over per-character losses.

Neighbouring characters' losses are not independent (a hard passage is hard for a while), so
resampling single characters would understate the spread. The scored text is instead cut into
contiguous blocks of `block` characters, long enough to keep most of that dependence inside a
block, and whole blocks are drawn with replacement (the non-overlapping block bootstrap). Each
resample's figure is total loss / scored characters over its blocks; the 2.5th and 97.5th
percentiles of the resampled figures are the 95% interval.

Every model is resampled with the *same* blocks, so the difference of two models is paired:
the text's own difficulty, shared by both, cancels, and only the models' disagreement is left.

Inputs are per-character loss arrays (NaN = not scored) or lists of such arrays, one per
contiguous scored segment; blocks never straddle two segments. A reader that scores only some
stretches of a large split passes those stretches as segments.
"""
from __future__ import annotations

import numpy as np

LEVEL = 0.95
SEED = 0
MAX_CELLS = 1 << 22   # resamples x blocks handled at once: bounds memory for long splits


def _segments(nll) -> list[np.ndarray]:
    """One float64 array per contiguous scored segment."""
    if isinstance(nll, np.ndarray) and nll.ndim == 1:
        return [nll.astype(np.float64)]
    return [np.asarray(s, np.float64) for s in nll]


def block_totals(nll, block: int) -> tuple[np.ndarray, np.ndarray]:
    """(summed loss, scored characters) per block of `block` characters; NaN entries count 0.

    A segment's last, shorter block is kept: the ratio estimate weighs it by its characters.
    """
    sums, counts = [], []
    for seg in _segments(nll):
        starts = np.arange(0, len(seg), block)
        if not len(starts):
            continue
        scored = ~np.isnan(seg)
        sums.append(np.add.reduceat(np.where(scored, seg, 0.0), starts))
        counts.append(np.add.reduceat(scored.astype(np.int64), starts))
    if not sums:
        return np.zeros(0), np.zeros(0, np.int64)
    sums, counts = np.concatenate(sums), np.concatenate(counts)
    keep = counts > 0
    return sums[keep], counts[keep]


def resampled_means(sums: np.ndarray, counts: np.ndarray, resamples: int,
                    seed: int = SEED) -> np.ndarray:
    """(resamples, M) per-character means of M paired rows of block `sums` (M, nb) or (nb,)."""
    sums = np.atleast_2d(np.asarray(sums, np.float64))
    nb = sums.shape[1]
    rng = np.random.default_rng(seed)
    out = np.empty((resamples, sums.shape[0]))
    step = max(1, MAX_CELLS // max(nb, 1))
    for r0 in range(0, resamples, step):
        r = min(step, resamples - r0)
        # How often each block is drawn in each resample: nb draws with replacement.
        draws = rng.integers(0, nb, (r, nb)) + nb * np.arange(r)[:, None]
        weights = np.bincount(draws.reshape(-1), minlength=r * nb).reshape(r, nb).astype(np.float64)
        out[r0:r0 + r] = (weights @ sums.T) / (weights @ counts.astype(np.float64))[:, None]
    return out


def percentile_interval(values: np.ndarray, level: float = LEVEL) -> list[float]:
    """[lo, hi]: the central `level` share of `values` (percentile bootstrap interval)."""
    tail = 100 * (1 - level) / 2
    lo, hi = np.percentile(values, [tail, 100 - tail])
    return [float(lo), float(hi)]


def intervals(nll_by_model: dict, block: int, resamples: int, seed: int = SEED,
              level: float = LEVEL) -> dict[str, list[float] | None]:
    """95% interval of each model's nats/char from its own scored characters.

    None when the text makes fewer than two blocks: one block has no spread to resample.
    """
    out = {}
    for name, nll in nll_by_model.items():
        sums, counts = block_totals(nll, block)
        if len(sums) < 2:
            out[name] = None
            continue
        # The same seed for every model: the same blocks are drawn, as for the difference.
        out[name] = percentile_interval(resampled_means(sums, counts, resamples, seed)[:, 0], level)
    return out


def paired_difference(nll_a, nll_b, block: int, resamples: int, seed: int = SEED,
                      level: float = LEVEL) -> dict:
    """Mean and interval of (loss of a) - (loss of b) per character, over characters both score.

    Returns {"mean": float, "ci95": [lo, hi] or None, "chars": int, "blocks": int}.
    """
    a, b = _segments(nll_a), _segments(nll_b)
    if [len(s) for s in a] != [len(s) for s in b]:
        raise ValueError("paired losses must cover the same characters in the same segments")
    diff = [x - y for x, y in zip(a, b)]   # NaN wherever either model did not score
    sums, counts = block_totals(diff, block)
    chars = int(counts.sum())
    mean = float(sums.sum() / chars) if chars else float("nan")
    ci = (percentile_interval(resampled_means(sums, counts, resamples, seed)[:, 0], level)
          if len(sums) >= 2 else None)
    return {"mean": mean, "ci95": ci, "chars": chars, "blocks": int(len(sums))}


def verdict_word(ci: list[float] | None) -> str:
    """How the first model stands against the second, from the interval of a - b (loss)."""
    if ci is not None and ci[1] < 0:
        return "beats"
    if ci is not None and ci[0] > 0:
        return "is beaten by"
    return "cannot be told apart from"

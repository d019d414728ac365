"""Sample metrics against a band of real text.

The model's samples and the n-gram's samples (the floor) are measured once each. Real held-out
text is measured many times, in `draws` sets shaped like the samples (as many texts, each as
long), cut at random places of the reference half of the validation split. The median of those
figures is the reference figure and their 5th to 95th percentiles the reference band: a model
figure inside the band is one that real text of the same size could have produced; outside it,
the difference is larger than the spread of real text, not sampling noise.

Every text is measured with what came before it, which the n-gram reads as context
(`ngram_nll`): the prime for samples, the preceding held-out text for real chunks.
"""
from __future__ import annotations

import dataclasses
import math

import numpy as np

from . import compute_all

BAND = (5, 95)
CONTEXT_CHARS = 64   # characters before a chunk kept as its context; more than any n-gram order


def reference_sets(source: str, before: str, draws: int, num: int, length: int,
                   seed: int) -> list[list[tuple[str, str]]]:
    """`draws` sets of `num` (chunk, the text before it) pairs; `before` precedes `source`.

    Each set cuts `source` into `num` equal stretches and takes one chunk of `length`
    characters at a random place in each: the chunks of a set never overlap (when the source
    is long enough), as separate samples share no text, and each set spans the whole source.
    """
    full = before[-CONTEXT_CHARS:] + source
    offset = len(full) - len(source)
    rng = np.random.default_rng(seed)
    stretch = len(source) / num
    room = max(int(stretch) - length, 0)          # free play of a chunk inside its stretch
    last = max(len(source) - length, 0)
    sets = []
    for _ in range(draws):
        starts = np.minimum((np.arange(num) * stretch).astype(int) + rng.integers(0, room + 1, num), last)
        sets.append([(full[s:s + length], full[max(0, s - CONTEXT_CHARS):s]) for s in offset + starts])
    return sets


def measure(texts: list[str], ctx, before: dict[str, str], names) -> dict[str, float]:
    """Every metric (or those in `names`) of `texts`, each read after before[text]."""
    values = compute_all(texts, dataclasses.replace(ctx, before=before))
    return {k: v for k, v in values.items() if names is None or k in names}


def reference_band(sets, ctx, names) -> tuple[dict[str, float], dict[str, list[float] | None]]:
    """Per metric: the median over the reference sets and [p5, p95] (None if never defined)."""
    figures = [measure([t for t, _ in s], ctx, dict(s), names) for s in sets]
    median, band = {}, {}
    for name in figures[0]:
        values = np.array([f[name] for f in figures], float)
        values = values[np.isfinite(values)]
        median[name] = float(np.median(values)) if len(values) else float("nan")
        band[name] = [float(v) for v in np.percentile(values, BAND)] if len(values) else None
    return median, band


def sample_block(model_texts: list[str], floor: dict[str, float], prime: str, ctx, names,
                 reference) -> dict:
    """The report's block for one temperature: the model's texts measured after the prime, the
    floor's figures, and the reference median and band (`reference`, from reference_band)."""
    median, band = reference
    return {"model": measure(model_texts, ctx, dict.fromkeys(model_texts, prime), names),
            "reference": median, "floor": floor, "reference_band": band}


def position(value, band) -> str | None:
    """Where `value` lies against `band` = [lo, hi]: "inside", "below" or "above" (None: unknown)."""
    if not _finite(value) or not band or not all(_finite(b) for b in band):
        return None
    if value < band[0]:
        return "below"
    return "above" if value > band[1] else "inside"


def _finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

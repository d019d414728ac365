"""Corpus BLEU-4 of sample lines against held-out lines, and Self-BLEU.

Protocol (fixed so numbers compare across runs):
- Units are lines; a line is tokenised with `text.words` (lower-cased
  letters and apostrophes; punctuation dropped).  Lines without words are skipped.
- Every candidate line is scored against the whole reference pool as its
  multi-reference set: an n-gram's clipped count is the largest count it has
  in any single reference line, and the reference length is the pool's line
  length closest to the candidate's (the shorter one on a tie).
- Corpus statistics are summed over candidate lines; p_n = (matches_n + 1) /
  (total_n + 1) for n = 1..4 (add-one smoothing, so a missing 4-gram does
  not zero the score); BLEU = BP * exp(mean log p_n), with brevity penalty
  BP = exp(1 - r/c) when the candidate length c is at most r, else 1.
"""
from __future__ import annotations

import math
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass

from stages.metrics.text import words

MAX_N = 4


def _ngrams(tokens: list[str]) -> Counter:
    """Counts of all 1..MAX_N-grams of `tokens`, keyed by tuple."""
    return Counter(tuple(tokens[i:i + n]) for n in range(1, MAX_N + 1)
                   for i in range(len(tokens) - n + 1))


@dataclass
class _ReferencePool:
    """Per-n-gram maximum count over single reference lines, and their lengths."""

    max_counts: dict[tuple[str, ...], int]
    lengths: list[int]

    @classmethod
    def build(cls, references: list[str]) -> "_ReferencePool":
        """Tokenise the reference lines once."""
        max_counts: dict[tuple[str, ...], int] = {}
        lengths = set()
        for line in references:
            tokens = words(line)
            if not tokens:
                continue
            lengths.add(len(tokens))
            for gram, count in _ngrams(tokens).items():
                max_counts[gram] = max(count, max_counts.get(gram, 0))
        return cls(max_counts, sorted(lengths))

    def closest_length(self, length: int) -> int:
        """The reference length nearest `length`, the shorter one on a tie."""
        i = bisect_left(self.lengths, length)
        near = self.lengths[max(i - 1, 0):i + 1]
        return min(near, key=lambda r: (abs(r - length), r))


def _corpus_bleu(candidates: list[str], pool: _ReferencePool) -> float:
    """BLEU-4 of the candidate lines against a built reference pool."""
    matches, totals = [0] * MAX_N, [0] * MAX_N
    cand_len = ref_len = 0
    for line in candidates:
        tokens = words(line)
        if not tokens or not pool.lengths:
            continue
        cand_len += len(tokens)
        ref_len += pool.closest_length(len(tokens))
        for gram, count in _ngrams(tokens).items():
            totals[len(gram) - 1] += count
            matches[len(gram) - 1] += min(count, pool.max_counts.get(gram, 0))
    if cand_len == 0:
        return float("nan")
    log_p = sum(math.log((m + 1) / (t + 1)) for m, t in zip(matches, totals)) / MAX_N
    brevity = 1.0 if cand_len > ref_len else math.exp(1 - ref_len / cand_len)
    return brevity * math.exp(log_p)


def bleu4(candidates: list[str], references: list[str] | _ReferencePool) -> float:
    """Corpus BLEU-4 of candidate lines against the reference-line pool (see module doc).

    `references` may be a pool from `reference_pool`, built once for many candidate sets.
    """
    pool = references if isinstance(references, _ReferencePool) else _ReferencePool.build(references)
    return _corpus_bleu(candidates, pool)


def reference_pool(references: list[str]) -> _ReferencePool:
    """The reference lines tokenised and counted, for repeated `bleu4` calls."""
    return _ReferencePool.build(references)


def self_bleu(samples: list[str]) -> float:
    """Mean over samples of BLEU-4 of its lines against all other samples' lines.

    High values mean the samples resemble each other (low diversity).  NaN
    with fewer than two samples.
    """
    scores = []
    for i, sample in enumerate(samples):
        others = [line for j, s in enumerate(samples) if j != i for line in s.split("\n")]
        score = bleu4(sample.split("\n"), others)
        if not math.isnan(score):
            scores.append(score)
    return sum(scores) / len(scores) if scores else float("nan")

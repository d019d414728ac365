"""Word- and character-level sample metrics: vocabulary, novelty, diversity, loops, JS, NLL.

Functions that take `texts` accept one string or a list of strings; a list is
pooled (counts are summed over its texts) without creating n-grams that
straddle two texts.  A ratio with an empty denominator is NaN ("undefined").
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

from stages.ngram import unique_counts

WORD_RE = re.compile(r"[a-z']*[a-z][a-z']*")

# Two polynomial hashes modulo primes below 2**31, packed into one int64 key.
# With random-looking bases two distinct windows of length n collide with
# probability about (n/p)**2 < 1e-16, so set lookups are exact in practice.
_HASHES = ((2147483647, 1_103_515_245), (2147483629, 914_334_071))


def _as_list(texts: str | Sequence[str]) -> list[str]:
    """One text or many, as a list."""
    return [texts] if isinstance(texts, str) else list(texts)


def ratio(num: float, den: float) -> float:
    """num/den, or NaN when there is nothing to measure."""
    return float(num) / den if den else float("nan")


def words(text: str) -> list[str]:
    """Lower-cased word tokens: runs of letters and apostrophes with a letter."""
    return WORD_RE.findall(text.lower())


def word_set(train_text: str) -> set[str]:
    """The set of word tokens of the training text."""
    return set(words(train_text))


def in_vocab_word_rate(text: str, train_words: set[str]) -> float:
    """Fraction of the text's word tokens that occur in `train_words`."""
    tokens = words(text)
    return ratio(sum(t in train_words for t in tokens), len(tokens))


def codes(text: str) -> np.ndarray:
    """Unicode code points of `text` as an int64 array."""
    return np.frombuffer(text.encode("utf-32-le"), dtype="<u4").astype(np.int64)


def _poly_hashes(values: np.ndarray, n: int, prime: int, base: int) -> np.ndarray:
    """Polynomial hash mod `prime` of every length-n window, by doubling.

    A window of length a+b hashes to h_a[i] * base**b + h_b[i+a]; building
    lengths 1, 2, 4, ... and joining the ones in n's binary expansion takes
    O(log n) vectorised passes instead of n.
    """
    block, block_len = values % prime, 1
    out, out_len = None, 0
    while block_len <= n:
        if n & block_len:
            if out is None:
                out, out_len = block, block_len
            else:
                size = len(values) - out_len - block_len + 1
                out = (out[:size] * pow(base, block_len, prime) + block[out_len:out_len + size]) % prime
                out_len += block_len
        if 2 * block_len > n:
            return out
        size = len(block) - block_len
        block = (block[:size] * pow(base, block_len, prime) + block[block_len:]) % prime
        block_len *= 2
    return out


def window_keys(text: str, n: int) -> np.ndarray:
    """int64 hash keys of every n-char substring of `text` (empty if too short)."""
    values = codes(text)
    if n < 1 or len(values) < n:
        return np.zeros(0, dtype=np.int64)
    (p1, b1), (p2, b2) = _HASHES
    return (_poly_hashes(values, n, p1, b1) << 31) | _poly_hashes(values, n, p2, b2)


class TrainIndex:
    """Sorted n-char substring keys of the training text, built once per n."""

    def __init__(self, train_text: str, ns: Iterable[int] = (5, 10, 20)):
        self._keys = {n: unique_counts(window_keys(train_text, n))[0] for n in ns}

    def contains(self, text: str, n: int) -> np.ndarray:
        """Boolean per n-char substring of `text`: does the training text hold it?"""
        if n not in self._keys:
            raise KeyError(f"TrainIndex was built without n={n}; pass it in `ns`")
        keys, query = self._keys[n], window_keys(text, n)
        if len(keys) == 0:
            return np.zeros(len(query), dtype=bool)
        idx = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
        return keys[idx] == query


def novelty(texts: str | Sequence[str], train_index: TrainIndex, n: int) -> float:
    """Fraction of the n-char substrings of the text(s) absent from the training text."""
    found = [train_index.contains(t, n) for t in _as_list(texts)]
    total = sum(len(f) for f in found)
    return ratio(sum(int((~f).sum()) for f in found), total)


def distinct_n(texts: str | Sequence[str], n: int) -> float:
    """Distinct word n-grams / total word n-grams, pooled over the text(s)."""
    grams: list[tuple[str, ...]] = []
    for text in _as_list(texts):
        tokens = words(text)
        grams.extend(zip(*(tokens[i:] for i in range(n))))
    return ratio(len(set(grams)), len(grams))


def repetition(text: str, span: int = 20) -> float:
    """Share of the text's chars inside a `span`-char substring that occurs twice.

    A loop ("to be or not to be or not ...") repeats its cycle, so nearly all of
    it is covered; ordinary prose repeats few 20-char stretches.  Overlapping
    occurrences count, so a run of one char is flagged too.  0 if too short.
    """
    keys = window_keys(text, span)
    if len(keys) == 0:
        return 0.0
    _, inverse, counts = np.unique(keys, return_inverse=True, return_counts=True)
    starts = np.flatnonzero(counts[inverse] > 1)
    # Difference array: +1 where a repeated window opens, -1 where it closes.
    cover = np.zeros(len(text) + 1, dtype=np.int64)
    np.add.at(cover, starts, 1)
    np.add.at(cover, starts + span, -1)
    return float((np.cumsum(cover[:-1]) > 0).mean())


def js_divergence(texts: str | Sequence[str], reference: str | Sequence[str], n: int) -> float:
    """Jensen-Shannon divergence (base 2, in [0, 1]) of char n-gram distributions."""
    sides = [np.concatenate([window_keys(t, n) for t in _as_list(x)] or [np.zeros(0, np.int64)])
             for x in (texts, reference)]
    if not len(sides[0]) or not len(sides[1]):
        return float("nan")
    _, inverse = np.unique(np.concatenate(sides), return_inverse=True)
    size = inverse.max() + 1
    p = np.bincount(inverse[:len(sides[0])], minlength=size) / len(sides[0])
    q = np.bincount(inverse[len(sides[0]):], minlength=size) / len(sides[1])
    m = (p + q) / 2
    return float(0.5 * _kl_bits(p, m) + 0.5 * _kl_bits(q, m))


def _kl_bits(p: np.ndarray, m: np.ndarray) -> float:
    """KL(p || m) in bits, with 0 log 0 = 0 (m > 0 wherever p > 0)."""
    mask = p > 0
    return float(np.sum(p[mask] * np.log2(p[mask] / m[mask])))


def ngram_nll(texts: str | Sequence[str], lm, encode: Callable[[str], np.ndarray],
              before: Mapping[str, str] | None = None) -> float:
    """Mean nats/char of the text(s) under a fitted KneserNeyLM.

    `before` maps a text to the text that preceded it (a sample's prime, the held-out text
    before a real chunk): the n-gram reads it first, as it reads the training text before
    the validation split. A text not in `before` is scored from its start.
    """
    before = before or {}
    nll = [lm.stream_nll(np.asarray(encode(t)), context=np.asarray(encode(before.get(t, ""))))
           for t in _as_list(texts) if t]
    total = sum(len(x) for x in nll)
    return ratio(sum(float(x.sum()) for x in nll), total)

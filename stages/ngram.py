"""Interpolated modified Kneser-Ney character n-gram model, vectorised with NumPy.

The model follows Chen & Goodman (1998), "An Empirical Study of Smoothing
Techniques for Language Modeling", section 3.5 with the interpolated form:

    p_k(w | h) = (max(c_k(hw) - D_k(c_k(hw)), 0) + gamma_k(h) * p_{k-1}(w | h')) / c_k(h)

where level k scores k-grams (history h of k-1 chars, h' = h without its
oldest char), c_k(h) = sum_w c_k(hw), gamma_k(h) = D1*N1(h.) + D2*N2(h.) +
D3+*N3+(h.), and p_0 is uniform over the V ids, so every id gets p > 0.
A history never seen at level k passes p_{k-1} through unchanged.

Counts: the top level uses raw counts; every lower level k uses continuation
counts c_k(w_1..w_k) = number of distinct chars x with x w_1..w_k in the
training stream.  The discounts of each level come from the count-of-counts
n1..n4 of that level's counts (Y = n1/(n1+2 n2), D1 = 1-2Y n2/n1, D2 = 2-3Y
n3/n2, D3+ = 3-4Y n4/n3); when one of n1..n4 is zero (tiny corpora) the level
falls back to the fixed discounts 0.5, 1.0, 1.5, and discounts are clipped to
[0, k] for count k so that every distribution stays normalised.

Stream start: a position with fewer than order-1 preceding chars is scored by
the highest level its history allows (history of length j -> level j+1, with
that level's continuation counts), exactly as the recursion would back off.

Keys: a k-gram is stored as the int64 number sum_j id_j * V**(k-1-j), so
V**order must stay below 2**63: V=65 allows order <= 10, V=100 order <= 9.
Larger combinations raise UserError (see `KneserNeyLM.max_order`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stages.errors import UserError

FALLBACK_DISCOUNTS = np.array([0.5, 1.0, 1.5])
_INT64_LIMIT = 2**63 - 1


def modified_kn_discounts(counts: np.ndarray) -> np.ndarray:
    """Return (D1, D2, D3+) estimated from the count-of-counts of `counts`."""
    n1, n2, n3, n4 = (int(np.sum(counts == c)) for c in (1, 2, 3, 4))
    if min(n1, n2, n3, n4) == 0:
        # The estimator divides by n1..n3 and needs n4; tiny corpora lack some.
        return FALLBACK_DISCOUNTS.copy()
    y = n1 / (n1 + 2 * n2)
    d = np.array([1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3])
    return np.clip(d, 0.0, [1.0, 2.0, 3.0])


def unique_counts(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values of `keys` and how often each occurs.

    Same result as np.unique(keys, return_counts=True), which is several
    times slower on millions of int64 keys in recent NumPy releases.
    """
    ordered = np.sort(keys)
    is_start = np.ones(len(ordered), dtype=bool)
    is_start[1:] = ordered[1:] != ordered[:-1]
    starts = np.flatnonzero(is_start)
    return ordered[starts], np.diff(np.append(starts, len(ordered)))


def _tail(arr: np.ndarray, n: int) -> np.ndarray:
    """The last min(n, len) entries along the last axis (n may be 0)."""
    return arr[..., arr.shape[-1] - min(n, arr.shape[-1]):]


def _lookup(keys: np.ndarray, values: np.ndarray, query: np.ndarray) -> np.ndarray:
    """values[i] where keys[i] == query (keys sorted), 0 where query is absent."""
    if len(keys) == 0:
        return np.zeros(np.shape(query), dtype=values.dtype)
    idx = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
    return np.where(keys[idx] == query, values[idx], 0)


@dataclass
class _Level:
    """Smoothing statistics of one n-gram level, all arrays sorted by key."""

    gram_keys: np.ndarray  # int64 keys of the k-grams
    discounted: np.ndarray  # max(c - D(c), 0) per k-gram
    hist_keys: np.ndarray  # int64 keys of the (k-1)-char histories
    hist_total: np.ndarray  # c(h) = sum_w c(hw)
    hist_gamma: np.ndarray  # sum_w D(c(hw)), the mass handed to the lower level

    @classmethod
    def from_counts(cls, keys: np.ndarray, counts: np.ndarray, vocab_size: int) -> "_Level":
        """Build the level from sorted unique k-gram keys and their counts."""
        counts = counts.astype(np.float64)
        d = modified_kn_discounts(counts)[np.minimum(counts, 3).astype(np.int64) - 1]
        hist = keys // vocab_size
        if len(keys) == 0:
            empty = np.zeros(0)
            return cls(keys, empty, hist, empty, empty)
        # Keys are sorted, so each history's k-grams form one contiguous run.
        hist_keys, run_lengths = unique_counts(hist)
        starts = np.cumsum(run_lengths) - run_lengths
        return cls(keys, np.maximum(counts - d, 0.0), hist_keys,
                   np.add.reduceat(counts, starts), np.add.reduceat(d, starts))

    def interpolate(self, hist: np.ndarray, target: np.ndarray, lower: np.ndarray,
                    vocab_size: int) -> np.ndarray:
        """Mix this level's counts for (hist, target) with the lower-level probs."""
        total = _lookup(self.hist_keys, self.hist_total, hist)
        gamma = _lookup(self.hist_keys, self.hist_gamma, hist)
        # A negative hist key marks "history too short": the gram key is then
        # negative too and never found, so total == 0 passes `lower` through.
        disc = _lookup(self.gram_keys, self.discounted, hist * vocab_size + target)
        seen = total > 0
        return np.where(seen, (disc + gamma * lower) / np.where(seen, total, 1.0), lower)


class KneserNeyLM:
    """Interpolated modified Kneser-Ney model over char ids 0..vocab_size-1."""

    def __init__(self, order: int, vocab_size: int):
        if order < 1 or vocab_size < 1:
            raise UserError(f"n-gram order {order} / vocab size {vocab_size} must be >= 1; "
                            "pass positive values")
        if order > self.max_order(vocab_size):
            raise UserError(f"n-gram order {order} overflows int64 keys for vocab size "
                            f"{vocab_size}; use order <= {self.max_order(vocab_size)}")
        self.order = order
        self.vocab_size = vocab_size
        self._levels: list[_Level] = []

    @staticmethod
    def max_order(vocab_size: int) -> int:
        """Largest order whose base-`vocab_size` keys fit in int64."""
        if vocab_size == 1:
            return 64  # every key is 0; any order fits
        order = 1
        while vocab_size ** (order + 1) <= _INT64_LIMIT:
            order += 1
        return order

    def _check_ids(self, ids, what: str) -> np.ndarray:
        """Return `ids` as a 1-D int64 array, raising UserError if out of range."""
        arr = np.asarray(ids)
        if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
            raise UserError(f"{what} must be a 1-D integer id array; encode the text first")
        arr = arr.astype(np.int64)
        if arr.size and (arr.min() < 0 or arr.max() >= self.vocab_size):
            raise UserError(f"{what} has ids outside 0..{self.vocab_size - 1}; "
                            "encode with the same vocabulary the model was built for")
        return arr

    def fit(self, ids: np.ndarray) -> "KneserNeyLM":
        """Count the training stream `ids` and build every level's statistics."""
        ids = self._check_ids(ids, "training ids")
        v = self.vocab_size
        distinct = []  # distinct[k-1]: sorted unique k-gram keys of the stream
        keys = ids
        for k in range(1, self.order + 1):
            if k > 1:
                keys = keys[:-1] * v + ids[k - 1:]
            if k == self.order:
                top = unique_counts(keys)
            else:
                distinct.append(unique_counts(keys)[0])
        distinct.append(top[0])
        levels = []
        for k in range(1, self.order):
            # Continuation count: how many distinct chars precede the k-gram.
            suffixes = distinct[k] % (v ** k)
            levels.append(_Level.from_counts(*unique_counts(suffixes), v))
        levels.append(_Level.from_counts(top[0], top[1], v))
        self._levels = levels
        return self

    def _probs(self, hist_keys: list[np.ndarray], target: np.ndarray) -> np.ndarray:
        """p(target | history) where hist_keys[j] keys the last j chars (-1: none)."""
        if not self._levels:
            raise UserError("the n-gram model is not fitted; call fit(ids) first")
        shape = np.broadcast_shapes(hist_keys[0].shape, np.shape(target))
        p = np.full(shape, 1.0 / self.vocab_size)
        for level, hist in zip(self._levels, hist_keys):
            p = level.interpolate(hist, target, p, self.vocab_size)
        return p

    def _tail_keys(self, history: np.ndarray) -> list[np.ndarray]:
        """Keys of the last j chars of each row of `history` (num, L), j < order."""
        num, length = history.shape
        keys = [np.zeros(num, dtype=np.int64)]
        for j in range(1, self.order):
            if j > length:
                keys.append(np.full(num, -1, dtype=np.int64))
            else:
                keys.append(history[:, length - j] * self.vocab_size ** (j - 1) + keys[-1])
        return keys

    def distribution(self, history: np.ndarray) -> np.ndarray:
        """(V,) next-char probabilities given the last order-1 ids of `history`."""
        history = _tail(self._check_ids(history, "history"), self.order - 1)
        keys = [k[:, None] for k in self._tail_keys(history[None, :])]
        return self._probs(keys, np.arange(self.vocab_size)[None, :])[0]

    def stream_nll(self, ids: np.ndarray, context: np.ndarray | None = None) -> np.ndarray:
        """Per-position -log p (nats) of ids[i] given all preceding chars.

        `context` holds the chars before ids[0] (e.g. the end of the training
        text); without it the first positions use shorter histories.
        """
        ids = self._check_ids(ids, "ids")
        ctx = self._check_ids(np.zeros(0, np.int64) if context is None else context, "context")
        ctx = _tail(ctx, self.order - 1)
        full = np.concatenate([ctx, ids])
        pos = np.arange(len(ctx), len(full))
        keys = [np.zeros(len(pos), dtype=np.int64)]
        for j in range(1, self.order):
            # Prepend the char j back as the most significant digit.
            back = pos - j
            digit = full[np.maximum(back, 0)] * self.vocab_size ** (j - 1)
            keys.append(np.where(back >= 0, digit + keys[-1], -1))
        return -np.log(self._probs(keys, ids))

    def sample(self, length: int, rng: np.random.Generator, prime: np.ndarray | None = None,
               num: int = 1) -> np.ndarray:
        """Draw `num` independent continuations of `prime`, shape (num, length)."""
        if length < 0 or num < 1:
            raise UserError(f"sample length {length} / num {num} invalid; use length >= 0, num >= 1")
        prime = self._check_ids(np.zeros(0, np.int64) if prime is None else prime, "prime")
        history = np.repeat(_tail(prime, self.order - 1)[None, :], num, axis=0)
        out = np.zeros((num, length), dtype=np.int64)
        targets = np.arange(self.vocab_size)[None, :]
        for t in range(length):
            keys = [k[:, None] for k in self._tail_keys(history)]
            cdf = np.cumsum(self._probs(keys, targets), axis=1)
            u = rng.random(num)[:, None] * cdf[:, -1:]
            out[:, t] = np.minimum((cdf <= u).sum(axis=1), self.vocab_size - 1)
            history = _tail(np.concatenate([history, out[:, t:t + 1]], axis=1), self.order - 1)
        return out

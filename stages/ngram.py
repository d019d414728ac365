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

Keys: k-grams are numbered level by level. Level k's table holds the sorted
keys rank(prefix) * V + last char of every distinct k-gram of the training
stream, where rank(prefix) is the position of its (k-1)-char prefix in level
k-1's table (the empty prefix has rank 0, so level 1's keys are the char ids).
A key is below (number of distinct (k-1)-grams) * V <= stream length * V, so
it fits in int64 for any vocabulary size at any order; k-grams with the same
history form one contiguous run of the table. A query numbers its histories
the same way, oldest char first, one table lookup per level.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stages.errors import UserError

FALLBACK_DISCOUNTS = np.array([0.5, 1.0, 1.5])


def modified_kn_discounts(counts: np.ndarray) -> np.ndarray:
    """Return (D1, D2, D3+) estimated from the count-of-counts of `counts` (zeros ignored)."""
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


def unique_ranks(keys: np.ndarray):
    """Sorted distinct values of `keys`, their counts, each key's index among them, and one
    position where each distinct value occurs.

    Like np.unique(keys, return_counts=True, return_inverse=True, return_index=True); the
    indices overwrite `keys` (no third key-sized array), which is returned.
    """
    n = len(keys)
    bits = max(n.bit_length(), 1)
    if n and int(keys.min()) >= 0 and int(keys.max()) < 1 << (62 - bits):
        # (key, position) packed into one int64 and sorted: np.sort is several times faster
        # than argsort, and the positions come out as the order.
        order = np.arange(n, dtype=np.int64)
        ordered = keys << bits
        ordered |= order
        ordered.sort()
        np.bitwise_and(ordered, (1 << bits) - 1, out=order)
        ordered >>= bits
    else:
        order = np.argsort(keys)
        ordered = keys[order]
    is_start = np.ones(len(ordered), dtype=bool)
    is_start[1:] = ordered[1:] != ordered[:-1]
    starts = np.flatnonzero(is_start)
    distinct, counts = ordered[starts], np.diff(np.append(starts, len(ordered)))
    np.cumsum(is_start, out=ordered)          # reuse the sorted copy for the ranks
    ordered -= 1
    del is_start
    keys[order] = ordered
    return distinct, counts, keys, order[starts]


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

    gram_keys: np.ndarray  # int64 keys rank(prefix) * V + last of the k-grams
    discounted: np.ndarray  # max(c - D(c), 0) per k-gram
    hist_keys: np.ndarray  # ranks of the (k-1)-char histories in the level below
    hist_total: np.ndarray  # c(h) = sum_w c(hw)
    hist_gamma: np.ndarray  # sum_w D(c(hw)), the mass handed to the lower level

    @classmethod
    def from_counts(cls, keys: np.ndarray, counts: np.ndarray, vocab_size: int) -> "_Level":
        """Build the level from sorted unique k-gram keys and their counts."""
        counts = counts.astype(np.float64)
        # A zero count (a k-gram seen only at the stream start has no left neighbour, so no
        # continuation count) keeps its rank in the table but adds nothing to any sum.
        d = modified_kn_discounts(counts)[np.clip(counts, 1, 3).astype(np.int64) - 1]
        d[counts == 0] = 0.0
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
        self.order = order
        self.vocab_size = vocab_size
        self._levels: list[_Level] = []

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
        tables, counts = [], []   # per level: sorted distinct k-gram keys, their counts
        ranks = None              # ranks[i]: rank of the (k-1)-gram starting at i
        for k in range(1, self.order + 1):
            if k == 1:
                keys = ids.copy()   # unique_ranks overwrites its argument
            else:
                keys = ranks[:-1] * v
                keys += ids[k - 1:]
            if k == self.order:
                ids = None          # our int64 copy is not needed any more: lower the peak
            table, raw, new_ranks, where = unique_ranks(keys)
            if k > 1:
                # Continuation count of each (k-1)-gram: how many distinct k-grams end in it.
                # Every occurrence of a k-gram has the same suffix, so any one will do.
                where += 1
                counts.append(np.bincount(ranks[where], minlength=len(tables[-1])))
            del where
            tables.append(table)
            ranks = new_ranks
        counts.append(raw)   # the top level keeps raw counts
        self._levels = [_Level.from_counts(t, c, v) for t, c in zip(tables, counts)]
        return self

    def _ranks(self, full: np.ndarray):
        """Yield r_j for j = 1..min(order-1, L): r_j[..., i] = rank of the j-gram
        full[..., i:i+j] in level j's table (-1 if unseen), shape (..., L - j + 1).

        A generator, so the caller keeps only what it needs of each level.
        """
        if not self._levels:
            raise UserError("the n-gram model is not fitted; call fit(ids) first")
        r = np.zeros(full.shape[:-1] + (full.shape[-1] + 1,), np.int64)   # the empty gram
        for j in range(1, min(self.order - 1, full.shape[-1]) + 1):
            table = self._levels[j - 1].gram_keys
            query = r[..., :-1] * self.vocab_size + full[..., j - 1:]
            # An unseen shorter gram (-1) gives a negative query, which is never found.
            idx = np.minimum(np.searchsorted(table, query), max(len(table) - 1, 0))
            r = np.where(table[idx] == query, idx, -1) if len(table) else np.full(query.shape, -1)
            yield r

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
        """Ranks of the last j chars of each row of `history` (num, L), j < order (-1: none)."""
        num, length = history.shape
        keys = [np.zeros(num, dtype=np.int64)]
        keys += [r[:, length - j] for j, r in enumerate(self._ranks(history), start=1)]
        return keys + [np.full(num, -1, dtype=np.int64)] * (self.order - len(keys))

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
        for j, r in enumerate(self._ranks(full), start=1):
            # The history of length j starts j chars back; before the stream start it is absent.
            back = pos - j
            keys.append(np.where(back >= 0, r[np.maximum(back, 0)], -1))
        keys += [np.full(len(pos), -1, dtype=np.int64)] * (self.order - len(keys))
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

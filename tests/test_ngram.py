"""Tests of the vectorised Kneser-Ney model against a slow dict-based reference."""
import math
from collections import Counter

import numpy as np
import pytest

from stages.errors import UserError
from stages.ngram import KneserNeyLM, unique_ranks


class SlowKN:
    """Interpolated modified Kneser-Ney written plainly: dicts and recursion."""

    def __init__(self, order, vocab_size, train):
        self.order, self.v = order, vocab_size
        train = tuple(int(x) for x in train)
        raw = {k: Counter(train[i:i + k] for i in range(len(train) - k + 1))
               for k in range(1, order + 1)}
        self.table = {order: raw[order]}
        for k in range(1, order):
            # Continuation count: distinct left neighbours of the k-gram.
            self.table[k] = Counter(gram[1:] for gram in raw[k + 1])
        self.disc = {k: self.discounts(self.table[k]) for k in self.table}

    @staticmethod
    def discounts(table):
        n = [sum(1 for c in table.values() if c == i) for i in (1, 2, 3, 4)]
        if min(n) == 0:
            return [0.5, 1.0, 1.5]
        y = n[0] / (n[0] + 2 * n[1])
        d = [1 - 2 * y * n[1] / n[0], 2 - 3 * y * n[2] / n[1], 3 - 4 * y * n[3] / n[2]]
        return [min(max(x, 0.0), float(i + 1)) for i, x in enumerate(d)]

    def prob(self, w, hist):
        hist = tuple(hist)[len(hist) - min(len(hist), self.order - 1):]
        lower = self.prob(w, hist[1:]) if hist else 1.0 / self.v
        k = len(hist) + 1
        table, d = self.table[k], self.disc[k]
        counts = [table.get(hist + (x,), 0) for x in range(self.v)]
        total = sum(counts)
        if total == 0:
            return lower
        disc_of = lambda c: 0.0 if c == 0 else d[min(c, 3) - 1]  # noqa: E731
        gamma = sum(disc_of(c) for c in counts) / total
        c = counts[w]
        return max(c - disc_of(c), 0.0) / total + gamma * lower

    def stream_nll(self, ids, context=()):
        full = [int(x) for x in context] + [int(x) for x in ids]
        start = len(context)
        return [-math.log(self.prob(full[t], full[:t])) for t in range(start, len(full))]


def skewed_corpus(rng, n, vocab):
    """Random ids with Zipf-like frequencies and some local repetition."""
    p = 1.0 / np.arange(1, vocab + 1)
    base = rng.choice(vocab, size=n, p=p / p.sum())
    base[n // 2:n // 2 + 40] = base[:40]  # a repeated stretch gives high counts
    return base


@pytest.mark.parametrize("high", [50, 2**61])   # packed sort, and argsort for huge keys
def test_unique_ranks_matches_numpy_unique(high):
    keys = np.random.default_rng(5).integers(0, high, 5000)
    expected, first, inverse, counts = np.unique(keys, return_index=True, return_inverse=True,
                                                 return_counts=True)
    distinct, n, ranks, where = unique_ranks(keys.copy())
    np.testing.assert_array_equal(distinct, expected)
    np.testing.assert_array_equal(n, counts)
    np.testing.assert_array_equal(ranks, inverse)
    np.testing.assert_array_equal(keys[where], distinct)      # an occurrence of each value


def test_distribution_sums_to_one_for_random_histories():
    rng = np.random.default_rng(0)
    train = skewed_corpus(rng, 3000, 12)
    for order in (1, 2, 3, 5):
        lm = KneserNeyLM(order, 14).fit(train)  # ids 12, 13 never occur
        for length in (0, 1, order, order + 3):
            p = lm.distribution(rng.integers(0, 14, size=length))
            assert p.shape == (14,)
            assert abs(p.sum() - 1.0) < 1e-12
            assert (p[12:] > 0).all()


def test_stream_nll_matches_slow_reference_on_hand_made_text():
    text = "the cat sat on the mat. the rat ate the hat; a cat and a rat sat. " * 3
    vocab = sorted(set(text)) + ["Z"]  # "Z" never occurs in training
    ids = np.array([vocab.index(c) for c in text])
    train, test = ids[:150], np.append(ids[150:], len(vocab) - 1)
    for order in (1, 2, 3, 4):
        fast = KneserNeyLM(order, len(vocab)).fit(train)
        slow = SlowKN(order, len(vocab), train)
        np.testing.assert_allclose(fast.stream_nll(test, context=train),
                                   slow.stream_nll(test, train), rtol=0, atol=1e-9)
        # Without context the early positions back off to shorter histories.
        np.testing.assert_allclose(fast.stream_nll(test), slow.stream_nll(test),
                                   rtol=0, atol=1e-9)


def test_stream_nll_matches_slow_reference_with_estimated_discounts():
    rng = np.random.default_rng(1)
    train = skewed_corpus(rng, 1500, 10)
    test = skewed_corpus(rng, 200, 11)  # id 10 is unseen in training
    for order in (3, 4):
        slow = SlowKN(order, 11, train)
        # The count-of-count estimator (not the fallback) sets levels 2..order.
        assert all(slow.disc[k] != [0.5, 1.0, 1.5] for k in range(2, order + 1))
        fast = KneserNeyLM(order, 11).fit(train)
        np.testing.assert_allclose(fast.stream_nll(test, context=train[-5:]),
                                   slow.stream_nll(test, train[-5:]), rtol=0, atol=1e-9)


def test_first_gram_without_left_neighbour_matches_slow_reference():
    # "abz" occurs only at the stream start, so it has no continuation count, while its
    # history "ab" recurs: the lower level must give "abz" no weight at all.
    text = "abz" + "abcab cabd " * 12
    vocab = sorted(set(text))
    ids = np.array([vocab.index(c) for c in text])
    test = np.array([vocab.index(c) for c in "abcabzab dab"])
    for order in (2, 3, 4):
        fast = KneserNeyLM(order, len(vocab)).fit(ids)
        slow = SlowKN(order, len(vocab), ids)
        np.testing.assert_allclose(fast.stream_nll(test), slow.stream_nll(test), rtol=0, atol=1e-9)


def test_order_one_is_discounted_unigram_plus_uniform():
    train = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 3] * 3)  # counts 12, 9, 6, 3
    lm = KneserNeyLM(1, 5).fit(train)
    # Count-of-counts n1..n4 are all zero, so the fallback discounts apply:
    # every count is >= 3 and loses D3+ = 1.5; that mass 4 * 1.5 goes uniform.
    total, gamma = 30.0, 4 * 1.5 / 30.0
    expected = np.array([(c - 1.5) / total for c in (12, 9, 6, 3)] + [0.0]) + gamma / 5
    np.testing.assert_allclose(lm.distribution(np.array([2, 3])), expected, atol=1e-12)
    np.testing.assert_allclose(lm.stream_nll(np.array([4, 0])), -np.log(expected[[4, 0]]))


def test_sampling_is_reproducible_and_respects_shape():
    rng = np.random.default_rng(2)
    lm = KneserNeyLM(3, 8).fit(skewed_corpus(rng, 2000, 8))
    a = lm.sample(50, np.random.default_rng(7), prime=np.array([1, 2, 3]), num=4)
    b = lm.sample(50, np.random.default_rng(7), prime=np.array([1, 2, 3]), num=4)
    c = lm.sample(50, np.random.default_rng(8), prime=np.array([1, 2, 3]), num=4)
    assert a.shape == (4, 50) and a.min() >= 0 and a.max() < 8
    np.testing.assert_array_equal(a, b)
    assert (a != c).any()
    assert (a[0] != a[1]).any()  # rows are independent draws


def test_order_one_samples_follow_the_unigram():
    train = np.repeat(np.arange(4), [500, 300, 150, 50])
    lm = KneserNeyLM(1, 4).fit(train)
    draws = lm.sample(500, np.random.default_rng(3), num=20).ravel()
    freq = np.bincount(draws, minlength=4) / draws.size
    np.testing.assert_allclose(freq, lm.distribution(np.zeros(0, np.int64)), atol=0.01)
    assert abs(freq[0] - 0.5) < 0.02  # and that distribution is close to the counts


def test_higher_order_samples_reproduce_a_deterministic_pattern():
    train = np.tile(np.arange(5), 400)  # 0 1 2 3 4 0 1 2 ...
    lm = KneserNeyLM(3, 5).fit(train)
    out = lm.sample(30, np.random.default_rng(0), prime=np.array([0, 1]), num=3)
    assert (out == np.tile(np.arange(2, 7) % 5, 6)[None, :]).mean() > 0.95


def test_user_errors():
    with pytest.raises(UserError, match=">= 1"):
        KneserNeyLM(0, 100)
    with pytest.raises(UserError, match="outside"):
        KneserNeyLM(2, 3).fit(np.array([0, 1, 3]))
    with pytest.raises(UserError, match="not fitted"):
        KneserNeyLM(2, 3).distribution(np.array([0]))


def test_order_seven_on_a_play_matches_slow_reference():
    # The default order on play-like text, every level's discounts estimated from its counts:
    # the expected numbers come from the dict-based reference, not from this code.
    from tests.conftest import play_text
    text = play_text(20000, seed=0) + play_text(400, seed=1)
    vocab = {c: i for i, c in enumerate(sorted(set(text)))}
    ids = np.array([vocab[c] for c in text])
    train, test = ids[:20000], ids[20000:20300]
    slow = SlowKN(7, len(vocab), train)
    assert all(slow.disc[k] != [0.5, 1.0, 1.5] for k in range(1, 8))
    fast = KneserNeyLM(7, len(vocab)).fit(train)
    np.testing.assert_allclose(fast.stream_nll(test, context=train),
                               slow.stream_nll(test, train), rtol=0, atol=1e-9)


def test_thousands_of_characters_at_high_order():
    # Packing a k-gram as base-V digits overflowed int64 here (4000**7 > 2**63); the
    # level-by-level numbering has no limit. Checked against the reference, and normalised.
    rng = np.random.default_rng(4)
    V = 4000
    train = skewed_corpus(rng, 3000, V - 2)           # two ids never occur
    test = np.concatenate([train[:30], skewed_corpus(rng, 100, V)[:30]])
    slow = SlowKN(7, V, train)
    fast = KneserNeyLM(7, V).fit(train)
    np.testing.assert_allclose(fast.stream_nll(test, context=train[-10:]),
                               slow.stream_nll(test, train[-10:]), rtol=0, atol=1e-9)
    deep = KneserNeyLM(9, V).fit(train)
    p = deep.distribution(train[:20])
    assert abs(p.sum() - 1.0) < 1e-12 and (p > 0).all()
    # The history train[:20] was seen: its continuation gets most of the mass.
    assert p[train[20]] > 0.5

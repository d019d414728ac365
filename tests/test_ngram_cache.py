"""The online n-gram cache: counts only what is already scored, normalised, weight 0 is static."""
import dataclasses
from types import SimpleNamespace

import numpy as np
import pytest

from model import CIFGLSTM
from model.evaluate import stream_nll
from pipeline.schema import EvaluateConfig
from stages.adaptive_rows import adaptive_nll
from stages.ngram_cache import WEIGHTS, cache_probs, mix_nll, tuned_mix

V = 6


def stream(n, seed):
    return np.random.default_rng(seed).integers(0, V, n)


@pytest.mark.parametrize("order", [1, 2, 3, 5])
def test_each_prediction_is_a_distribution_over_the_vocabulary(order):
    prefix = stream(400, 1)
    total = sum(cache_probs(np.append(prefix, c), order, V)[-1] for c in range(V))
    assert total == pytest.approx(1.0, abs=1e-12)


def test_a_character_is_predicted_from_the_characters_before_it_only():
    a = stream(500, 2)
    b = a.copy()
    b[301:] = stream(199, 3)
    pa, pb = cache_probs(a, 4, V), cache_probs(b, 4, V)
    assert np.array_equal(pa[:301], pb[:301])     # p of ids[300] depends on ids[:301] only
    assert pa[0] == pytest.approx(1 / V)          # nothing counted yet: uniform


def test_the_cache_learns_repeated_text():
    text = np.tile(stream(60, 4), 5)
    p = cache_probs(text, 5, V)
    assert p[:60].mean() < 0.3 and p[120:].mean() > 0.8


def test_weight_zero_is_the_model_exactly_and_the_weight_is_chosen_on_validation():
    rng = np.random.default_rng(5)
    model = rng.uniform(0.5, 3.0, 1000)
    model[0] = np.nan                                 # an unscored character stays unscored
    p = rng.uniform(0.01, 1.0, 1000)
    assert np.array_equal(mix_nll(model, p, 0.0), model, equal_nan=True)
    out, info = tuned_mix(model, p, model, p, weights=(0.0,))
    assert np.array_equal(out, model, equal_nan=True)
    # a cache perfect on validation takes a large weight on test, however useless it is there;
    # a useless one on validation takes none, and test is scored as the model
    good, bad, ones = np.full(500, 1.0), np.full(500, 1e-6), np.full(500, 1.0)
    out, info = tuned_mix(ones, good, ones, bad)
    assert info["weight"] == max(WEIGHTS) and np.all(out > 1.0) and info["tuned_on"] == "val"
    out, info = tuned_mix(ones, bad, ones, good)
    assert info["weight"] == 0 and np.array_equal(out, ones)


@pytest.mark.parametrize("weight", [0.0, 0.3])
def test_the_cache_row_of_the_report_with_weight_grid_at_zero_is_static(monkeypatch, weight):
    """Evaluate's cache row with a one-weight grid: weight 0 gives the static row bit for bit,
    and weight 0.3 gives, at every scored character, -log(0.7 p_lstm + 0.3 p_cache), computed
    here from the static row and the cache's probabilities. So a row that ignored the weight
    (or mixed the wrong losses in) fails the 0.3 case, not only a row that breaks weight 0."""
    import stages.ngram_cache as cache
    net = CIFGLSTM(V, 16, 1, V, seed=0, dtype=np.float64, char_inputs=True)
    splits = []
    for seed in (6, 9):
        ids, ctx = stream(3000, seed), stream(50, seed + 1)
        splits.append(SimpleNamespace(ids=ids, context=ctx,
                                      static=stream_nll(net, ids, context=ctx, lanes=4, burn_in=50)))
    val, test = splits
    cfg = dataclasses.replace(EvaluateConfig(), lanes=4, burn_in=50, cache=True)
    monkeypatch.setattr(cache, "WEIGHTS", (weight,))
    monkeypatch.setattr(cache.tuned_mix, "__defaults__", ((weight,),))
    nll, info = adaptive_nll(net, stream(2000, 8), val, test, V, cfg)
    assert info["lstm_cache"]["weight"] == weight
    row, scored = nll["lstm_cache"], ~np.isnan(test.static)
    assert np.array_equal(np.isnan(row), ~scored)       # the same characters scored
    if weight == 0:
        assert np.array_equal(row, test.static, equal_nan=True)
        return
    p_cache = cache_probs(test.ids, cfg.cache_order, V)
    mixed = -np.log((1 - weight) * np.exp(-test.static[scored]) + weight * p_cache[scored])
    np.testing.assert_allclose(row[scored], mixed, rtol=1e-12)
    assert np.abs(row[scored] - test.static[scored]).min() > 1e-6    # every character moved


def reference_p(history, target, order, vocab_size, d=0.75):
    """Interpolated Kneser-Ney from scratch over `history` (a list), for one target: the top
    level on occurrence counts, lower levels on distinct-left-neighbour counts."""
    def counts(k):
        grams = [tuple(history[i - k + 1:i + 1]) for i in range(k - 1, len(history))]
        if k == order:
            out = {}
            for g in grams:
                out[g] = out.get(g, 0) + 1
            return out
        # continuation: distinct characters seen right before the k-gram
        left = {}
        for i in range(k, len(history)):
            left.setdefault(tuple(history[i - k + 1:i + 1]), set()).add(history[i - k])
        return {g: len(s) for g, s in left.items()}
    p = 1.0 / vocab_size
    for k in range(1, min(order, len(history) + 1) + 1):
        c = counts(k)
        h = tuple(history[len(history) - k + 1:]) if k > 1 else ()
        of_h = {g: n for g, n in c.items() if g[:-1] == h}
        total = sum(of_h.values())
        if total:
            p = (max(of_h.get(h + (target,), 0) - d, 0) + d * len(of_h) * p) / total
    return p


@pytest.mark.parametrize("order", [1, 3, 5])
def test_the_online_counts_match_counting_from_scratch(order):
    ids = np.tile(stream(40, 9), 3)[:100]
    ids[50:60] = stream(10, 10)
    fast = cache_probs(ids, order, V)
    slow = [reference_p(ids[:i].tolist(), int(ids[i]), order, V) for i in range(len(ids))]
    assert np.allclose(fast, slow, rtol=1e-12, atol=0)

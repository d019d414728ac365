"""The online n-gram cache: counts only what is already scored, normalised, weight 0 is static."""
import dataclasses

import numpy as np
import pytest

from model import CIFGLSTM
from model.evaluate import stream_nll
from pipeline.schema import EvaluateConfig
from stages.adaptive_rows import adaptive_nll
from stages.ngram_cache import cache_probs, mix_nll, two_fold_mix

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


def test_weight_zero_is_the_model_exactly_and_weights_are_tuned_on_the_other_half():
    rng = np.random.default_rng(5)
    model = rng.uniform(0.5, 3.0, 1000)
    model[0] = np.nan                                 # an unscored character stays unscored
    p = rng.uniform(0.01, 1.0, 1000)
    assert np.array_equal(mix_nll(model, p, 0.0), model, equal_nan=True)
    half = np.repeat([0, 1], 500).astype(np.int8)
    half[0] = -1
    out, folds = two_fold_mix(model, p, half, weights=(0.0,))
    assert np.array_equal(out, model, equal_nan=True)
    # a cache perfect on half 2 only: half 1 (tuned on half 2) takes a large weight, half 2
    # (tuned on half 1, where the cache is useless) takes none, and is scored as the model
    p2 = np.where(np.arange(1000) >= 500, 1.0, 1e-6)
    out, folds = two_fold_mix(np.full(1000, 1.0), p2, np.repeat([0, 1], 500).astype(np.int8))
    assert folds[0]["weight"] > 0 and folds[1]["weight"] == 0
    assert np.array_equal(out[500:], np.full(500, 1.0))


def test_the_cache_row_of_the_report_with_weight_grid_at_zero_is_static(monkeypatch):
    import stages.ngram_cache as cache
    net = CIFGLSTM(V, 16, 1, V, seed=0, dtype=np.float64, char_inputs=True)
    val, ctx = stream(3000, 6), stream(50, 7)
    static = stream_nll(net, val, context=ctx, lanes=4, burn_in=50)
    cfg = dataclasses.replace(EvaluateConfig(), lanes=4, burn_in=50, cache=True)
    monkeypatch.setattr(cache, "WEIGHTS", (0.0,))
    monkeypatch.setattr(cache.two_fold_mix, "__defaults__", ((0.0,),))
    nll, info = adaptive_nll(net, stream(2000, 8), val, ctx, static, V, cfg)
    assert np.array_equal(nll["lstm_cache"], static, equal_nan=True)
    assert [f["weight"] for f in info["lstm_cache"]["folds"]] == [0.0, 0.0]

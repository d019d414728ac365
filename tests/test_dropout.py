"""Dropout as the default config trains with it: rate, 1/(1-p) scale, expectation, and the
backward pass using exactly the forward's mask (gradient check with the mask held fixed).

A mask is held fixed by handing every forward pass a fresh generator with the same seed: the
masks depend only on the generator, never on the parameters.
"""
import numpy as np
import pytest

from model import CIFGLSTM
from model.regularise import dropout_mask
from model.softmax import softmax_cross_entropy
from model.regularise import Masks
from tests.reference import reference_forward


def make(L=2, p=0.4, D=5, H=6, K=4, scale=0.5):
    net = CIFGLSTM(D, H, L, K, seed=0, dtype=np.float64, dropout=p)
    net.flat[...] = np.random.default_rng(1).normal(0, scale, net.flat.shape)
    return net


def test_mask_drops_a_fraction_p_and_scales_the_rest_by_one_over_one_minus_p():
    for p in (0.1, 0.5):
        mask = dropout_mask(np.random.default_rng(0), (100, 400), p, np.float64)
        n = mask.size
        assert abs((mask == 0).mean() - p) < 5 * np.sqrt(p * (1 - p) / n)    # binomial bound
        assert np.allclose(mask[mask != 0], 1 / (1 - p), rtol=1e-12, atol=0)
        assert abs(mask.mean() - 1) < 5 * np.sqrt(p / (1 - p) / n)          # E[mask] = 1
    assert dropout_mask(np.random.default_rng(0), (3, 4), 0.0, np.float64) is None


def test_forward_applies_the_drawn_masks_to_every_layers_output():
    # The reference multiplies layer l's output by masks drawn as the engine draws them
    # (uniform float32 >= p per layer, in layer order, kept units scaled by 1/(1-p)).
    net, p = make(L=2, p=0.4), 0.4
    rng = np.random.default_rng(2)
    x, state = rng.integers(0, net.D, (5, 3)), None
    masks_rng = np.random.default_rng(9)
    masks = [(masks_rng.random((5, 3, net.H), dtype=np.float32) >= p) / (1 - p) for _ in range(net.L)]
    logits, _, _ = net.forward(x, state, rng=np.random.default_rng(9))
    ref, _, _ = reference_forward(net, x, state, masks=Masks(out=masks, wh=[None] * net.L))
    np.testing.assert_allclose(logits, ref.reshape(logits.shape), rtol=0, atol=1e-10)
    plain, _, _ = net.forward(x, state)
    assert not np.allclose(logits, plain, atol=1e-3)           # the masks did change something


def test_dropout_keeps_the_expected_output():
    # One layer: the logits are linear in the masked output, so their mean over masks is the
    # no-dropout logits; a missing 1/(1-p) would shrink it towards the bias by (1 - p).
    net = make(L=1, p=0.5, scale=1.0)
    x = np.random.default_rng(3).integers(0, net.D, (4, 2))
    plain, _, _ = net.forward(x)
    draws = np.stack([net.forward(x, rng=np.random.default_rng(s))[0] for s in range(4000)])
    se = draws.std(axis=0) / np.sqrt(len(draws))
    assert (draws.std(axis=0) > 0.05).all()                    # dropout is on
    np.testing.assert_array_less(np.abs(draws.mean(axis=0) - plain), 5 * se + 1e-12)
    # The test can tell: a mean shrunk by (1 - p) would fail that bound at many entries.
    shrunk = net.params["by"] + 0.5 * (plain - net.params["by"])
    assert (np.abs(shrunk - plain) > 5 * se).sum() >= plain.size // 2


def loss_with_mask(net, x, y, state, seed):
    logits, _, _ = net.forward(x, state, rng=np.random.default_rng(seed))
    return softmax_cross_entropy(logits, y.reshape(-1))[0]


@pytest.mark.parametrize("L,ids", [(1, False), (3, True)])
def test_gradients_with_a_fixed_mask_match_finite_differences(L, ids):
    net = make(L=L, p=0.3)
    rng = np.random.default_rng(4)
    T, B = 4, 3
    x = rng.integers(0, net.D, (T, B)) if ids else rng.normal(size=(T, B, net.D))
    y = rng.integers(0, net.K, (T, B))
    state = (rng.normal(0, 0.5, (L, B, net.H)), rng.normal(0, 0.5, (L, B, net.H)))
    loss, grads, _ = net.loss_and_grads(x, y, state, rng=np.random.default_rng(11))
    assert loss == pytest.approx(loss_with_mask(net, x, y, state, 11), abs=1e-12)
    assert loss != pytest.approx(loss_with_mask(net, x, y, state, 12), abs=1e-6)   # masks matter
    eps = 1e-6
    for name, g in grads.items():
        p = net.params[name]
        for k in rng.choice(g.size, size=min(g.size, 20), replace=False):
            idx = np.unravel_index(k, g.shape)
            old = p[idx]
            p[idx] = old + eps
            up = loss_with_mask(net, x, y, state, 11)
            p[idx] = old - eps
            down = loss_with_mask(net, x, y, state, 11)
            p[idx] = old
            assert g[idx] == pytest.approx((up - down) / (2 * eps), rel=1e-5, abs=1e-8), (name, idx)

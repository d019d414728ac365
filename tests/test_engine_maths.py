"""The fused engine against a per-gate reference and against finite differences (float64)."""
import numpy as np
import pytest

from model import CIFGLSTM
from tests.reference import reference_forward, reference_loss


def make(cell="cifg", L=1, D=5, H=7, K=4, seed=0, scale=0.6):
    net = CIFGLSTM(D, H, L, K, seed=seed, dtype=np.float64, cell=cell)
    rng = np.random.default_rng(seed + 100)
    net.flat[...] = rng.normal(0, scale, net.flat.shape)   # spread so no gate is saturated or idle
    return net


def random_state(net, B, rng):
    return rng.normal(0, 0.5, (net.L, B, net.H)), rng.normal(0, 0.5, (net.L, B, net.H))


@pytest.mark.parametrize("cell", ["cifg", "lstm"])
@pytest.mark.parametrize("L", [1, 3])
@pytest.mark.parametrize("ids", [False, True])
def test_fused_forward_equals_reference(cell, L, ids):
    net = make(cell, L)
    rng = np.random.default_rng(1)
    x = rng.integers(0, net.D, (6, 3)) if ids else rng.normal(size=(6, 3, net.D))
    state = random_state(net, 3, rng)
    probs, (h, c) = net.posterior(x, state)
    ref_logits, (rh, rc), _ = reference_forward(net, x, state)
    ref = np.exp(ref_logits - ref_logits.max(-1, keepdims=True))
    ref /= ref.sum(-1, keepdims=True)
    np.testing.assert_allclose(probs, ref, rtol=0, atol=1e-10)
    np.testing.assert_allclose(h, rh, atol=1e-10)
    np.testing.assert_allclose(c, rc, atol=1e-10)


def test_cifg_equals_an_lstm_whose_forget_gate_is_one_minus_the_input_gate():
    # Independent of the reference: 1 - sigmoid(z) = sigmoid(-z), so an uncoupled LSTM whose
    # forget-gate weights are minus the input gate's computes exactly what CIFG must.
    from tests.reference import split_gates
    cifg = make("cifg", 2)
    x = np.random.default_rng(2).normal(size=(5, 2, cifg.D))
    _, _, record = reference_forward(cifg, x)
    assert all(0.05 < gates["i"].mean() < 0.95 for gates in record)   # gates in use, not saturated

    def as_lstm(f_sign):
        lstm = CIFGLSTM(cifg.D, cifg.H, cifg.L, cifg.K, dtype=np.float64, cell="lstm")
        for l in range(cifg.L):
            src, dst = split_gates(cifg, l), split_gates(lstm, l)
            for name in ("o", "i", "g"):
                for a, b in zip(dst[name], src[name]):
                    a[...] = b
            for a, b in zip(dst["f"], src["i"]):
                a[...] = f_sign * b
        lstm.params["Wy"][...], lstm.params["by"][...] = cifg.params["Wy"], cifg.params["by"]
        return lstm

    coupled, (h, c) = cifg.posterior(x)
    lstm_probs, (lh, lc) = as_lstm(-1.0).posterior(x)
    np.testing.assert_allclose(coupled, lstm_probs, rtol=0, atol=1e-12)
    np.testing.assert_allclose(c, lc, rtol=0, atol=1e-12)
    # The comparison can tell coupling rules apart: f = i instead of 1 - i changes the output.
    assert not np.allclose(coupled, as_lstm(+1.0).posterior(x)[0], atol=1e-4)


def numeric_grad(net, x, y, state, name, idx, eps=1e-6):
    p = net.params[name]
    old = p[idx]
    p[idx] = old + eps
    up = reference_loss(net, x, y, state)
    p[idx] = old - eps
    down = reference_loss(net, x, y, state)
    p[idx] = old
    return (up - down) / (2 * eps)


@pytest.mark.parametrize("cell,L,ids", [("cifg", 1, False), ("cifg", 3, False), ("cifg", 3, True),
                                        ("lstm", 2, False)])
def test_gradients_match_finite_differences(cell, L, ids):
    net = make(cell, L, D=5, H=6, K=4, scale=0.5)
    rng = np.random.default_rng(3)
    T, B = 4, 3
    x = rng.integers(0, net.D, (T, B)) if ids else rng.normal(size=(T, B, net.D))
    y = rng.integers(0, net.K, (T, B))
    state = random_state(net, B, rng)
    loss, grads, _ = net.loss_and_grads(x, y, state)
    assert loss == pytest.approx(reference_loss(net, x, y, state), abs=1e-12)
    for name, g in grads.items():
        assert g.shape == net.params[name].shape
        flat_idx = rng.choice(g.size, size=min(g.size, 25), replace=False)
        for k in flat_idx:
            idx = np.unravel_index(k, g.shape)
            num = numeric_grad(net, x, y, state, name, idx)
            assert g[idx] == pytest.approx(num, rel=1e-5, abs=1e-8), (name, idx)


def test_ids_path_equals_one_hot_features():
    net = make("cifg", 2)
    ids = np.random.default_rng(4).integers(0, net.D, (5, 3))
    y = np.random.default_rng(5).integers(0, net.K, (5, 3))
    onehot = np.eye(net.D)[ids]
    l1, g1, _ = net.loss_and_grads(ids, y)
    l2, g2, _ = net.loss_and_grads(onehot, y)
    assert l1 == pytest.approx(l2, abs=1e-12)
    for k in g1:
        np.testing.assert_allclose(g1[k], g2[k], atol=1e-12)


@pytest.mark.parametrize("ids", [False, True])
def test_whole_stream_equals_chunks_with_carried_state(ids):
    net = make("cifg", 2)
    rng = np.random.default_rng(6)
    x = rng.integers(0, net.D, (12, 2)) if ids else rng.normal(size=(12, 2, net.D))
    whole, (h, c) = net.posterior(x)
    state, parts = None, []
    for a, b in [(0, 5), (5, 6), (6, 12)]:
        p, state = net.posterior(x[a:b], state)
        parts.append(p)
    np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-13)
    np.testing.assert_allclose(state[0], h, atol=1e-13)
    np.testing.assert_allclose(state[1], c, atol=1e-13)


@pytest.mark.parametrize("cell,gate", [("cifg", "i"), ("lstm", "f")])
def test_initial_gate_bias_lands_on_the_named_gate(cell, gate):
    from tests.reference import split_gates
    net = CIFGLSTM(5, 8, 2, 4, seed=0, dtype=np.float64, cell=cell, char_inputs=True)
    for l in range(2):
        for name, (_, _, b) in split_gates(net, l).items():
            assert np.all(b == (1.0 if name == gate else 0.0)), (l, name)
    rows = net.params["W0"][:5]
    assert 0.7 < rows.std() < 1.3          # embedding-like rows for character ids
    assert np.abs(net.params["W1"]).max() <= 1 / np.sqrt(8)

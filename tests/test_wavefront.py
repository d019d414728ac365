"""The wavefront over layers (model/wavefront.py) computes the ordinary step, one thread per layer.

Checked against `CIFGLSTM.forward/backward`, itself checked against finite differences and
the slow reference (tests/test_engine_maths.py, tests/test_regularisers.py): float64, every
regulariser on with the masks held fixed, chunk sizes that do and do not divide the window.
"""
import numpy as np
import pytest

from model import CIFGLSTM, wavefront
from model.layers import softmax_cross_entropy, softmax_cross_entropy_backward
from tests.test_regularisers import ALL_ON, inputs, make, masks_with_zeros, small_trainer


def wavefront_loss_grad(net, x, y, state, masks, chunk):
    logits, state, cache = wavefront.forward(net, x, state, masks, chunk)
    loss, ce = softmax_cross_entropy(logits, y.reshape(-1))
    return loss, wavefront.backward(net, softmax_cross_entropy_backward(ce), cache), state, logits


@pytest.mark.parametrize("cell,L,ids,T,chunk", [
    ("cifg", 2, True, 7, 3),      # chunks 3, 3, 1
    ("cifg", 2, False, 6, 1),     # one step per chunk
    ("cifg", 3, True, 9, 2),      # a layer in the middle waits on both neighbours
    ("lstm", 2, True, 5, 5),      # one chunk: no overlap at all
    ("cifg", 2, True, 4, 10),     # chunk longer than the window
])
def test_wavefront_step_equals_the_layer_by_layer_step(cell, L, ids, T, chunk):
    net = make(ALL_ON, cell, L)
    x, y, state = inputs(net, ids, T=T, B=3)
    masks = masks_with_zeros(net, T, 3)
    loss, grad, (h, c), _ = net.loss_grad_flat(x, y, state, masks=masks)
    wloss, wgrad, (wh, wc), _ = wavefront_loss_grad(net, x, y, state, masks, chunk)
    assert wloss == pytest.approx(loss, abs=1e-12)
    np.testing.assert_allclose(wgrad, grad, atol=1e-12)
    np.testing.assert_allclose(wh, h, atol=1e-12)
    np.testing.assert_allclose(wc, c, atol=1e-12)
    assert np.abs(grad).max() > 1e-3          # a gradient worth comparing


def test_wavefront_without_regularisers_and_without_state():
    net = make({}, L=2)
    x, y, _ = inputs(net, True, T=6, B=2)
    loss, grad, (h, c), _ = net.loss_grad_flat(x, y)
    wloss, wgrad, (wh, wc), _ = wavefront_loss_grad(net, x, y, None, wavefront.no_masks(2), 4)
    assert wloss == pytest.approx(loss, abs=1e-12)
    np.testing.assert_allclose(wgrad, grad, atol=1e-12)
    np.testing.assert_allclose(wh, h, atol=1e-12)


def test_wavefront_is_deterministic_in_float32():
    net = CIFGLSTM(5, 6, 2, 4, seed=0, char_inputs=True, **ALL_ON)       # float32
    x, y, state = inputs(net, True, T=12, B=5)
    state = tuple(s.astype(np.float32) for s in state)
    masks = net.draw_masks(np.random.default_rng(1), 12, 5)
    runs = [wavefront_loss_grad(net, x, y, state, masks, 3) for _ in range(3)]
    for loss, grad, (h, c), _ in runs[1:]:
        assert loss == runs[0][0]
        np.testing.assert_array_equal(grad, runs[0][1])
        np.testing.assert_array_equal(h, runs[0][2][0])


def test_an_error_in_one_layer_is_raised_and_no_thread_is_left_waiting(monkeypatch):
    net = make({}, L=3)
    x, y, state = inputs(net, True, T=6, B=2)
    real = wavefront.layer_forward

    def failing(xw, h0, c0, Wh, *a, **k):
        if np.shares_memory(Wh, net.params["W1"]):
            raise FloatingPointError("layer 1 failed")
        return real(xw, h0, c0, Wh, *a, **k)
    monkeypatch.setattr(wavefront, "layer_forward", failing)
    with pytest.raises(FloatingPointError, match="layer 1 failed"):
        wavefront.forward(net, x, state, wavefront.no_masks(3), 2)
    monkeypatch.setattr(wavefront, "layer_forward", real)    # the pool is usable afterwards
    logits, _, _ = wavefront.forward(net, x, state, wavefront.no_masks(3), 2)
    np.testing.assert_allclose(logits, net.forward(x, state)[0], atol=1e-12)


def test_trainer_with_two_threads_runs_the_wavefront_on_the_same_masks(monkeypatch):
    import model.training as training
    calls = []

    def spy(*a, **k):
        calls.append(1)
        return wavefront.loss_grad_wavefront(*a, **k)
    monkeypatch.setattr(training, "loss_grad_wavefront", spy)
    stream = np.random.default_rng(0).integers(0, 11, 2000)
    one = small_trainer(stream, **ALL_ON)
    two = small_trainer(stream, threads=2, parallel="layers", **ALL_ON)
    a, b = one.train_step(), two.train_step()
    assert calls == [1]
    assert b["loss"] == pytest.approx(a["loss"], rel=1e-5)    # same window, weights and masks
    assert two.rng.bit_generator.state == one.rng.bit_generator.state


def test_parallel_enters_the_train_fingerprint_only_with_several_threads(tmp_path):
    from pipeline.tasks import Train
    from tests.conftest import write_config
    slices = {}
    for threads in (1, 2):
        for parallel in ("layers", "lanes"):
            cfg = write_config(tmp_path, {"train.threads": threads, "train.parallel": parallel},
                               name=f"{threads}{parallel}.yaml")
            slices[threads, parallel] = Train(config=str(cfg)).slice()
    assert "train.parallel" not in slices[1, "layers"]     # runs from before the key keep their folder
    assert "train.parallel" not in slices[2, "lanes"]      # (threads > 1 split the lanes then)
    assert slices[1, "layers"] == slices[1, "lanes"]
    assert slices[2, "layers"] != slices[2, "lanes"]

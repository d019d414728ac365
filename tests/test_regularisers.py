"""The training-time regularisers: masks applied where documented, exact gradients, resumable.

Every check holds the random masks fixed: they are drawn once with `net.draw_masks` and
passed to the engine and to the slow reference alike.
"""
import json

import numpy as np
import pytest

from model import CIFGLSTM, Trainer, TrainSettings
from model.regularise import dropout_mask
from model.regularise import RATES
from tests.reference import reference_forward, reference_loss

ALL_ON = {"dropout": 0.3, "locked_dropout_in": 0.25, "locked_dropout_hidden": 0.4,
          "locked_dropout_out": 0.2, "weight_drop": 0.5, "embed_dropout": 0.3}


def make(rates, cell="cifg", L=2, D=5, H=6, K=4, seed=0, scale=0.5):
    net = CIFGLSTM(D, H, L, K, seed=seed, dtype=np.float64, cell=cell, **rates)
    net.flat[...] = np.random.default_rng(seed + 100).normal(0, scale, net.flat.shape)
    return net


def inputs(net, ids, T=4, B=3, seed=3):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, net.D, (T, B)) if ids else rng.normal(size=(T, B, net.D))
    y = rng.integers(0, net.K, (T, B))
    state = (rng.normal(0, 0.5, (net.L, B, net.H)), rng.normal(0, 0.5, (net.L, B, net.H)))
    return x, y, state


def masks_with_zeros(net, T, B, seed=7):
    """Masks of all kinds, redrawn until every kind holds at least one zero (so each matters)."""
    for s in range(seed, seed + 50):
        m = net.draw_masks(np.random.default_rng(s), T, B)
        parts = [*m.out, m.emb, m.rows, *m.wh]
        if all(p is None or (p == 0).any() for p in parts):
            return m
    raise AssertionError("could not draw masks with zeros")


@pytest.mark.parametrize("cell,L,ids", [("cifg", 2, True), ("cifg", 3, False), ("lstm", 2, True)])
def test_masked_forward_equals_the_reference_applying_each_mask_literally(cell, L, ids):
    net = make(ALL_ON, cell, L)
    x, _, state = inputs(net, ids)
    masks = masks_with_zeros(net, *x.shape[:2])
    logits, (h, c), _ = net.forward(x, state, masks=masks)
    ref, (rh, rc), _ = reference_forward(net, x, state, masks)
    np.testing.assert_allclose(logits, ref.reshape(logits.shape), atol=1e-10)
    np.testing.assert_allclose(h, rh, atol=1e-10)
    np.testing.assert_allclose(c, rc, atol=1e-10)
    plain, _, _ = net.forward(x, state)            # and the masks do change the output
    assert not np.allclose(plain, logits)


@pytest.mark.parametrize("rates", [ALL_ON] + [{k: 0.4} for k in RATES], ids=["all"] + list(RATES))
@pytest.mark.parametrize("ids", [True, False])
def test_gradients_with_fixed_masks_match_finite_differences(rates, ids):
    net = make(rates, L=2)
    x, y, state = inputs(net, ids)
    masks = masks_with_zeros(net, *x.shape[:2])
    loss, grads, _ = net.loss_and_grads(x, y, state, masks=masks)
    assert loss == pytest.approx(reference_loss(net, x, y, state, masks), abs=1e-12)
    pick = np.random.default_rng(11)
    for name, g in grads.items():
        p = net.params[name]
        for k in pick.choice(g.size, size=min(g.size, 12), replace=False):
            idx = np.unravel_index(k, g.shape)
            old = p[idx]
            p[idx] = old + 1e-6
            up = reference_loss(net, x, y, state, masks)
            p[idx] = old - 1e-6
            down = reference_loss(net, x, y, state, masks)
            p[idx] = old
            assert g[idx] == pytest.approx((up - down) / 2e-6, rel=1e-5, abs=1e-8), (name, idx)


def test_mask_shapes_scale_and_what_is_shared():
    net = CIFGLSTM(20, 64, 2, 20, seed=0, **ALL_ON)
    T, B = 9, 16
    m = net.draw_masks(np.random.default_rng(0), T, B)
    scale = {k: 1 / (1 - p) for k, p in ALL_ON.items()}
    # Per-step and locked masks combine on the lower layer; the top one adds the read-out mask.
    assert m.out[0].shape == (T, B, 64) and m.out[1].shape == (T, B, 64)
    assert m.emb.shape == (B, 3 * 64) and m.rows.shape == (20,) and m.wh[0].shape == (64, 3 * 64)
    assert set(np.unique(m.emb)) == {0, np.float32(scale["locked_dropout_in"])}
    assert set(np.unique(m.wh[1])) == {0, np.float32(scale["weight_drop"])}
    # A locked mask alone is one mask per lane, the same at every time step.
    locked = CIFGLSTM(20, 64, 2, 20, locked_dropout_hidden=0.5, locked_dropout_out=0.5)
    lm = locked.draw_masks(np.random.default_rng(1), T, B)
    for mask in lm.out:
        assert mask.shape == (1, B, 64)
        assert not np.array_equal(mask[0, 0], mask[0, 1])        # lanes differ
    # Two steps draw different masks (weight drop is per step, not fixed for the run).
    rng = np.random.default_rng(2)
    a, b = net.draw_masks(rng, T, B), net.draw_masks(rng, T, B)
    assert not np.array_equal(a.wh[0], b.wh[0]) and not np.array_equal(a.rows, b.rows)


@pytest.mark.parametrize("name", RATES)
def test_each_mask_keeps_the_expectation(name):
    """Inverted scaling: the mean of many masks is 1 (within 5 standard errors)."""
    p = 0.4
    net = CIFGLSTM(50, 40, 2, 50, **{name: p})
    rng = np.random.default_rng(5)
    values = []
    for _ in range(20):
        m = net.draw_masks(rng, 6, 8)
        values += [a.ravel() for a in (*m.out, m.emb, m.rows, *m.wh) if a is not None]
    v = np.concatenate(values).astype(np.float64)
    assert abs(v.mean() - 1.0) < 5 * np.sqrt(p / (1 - p) / v.size)
    assert abs((v == 0).mean() - p) < 5 * np.sqrt(p * (1 - p) / v.size)


def test_dropout_alone_draws_the_masks_it_always_drew():
    """Runs that use only `dropout` keep their earlier results: same draws, same order."""
    net = CIFGLSTM(7, 8, 2, 7, dropout=0.3)
    m = net.draw_masks(np.random.default_rng(9), 5, 3)
    rng = np.random.default_rng(9)
    for l in range(2):
        np.testing.assert_array_equal(m.out[l], dropout_mask(rng, (5, 3, 8), 0.3, np.float32))
    assert m.emb is None and m.rows is None and m.wh == [None, None]


def test_without_rng_the_network_is_deterministic_and_unmasked():
    net = make(ALL_ON)
    x, _, state = inputs(net, True)
    a, _, _ = net.forward(x, state)
    ref, _, _ = reference_forward(net, x, state)
    np.testing.assert_allclose(a, ref.reshape(a.shape), atol=1e-10)


def small_trainer(stream, **kw):
    rates = {k: kw.pop(k) for k in list(kw) if k in RATES}
    net = CIFGLSTM(11, 16, 2, 11, seed=0, char_inputs=True, **rates)
    settings = TrainSettings(batch_size=4, seq_len=8, steps=kw.pop("steps", 12), learning_rate=1e-2,
                             optimizer="adamw", weight_decay=0.1, **kw)
    return Trainer(net, stream, settings)


def test_resume_is_bitwise_with_every_regulariser_and_averaging(tmp_path):
    from model import load_checkpoint, save_checkpoint
    stream = np.random.default_rng(0).integers(0, 11, 2000)
    straight = small_trainer(stream, ema_decay=0.9, **ALL_ON)
    for _ in range(12):
        straight.train_step()
    first = small_trainer(stream, ema_decay=0.9, **ALL_ON)
    for _ in range(5):
        first.train_step()
    save_checkpoint(tmp_path / "c.ckpt", *first.state_dict())
    resumed = small_trainer(stream, ema_decay=0.9, **ALL_ON)
    resumed.load_state_dict(*load_checkpoint(tmp_path / "c.ckpt"))
    for _ in range(7):
        resumed.train_step()
    np.testing.assert_array_equal(resumed.net.flat, straight.net.flat)
    np.testing.assert_array_equal(resumed.avg, straight.avg)


def test_weight_average_follows_its_formula_and_is_what_averaged_shows():
    stream = np.random.default_rng(1).integers(0, 11, 2000)
    tr = small_trainer(stream, ema_decay=0.8)
    expect = None
    for step in range(1, 9):
        tr.train_step()
        p = tr.net.flat.astype(np.float64)
        d = min(0.8, (1 + step) / (10 + step))
        expect = p.copy() if step == 1 else d * expect + (1 - d) * p
    np.testing.assert_allclose(tr.avg, expect, rtol=1e-12, atol=1e-12)
    raw = tr.net.flat.copy()
    with tr.averaged() as net:
        np.testing.assert_array_equal(net.flat, expect.astype(np.float32))
    np.testing.assert_array_equal(tr.net.flat, raw)       # restored exactly afterwards
    assert not np.allclose(raw, expect)                  # and the average is not the weights


def test_regularised_training_still_learns():
    """A periodic stream is learned with every regulariser on (the masks do not break training)."""
    stream = np.tile(np.arange(11), 300)
    tr = small_trainer(stream, steps=150, **{**ALL_ON, "weight_drop": 0.2})
    losses = [tr.train_step()["loss"] for _ in range(150)]
    assert np.mean(losses[-10:]) < 0.5 * np.mean(losses[:10])


def test_the_train_stage_keeps_validates_and_resumes_the_averaged_weights(tmp_path):
    """With ema_decay on, last.ckpt holds the average, and the curve scores the average."""
    from model import evaluate_stream, load_checkpoint
    from pipeline.config import load_config
    from model import load_model
    from stages.train import run_training
    from stages.vocab import Vocab
    from tests.conftest import write_config
    vocab = Vocab(tuple(sorted("\n abcdeh")))
    cfg = load_config(write_config(tmp_path, {
        "train.steps": 6, "train.checkpoint_every": 3, "train.eval_every": 6, "train.eval_chars": 0,
        "train.ema_decay": 0.9, "model.hidden_size": 8, "model.weight_drop": 0.3,
        "model.locked_dropout_out": 0.2}))
    ids = np.resize(vocab.encode("bead ahead\nhe cab\n"), 3000).astype(np.uint8)
    out = tmp_path / "run"
    run_training(ids, ids[:400], vocab, cfg.model, cfg.train, 8, out, log=lambda m: None)
    arrays, meta = load_checkpoint(out / "checkpoints" / "step-00000006.ckpt")
    net, saved = load_model(out / "last.ckpt")
    assert saved["averaged"] and saved["model"]["weight_drop"] == 0.3
    np.testing.assert_array_equal(net.flat, arrays["avg"].astype(np.float32))
    assert not np.array_equal(net.flat, arrays["params"])
    row = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()][-1]
    lanes = min(32, max(1, 400 // 2000))
    want = evaluate_stream(net, np.asarray(ids[:400], np.int64), lanes=lanes, burn_in=200)
    assert row["val_nats_per_char"] == pytest.approx(want["nats_per_char"], rel=1e-6)

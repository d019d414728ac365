"""Training machinery: optimizers, resume == never stopped, checkpoints, evaluation."""
import numpy as np
import pytest

from model import (CIFGLSTM, CheckpointError, DivergenceError, Trainer, TrainSettings,
                   evaluate_stream, load_checkpoint, save_checkpoint)
from model.evaluate import stream_nll
from model.optim import clip_global_norm, learning_rate, make_optimizer


def stream(n=3000, V=11, seed=0):
    # A learnable stream: a noisy repeating pattern.
    rng = np.random.default_rng(seed)
    base = np.tile(np.arange(V), n // V + 1)[:n]
    noise = rng.random(n) < 0.1
    return np.where(noise, rng.integers(0, V, n), base).astype(np.uint8)


def trainer(optimizer="adamw", dropout=0.3, steps=12, seed=0):
    net = CIFGLSTM(11, 16, 2, 11, seed=seed, dropout=dropout)
    cfg = TrainSettings(batch_size=4, seq_len=9, steps=steps, learning_rate=0.01,
                        optimizer=optimizer, weight_decay=0.01, warmup_steps=3, seed=seed)
    return Trainer(net, stream(), cfg)


@pytest.mark.parametrize("optimizer", ["sgd", "adagrad", "adam", "adamw"])
def test_every_optimizer_learns(optimizer):
    tr = trainer(optimizer, dropout=0.0, steps=300)
    tr.cfg = TrainSettings(**{**tr.cfg.__dict__, "learning_rate": 0.5 if optimizer == "sgd" else 0.02})
    first = np.mean([tr.train_step()["loss"] for _ in range(5)])
    while not tr.done():
        last = tr.train_step()["loss"]
    assert last < first - 0.5, (first, last)


def test_resume_is_bitwise_identical_to_never_stopping(tmp_path):
    straight = trainer()
    for _ in range(12):
        straight.train_step()
    first = trainer()
    for _ in range(5):
        first.train_step()
    arrays, meta = first.state_dict()
    save_checkpoint(tmp_path / "k.ckpt", arrays, meta)
    resumed = trainer()
    resumed.load_state_dict(*load_checkpoint(tmp_path / "k.ckpt"))
    while resumed.step < 12:
        resumed.train_step()
    a1, m1 = straight.state_dict()
    a2, m2 = resumed.state_dict()
    assert a1.keys() == a2.keys()
    for k in a1:
        assert np.array_equal(a1[k], a2[k]), k          # bitwise
    assert (m1["step"], m1["epoch"], m1["pos"], m1["rng"]) == (m2["step"], m2["epoch"], m2["pos"], m2["rng"])


def test_epochs_wrap_and_reset_state():
    tr = trainer(dropout=0.0)
    per_epoch = tr.lanes.windows_per_epoch
    for _ in range(per_epoch):
        tr.train_step()
    assert tr.epoch == 1 and tr.pos == 0
    assert not tr.state[0].any()


def test_damaged_checkpoint_is_refused_and_previous_still_loads(tmp_path):
    tr = trainer()
    tr.train_step()
    save_checkpoint(tmp_path / "a.ckpt", *tr.state_dict())
    tr.train_step()
    save_checkpoint(tmp_path / "b.ckpt", *tr.state_dict())
    blob = bytearray((tmp_path / "b.ckpt").read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    (tmp_path / "b.ckpt").write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="damaged"):
        load_checkpoint(tmp_path / "b.ckpt")
    (tmp_path / "c.ckpt").write_bytes((tmp_path / "a.ckpt").read_bytes()[:100])
    with pytest.raises(CheckpointError, match="truncated|damaged"):
        load_checkpoint(tmp_path / "c.ckpt")
    arrays, meta = load_checkpoint(tmp_path / "a.ckpt")
    assert meta["step"] == 1


def test_divergence_names_the_step():
    tr = trainer(dropout=0.0)
    tr.train_step()
    tr.net.params["Wy"][0, 0] = np.nan
    with pytest.raises(DivergenceError, match="step 2"):
        tr.train_step()


def test_clipping_and_schedule():
    g = np.array([3.0, 4.0], np.float32)
    assert clip_global_norm(g, 1.0) == pytest.approx(5.0)
    assert np.linalg.norm(g) == pytest.approx(1.0, rel=1e-5)
    assert learning_rate(1.0, 1, 0.0, warmup_steps=4) == pytest.approx(0.25)
    assert learning_rate(1.0, 10, 1.0, decay="cosine", min_ratio=0.1) == pytest.approx(0.1)
    assert learning_rate(1.0, 10, 0.5, decay="linear", min_ratio=0.0) == pytest.approx(0.5)


def test_clipping_a_norm_beyond_float32_range():
    """The float32 dot overflows above ~1e19; the norm is then taken in float64 and clipped,
    not reported as infinite (which the trainer would take for divergence)."""
    g = np.full(4, 1e20, np.float32)
    assert clip_global_norm(g, 5.0) == pytest.approx(2e20, rel=1e-6)
    assert np.linalg.norm(g.astype(np.float64)) == pytest.approx(5.0, rel=1e-5)


def test_sgd_momentum_step_by_hand():
    opt = make_optimizer("sgd", 2, np.float64, momentum=0.5)
    p = np.array([1.0, 2.0])
    opt.step(p, np.array([1.0, 1.0]), 0.1)
    opt.step(p, np.array([1.0, 1.0]), 0.1)
    np.testing.assert_allclose(p, [1.0 - 0.1 - 0.15, 2.0 - 0.1 - 0.15])


def test_adamw_decays_matrices_not_biases():
    tr = trainer("adamw", dropout=0.0)
    mask = tr.net.views(tr.opt.decay_mask)
    assert mask["W0"].all() and not mask["b0"].any() and not mask["by"].any()


def test_evaluate_stream_exact_and_lanes():
    net = CIFGLSTM(11, 16, 2, 11, seed=0)
    ids = stream(600, seed=3).astype(np.int64)
    exact = evaluate_stream(net, ids, lanes=1)
    probs, _ = net.posterior(ids[:-1, None])
    manual = -np.log(probs[np.arange(len(ids) - 1), 0, ids[1:]].astype(np.float64)).mean()
    assert exact["chars"] == len(ids) - 1
    assert exact["nats_per_char"] == pytest.approx(manual, rel=1e-6)
    assert exact["bits_per_char"] == pytest.approx(manual / np.log(2), rel=1e-6)
    lanes = evaluate_stream(net, ids, lanes=4, burn_in=100)
    assert lanes["chars"] == exact["chars"]
    assert lanes["nats_per_char"] == pytest.approx(exact["nats_per_char"], rel=1e-3)
    ctx = evaluate_stream(net, ids[300:], context=ids[:300])
    assert ctx["chars"] == 300
    windowed = evaluate_stream(net, ids, window=50)
    assert windowed["chars"] == (len(ids) - 1) // 50 * 50
    grouped = evaluate_stream(net, ids, window=50, max_batch=3)   # 11 windows in 4 groups
    assert grouped["nats_per_char"] == pytest.approx(windowed["nats_per_char"], rel=1e-9)


def _manual_nll(net, ids):
    """-log p(ids[i] | ids[:i]) for i >= 1, one stream from a zero state."""
    probs, _ = net.posterior(ids[:-1, None])
    return -np.log(probs[np.arange(len(ids) - 1), 0, ids[1:]].astype(np.float64))


def test_stream_nll_puts_each_loss_at_its_characters_position():
    # Lanes whose burn-in reaches back to the stream's start read exactly what one stream reads,
    # so every per-character loss must equal the single stream's at the same position.
    net = CIFGLSTM(11, 16, 2, 11, seed=0, dtype=np.float64)
    ids = stream(600, seed=3).astype(np.int64)
    manual = _manual_nll(net, ids)
    nll = stream_nll(net, ids, lanes=4, burn_in=len(ids))
    assert np.isnan(nll[0]) and not np.isnan(nll[1:]).any()
    np.testing.assert_allclose(nll[1:], manual, rtol=1e-9)
    ctx = stream_nll(net, ids[300:], context=ids[:300], lanes=3, burn_in=len(ids))
    np.testing.assert_allclose(ctx, manual[299:], rtol=1e-9)
    assert ctx.sum() == pytest.approx(evaluate_stream(net, ids[300:], context=ids[:300], lanes=3,
                                                      burn_in=len(ids))["nats_per_char"] * 300)
    # Windows restart from a zero state: the second window is its own short stream.
    win = stream_nll(net, ids, window=50, max_batch=3)
    np.testing.assert_allclose(win[51:101], _manual_nll(net, ids[50:101]), rtol=1e-9)
    assert np.isnan(win[(len(ids) - 1) // 50 * 50 + 1:]).all()   # the tail no window scores


def test_float32_and_float64_agree():
    a = CIFGLSTM(11, 16, 2, 11, seed=0, dtype=np.float64)
    b = CIFGLSTM(11, 16, 2, 11, seed=0, dtype=np.float32)
    x = stream(40).astype(np.int64).reshape(20, 2)
    pa, _ = a.posterior(x)
    pb, _ = b.posterior(x)
    assert pb.dtype == np.float32
    np.testing.assert_allclose(pa, pb, atol=1e-5)
    one, _ = a.posterior(np.eye(11)[3])
    assert one.shape == (11,) and one.sum() == pytest.approx(1.0)

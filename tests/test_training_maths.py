"""The training-time maths around the cell: the windows each lane reads, the optimizers
against hand computation, and a wall-clock budget that stops the run and drives its schedule."""
import math
from types import SimpleNamespace

import numpy as np
import pytest

import model.training
from model import CIFGLSTM, Trainer, TrainSettings
from model.optim import make_optimizer
from model.training import Lanes


# ---- training windows --------------------------------------------------------------------

def test_each_lane_reads_on_where_it_stopped_and_targets_are_the_next_character():
    n = 1009
    stream = np.arange(n)                         # every value names its own position
    lanes = Lanes(stream, batch=4, seq_len=7, seed=3)
    firsts = []
    for epoch in (0, 1, 2):
        xs, ys = zip(*(lanes.window(epoch, pos) for pos in range(lanes.windows_per_epoch)))
        x, y = np.concatenate(xs), np.concatenate(ys)   # (windows * T, B): each lane in order
        assert x.shape == (lanes.windows_per_epoch * 7, 4)
        assert ((x[1:] - x[:-1]) % n == 1).all()         # no gap, no overlap between windows
        assert ((y - x) % n == 1).all()                  # the target is the very next character
        assert ((x[0, 1:] - x[0, :-1]) % n == lanes.lane_len).all()   # disjoint contiguous lanes
        firsts.append(int(x[0, 0]))
    assert len(set(firsts)) == 3                         # each epoch starts somewhere new


def test_trainer_feeds_consecutive_windows_across_an_epoch_boundary():
    n = 400
    stream = np.arange(n) % 11                           # what the network reads (V = 11)
    net = CIFGLSTM(11, 8, 1, 11, seed=0)
    tr = Trainer(net, stream, TrainSettings(batch_size=3, seq_len=10, steps=100, seed=1))
    positions = Lanes(np.arange(n), 3, 10, seed=1)       # the same lanes, over positions
    fed, window = [], tr.lanes.window

    def spy(epoch, pos):
        fed.append((epoch, pos))
        return window(epoch, pos)
    tr.lanes.window = spy
    per_epoch = tr.lanes.windows_per_epoch
    for _ in range(per_epoch + 3):
        tr.train_step()
    assert fed == [(0, p) for p in range(per_epoch)] + [(1, p) for p in range(3)]
    for (e, p), (e2, p2) in zip(fed, fed[1:]):
        x, y = positions.window(e, p)
        x2, _ = positions.window(e2, p2)
        assert np.array_equal(y[-1], x2[0]) == (e == e2)   # continues within an epoch only
    assert tr.epoch == 1 and tr.pos == 3


# ---- optimizers by hand --------------------------------------------------------------------
# Two steps with different gradients and rates. The third entry's gradient is far below eps,
# so where epsilon goes shows; the last entry starts with a zero gradient.

P0 = np.array([1.0, -0.5, 2.0, 0.3])
GRADS = (np.array([0.5, -2.0, 1e-9, 0.0]), np.array([-1.0, 0.5, 3e-9, 1e-3]))
RATES = (0.1, 0.05)


def run(opt):
    p, out = P0.copy(), []
    for g, lr in zip(GRADS, RATES):
        opt.step(p, g.copy(), lr)
        out.append(p.copy())
    return out


def adam_by_hand(wd=0.0, mask=1.0, b1=0.9, b2=0.999, eps=1e-8):
    p, m, v, out = P0.copy(), 0.0, 0.0, []
    for t, (g, lr) in enumerate(zip(GRADS, RATES), start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        p = p * (1 - lr * wd * mask) - lr * m_hat / (np.sqrt(v_hat) + eps)
        out.append(p)
    return out


def test_adam_two_steps_by_hand_and_plain_adam_ignores_weight_decay():
    got = run(make_optimizer("adam", 4, np.float64, weight_decay=0.5))
    for a, b in zip(got, adam_by_hand()):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)


def test_adamw_two_steps_by_hand_decays_only_where_the_mask_says():
    mask = np.array([1.0, 1.0, 0.0, 1.0])
    got = run(make_optimizer("adamw", 4, np.float64, weight_decay=0.5, decay_mask=mask))
    for a, b in zip(got, adam_by_hand(wd=0.5, mask=mask)):
        np.testing.assert_allclose(a, b, rtol=1e-13, atol=1e-15)
    assert not np.allclose(got[-1], adam_by_hand()[-1])   # the decay is really applied


def test_adagrad_two_steps_by_hand():
    p, s, eps = P0.copy(), 0.0, 1e-8
    got = run(make_optimizer("adagrad", 4, np.float64))
    for (g, lr), a in zip(zip(GRADS, RATES), got):
        s = s + g * g
        p = p - lr * g / (np.sqrt(s) + eps)
        np.testing.assert_allclose(a, p, rtol=1e-13, atol=1e-15)


def test_trainer_gives_weight_decay_to_adamw_only():
    net = CIFGLSTM(11, 8, 1, 11, seed=0)
    stream = np.arange(500) % 11
    decay = {name: Trainer(net, stream, TrainSettings(batch_size=2, seq_len=5, optimizer=name,
                                                      weight_decay=0.3)).opt.weight_decay
             for name in ("adam", "adamw")}
    assert decay == {"adam": 0.0, "adamw": 0.3}


# ---- time budget ---------------------------------------------------------------------------

def test_time_budget_stops_the_run_and_drives_the_schedule(monkeypatch):
    # A fake clock: every reading is one second after the previous one, and a step reads it
    # at its start and its end, so each step costs 1 s of training time, whatever the machine.
    clock = {"t": 0.0}

    def perf_counter():
        clock["t"] += 1.0
        return clock["t"]
    monkeypatch.setattr(model.training, "time", SimpleNamespace(perf_counter=perf_counter))
    net = CIFGLSTM(11, 8, 1, 11, seed=0)
    cfg = TrainSettings(batch_size=2, seq_len=5, steps=3, time_budget_s=10.0, learning_rate=1.0,
                        warmup_steps=2, decay="cosine", min_lr_ratio=0.1)
    tr = Trainer(net, np.arange(500) % 11, cfg)
    rates = []
    while not tr.done():
        rates.append(tr.train_step()["lr"])
    assert tr.step == 10 and tr.seconds == pytest.approx(10.0)   # the budget, not steps=3
    # Step k runs at the rate of progress (k - 1) / 10 of the budget (seconds before it ends).
    expected = [min(1.0, k / 2) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (k - 1) / 10)))
                for k in range(1, 11)]
    np.testing.assert_allclose(rates, expected, rtol=1e-12)

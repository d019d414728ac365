"""Held-out loss on a small trained model whose predictions depend on several characters of
context: lanes with burn-in against the exact single stream, and `context=` against the
exact stream's own scores. (On an untrained net, state hardly matters and both would pass
even with the burn-in or the context ignored.)"""
import numpy as np
import pytest

from model import CIFGLSTM, Trainer, TrainSettings, evaluate_stream

# The next character follows from the last three or so, not from the last one alone.
PATTERN = np.array([0, 0, 1, 0, 2, 1, 1, 3, 0, 2, 2, 3, 1, 2, 0, 3])


def stream(n, seed):
    rng = np.random.default_rng(seed)
    ids = np.tile(PATTERN, n // len(PATTERN) + 1)[:n]
    return np.where(rng.random(n) < 0.03, rng.integers(0, 4, n), ids)


@pytest.fixture(scope="module")
def trained():
    net = CIFGLSTM(4, 24, 1, 4, seed=0, dtype=np.float64)
    tr = Trainer(net, stream(6000, 0), TrainSettings(batch_size=8, seq_len=32, steps=300,
                                                     learning_rate=0.02, warmup_steps=10))
    while not tr.done():
        tr.train_step()
    return net


def total(result):
    return result["nats_per_char"] * result["chars"]


def test_lanes_with_burn_in_equal_the_exact_stream(trained):
    ids = stream(800, 1)
    exact = evaluate_stream(trained, ids, lanes=1)
    assert exact["nats_per_char"] < 0.3 * np.log(4)           # it learned the pattern
    lanes = evaluate_stream(trained, ids, lanes=4, burn_in=100)
    cold = evaluate_stream(trained, ids, lanes=4, burn_in=0)
    assert lanes["chars"] == cold["chars"] == exact["chars"] == 799
    assert lanes["nats_per_char"] == pytest.approx(exact["nats_per_char"], rel=1e-6)
    # Context matters here: lanes starting cold score clearly worse than the exact stream.
    assert cold["nats_per_char"] > exact["nats_per_char"] + 0.003


def test_context_continues_the_exact_stream(trained):
    ids = stream(800, 2)
    exact, prefix = evaluate_stream(trained, ids), evaluate_stream(trained, ids[:300])
    ctx = evaluate_stream(trained, ids[300:], context=ids[:300])
    assert ctx["chars"] == 500
    # Each character after the context scores exactly as within the whole stream.
    assert total(ctx) == pytest.approx(total(exact) - total(prefix), rel=1e-9)
    without = evaluate_stream(trained, ids[300:])
    assert total(without) > total(ctx) + 1.0                  # and the context was used

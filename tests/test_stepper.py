"""The one-character stepper used for generation is the network's forward, bit for bit."""
import numpy as np
import pytest

from model import CIFGLSTM, generate
from model.sampling import STRATEGIES, filtered_probs
from model.stepper import Stepper


@pytest.mark.parametrize("cell", ["cifg", "lstm"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_stepper_equals_forward_bitwise(cell, dtype):
    net = CIFGLSTM(30, 24, 3, 30, seed=1, cell=cell, dtype=dtype, char_inputs=True)
    rng = np.random.default_rng(0)
    start = tuple(rng.normal(0, 0.5, (3, 5, 24)).astype(dtype) for _ in range(2))
    stepper, state = Stepper(net, 5, start), start
    for _ in range(15):
        ids = rng.integers(0, 30, 5)
        logits, state, _ = net.forward(ids[None, :], state)
        np.testing.assert_array_equal(stepper.step(ids), logits)
        np.testing.assert_array_equal(stepper.state[0], state[0])
        np.testing.assert_array_equal(stepper.state[1], state[1])


def slow_generate(net, prime, length, num, temperature, top_k, top_p, strategy, seed):
    """Generation through the ordinary forward, one (1, num) window per character."""
    rng = np.random.default_rng(seed)
    state = net.zero_state(num)
    if len(prime) > 1:
        _, state, _ = net.forward(np.repeat(np.asarray(prime[:-1])[:, None], num, axis=1), state)
    cur = np.full((1, num), prime[-1])
    out = np.empty((num, length), np.int64)
    for t in range(length):
        logits, state, _ = net.forward(cur, state)
        p = filtered_probs(logits, 1.0 if strategy == "greedy" else temperature, top_k, top_p)
        cur[0] = out[:, t] = STRATEGIES[strategy](p, rng)
    return out


@pytest.mark.parametrize("strategy", sorted(STRATEGIES))
def test_generate_gives_the_text_the_forward_gives(strategy):
    net = CIFGLSTM(40, 32, 2, 40, seed=4, char_inputs=True)
    args = dict(length=120, num=3, temperature=0.9, top_k=12, top_p=0.95, strategy=strategy, seed=7)
    np.testing.assert_array_equal(generate(net, [1, 2, 3], **args), slow_generate(net, [1, 2, 3], **args))

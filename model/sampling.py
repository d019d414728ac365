"""Text generation: many streams at once, each step one batched forward of a single character.

Strategies (looked up by name, so the pipeline can offer and compare them):
    sample       draw from softmax(logits / temperature), optionally cut to top-k / nucleus top-p
    greedy       argmax, deterministic
    redraw_once  the earlier solution's rule: draw; if the draw is not the argmax, draw once more
                 and keep the second draw (it biases sampling towards the mode)

`primed`, `effective_temperature` and `draw_rows` are the seam `stream`, model/beam.py and the
server's batched scheduler share, so they draw the same text for the same seed by construction.
"""
import numpy as np

from .softmax import softmax
from .stepper import Stepper


def check_sampling_args(length, num, temperature, top_k, top_p, strategy):
    """Raise ValueError naming the first bad argument."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown sampling strategy {strategy!r}; choose one of {sorted(STRATEGIES)}")
    if int(length) != length or length < 0:
        raise ValueError(f"length must be a non-negative integer, got {length!r}")
    if int(num) != num or num < 1:
        raise ValueError(f"num must be a positive integer, got {num!r}")
    if strategy != "greedy" and not temperature > 0:
        raise ValueError(f"temperature must be > 0 (use strategy 'greedy' for argmax), got {temperature!r}")
    if int(top_k) != top_k or top_k < 0:
        raise ValueError(f"top_k must be a non-negative integer (0 = off), got {top_k!r}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top_p must be in (0, 1] (1 = off), got {top_p!r}")


def filtered_probs(logits, temperature=1.0, top_k=0, top_p=1.0):
    """Posteriors at `temperature`, with everything outside the top-k and the nucleus zeroed."""
    p = softmax(np.asarray(logits, np.float64) / temperature)
    K = p.shape[-1]
    if top_k and top_k < K:
        kth = np.partition(p, K - top_k, axis=-1)[:, K - top_k][:, None]
        p[p < kth] = 0.0
    if top_p < 1.0:
        order = np.argsort(-p, axis=-1)
        sorted_p = np.take_along_axis(p, order, axis=-1)
        before = np.cumsum(sorted_p, axis=-1) - sorted_p      # mass strictly before each entry
        drop = np.zeros_like(p, dtype=bool)
        np.put_along_axis(drop, order, before >= top_p, axis=-1)
        p[drop] = 0.0
    p /= p.sum(axis=-1, keepdims=True)
    return p


def draw(p, rng):
    """One index per row of the (N, K) distribution p, never an index with p == 0."""
    cdf = np.cumsum(p, axis=-1)
    u = rng.random(p.shape[0]) * cdf[:, -1]
    idx = (cdf <= u[:, None]).sum(axis=-1)
    last_nonzero = p.shape[1] - 1 - np.argmax(p[:, ::-1] > 0, axis=-1)
    return np.minimum(idx, last_nonzero)


def _choose_sample(p, rng):
    return draw(p, rng)


def _choose_greedy(p, rng):
    return np.argmax(p, axis=-1)


def _choose_redraw_once(p, rng):
    first = draw(p, rng)
    second = draw(p, rng)
    return np.where(first == np.argmax(p, axis=-1), first, second)


STRATEGIES = {"sample": _choose_sample, "greedy": _choose_greedy, "redraw_once": _choose_redraw_once}
for _rule in STRATEGIES.values():   # they use their generator only as rng.random(len(p)) calls
    _rule.row_uniforms = True


def effective_temperature(strategy, temperature):
    """The temperature `strategy` draws at: greedy is the argmax of the model's own posteriors."""
    return 1.0 if strategy == "greedy" else temperature


def primed(net, prime_ids, rows):
    """(state, ids): the state of `rows` streams after all but the prime's last id, and the
    (rows,) ids to feed next. The prime is run whole, in one forward pass."""
    prime = np.asarray(prime_ids, dtype=np.int64).reshape(-1)
    if prime.size == 0:
        raise ValueError("prime_ids must hold at least one character to condition on")
    if prime.min() < 0 or prime.max() >= net.D:
        raise ValueError(f"prime ids must be in [0, {net.D}), got [{prime.min()}, {prime.max()}]")
    state = net.zero_state(rows)
    if prime.size > 1:
        _, state, _ = net.forward(np.repeat(prime[:-1, None], rows, axis=1), state)
    return state, np.full(rows, prime[-1], dtype=np.int64)


class _Concatenated:
    """Several generators seen as one by a row-uniforms rule: `random(n)` takes each one's rows."""

    def __init__(self, rngs, counts):
        self.rngs, self.counts = rngs, counts

    def random(self, n):
        assert n == sum(self.counts)
        return np.concatenate([rng.random(k) for rng, k in zip(self.rngs, self.counts)])


def draw_rows(strategy, p, rngs, counts):
    """The next id of every row of p by `strategy`, the rows in blocks of `counts[i]` rows drawn
    with `rngs[i]`: each block gets exactly the ids it would get drawn alone."""
    rule = STRATEGIES[strategy]
    if len(rngs) == 1 or getattr(rule, "row_uniforms", False):
        return rule(p, rngs[0] if len(rngs) == 1 else _Concatenated(rngs, counts))
    blocks = np.split(p, np.cumsum(counts)[:-1])   # a plug-in may use its generator any way
    return np.concatenate([rule(block, rng) for block, rng in zip(blocks, rngs)])


def generate(net, prime_ids, length, num=1, temperature=1.0, top_k=0, top_p=1.0,
             strategy="sample", seed=0):
    """Generate `num` continuations of `length` ids after the priming ids (same prime for all).

    Returns an int array (num, length). The same seed gives the same text.
    """
    check_sampling_args(length, num, temperature, top_k, top_p, strategy)
    out = np.empty((num, length), dtype=np.int64)
    for t, ids in enumerate(stream(net, prime_ids, length, num, temperature, top_k, top_p,
                                   strategy, seed)):
        out[:, t] = ids
    return out


def stream(net, prime_ids, length, num=1, temperature=1.0, top_k=0, top_p=1.0,
           strategy="sample", seed=0):
    """`generate` one step at a time: yields the (num,) ids of each new character as drawn.

    The same arguments give exactly `generate`'s ids (it is this loop), so a caller can show
    text as it appears and still get the seeded output.
    """
    check_sampling_args(length, num, temperature, top_k, top_p, strategy)
    state, cur = primed(net, prime_ids, num)
    rng = np.random.default_rng(seed)
    stepper = Stepper(net, num, state)     # bitwise the forward's arithmetic, buffers reused
    for _ in range(length):
        p = filtered_probs(stepper.step(cur), effective_temperature(strategy, temperature), top_k, top_p)
        cur[:] = draw_rows(strategy, p, [rng], [num])
        yield cur.copy()

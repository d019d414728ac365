"""Dynamic evaluation (Krause et al. 2018): the model keeps adapting to the text it has scored.

One stream, in document order (Krause's protocol), the recurrent state carried throughout. The
text is read `segment` characters at a time; for each segment:
  1. forward pass with the current weights; every scored character's -log p is recorded;
  2. backward pass of that same forward (its cache), for the mean loss over the segment;
  3. one step of Krause's rule on the weights:
        theta <- theta - eta * g / (r + eps) + lam * d * (theta_0 - theta)
     r: root mean square of the gradient on training text, same segment shape (`gradient_rms`);
     d = r / mean(r), clipped so that lam * d <= 1 (weights with large gradients are pulled back
     to the trained theta_0 faster, and never past it).
So every character is scored by weights that have learnt only from text before it in the
document: the scores are a probability model of the text, read in order, and a character's
score never changes when text after it changes. With eta = 0 the weights never move and the
losses are those of the trained model reading the same stream.

The guard. A step size that suits one text can diverge on another. Beside the adapting network,
the trained one reads the same stream (its own state); when over the last GUARD_CHARS scored
characters the adapted weights lost more than GUARD_MARGIN nats per character (in total) to the
trained ones, the weights and the state go back to the trained model's and the step size halves. The check reads only
characters already scored, so it never looks ahead either.

Why one stream and not lanes: lanes sharing one set of adapted weights let a character be
scored by weights that learnt from text further on; lanes each adapting their own copy learn
from 1/lanes of the text each. One stream learns from everything before each character, and
measured (benchmarks/README.md, "Dynamic evaluation") it gave the lower figure.
"""
from collections import deque
from dataclasses import dataclass

import numpy as np

from .evaluate import target_nll
from .network import CIFGLSTM
from .softmax import softmax_cross_entropy, softmax_cross_entropy_backward

# eps of the RMS normalisation, as a fraction of mean(r): scale-free, and it keeps the step of
# a weight whose gradient was ~0 on the training sample (a rare character's row) bounded.
EPS_RATIO = 0.01
GUARD_CHARS = 5000    # the guard's window of scored characters
GUARD_MARGIN = 0.02   # nats per character of that window the adapted weights may lose


@dataclass(frozen=True)
class DynamicSettings:
    rate: float            # eta: step size in units of a typical training gradient
    decay: float           # lambda: pull back toward the trained weights per step
    segment: int = 50      # characters between two updates


def segment_loss_grad(net, x, y, w, state):
    """Forward + backward of one segment: (per-target nll (T, B), flat gradient or None, state).

    The gradient is that of the mean loss over the targets where `w` is True (None when there
    are none): the network's own forward/backward, with the rows of unscored targets zeroed.
    """
    logits, state, cache = net.forward(x, state, for_backward=True)
    nll = target_nll(logits, y)
    scored = int(w.sum())
    if scored == 0:
        return nll, None, state
    _, ce_cache = softmax_cross_entropy(logits, y.reshape(-1))
    dlogits = softmax_cross_entropy_backward(ce_cache)            # (p - onehot) / (T*B)
    dlogits *= (w.reshape(-1, 1) * (w.size / scored)).astype(dlogits.dtype)
    return nll, net.backward(dlogits, cache), state


def gradient_rms(net, ids, segment, lanes, batches):
    """r: root mean square over `batches` segments of `ids` (training text) of the gradient.

    The segments have the shape the dynamic steps will have (`segment` x `lanes`), read as lanes
    with the state carried, so r is the scale of one dynamic step's gradient.
    """
    ids = np.asarray(ids, np.int64)
    span = segment * batches
    if len(ids) < lanes * span + 1:
        batches = max(1, (len(ids) - 1) // (lanes * segment))
        span = segment * batches
    starts = len(ids) - 1 - lanes * span + np.arange(lanes) * span
    total, state = np.zeros(net.flat.shape, np.float64), net.zero_state(lanes)
    for k in range(batches):
        rows = starts[None, :] + k * segment + np.arange(segment)[:, None]   # (segment, lanes)
        _, g, state = segment_loss_grad(net, ids[rows], ids[rows + 1], np.ones(rows.shape, bool), state)
        total += np.square(g, dtype=np.float64)
    return np.sqrt(total / batches).astype(net.dtype)


class KrauseStep:
    """The update rule, with everything that does not change between steps computed once.

    Holds the trained weights theta_0; `restore` puts them back into the network.
    """

    def __init__(self, net, rms, settings):
        self.theta0 = net.flat.copy()
        self.settings = settings
        eps = EPS_RATIO * float(rms.mean())
        self.scale = (settings.rate / (rms.astype(np.float64) + eps)).astype(net.dtype)
        d = rms.astype(np.float64) / max(float(rms.mean()), 1e-30)
        self.pull = np.minimum(settings.decay * d, 1.0).astype(net.dtype)
        self.learns = settings.rate > 0   # eta = 0: the weights stay the trained ones, exactly
        self._tmp = np.empty_like(net.flat)

    def __call__(self, net, grad):
        np.multiply(grad, self.scale, out=self._tmp)
        net.flat -= self._tmp
        np.subtract(self.theta0, net.flat, out=self._tmp)
        self._tmp *= self.pull
        net.flat += self._tmp

    def restore(self, net):
        net.flat[...] = self.theta0


class Guard:
    """Excess nats of the adapted weights over the trained ones, over the last `chars` scored."""

    def __init__(self, chars=GUARD_CHARS, margin=GUARD_MARGIN):
        self.chars, self.budget = chars, margin * chars
        self.window, self.excess, self.count, self.trips = deque(), 0.0, 0, 0

    def tripped(self, excess, count):
        self.window.append((excess, count))
        self.excess += excess
        self.count += count
        while self.count - self.window[0][1] >= self.chars:   # keep the newest `chars` only
            e, c = self.window.popleft()
            self.excess -= e
            self.count -= c
        if self.excess <= self.budget:
            return False
        self.window.clear()
        self.excess, self.count, self.trips = 0.0, 0, self.trips + 1
        return True


def frozen_copy(net):
    """A second network with the same architecture and (a copy of) the same weights."""
    twin = CIFGLSTM(**net.config())
    twin.flat[...] = net.flat
    return twin


class DynamicStream:
    """One stream under dynamic evaluation; weights, states and the guard carry from call to call.

    `read(ids)` reads text without scoring or learning (context); `score(ids)` scores it. Calls
    in a row give the scores of one call on the joined ids as long as each `score` call but the
    last is a whole number of segments. `close()` puts the trained weights back.
    """

    def __init__(self, net, rms, settings, guard=True):
        self.net, self.step = net, KrauseStep(net, rms, settings)
        self.segment = settings.segment
        self.ref = frozen_copy(net) if guard and self.step.learns else None
        self.guard = Guard()
        self.state = self.ref_state = self.last = None

    def read(self, ids):
        ids = np.asarray(ids, np.int64)
        if len(ids) == 0:
            return
        x = np.concatenate([[] if self.last is None else [self.last], ids[:-1]]).astype(np.int64)[:, None]
        for t0 in range(0, len(x), 4096):   # bounded caches; the trained weights read the context
            _, self.state, _ = self.net.forward(x[t0:t0 + 4096], self.state)
        self.ref_state, self.last = self.state, int(ids[-1])

    def score(self, ids):
        """-log p of each of `ids` (NaN for the stream's very first character: no predecessor)."""
        ids = np.asarray(ids, np.int64)
        out = np.full(len(ids), np.nan)
        first = 1 if self.last is None else 0
        if len(ids) <= first:
            self.read(ids)
            return out
        x = np.concatenate([ids[:1] if first else [self.last], ids[:-1]])[first:, None]
        y = ids[first:, None]
        for t0 in range(0, len(x), self.segment):
            out[first + t0:first + t0 + self.segment] = self._segment(x[t0:t0 + self.segment],
                                                                      y[t0:t0 + self.segment])
        self.last = int(ids[-1])
        return out

    def _segment(self, xs, ys):
        net, step = self.net, self.step
        if step.learns:
            nll, grad, self.state = segment_loss_grad(net, xs, ys, np.ones(xs.shape, bool), self.state)
        else:
            logits, self.state, _ = net.forward(xs, self.state)
            nll, grad = target_nll(logits, ys), None
        if self.ref is not None:
            logits, self.ref_state, _ = self.ref.forward(xs, self.ref_state)
            if self.guard.tripped(float((nll - target_nll(logits, ys)).sum()), nll.size):
                step.restore(net)            # diverging: back to the trained model, its state ...
                self.state = self.ref_state
                step.scale *= 0.5            # ... and half the step size from here on
                grad = None
        if grad is not None:
            step(net, grad)                  # scored first, then learnt from
        return nll[:, 0]

    def close(self):
        self.step.restore(self.net)


def dynamic_nll(net, ids, settings, rms, context=None, burn_in=1000, guard=True):
    """(per-character -log p of `ids` under dynamic evaluation, guard trips); NaN where not
    scored. The stream first reads the last `burn_in` ids of `context` with the trained weights.
    The network's weights are the trained ones again on return."""
    stream = DynamicStream(net, rms, settings, guard)
    try:
        if context is not None and burn_in:
            stream.read(np.asarray(context, np.int64)[-burn_in:])
        return stream.score(ids), stream.guard.trips
    finally:
        stream.close()

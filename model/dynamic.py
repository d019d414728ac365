"""Dynamic evaluation (Krause et al. 2018): the model keeps adapting to the text it has scored.

The scored stream is laid out in lanes exactly as the static held-out pass lays it out
(`model.evaluate.lane_layout`: each lane a contiguous stretch after `burn_in` unscored
characters) and walked `segment` time steps at a time. For each segment, over every lane of
the group at once:
  1. forward pass with the current weights; every scored character's -log p is recorded;
  2. backward pass of that same forward (its cache), for the mean loss over the segment's scored
     characters (burn-in characters give neither a score nor a gradient);
  3. one step of Krause's rule on the weights the lanes share:
        theta <- theta - eta * g / (r + eps) + lam * d * (theta_0 - theta)
     r: root mean square of the gradient on training text, same segment shape (`gradient_rms`);
     d = r / mean(r), clipped so that lam * d <= 1 (weights with large gradients are pulled back
     to the trained theta_0 faster, and never past it).
A segment is scored before the step that learns from it, so no character helps its own score;
with eta = 0 the weights never move and the losses are the static pass's.
"""
from dataclasses import dataclass

import numpy as np

from .evaluate import lane_layout, target_nll
from .softmax import softmax_cross_entropy, softmax_cross_entropy_backward

# eps of the RMS normalisation, as a fraction of mean(r): scale-free, and it keeps the step of
# a weight whose gradient was ~0 on the training sample (a rare character's row) bounded.
EPS_RATIO = 0.01


@dataclass(frozen=True)
class DynamicSettings:
    rate: float            # eta: step size in units of a typical training gradient
    decay: float           # lambda: pull back toward the trained weights per step
    segment: int = 50      # characters per lane between two updates


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


def layout(ids, context=None, lanes=1, burn_in=1000):
    """(x, y, w, pos, offset): the static pass's lanes for `ids` after `context` (all (T, B));
    pos - offset indexes `ids`."""
    ids = np.asarray(ids, np.int64)
    ctx = np.zeros(0, np.int64) if context is None else np.asarray(context, np.int64)
    return (*lane_layout(np.concatenate([ctx, ids]), len(ctx), lanes, burn_in), len(ctx))


def run_rows(net, lay, step, r0, r1, state=None, out=None):
    """Dynamic evaluation of rows [r0, r1) of a `layout`, `step.settings.segment` rows at a time.

    Scores go into `out` (indexed like the scored ids; allocated with NaN if None); returns
    (out, final state). The weights are left as adapted: the caller restores or carries them.
    """
    x, y, w, pos, offset = lay
    if out is None:
        out = np.full(int(w.sum() and pos[w].max() - offset + 1), np.nan)
    state = net.zero_state(x.shape[1]) if state is None else state
    for t0 in range(r0, r1, step.settings.segment):
        t1 = min(t0 + step.settings.segment, r1)
        keep = w[t0:t1]
        if step.learns:
            nll, grad, state = segment_loss_grad(net, x[t0:t1], y[t0:t1], keep, state)
        else:
            logits, state, _ = net.forward(x[t0:t1], state)
            nll, grad = target_nll(logits, y[t0:t1]), None
        out[pos[t0:t1][keep] - offset] = nll[keep]    # scored first ...
        if grad is not None:
            step(net, grad)                           # ... then learnt from
    return out, state


def dynamic_nll(net, ids, settings, rms, context=None, lanes=1, burn_in=1000):
    """Per-character -log p of `ids` under dynamic evaluation in one pass (NaN where not scored).

    The layout is `stream_nll`'s for the same context, lanes and burn-in; every lane's segment
    is scored, then one step on all of them updates the weights the lanes share. The network's
    weights are the trained ones again on return.
    """
    lay = layout(ids, context, lanes, burn_in)
    step = KrauseStep(net, rms, settings)
    try:
        out, _ = run_rows(net, lay, step, 0, lay[0].shape[0], out=np.full(len(ids), np.nan))
    finally:
        step.restore(net)
    return out

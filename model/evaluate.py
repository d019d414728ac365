"""Held-out loss over a whole token stream, with the recurrent state carried through.

Every character of `ids` is scored given everything before it (and an optional `context`, e.g.
the end of the training text). With lanes=1 that is one stream, exactly. Because one stream runs
one character per matrix-vector step, `lanes` > 1 cuts the scored stream into contiguous
segments run side by side as a batch; each lane first reads the `burn_in` characters preceding
its segment (unscored), so its state has already forgotten that it started from zero.
`window` instead scores independent windows that each start from a zero state (the protocol
of fixed-context models such as a transformer with a 256-character block).
"""
import math

import numpy as np


def lane_layout(full, first, lanes, burn_in):
    """Inputs, targets, weights and target positions in `full`, all (T, B), for `lanes`
    segments of full[first:]."""
    bounds = np.linspace(first, len(full), lanes + 1).round().astype(int)
    spans = [(max(0, s - 1 - burn_in), s, e) for s, e in zip(bounds[:-1], bounds[1:]) if e > s]
    T = max(e - max(start, 0) for start, s, e in spans)
    x = np.zeros((T, len(spans)), np.int64)
    y = np.zeros_like(x)
    w = np.zeros(x.shape, bool)
    pos = np.zeros_like(x)
    for b, (start, s, e) in enumerate(spans):
        if start == 0 and s == 0:
            s = 1  # the very first character has no predecessor to predict it from
        n = e - start - 1
        x[:n, b], y[:n, b] = full[start:e - 1], full[start + 1:e]
        pos[:n, b] = np.arange(start + 1, e)
        w[s - start - 1:n, b] = True
    return x, y, w, pos


def _windows(full, first, window):
    offset = first - 1 if first else 0
    scored = full[offset:]
    n = (len(scored) - 1) // window * window
    if n <= 0:
        raise ValueError(f"the stream is shorter than one window of {window}")
    x = scored[:n].reshape(-1, window).T
    y = scored[1:n + 1].reshape(-1, window).T
    pos = (offset + 1 + np.arange(n)).reshape(-1, window).T
    return x, y, np.ones(x.shape, bool), pos


def evaluate_stream(net, ids, context=None, lanes=1, burn_in=1000, window=None, chunk=256,
                    max_batch=256):
    """Loss of `net` on `ids`: dict with nats_per_char, bits_per_char, perplexity, chars."""
    nll = stream_nll(net, ids, context, lanes, burn_in, window, chunk, max_batch)
    scored = ~np.isnan(nll)
    return summarize(float(nll[scored].sum()), int(scored.sum()))


def stream_nll(net, ids, context=None, lanes=1, burn_in=1000, window=None, chunk=256,
               max_batch=256):
    """Per-character -log p (nats) of `ids` under the protocol of `evaluate_stream`.

    Entry i is the loss of ids[i]; characters the protocol does not score (the first one
    without context, the tail after the last whole window) are NaN. Aligned with the
    n-gram's `stream_nll`, so the two can be compared block by block.
    """
    ids = np.asarray(ids, np.int64)
    ctx = np.zeros(0, np.int64) if context is None else np.asarray(context, np.int64)
    full = np.concatenate([ctx, ids])
    x, y, w, pos = (_windows(full, len(ctx), window) if window
                    else lane_layout(full, len(ctx), lanes, burn_in))
    out = np.full(len(ids), np.nan)
    for b0 in range(0, x.shape[1], max_batch):   # bounded memory for many windows
        cols = slice(b0, b0 + max_batch)
        nll = _score(net, x[:, cols], y[:, cols], chunk)
        keep = w[:, cols]
        out[pos[:, cols][keep] - len(ctx)] = nll[keep]
    return out


def _score(net, x, y, chunk):
    """-log p of every target (T, B), running the lanes with carried state."""
    state, out = net.zero_state(x.shape[1]), np.empty(x.shape)
    for t0 in range(0, x.shape[0], chunk):
        xs, ys = x[t0:t0 + chunk], y[t0:t0 + chunk]
        logits, state, _ = net.forward(xs, state)
        out[t0:t0 + chunk] = target_nll(logits, ys)
    return out


def target_nll(logits, ys):
    """-log p of each target (T, B) from the (T*B, K) logits, in float64.

    Shared by every scorer (static, dynamic, `score`), so that equal logits give equal losses.
    """
    logits = logits.astype(np.float64)
    logits -= logits.max(axis=1, keepdims=True)
    logp = logits[np.arange(ys.size), ys.reshape(-1)] - np.log(np.exp(logits).sum(axis=1))
    return -logp.reshape(ys.shape)


def summarize(total_nats, count):
    """Per-character loss in the three usual units."""
    nats = total_nats / max(count, 1)
    return {"nats_per_char": nats, "bits_per_char": nats / math.log(2),
            "perplexity": math.exp(nats) if nats < 700 else math.inf, "chars": count}

"""Stateless pieces around the recurrent layers: softmax cross-entropy and dropout."""
import numpy as np


def softmax(logits):
    """Row-wise softmax of (N, K) logits, stable for any magnitude."""
    z = logits - logits.max(axis=-1, keepdims=True)
    np.exp(z, out=z)
    z /= z.sum(axis=-1, keepdims=True)
    return z


def softmax_cross_entropy(logits, targets):
    """Mean cross-entropy (nats) of (N, K) logits against (N,) integer targets.

    Returns (loss, cache); the cache holds the posteriors, which double as the statistics the
    trainer logs (top-1 accuracy, mean max posterior).
    """
    probs = softmax(logits)
    n = targets.shape[0]
    picked = probs[np.arange(n), targets]
    loss = -np.log(np.maximum(picked, np.finfo(probs.dtype).tiny), dtype=np.float64).mean()
    return float(loss), (probs, targets)


def softmax_cross_entropy_backward(cache):
    """Gradient of the mean cross-entropy w.r.t. the logits: (p - onehot(y)) / N."""
    probs, targets = cache
    n = targets.shape[0]
    dlogits = probs.copy()
    dlogits[np.arange(n), targets] -= 1
    dlogits *= 1.0 / n
    return dlogits


def dropout_mask(rng, shape, p, dtype):
    """Inverted-dropout mask: zeros with probability p, 1/(1-p) elsewhere (None when p == 0)."""
    if p <= 0:
        return None
    keep = rng.random(shape, dtype=np.float32) >= p
    mask = keep.astype(dtype)
    mask *= np.asarray(1.0 / (1.0 - p), dtype)
    return mask

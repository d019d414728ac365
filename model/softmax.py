"""The read-out's softmax and its cross-entropy loss (forward and backward)."""
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


def softmax_cross_entropy_backward(cache, n=None):
    """Gradient of the mean cross-entropy w.r.t. the logits: (p - onehot(y)) / N.

    `n`: the number of positions the mean is over, when these N rows are one rank's share of a
    larger batch (default: N). Each row's gradient is then exactly what it is in the whole batch.
    """
    probs, targets = cache
    n = targets.shape[0] if n is None else n
    dlogits = probs.copy()
    dlogits[np.arange(targets.shape[0]), targets] -= 1
    dlogits *= 1.0 / n
    return dlogits

"""One training step on two cores: the lanes split in halves, each half on its own core.

Most of a step outside the matrix products is elementwise NumPy work inside the two time
loops, which runs on one core while the other idles: a (64, 512) gate update is too small for
BLAS-style threading and NumPy's ufuncs are single-threaded. The lanes of a window are
independent until the gradients are summed, so this module runs the ordinary forward and
backward on each half of the lanes in its own thread, with a single-threaded BLAS in each
(NumPy releases the GIL inside matmul and ufunc loops), and adds the two gradients.

Results are deterministic for a given number of threads: the halves are fixed, each thread's
arithmetic is sequential, and the gradients are summed in a fixed order. They differ from the
one-thread step only by the rounding of differently shaped matrix products.

The masks are drawn once for the whole batch, as in the one-thread step, and sliced: the same
RNG state gives the same masks whatever the thread count.
"""
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from .layers import softmax_cross_entropy, softmax_cross_entropy_backward
from .regularise import Masks, no_masks

_POOLS = {}
_CONTROLLER = []


def pool(workers):
    """A thread pool of `workers` threads, made once and kept (model/wavefront.py uses it too)."""
    if workers not in _POOLS:
        _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="step")
    return _POOLS[workers]


def single_threaded_blas():
    """Context manager: BLAS on one thread per caller, restored afterwards."""
    if not _CONTROLLER:
        from threadpoolctl import ThreadpoolController
        _CONTROLLER.append(ThreadpoolController())
    return _CONTROLLER[0].limit(limits=1, user_api="blas")


def split_lanes(B, parts):
    """Contiguous lane ranges [(lo, hi)], as even as possible."""
    bounds = np.linspace(0, B, parts + 1).round().astype(int)
    return [(int(a), int(b)) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]


def slice_masks(m, lo, hi):
    """The masks of lanes lo:hi (per-lane masks sliced, per-step weight masks shared)."""
    cut = lambda a: None if a is None else a[:, lo:hi]   # noqa: E731  (T or 1, B, H)
    return Masks(out=[cut(a) for a in m.out], emb=None if m.emb is None else m.emb[lo:hi],
                 rows=m.rows, wh=m.wh)


def _half(net, x, y, state, masks, n_total):
    """Loss summed over this half's positions, its gradient (scaled to the whole batch), etc."""
    logits, state, cache = net.forward(x, state, for_backward=True, masks=masks)
    loss, ce = softmax_cross_entropy(logits, y.reshape(-1))
    dlogits = softmax_cross_entropy_backward(ce)
    n = y.size
    dlogits *= dlogits.dtype.type(n / n_total)    # the mean is over all T*B positions
    return loss * n, net.backward(dlogits, cache), state, ce[0]


def loss_grad_parallel(net, x, targets, state, rng, threads):
    """As `net.loss_grad_flat`, with the lanes split over `threads` threads."""
    x, targets = np.asarray(x), np.asarray(targets)
    T, B = targets.shape
    if state is None:
        state = net.zero_state(B)
    masks = net.draw_masks(rng, T, B) if rng is not None and net.stochastic else no_masks(net.L)
    parts = split_lanes(B, threads)
    jobs = []
    with single_threaded_blas():
        for lo, hi in parts[1:]:
            jobs.append(pool(len(parts) - 1).submit(
                _half, net, x[:, lo:hi], targets[:, lo:hi],
                (state[0][:, lo:hi], state[1][:, lo:hi]), slice_masks(masks, lo, hi), T * B))
        lo, hi = parts[0]
        results = [_half(net, x[:, lo:hi], targets[:, lo:hi], (state[0][:, lo:hi], state[1][:, lo:hi]),
                         slice_masks(masks, lo, hi), T * B)]
        results += [j.result() for j in jobs]
    loss = sum(r[0] for r in results) / (T * B)
    grad = results[0][1]
    for r in results[1:]:
        grad += r[1]
    h = np.concatenate([r[2][0] for r in results], axis=1)
    c = np.concatenate([r[2][1] for r in results], axis=1)
    probs = np.concatenate([r[3].reshape(T, hi - lo, -1) for r, (lo, hi) in zip(results, parts)],
                           axis=1).reshape(T * B, -1)
    return float(loss), grad, (h, c), probs

"""One training step with the layers in a wavefront: layer l+1 runs chunk j while layer l runs j+1.

Inside the time loops a step is a small GEMM per layer and time step, (B, H) x (H, G*H),
followed by a dozen elementwise passes over (B, H) arrays; with the layers one after another,
the elementwise passes run on one core while the other idles. Layer l+1 only needs layer l's
outputs up to the time step it is working on, so the window is cut into chunks of `chunk`
steps and each layer runs in its own thread, one chunk behind the layer below it in forward
(one chunk behind the layer above in backward), each with a single-threaded BLAS. NumPy
releases the GIL inside matmul and ufunc loops, so two layers keep two cores busy.

The input projection of layer l+1 for a chunk (the gradient into layer l's outputs, in
backward) is a GEMM as large as a chunk's recurrent products; it is split by time steps
between the two threads that meet at that chunk, which balances a two-layer network. The
window-sized products - the read-out, the weight gradients - stay outside the wavefront, as
single GEMMs on BLAS's own threads.

The arithmetic of every chunk is fixed and the threads meet only at chunk boundaries, in a
fixed order, so results are deterministic; they differ from `CIFGLSTM.loss_grad_flat` only by
the rounding of differently shaped matrix products (tests/test_wavefront.py).

Measured (benchmarks/README.md, "Against the GEMM bound"): slower than one thread at 2x384
(-13%) and 2x512 (-18%); ~5% faster at 2x768 before the gate-major loops (model/cell.py) and
6% slower after them. BLAS's two threads already keep both cores busy in the GEMMs, so a
second thread can win at most the elementwise share of a step (~15% now), and its hand-offs
cost more. Hence one thread is the default and this is an option.
"""
import threading

import numpy as np

from .cell import layer_backward, layer_forward
from .layers import softmax_cross_entropy, softmax_cross_entropy_backward
from .memory import empty
from .parallel import pool, single_threaded_blas
from .regularise import no_masks

CHUNK = 5   # steps per chunk: 2, 5 and 10 measured within 2% of each other (benchmarks/README.md)


def chunks(T, chunk):
    """[(t0, t1)] cutting range(T) into pieces of `chunk` steps (the last may be shorter)."""
    return [(t0, min(t0 + chunk, T)) for t0 in range(0, T, chunk)]


def _run_layers(L, body):
    """Run body(l) for every layer, layer 0 in this thread, the others in a pool.

    A layer that fails marks all its chunks done (so no other layer waits forever) and the
    first failure is raised here, after every thread has returned.
    """
    with single_threaded_blas():
        jobs = [pool(L - 1).submit(body, l) for l in range(1, L)]
        errors = []
        try:
            body(0)
        except BaseException as e:   # noqa: B902 - re-raised below, after the others stop
            errors.append(e)
        for job in jobs:
            try:
                job.result()
            except BaseException as e:   # noqa: B902
                errors.append(e)
    if errors:
        raise errors[0]


def _slice(mask, t0, t1):
    """A layer-output mask for steps t0:t1: per-step masks are sliced, locked ones shared."""
    return mask if mask is None or mask.shape[0] == 1 else mask[t0:t1]


class _Signals:
    """done[l][j]: layer l has finished chunk j (and its share of the projection above/below)."""

    def __init__(self, L, J):
        self.done = [[threading.Event() for _ in range(J)] for _ in range(L)]

    def guard(self, l, fn):
        try:
            fn()
        finally:   # on an error too, so that the other layers are not left waiting
            for ev in self.done[l]:
                ev.set()


def forward(net, x, state, masks, chunk, for_backward=True):
    """As `CIFGLSTM.forward` (x: character ids or features), the layers in a wavefront."""
    is_ids, x = net._check_input(x)
    T, B = x.shape[:2]
    L, H = net.L, net.H
    h0, c0 = net.zero_state(B) if state is None else state
    inp0 = x if is_ids or masks.rows is None else x * masks.rows
    spans = chunks(T, chunk)
    W = [net.params[f"W{l}"] for l in range(L)]
    Wh = [W[l][-H:] if masks.wh[l] is None else W[l][-H:] * masks.wh[l] for l in range(L)]
    xw = [net._input_projection(0, inp0, is_ids, masks)] + [
        empty((T, B, net.G * H), net.dtype) for _ in range(1, L)]
    hbuf = [empty((T + 1, B, H), net.dtype) for _ in range(L)]
    for l in range(L):
        hbuf[l][0] = h0[l]      # each later chunk starts from the h its predecessor wrote
    # inps[l]: layer l's input (layer l-1's masked output), kept for the weight gradients
    inps = [inp0] + [empty((T, B, H), net.dtype) if masks.out[l] is not None else hbuf[l][1:]
                     for l in range(L - 1)]
    caches = [[None] * len(spans) for _ in range(L)]
    cT = np.empty_like(c0)
    sig = _Signals(L, len(spans))

    def project(l, t0, t1):   # xw[l][t0:t1] = inps[l][t0:t1] W_x + b
        out = xw[l][t0:t1]
        np.matmul(inps[l][t0:t1].reshape(-1, H), W[l][:-H], out=out.reshape(-1, out.shape[-1]))
        out += net.params[f"b{l}"]

    def layer(l):
        c = c0[l]
        for j, (t0, t1) in enumerate(spans):
            mid = (t0 + t1) // 2
            if l > 0:
                sig.done[l - 1][j].wait()
                project(l, mid, t1)            # the other half was done by the layer below
            hs, c, caches[l][j] = layer_forward(xw[l][t0:t1], hbuf[l][t0], c, Wh[l], net.cell,
                                                for_backward, hbuf=hbuf[l][t0:t1 + 1])
            if l + 1 < L:
                if masks.out[l] is not None:
                    np.multiply(hs, _slice(masks.out[l], t0, t1), out=inps[l + 1][t0:t1])
                project(l + 1, t0, mid)
            sig.done[l][j].set()
        cT[l] = c

    _run_layers(L, lambda l: sig.guard(l, lambda: layer(l)))
    hT = np.stack([hb[-1] for hb in hbuf])
    top = hbuf[-1][1:]
    if masks.out[-1] is not None:
        top = top * masks.out[-1]
    top = top.reshape(T * B, H)
    cache = (caches, hbuf, inps, xw, Wh, top, is_ids, spans, masks) if for_backward else None
    return net._readout(top), (hT, cT), cache


def backward(net, dlogits, cache):
    """As `CIFGLSTM.backward` for a cache from `forward` above; the flat gradient."""
    caches, hbuf, inps, da, Wh, top, is_ids, spans, masks = cache   # da is written over xw
    L, H, G = net.L, net.H, net.G
    T, B = hbuf[0].shape[0] - 1, hbuf[0].shape[1]
    gflat = np.empty_like(net.flat)
    g = net.views(gflat)
    dinp = [None] + [empty((T, B, H), net.dtype) for _ in range(1, L)]   # w.r.t. inps[l]
    # dout[l]: gradient w.r.t. layer l's outputs, masked in place (so it shares dinp[l + 1])
    dout = dinp[1:] + [net._readout_backward(g, top, dlogits).reshape(T, B, H)]
    WhT = [np.ascontiguousarray(w.T) for w in Wh]
    sig = _Signals(L, len(spans))

    def project_back(l, t0, t1):   # dinp[l][t0:t1] = da[l][t0:t1] W_x^T
        np.matmul(da[l][t0:t1].reshape(-1, G * H), net.params[f"W{l}"][:-H].T,
                  out=dinp[l][t0:t1].reshape(-1, H))

    def layer(l):
        dh, dc = np.zeros((B, H), net.dtype), np.zeros((B, H), net.dtype)   # copied in by layer_backward
        for j in range(len(spans) - 1, -1, -1):
            t0, t1 = spans[j]
            mid = (t0 + t1) // 2
            if l < L - 1:
                sig.done[l + 1][j].wait()
                project_back(l + 1, t0, mid)   # the other half was done by the layer above
            if masks.out[l] is not None:
                dout[l][t0:t1] *= _slice(masks.out[l], t0, t1)
            _, dh, dc = layer_backward(dout[l][t0:t1], dh, dc, caches[l][j], WhT=WhT[l])
            if l > 0:
                project_back(l, mid, t1)
            sig.done[l][j].set()

    _run_layers(L, lambda l: sig.guard(L - 1 - l, lambda: layer(L - 1 - l)))
    for l in range(L):
        net._layer_grads(g, l, hbuf[l][:-1], inps[l], da[l], is_ids, masks)
    return gflat


def loss_grad_wavefront(net, x, targets, state, rng, chunk=None):
    """As `net.loss_grad_flat`, with the layers in a wavefront of `chunk`-step pieces (CHUNK)."""
    if net.L < 2:
        return net.loss_grad_flat(x, targets, state, rng)
    targets = np.asarray(targets)
    T, B = targets.shape
    masks = net.draw_masks(rng, T, B) if rng is not None and net.stochastic else no_masks(net.L)
    logits, state, cache = forward(net, x, state, masks, chunk or CHUNK)
    loss, ce = softmax_cross_entropy(logits, targets.reshape(-1))
    grad = backward(net, softmax_cross_entropy_backward(ce), cache)
    return loss, grad, state, ce[0]

"""One recurrent layer: the CIFG-LSTM equations, once, and their fused forward/backward.

For every step t, with x_t (B, D) the layer input and (h_{t-1}, c_{t-1}) the carried state:

    a_t = x_t W_x + h_{t-1} W_h + b       (B, G*H)   pre-activations, gate blocks in GATE_ORDER
    i_t = sigmoid(a_i)                    input gate
    f_t = 1 - i_t                         forget gate, coupled to the input gate (CIFG)
    o_t = sigmoid(a_o)                    output gate
    g_t = tanh(a_g)                       candidate cell
    c_t = f_t * c_{t-1} + i_t * g_t
    h_t = o_t * tanh(c_t)

The uncoupled cell ("lstm", kept for the ablation) has its own forget gate f_t = sigmoid(a_f).

The input projection x W_x + b of a whole window does not depend on the recurrence, so the
network computes it outside the time loop (one GEMM, or a row gather for character ids) and
hands it in as `xw`; likewise it computes the gradients of W_x and W_h from the returned `da`
in one GEMM each.
Only h_{t-1} W_h and the elementwise updates stay inside the loop.

Gate order puts the sigmoid gates first (one sigmoid call over a contiguous block) and the
gates whose gradient is driven by dc last and adjacent (one broadcast multiply in backward):
    cifg: [o, i, g]      lstm: [o, f, i, g]

Memory, for speed (DESIGN.md, "The elementwise work on contiguous gates"): each step's
pre-activations are copied gate-major into a (G, B, H) scratch, so that every gate is one
contiguous block; the factors backward needs are then written over the step's `xw`, and
backward writes `da` over them in turn; the loop's arrays are page-aligned (`empty`).
"""
from typing import NamedTuple, Optional

import numpy as np


GATE_ORDER = {"cifg": ("o", "i", "g"), "lstm": ("o", "f", "i", "g")}


def num_gates(cell):
    """Number of gate blocks of width H in the fused weight matrix."""
    try:
        return len(GATE_ORDER[cell])
    except KeyError:
        raise ValueError(f"unknown cell {cell!r}; choose one of {sorted(GATE_ORDER)}") from None


PAGE = 4096


def empty(shape, dtype=np.float32):
    """An uninitialised array whose data starts on a page boundary.

    The time loops stream several (B, H) arrays at once, reading some while writing others.
    Heap buffers start at arbitrary offsets within a page, and when an input lies a few cache
    lines ahead of an output modulo 4 KiB the CPU may hold its loads behind stores they do not
    really depend on ("4K aliasing"). With every loop array page-aligned, and (B, H) slabs a
    whole number of pages, an operation's inputs and outputs share their offset in the page.
    Measured with the loops' own work (benchmarks/loop_overhead.py, alternating): the
    elementwise part of a 2x384 step 74.7 / 42.7 us (forward / backward) aligned against
    80.3 / 44.3 with heap arrays at varying offsets.
    """
    dtype = np.dtype(dtype)
    nbytes = int(np.prod(shape)) * dtype.itemsize
    raw = np.empty(nbytes + PAGE, np.uint8)
    start = -raw.ctypes.data % PAGE
    return raw[start:start + nbytes].view(dtype).reshape(shape)


class StepViews(NamedTuple):
    """Views of one step's pre-activations `a`, made once and reused at every step."""
    a: np.ndarray
    sig: np.ndarray           # the sigmoid gates, one block: [o, i] or [o, f, i]
    o: np.ndarray
    f: Optional[np.ndarray]   # None for the coupled cell (f = 1 - i)
    i: np.ndarray
    g: np.ndarray


def step_views(a, G):
    """Gate views of `a`, laid out gate-major (G, B, H) or as the GEMM gives it (B, G*H)."""
    if a.ndim == 3:
        gate, sig = (lambda k: a[k]), a[:-1]
    else:
        H = a.shape[1] // G
        gate, sig = (lambda k: a[:, k * H:(k + 1) * H]), a[:, :(G - 1) * H]
    return StepViews(a, sig, gate(0), gate(1) if G == 4 else None, gate(G - 2), gate(G - 1))


def cell_step(v, c_prev, c, tmp, tc, h):
    """The equations' elementwise half for one step, in place; shared by training and sampling.

    v: StepViews of the pre-activations a_t (overwritten by the activations o, [f,] i, g).
    Writes c_t into `c`, tanh(c_t) into `tc` and h_t into `h`; for the coupled cell `tmp`
    is left holding i (g - c_{t-1}), which backward's factors reuse.
    Sigmoid as 0.5 tanh(a / 2) + 0.5: no overflow for large |a|, and one tanh call covers
    every gate of the step.
    """
    sig, i, g = v.sig, v.i, v.g    # (a NamedTuple's fields cannot take in-place operators)
    sig *= 0.5
    np.tanh(v.a, out=v.a)
    sig *= 0.5
    sig += 0.5
    if v.f is None:   # c = c_prev + i * (g - c_prev)  ==  (1 - i) c_prev + i g
        np.subtract(g, c_prev, out=tmp)
        tmp *= i
        np.add(c_prev, tmp, out=c)
    else:             # c = f c_prev + i g
        np.multiply(v.f, c_prev, out=c)
        np.multiply(i, g, out=tmp)
        c += tmp
    np.tanh(c, out=tc)
    np.multiply(v.o, tc, out=h)


def layer_forward(xw, h0, c0, Wh, for_backward=False):
    """Run one layer over a window.

    xw: (T, B, G*H) input projection plus bias, C-contiguous in its last two axes; it is
    overwritten (with the factors backward needs, when `for_backward`).
    h0, c0: (B, H) carried state.  Wh: (H, G*H).
    Returns hs (T, B, H), the final cell state (B, H) and the cache for `layer_backward`
    (None unless `for_backward`).

    The GEMM gives a_t as B rows of [o | i | g]; a gate there is a strided (B, H) view, and
    NumPy's ufuncs run 2-4x slower on those than on contiguous blocks (one inner loop per
    row). So each step's pre-activations are copied once, gate-major, into a (G, B, H) scratch
    where every gate is one contiguous block, and the step's elementwise work runs there.
    """
    T, B, GH = xw.shape
    H = h0.shape[1]
    G = GH // H
    dtype = xw.dtype
    hbuf = empty((T + 1, B, H), dtype)             # hbuf[t] = h_{t-1}; hbuf[1:] are the outputs
    hbuf[0] = h0
    c_prev, c = empty((B, H), dtype), empty((B, H), dtype)
    c_prev[...] = c0
    fac = _Factors(xw, H) if for_backward else None
    rec = empty((B, GH), dtype)
    v = step_views(empty((G, B, H), dtype), G)     # gate-major activations of one step
    tmp, tc = empty((B, H), dtype), empty((B, H), dtype)
    for t in range(T):
        x = xw[t]                                     # (B, G*H)
        np.matmul(hbuf[t], Wh, out=rec)
        x += rec
        np.copyto(v.a, x.reshape(B, G, H).transpose(1, 0, 2))   # gate-major
        h = hbuf[t + 1]
        cell_step(v, c_prev, c, tmp, tc, h)
        if fac is not None:
            fac.record(t, v, c_prev, tc, tmp, h)
        c_prev, c = c, c_prev
    cache = (hbuf, fac, Wh, G) if for_backward else None
    return hbuf[1:], c_prev, cache


class _Factors:
    """Everything backward needs that does not depend on the recurrence, recorded in forward.

    With these, each step of the backward loop is a handful of multiplies:
        da_o = dh * p_o                  p_o = tanh(c) o (1 - o)
        dc   = dh * p_c + dc_next        p_c = o (1 - tanh(c)^2)
        da_rest = dc * p_rest            the gates driven by dc ([i, g] or [f, i, g])
        dc_next = dc * f                 f = 1 - i (cifg) or sigmoid(a_f)
    They are computed per step while the step's (B, H) values are still in cache: the same
    products over whole-window arrays afterwards cost several times more (memory-bound).
    [p_o, p_rest] take the place of step t's pre-activations in the window's `xw` (which
    backward no longer needs), gate-major: `step(t)` is that memory seen as (G, B, H).
    """

    def __init__(self, xw, H):
        T, B, GH = xw.shape
        if not xw[0].flags.c_contiguous:
            raise ValueError("xw must be C-contiguous in its last two axes")
        self.xw = xw
        self.p_c = empty((T, B, H), xw.dtype)
        self.f = empty((T, B, H), xw.dtype)
        self.H, self.G, self.B = H, GH // H, B

    def step(self, t):
        """Step t's gate-major factors (G, B, H): [p_o, p_rest] (a view of xw[t])."""
        return self.xw[t].reshape(self.G, self.B, self.H)

    def record(self, t, v, c_prev, tc, i_update, h):
        """Step t's factors from its gate-major activations (StepViews `v`) and the step's
        c_{t-1}, tanh(c_t), i_t (g_t - c_{t-1}) (cifg only) and h_t."""
        G = self.G
        o, i, g = v.o, v.i, v.g
        F, p_c, f = self.step(t), self.p_c[t], self.f[t]
        np.multiply(tc, h, out=p_c)
        np.subtract(o, p_c, out=p_c)               # o (1 - tanh(c)^2) = o - tanh(c) h
        if G == 3:
            np.subtract(1, i, out=f)
            np.multiply(i_update, f, out=F[1])     # (g - c_prev) i (1 - i); i_update = i (g - c_prev)
        else:
            f[...] = v.f
            np.subtract(1, i, out=F[2])
            F[2] *= i
            F[2] *= g                              # g i (1 - i)
            np.subtract(1, f, out=F[1])
            F[1] *= f
            F[1] *= c_prev                         # c_prev f (1 - f)
        dg = F[G - 1]
        np.multiply(g, g, out=dg)
        np.subtract(1, dg, out=dg)
        dg *= i                                    # i (1 - g^2)
        np.subtract(1, o, out=F[0])
        F[0] *= h                                  # tanh(c) o (1 - o), with h = o tanh(c)


def layer_backward(dhs, dhT, dcT, cache):
    """Backward through one layer's window.

    dhs: (T, B, H) gradient of the loss w.r.t. the outputs hs (overwritten).
    dhT, dcT: (B, H) gradient flowing into the final state (zeros if the state is dropped).
    Returns da (T, B, G*H) = d loss / d pre-activations (also the gradient of xw and of the
    bias rows), dh0 and dc0 (B, H). The weight gradients are the caller's, one GEMM each for
    the whole window: dW_h = sum_t h_{t-1}^T da_t with h_{t-1} = hbuf[:-1] of the cache.

    da is written over the forward's `xw`, where the factors were: step t's factors are copied
    to a small scratch and da_t takes their place. That spares a window-sized output array,
    and writing into lines just read is cheaper than into new ones (the loop is bound by
    memory traffic, not arithmetic).
    """
    _, fac, Wh, G = cache
    T, B, H = dhs.shape
    p_c, f, da = fac.p_c, fac.f, fac.xw
    dh_next, dc_next, dc = (empty((B, H), dhs.dtype) for _ in range(3))
    dh_next[...], dc_next[...] = dhT, dcT
    F = empty((G, B, H), dhs.dtype)            # step t's factors [p_o, p_rest], gate-major
    WhT = np.ascontiguousarray(Wh.T)   # an NN GEMM in the loop is ~15% faster than a transposed one
    for t in range(T - 1, -1, -1):
        dh = dhs[t]
        dh += dh_next
        np.copyto(F, fac.step(t))
        d = da[t].reshape(B, G, H).transpose(1, 0, 2)   # da_t (B, G*H), seen gate-major
        np.multiply(dh, F[0], out=d[0])
        np.multiply(dh, p_c[t], out=dc)
        dc += dc_next
        np.multiply(dc, F[1:], out=d[1:])
        np.multiply(dc, f[t], out=dc_next)
        np.matmul(da[t], WhT, out=dh_next)
    return da, dh_next, dc_next

"""What one training step would cost if it did nothing but its matrix products.

Every GEMM the engine performs in one truncated-BPTT step of an L-layer CIFG on a (T, B) window
of character ids, with the engine's own operand layouts (transposed views where it uses them),
timed alone with NumPy's BLAS at its current thread setting and summed per step:

    forward   layer 0: T x (B,H)(H,GH)               recurrence (the input is a row gather)
              layer l>0: (TB,H)(H,GH) + T x (B,H)(H,GH)
              read-out: (TB,H)(H,K)
    backward  read-out: (H,TB)(TB,K) and (TB,K)(K,H)
              every layer: T x (B,GH)(GH,H) in the loop, (H,TB)(TB,GH) for dW_h
              layer 0: (V,TB)(TB,GH) one-hot transpose for dW_x
              layer l>0: (H,TB)(TB,GH) for dW_x and (TB,GH)(GH,H) for the layer below

`chars_per_s / gemm_bound_chars_per_s` (the bound fraction) is how much of a step is matrix
products: unlike a fraction of one large square GEMM's peak, it compares the engine with the
same machine doing the same shapes, so it carries from machine to machine.
"""
import statistics
import time

import numpy as np


def median_time(fn, repeats):
    """Median seconds of `repeats` calls, after one untimed warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def step_gemms(H, L, B, T, V, K, G=3, dtype=np.float32, seed=0):
    """[(name, count per step, callable)] for every GEMM shape of one training step."""
    rng = np.random.default_rng(seed)
    r = lambda *s: rng.standard_normal(s, dtype=np.float64).astype(dtype)  # noqa: E731
    GH, TB = G * H, T * B
    h, Wh, WhT, da = r(B, H), r(H, GH), r(GH, H), r(B, GH)
    rec, dh = np.empty((B, GH), dtype), np.empty((B, H), dtype)
    hs, das, Wy, dlog = r(TB, H), r(TB, GH), r(H, K), r(TB, K)
    onehot, Wx = r(V, TB), r(H, GH)
    out = [("recurrent forward (B,H)(H,GH)", L * T, lambda: np.matmul(h, Wh, out=rec)),
           ("recurrent backward (B,GH)(GH,H)", L * T, lambda: np.matmul(da, WhT, out=dh)),
           ("dW_h (H,TB)(TB,GH)", L, lambda: hs.T @ das),
           ("read-out (TB,H)(H,K)", 1, lambda: hs @ Wy),
           ("dW_y (H,TB)(TB,K)", 1, lambda: hs.T @ dlog),
           ("d read-out input (TB,K)(K,H)", 1, lambda: dlog @ Wy.T),
           ("dW_x layer 0 (V,TB)(TB,GH)", 1, lambda: onehot @ das)]
    if L > 1:
        out += [("input projection (TB,H)(H,GH)", L - 1, lambda: hs @ Wx),
                ("dW_x (H,TB)(TB,GH)", L - 1, lambda: hs.T @ das),
                ("d layer input (TB,GH)(GH,H)", L - 1, lambda: das @ Wx.T)]
    return out


def gemm_bound(H, L, B, T, V, K, G=3, dtype=np.float32, repeats=20):
    """(seconds per step spent in GEMMs alone, {shape name: seconds per step})."""
    parts = {}
    for name, count, fn in step_gemms(H, L, B, T, V, K, G, dtype):
        reps = repeats * 20 if count >= T else repeats     # small in-loop GEMMs: more samples
        parts[name] = count * median_time(fn, reps)
    return sum(parts.values()), parts

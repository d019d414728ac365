"""A slow, obviously-correct LSTM written gate by gate, to check the fused engine against.

Nothing here is shared with model/: separate matrices per gate, one time step and one
example-batch at a time, the forget gate computed literally as 1 - i for the coupled cell.
"""
import numpy as np


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def split_gates(net, l):
    """Per-gate (Wx, Wh, b) of layer l, read from the fused matrix by the documented order."""
    from model.cell import GATE_ORDER
    W, b, H = net.params[f"W{l}"], net.params[f"b{l}"], net.H
    d_in = W.shape[0] - H
    gates = {}
    for k, name in enumerate(GATE_ORDER[net.cell]):
        cols = slice(k * H, (k + 1) * H)
        gates[name] = (W[:d_in, cols], W[d_in:, cols], b[cols])
    return gates


def reference_forward(net, x, state=None, masks=None):
    """Logits (T, B, K), final state and the gate values, for features (T,B,D) or ids (T,B).

    masks[l] (T, B, H), if given, multiplies layer l's output on its way up (dropout); the
    state the layer carries to its next step stays unmasked.
    """
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.integer):
        x = np.eye(net.D)[x]                      # literal one-hot feature vectors
    T, B = x.shape[:2]
    h = [np.zeros((B, net.H)) for _ in range(net.L)] if state is None else [s.copy() for s in state[0]]
    c = [np.zeros((B, net.H)) for _ in range(net.L)] if state is None else [s.copy() for s in state[1]]
    logits, record = [], []
    for t in range(T):
        inp = x[t]
        for l in range(net.L):
            p = split_gates(net, l)
            pre = {k: inp @ wx + h[l] @ wh + b for k, (wx, wh, b) in p.items()}
            i = sigmoid(pre["i"])
            f = 1.0 - i if net.cell == "cifg" else sigmoid(pre["f"])
            o = sigmoid(pre["o"])
            g = np.tanh(pre["g"])
            c[l] = f * c[l] + i * g
            h[l] = o * np.tanh(c[l])
            record.append({"i": i, "f": f, "o": o, "g": g})
            inp = h[l] if masks is None else h[l] * masks[l][t]
        logits.append(inp @ net.params["Wy"] + net.params["by"])
    return np.stack(logits), (np.stack(h), np.stack(c)), record


def reference_loss(net, x, targets, state=None):
    logits, _, _ = reference_forward(net, x, state)
    z = logits - logits.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(logp, np.asarray(targets)[..., None], axis=-1)
    return -picked.mean()

"""A slow, obviously-correct LSTM written gate by gate, to check the fused engine against.

Nothing here is shared with model/: separate matrices per gate, one time step and one
example-batch at a time, the forget gate computed literally as 1 - i for the coupled cell.
"""
import numpy as np

from model.cell import GATE_ORDER


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def split_gates(net, l):
    """Per-gate (Wx, Wh, b) of layer l, read from the fused matrix by the documented order."""
    W, b, H = net.params[f"W{l}"], net.params[f"b{l}"], net.H
    d_in = W.shape[0] - H
    gates = {}
    for k, name in enumerate(GATE_ORDER[net.cell]):
        cols = slice(k * H, (k + 1) * H)
        gates[name] = (W[:d_in, cols], W[d_in:, cols], b[cols])
    return gates


def reference_forward(net, x, state=None, masks=None):
    """Logits (T, B, K), final state and the gate values, for features (T,B,D) or ids (T,B).

    `masks` (model.regularise.Masks) are applied literally where their docstring says: the
    rows mask on the input vector, the embedding mask on x W_x, the weight mask on W_h, the
    output mask on each layer's h_t.
    """
    x = np.asarray(x)
    if np.issubdtype(x.dtype, np.integer):
        x = np.eye(net.D)[x]                      # literal one-hot feature vectors
    if masks is not None and masks.rows is not None:
        x = x * masks.rows
    T, B = x.shape[:2]
    h = [np.zeros((B, net.H)) for _ in range(net.L)] if state is None else [s.copy() for s in state[0]]
    c = [np.zeros((B, net.H)) for _ in range(net.L)] if state is None else [s.copy() for s in state[1]]
    logits, record = [], []
    for t in range(T):
        inp = x[t]
        for l in range(net.L):
            p = split_gates(net, l)
            pre = {}
            for j, (k, (wx, wh, b)) in enumerate(p.items()):     # gates in GATE_ORDER
                cols = slice(j * net.H, (j + 1) * net.H)
                xpart = inp @ wx
                if masks is not None and l == 0 and masks.emb is not None:
                    xpart = xpart * masks.emb[:, cols]
                if masks is not None and masks.wh[l] is not None:
                    wh = wh * masks.wh[l][:, cols]
                pre[k] = xpart + h[l] @ wh + b
            i = sigmoid(pre["i"])
            f = 1.0 - i if net.cell == "cifg" else sigmoid(pre["f"])
            o = sigmoid(pre["o"])
            g = np.tanh(pre["g"])
            c[l] = f * c[l] + i * g
            h[l] = o * np.tanh(c[l])
            record.append({"i": i, "f": f, "o": o, "g": g})
            inp = h[l]
            if masks is not None and masks.out[l] is not None:
                m = masks.out[l]
                inp = inp * m[t if m.shape[0] > 1 else 0]
        logits.append(inp @ net.params["Wy"] + net.params["by"])
    return np.stack(logits), (np.stack(h), np.stack(c)), record


def reference_loss(net, x, targets, state=None, masks=None):
    logits, _, _ = reference_forward(net, x, state, masks)
    z = logits - logits.max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    picked = np.take_along_axis(logp, np.asarray(targets)[..., None], axis=-1)
    return -picked.mean()

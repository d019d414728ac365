"""One character at a time, fast: the network's forward for T = 1, with every buffer reused.

Generation runs the network one step per character, where a window's forward spends most of
its time on checks, allocations and reshapes rather than arithmetic. `Stepper` performs the
same operations as `CIFGLSTM.forward` on a (1, B) window, in the same order and on the same
operand shapes, so its logits and states are bitwise equal to the forward's (tested), into
buffers allocated once: the sampled text for a seed does not change.

The elementwise update is the cell's own (`model.cell.cell_step`), run on the gates where the
GEMM leaves them, as strided (B, H) views of the (B, G*H) row. Sharing it cost nothing: one
step at 2x384 took 136 / 1,618 us (1 / 32 streams) against 143 / 1,620 for the stepper's own
copy of the update before (medians of four alternated runs). The window loop copies each
step's gates gate-major first, which pays at a training batch; here it measured no faster
(1.02x / 1.00x the time, benchmarks/stepper_layouts.py; benchmarks/README.md, "Generation speed").
"""
import numpy as np

from .cell import cell_step, step_views


class Stepper:
    """Carries (h, c) for B streams; `step(ids)` feeds one id per stream and returns logits."""

    def __init__(self, net, batch, state=None):
        self.net, self.B = net, batch
        L, H, G, dt = net.L, net.H, net.G, net.dtype
        h, c = net.zero_state(batch) if state is None else state
        self.h = [np.array(h[l]) for l in range(L)]              # one buffer per layer
        self.c = [np.array(c[l]) for l in range(L)]
        W0 = net.params["W0"]
        self.emb = W0[:W0.shape[0] - H] + net.params["b0"]          # (D, G*H): rows + bias, as forward
        self.Wx = [None] + [net.params[f"W{l}"][:-H] for l in range(1, L)]
        self.Wh = [net.params[f"W{l}"][-H:] for l in range(L)]
        self.b = [net.params[f"b{l}"] for l in range(L)]
        self.a = np.empty((batch, G * H), dt)
        self.views = step_views(self.a, G)
        self.rec = np.empty((batch, G * H), dt)
        self.tmp, self.tc = np.empty((batch, H), dt), np.empty((batch, H), dt)
        self.c_new = np.empty((batch, H), dt)
        self.logits = np.empty((batch, net.K), dt)

    @property
    def state(self):
        """(h, c), each (L, B, H), as `CIFGLSTM.forward` returns them."""
        return np.stack(self.h), np.stack(self.c)

    def reorder(self, rows):
        """Row r of the state becomes the old row rows[r] (beam search follows its parents)."""
        self.h = [np.ascontiguousarray(h[rows]) for h in self.h]
        self.c = [np.ascontiguousarray(c[rows]) for c in self.c]

    def step(self, ids):
        """Logits (B, K) after feeding `ids` (B,); the carried state advances by one."""
        net = self.net
        for l in range(net.L):
            self._preactivations(l, ids)
            self._update(l)
        np.matmul(self.h[-1], net.params["Wy"], out=self.logits)
        self.logits += net.params["by"]
        return self.logits

    def _preactivations(self, l, ids):
        """Layer l's a_t = x_t W_x + h_{t-1} W_h + b into `self.a` (B, G*H)."""
        a = self.a
        if l == 0:
            np.take(self.emb, ids, axis=0, out=a)
        else:
            np.matmul(self.h[l - 1], self.Wx[l], out=a)
            a += self.b[l]
        np.matmul(self.h[l], self.Wh[l], out=self.rec)
        a += self.rec

    def _update(self, l):
        """Layer l's cell update from `self.a`: h and c advance, buffers swapped, not copied."""
        c_prev, c = self.c[l], self.c_new
        cell_step(self.views, c_prev, c, self.tmp, self.tc, self.h[l])
        self.c[l], self.c_new = c, c_prev

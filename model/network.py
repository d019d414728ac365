"""The multi-layer CIFG-LSTM classifier: feature vectors (or character ids) in, posteriors out.

Parameters live in one flat array (`net.flat`); `net.params` maps names to views of it, so the
optimizer and the checkpoint see one vector while the maths sees matrices:

    W{l}  (D_l + H, G*H)   rows [:D_l] are W_x, rows [D_l:] are W_h (one fused matrix per layer)
    b{l}  (G*H,)
    Wy    (H, K), by (K,)  the softmax read-out

Layer l's input is the input feature vector (l = 0) or layer l-1's output after dropout.
Training-time regularisers (model/regularise.py) are masks on layer outputs, on layer 0's
input projection, on the rows of layer 0's W_x and on W_h, drawn once per step from the
trainer's RNG; without an RNG the network is deterministic and unregularised.
Integer inputs of shape (T, B) are character ids: x_t W_x for a one-hot x_t is row x_t of W_x,
so layer 0 gathers rows instead of multiplying by a one-hot matrix.
"""
import numpy as np

from .cell import GATE_ORDER, empty, layer_backward, layer_forward, num_gates
from .softmax import softmax, softmax_cross_entropy, softmax_cross_entropy_backward
from .regularise import RATES, check_rates, draw_masks, no_masks

# Initial gate biases, from measurements (DESIGN.md "Initialisation"): the coupled cell learns
# fastest with its input gate open (i = sigmoid(1) ~ 0.73, so f ~ 0.27) and unit-variance
# character rows; the uncoupled cell keeps the usual forget-gate bias of +1.
GATE_BIAS = {"cifg": ("i", 1.0), "lstm": ("f", 1.0)}
EMBEDDING_STD = 1.0  # rows of W_x read by character ids: like an embedding, not a dense layer


def _one_hot_t(ids, depth, dtype):
    """(depth, N) one-hot columns: the adjoint of the row gather, applied as one GEMM.

    Scatter-adding T*B gradient rows into V embedding rows with np.add.at or a sort+reduceat
    is 3-4x slower than this (V x T*B) @ (T*B x G*H) product (benchmarks/README.md); the
    forward pass still gathers rows, it never multiplies by a one-hot matrix.
    """
    oh = np.zeros((depth, ids.size), dtype)
    oh[ids, np.arange(ids.size)] = 1
    return oh


class CIFGLSTM:
    """Unidirectional multi-layer LSTM with coupled input and forget gates (f = 1 - i)."""

    def __init__(self, input_size, hidden_size, num_layers, output_size, seed=0,
                 dtype=np.float32, cell="cifg", dropout=0.0, char_inputs=False, **rates):
        for name, v in (("input_size", input_size), ("hidden_size", hidden_size),
                        ("num_layers", num_layers), ("output_size", output_size)):
            if int(v) != v or v < 1:
                raise ValueError(f"{name} must be a positive integer, got {v!r}")
        rates = {"dropout": dropout, **rates}
        check_rates(rates)
        self.D, self.H, self.L, self.K = int(input_size), int(hidden_size), int(num_layers), int(output_size)
        self.G, self.cell = num_gates(cell), cell
        self.rates = {k: float(rates.get(k, 0.0)) for k in RATES}
        self.dropout = self.rates["dropout"]
        self.char_inputs = bool(char_inputs)   # inputs are one-hot ids: initialise W_x rows as embeddings
        self.dtype = np.dtype(dtype)
        self.layout = self._layout()
        self.flat = np.zeros(sum(int(np.prod(s)) for _, s in self.layout), self.dtype)
        self.params = self.views(self.flat)
        self._init(np.random.default_rng(seed))

    def config(self):
        """Constructor arguments (without seed), enough to rebuild the same architecture."""
        return dict(input_size=self.D, hidden_size=self.H, num_layers=self.L, output_size=self.K,
                    dtype=self.dtype.name, cell=self.cell, char_inputs=self.char_inputs,
                    **self.rates)

    def _layout(self):
        shapes, d = [], self.D
        for l in range(self.L):
            shapes += [(f"W{l}", (d + self.H, self.G * self.H)), (f"b{l}", (self.G * self.H,))]
            d = self.H
        return shapes + [("Wy", (self.H, self.K)), ("by", (self.K,))]

    def views(self, flat):
        """Name -> view of a flat vector laid out like the parameters (used for gradients too)."""
        out, pos = {}, 0
        for name, shape in self.layout:
            n = int(np.prod(shape))
            out[name] = flat[pos:pos + n].reshape(shape)
            pos += n
        return out

    def _init(self, rng):
        """Uniform(+-1/sqrt(H)) matrices, N(0, 1) rows for character inputs, gate bias."""
        k = 1.0 / np.sqrt(self.H)
        for name, arr in self.params.items():
            if name.startswith("W"):
                arr[...] = rng.uniform(-k, k, arr.shape)
        if self.char_inputs:
            self.params["W0"][:self.D] = rng.normal(0.0, EMBEDDING_STD, (self.D, self.G * self.H))
        gate, bias = GATE_BIAS[self.cell]
        j = GATE_ORDER[self.cell].index(gate)
        for l in range(self.L):
            self.params[f"b{l}"][j * self.H:(j + 1) * self.H] = bias

    @property
    def stochastic(self):
        """True when some regulariser draws masks during training."""
        return any(p > 0 for p in self.rates.values())

    def draw_masks(self, rng, T, B):
        """One step's regulariser masks (model/regularise.py) for a (T, B) window."""
        return draw_masks(rng, self.rates, self.L, T, B, self.H, self.G * self.H, self.D, self.dtype)

    @property
    def num_params(self):
        return int(self.flat.size)

    def zero_state(self, batch):
        """All-zero (h, c), each (L, B, H)."""
        z = np.zeros((self.L, batch, self.H), self.dtype)
        return z, z.copy()

    # ---- forward / backward -------------------------------------------------------------

    def _input_projection(self, l, inp, is_ids, masks):
        """x W_x + b for a window: (T, B, G*H), the layer-0 masks applied to x W_x."""
        W, b = self.params[f"W{l}"], self.params[f"b{l}"]
        Wx = W[:W.shape[0] - self.H]
        emb, rows = (masks.emb, masks.rows) if l == 0 else (None, None)
        if is_ids:
            # (T, B, G*H) row gather into a page-aligned buffer (model/cell.py, `empty`); the ids were
            # checked by _check_input, and mode="clip" spares np.take a buffered copy
            xw = empty(inp.shape + (Wx.shape[1],), self.dtype)
            if emb is None and rows is None:
                return np.take(Wx + b, inp, axis=0, out=xw, mode="clip")
            np.take(Wx, inp, axis=0, out=xw, mode="clip")
            if rows is not None:
                xw *= rows[inp][..., None]
        else:
            T, B, D = inp.shape
            xw = empty((T, B, Wx.shape[1]), self.dtype)
            np.matmul(inp.reshape(T * B, D), Wx, out=xw.reshape(T * B, -1))   # one GEMM for the window
        if emb is not None:
            xw *= emb                                              # same mask at every t
        xw += b
        return xw

    def forward(self, x, state=None, rng=None, for_backward=False, masks=None):
        """Logits (T*B, K) for a window, the final state, and the cache for `backward`.

        `rng` switches the regularisers on (training): it draws this step's masks, unless
        `masks` (from `draw_masks`) are given, which holds them fixed (gradient checks).
        Without either the network is deterministic. `for_backward` records what backward
        needs (the cache is None otherwise).
        """
        is_ids, x = self._check_input(x)
        T, B = x.shape[:2]
        if masks is None:
            masks = self.draw_masks(rng, T, B) if rng is not None and self.stochastic else no_masks(self.L)
        h0, c0 = self.zero_state(B) if state is None else state
        inp, caches, hT, cT = x, [], np.empty_like(h0), np.empty_like(c0)
        if not is_ids and masks.rows is not None:
            inp = x * masks.rows                                   # dropped input rows = features
        for l in range(self.L):
            xw = self._input_projection(l, inp, is_ids and l == 0, masks)
            Wh = self.params[f"W{l}"][-self.H:]
            if masks.wh[l] is not None:
                Wh = Wh * masks.wh[l]                              # DropConnect for this step
            hs, cT[l], cache = layer_forward(xw, h0[l], c0[l], Wh, for_backward)
            hT[l] = hs[-1]
            mask = masks.out[l]
            caches.append((inp, mask, cache))
            inp = hs * mask if mask is not None else hs
        top = inp.reshape(T * B, self.H)
        cache = (caches, top, is_ids, (T, B), masks) if for_backward else None
        return self._readout(top), (hT, cT), cache

    def _readout(self, top):
        """Logits (N, K) of the top layer's (masked) outputs (N, H)."""
        logits = top @ self.params["Wy"]
        logits += self.params["by"]
        return logits

    def _readout_backward(self, g, top, dlogits):
        """The read-out's gradients into `g`; returns d loss / d top (N, H)."""
        np.matmul(top.T, dlogits, out=g["Wy"])
        g["by"][...] = dlogits.sum(axis=0)
        return np.matmul(dlogits, self.params["Wy"].T, out=empty((dlogits.shape[0], self.H), self.dtype))

    def _layer_grads(self, g, l, h_prev, inp, da, is_ids, masks):
        """Layer l's gradients into `g` from its da (T, B, G*H), h_{t-1} (T, B, H) and input."""
        T, B, GH = da.shape
        d_in = self.params[f"W{l}"].shape[0] - self.H
        da2 = da.reshape(T * B, GH)
        dWh = g[f"W{l}"][d_in:]
        np.matmul(h_prev.reshape(T * B, self.H).T, da2, out=dWh)   # sum_t h_{t-1}^T da_t
        if masks.wh[l] is not None:
            dWh *= masks.wh[l]
        np.matmul(np.ones(T * B, self.dtype), da2, out=g[f"b{l}"])   # column sums; 2x faster than .sum(0)
        if l == 0:
            self._input_weight_grad(g["W0"][:d_in], inp, da, is_ids, masks)
        else:
            np.matmul(inp.reshape(T * B, d_in).T, da2, out=g[f"W{l}"][:d_in])

    def backward(self, dlogits, cache):
        """Gradients of all parameters (flat vector, layout of `self.flat`) from d loss / d logits.

        Truncated BPTT: no gradient flows into the carried-in state.
        """
        caches, top, is_ids, (T, B), masks = cache
        gflat = np.empty_like(self.flat)
        g = self.views(gflat)
        dtop = self._readout_backward(g, top, dlogits).reshape(T, B, self.H)
        zeros = np.zeros((B, self.H), self.dtype)
        for l in range(self.L - 1, -1, -1):
            inp, mask, lcache = caches[l]
            if mask is not None:
                dtop *= mask
            da, _, _ = layer_backward(dtop, zeros, zeros, lcache)
            self._layer_grads(g, l, lcache[0][:-1], inp, da, is_ids, masks)
            if l > 0:
                d_in = self.params[f"W{l}"].shape[0] - self.H
                da2 = da.reshape(T * B, self.G * self.H)
                dtop = empty((T, B, d_in), self.dtype)
                np.matmul(da2, self.params[f"W{l}"][:d_in].T, out=dtop.reshape(T * B, d_in))
        return gflat

    def _input_weight_grad(self, out, inp, da, is_ids, masks):
        """Layer 0's dW_x = X^T (da * masks), X the (masked) inputs or one-hot ids; into `out`."""
        T, B, GH = da.shape
        de = da
        if masks.emb is not None or (is_ids and masks.rows is not None):
            de = da * masks.emb if masks.emb is not None else da.copy()
            if is_ids and masks.rows is not None:
                de *= masks.rows[inp][..., None]
        de = de.reshape(T * B, GH)
        if is_ids:
            np.matmul(_one_hot_t(inp.reshape(-1), out.shape[0], self.dtype), de, out=out)
        else:
            np.matmul(inp.reshape(T * B, -1).T, de, out=out)

    def _check_input(self, x):
        x = np.asarray(x)
        if np.issubdtype(x.dtype, np.integer):
            if x.ndim != 2:
                raise ValueError(f"character ids must have shape (T, B), got {x.shape}")
            if x.size and (x.min() < 0 or x.max() >= self.D):
                raise ValueError(f"character ids must be in [0, {self.D}), got [{x.min()}, {x.max()}]")
            return True, x
        if x.ndim != 3 or x.shape[2] != self.D:
            raise ValueError(f"features must have shape (T, B, {self.D}), got {x.shape}")
        return False, x.astype(self.dtype, copy=False)

    # ---- public API -----------------------------------------------------------------------

    def posterior(self, x, state=None):
        """Posteriors over the K classes.

        x: (T, B, D) feature vectors, (T, B) character ids, or one (D,) vector.
        Returns (probs, state): probs (T, B, K) (or (K,) for one vector), rows sum to 1.
        """
        single = np.ndim(x) == 1 and not np.issubdtype(np.asarray(x).dtype, np.integer)
        xs = np.asarray(x)[None, None, :] if single else x
        logits, state, _ = self.forward(xs, state)
        probs = softmax(logits)
        return (probs[0] if single else probs.reshape(*np.shape(xs)[:2], self.K)), state

    def loss_and_grads(self, x, targets, state=None, rng=None, masks=None):
        """Mean cross-entropy (nats) over all T*B positions, gradients by name, final state."""
        loss, gflat, state, _ = self.loss_grad_flat(x, targets, state, rng, masks)
        return loss, self.views(gflat), state

    def loss_grad_flat(self, x, targets, state=None, rng=None, masks=None, positions=None):
        """As `loss_and_grads`, with the gradient as one flat vector and the posteriors.

        `positions`: when this window holds one rank's lanes of a larger batch, the number of
        positions in the whole batch; loss and gradient are then this window's share of the
        batch mean, and the ranks' shares add up to it (model/ranks.py).
        """
        logits, state, cache = self.forward(x, state, rng, for_backward=True, masks=masks)
        targets = np.asarray(targets).reshape(-1)
        loss, ce_cache = softmax_cross_entropy(logits, targets)
        gflat = self.backward(softmax_cross_entropy_backward(ce_cache, positions), cache)
        if positions is not None:
            loss *= targets.size / positions
        return loss, gflat, state, ce_cache[0]

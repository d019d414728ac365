"""Training-time regularisers of the recurrent network: the random masks, drawn once per step.

All are off by default; each is one rate in [0, 1). Every mask is "inverted": kept entries are
scaled by 1/(1 - p), so the expected value of every masked quantity equals the unmasked one and
nothing changes at evaluation time.

    dropout                per-step dropout on each layer's output h_t, new at every t   (T, B, H)
    locked_dropout_in      variational ("locked") dropout on layer 0's input projection x_t W_x
                           (the character's embedding): one mask per lane per window    (B, G*H)
    locked_dropout_hidden  locked dropout on the output of every layer but the top one (B, H)
    locked_dropout_out     locked dropout on the top layer's output (the read-out's input) (B, H)
    weight_drop            DropConnect on each layer's recurrent W_h, one mask per step (H, G*H)
    embed_dropout          whole rows of layer 0's W_x (a character's embedding) dropped for
                           the step, in every lane and at every time step               (D,)

Why locked masks and weight drop: a per-step mask on h_t puts new noise on every step of the
recurrence, which disturbs the memory the cell is learning to keep; dropping the same units
for a whole window (Gal & Ghahramani) or the same recurrent weights for a whole step
(DropConnect, as in AWD-LSTM) regularises the recurrent path without that cost. See DESIGN.md.

Masks are drawn from the trainer's RNG in a fixed order (so a checkpointed RNG state resumes
bitwise), and the per-step masks first, in the order the network drew them before the others
existed, so configurations that use only `dropout` reproduce their earlier runs exactly.
"""
from dataclasses import dataclass, field, fields

import numpy as np

RATES = ("dropout", "locked_dropout_in", "locked_dropout_hidden", "locked_dropout_out",
         "weight_drop", "embed_dropout")


def dropout_mask(rng, shape, p, dtype):
    """Inverted-dropout mask: zeros with probability p, 1/(1-p) elsewhere (None when p == 0)."""
    if p <= 0:
        return None
    keep = rng.random(shape, dtype=np.float32) >= p
    mask = keep.astype(dtype)
    mask *= np.asarray(1.0 / (1.0 - p), dtype)
    return mask


def check_rates(rates):
    """Raise ValueError naming the first rate outside [0, 1)."""
    for name, p in rates.items():
        if name not in RATES:
            raise ValueError(f"unknown regulariser {name!r}; choose from {', '.join(RATES)}")
        if not 0.0 <= float(p) < 1.0:
            raise ValueError(f"{name} must be in [0, 1), got {p!r}")


@dataclass
class Masks:
    """One training step's masks; None wherever the regulariser is off.

    out[l] multiplies layer l's output (T, B, H) or (1, B, H); it combines the per-step and the
    locked mask, so forward and backward apply exactly one array per layer.
    """
    out: list = field(default_factory=list)
    emb: np.ndarray = None         # (B, G*H) on layer 0's x W_x
    rows: np.ndarray = None        # (D,) on the rows of layer 0's W_x
    wh: list = field(default_factory=list)

    def any(self):
        return any(m is not None for m in (*self.out, self.emb, self.rows, *self.wh))

    def lanes(self, lo, hi):
        """The masks of lanes lo:hi: per-lane masks sliced, the step's weight masks shared.

        A data-parallel rank that holds lanes lo:hi of the batch uses these, so that every
        rank applies the masks one process drawing for the whole batch would.
        """
        cut = lambda a: None if a is None else a[:, lo:hi]   # noqa: E731  (T or 1, B, H)
        return Masks(out=[cut(a) for a in self.out], emb=None if self.emb is None else self.emb[lo:hi],
                     rows=self.rows, wh=self.wh)


def draw_masks(rng, rates, L, T, B, H, GH, D, dtype):
    """All masks of one step for an L-layer network on a (T, B) window."""
    p = {name: float(rates.get(name, 0.0)) for name in RATES}
    step = [dropout_mask(rng, (T, B, H), p["dropout"], dtype) for _ in range(L)]
    masks = Masks(out=[])
    for l in range(L):
        rate = p["locked_dropout_out"] if l == L - 1 else p["locked_dropout_hidden"]
        locked = dropout_mask(rng, (1, B, H), rate, dtype)
        masks.out.append(_combine(step[l], locked))
    masks.emb = dropout_mask(rng, (B, GH), p["locked_dropout_in"], dtype)
    masks.rows = dropout_mask(rng, (D,), p["embed_dropout"], dtype)
    masks.wh = [dropout_mask(rng, (H, GH), p["weight_drop"], dtype) for _ in range(L)]
    return masks


def _combine(a, b):
    if a is None or b is None:
        return a if b is None else b
    return a * b


def no_masks(L):
    return Masks(out=[None] * L, wh=[None] * L)


def rates_of(obj):
    """The regulariser rates of a dataclass or mapping holding (some of) the RATES keys."""
    if isinstance(obj, dict):
        return {k: float(obj.get(k, 0.0)) for k in RATES}
    names = {f.name for f in fields(obj)}
    return {k: float(getattr(obj, k)) for k in RATES if k in names}

"""Optimizers, gradient clipping and the learning-rate schedule, all on flat parameter vectors.

Every optimizer updates `params` in place from `grad` and keeps its state as named arrays plus
a step count, so a checkpoint can store and restore it exactly.
"""
import math

import numpy as np


def clip_global_norm(grad, max_norm):
    """Scale `grad` in place so its L2 norm is at most max_norm; returns the norm before.

    The norm is BLAS's dot in the gradient's own dtype: a float64 copy first made this 40x
    slower (3 ms a step at 2x384), for a norm that is only compared with max_norm and logged.
    Only if that overflows (a norm above ~1e19) is it recomputed in float64.
    """
    with np.errstate(over="ignore"):
        norm = float(np.sqrt(np.dot(grad, grad)))
    if not np.isfinite(norm) and np.isfinite(grad).all():
        g64 = grad.astype(np.float64)
        norm = float(np.sqrt(np.dot(g64, g64)))
    if max_norm and norm > max_norm:
        grad *= grad.dtype.type(max_norm / (norm + 1e-12))
    return norm


class Optimizer:
    """Base: holds named state arrays shaped like the parameter vector."""
    slots = ()

    def __init__(self, size, dtype, weight_decay=0.0, decay_mask=None):
        self.state = {k: np.zeros(size, dtype) for k in self.slots}
        self.t = 0
        self.weight_decay = float(weight_decay)
        self.decay_mask = decay_mask  # 1 for matrices, 0 for biases; None = decay everything

    def state_dict(self):
        return {"t": self.t, **{f"opt.{k}": v for k, v in self.state.items()}}

    def load_state_dict(self, d):
        self.t = int(d["t"])
        for k in self.slots:
            self.state[k][...] = d[f"opt.{k}"]

    def _decay(self, params, lr):
        """Decoupled weight decay: params -= lr * wd * params (matrices only)."""
        if self.weight_decay:
            step = params * params.dtype.type(lr * self.weight_decay)
            if self.decay_mask is not None:
                step *= self.decay_mask
            params -= step


class SGD(Optimizer):
    """SGD with (heavy-ball) momentum."""
    slots = ("velocity",)

    def __init__(self, size, dtype, momentum=0.9, **kw):
        super().__init__(size, dtype, **kw)
        self.momentum = momentum

    def step(self, params, grad, lr):
        self.t += 1
        self._decay(params, lr)
        v = self.state["velocity"]
        v *= v.dtype.type(self.momentum)
        v += grad
        params -= v * v.dtype.type(lr)


class Adagrad(Optimizer):
    slots = ("sum_sq",)

    def __init__(self, size, dtype, eps=1e-8, **kw):
        super().__init__(size, dtype, **kw)
        self.eps = eps

    def step(self, params, grad, lr):
        self.t += 1
        self._decay(params, lr)
        s = self.state["sum_sq"]
        s += grad * grad
        params -= grad * lr / (np.sqrt(s) + s.dtype.type(self.eps))


class Adam(Optimizer):
    """Adam; with weight_decay it is AdamW (decay decoupled from the gradient)."""
    slots = ("m", "v")

    def __init__(self, size, dtype, betas=(0.9, 0.999), eps=1e-8, **kw):
        super().__init__(size, dtype, **kw)
        self.b1, self.b2, self.eps = float(betas[0]), float(betas[1]), float(eps)
        self._tmp = np.empty(size, dtype)   # one work vector: the update makes no temporaries

    def step(self, params, grad, lr):
        self.t += 1
        self._decay(params, lr)
        m, v, f = self.state["m"], self.state["v"], params.dtype.type
        tmp = self._tmp
        m *= f(self.b1)
        np.multiply(grad, f(1 - self.b1), out=tmp)
        m += tmp
        v *= f(self.b2)
        np.square(grad, out=tmp)
        tmp *= f(1 - self.b2)
        v += tmp
        step = lr * math.sqrt(1 - self.b2 ** self.t) / (1 - self.b1 ** self.t)
        np.sqrt(v, out=tmp)
        tmp += f(self.eps * math.sqrt(1 - self.b2 ** self.t))
        np.divide(m, tmp, out=tmp)
        tmp *= f(step)
        params -= tmp


OPTIMIZERS = {"sgd": SGD, "adagrad": Adagrad, "adam": Adam, "adamw": Adam}


def make_optimizer(name, size, dtype, weight_decay=0.0, decay_mask=None, **kw):
    """Build an optimizer by name; "adam" ignores weight_decay, "adamw" applies it decoupled."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(OPTIMIZERS)}")
    wd = 0.0 if name == "adam" else weight_decay
    return OPTIMIZERS[name](size, dtype, weight_decay=wd, decay_mask=decay_mask, **kw)


def learning_rate(base_lr, step, progress, warmup_steps=0, decay="cosine", min_ratio=0.1):
    """Learning rate at `step` (1-based) and `progress` in [0, 1] of the run.

    Linear warm-up over the first `warmup_steps` steps, then a decay driven by progress, which
    is steps done / steps planned, or seconds spent / time budget, so the same schedule works
    for a step count and for a wall-clock budget.
    """
    warm = min(1.0, step / warmup_steps) if warmup_steps else 1.0
    p = min(max(progress, 0.0), 1.0)
    if decay == "constant":
        factor = 1.0
    elif decay == "linear":
        factor = 1.0 - (1.0 - min_ratio) * p
    elif decay == "cosine":
        factor = min_ratio + (1.0 - min_ratio) * 0.5 * (1.0 + math.cos(math.pi * p))
    else:
        raise ValueError(f"unknown decay {decay!r}; choose constant, linear or cosine")
    return base_lr * warm * factor

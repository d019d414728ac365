"""Truncated-BPTT training on a token stream, with complete and exactly resumable state.

The training stream is cut into B lanes (contiguous segments); step k feeds every lane's next
T characters and carries each lane's (h, c) into the next step, so the model sees long context
while gradients are truncated at T. Each epoch starts the lanes at a different, seeded offset
(the stream is read as a ring), so windows do not always begin at the same characters.

Everything the next step depends on — parameters, optimizer state, step, RNG state, data
cursor, carried state, training seconds — is in `state_dict()`, which is why loading it and
continuing is bitwise identical to never having stopped.
"""
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass

import numpy as np

from .optim import clip_global_norm, learning_rate, make_optimizer
from .ranks import Ranks


class DivergenceError(RuntimeError):
    """The loss or the gradient became NaN or infinite."""


@dataclass(frozen=True)
class TrainSettings:
    batch_size: int = 64
    seq_len: int = 100
    steps: int = 1000
    time_budget_s: float = 0.0        # > 0: stop (and schedule the LR) by training seconds
    learning_rate: float = 2e-3
    optimizer: str = "adam"
    weight_decay: float = 0.0
    momentum: float = 0.9
    clip_norm: float = 5.0
    warmup_steps: int = 0
    decay: str = "cosine"
    min_lr_ratio: float = 0.1
    ema_decay: float = 0.0            # > 0: keep an exponential moving average of the weights
    seed: int = 0


class Lanes:
    """B lanes over a token stream; `window(epoch, pos)` gives inputs and targets (T, B).

    Lane b of epoch e starts at (offset_e + b * lane_len) mod n and window k of it covers the
    T + 1 characters from k * T on, read as a ring. Only the B start positions are kept: each
    window is sliced out of the stream when it is asked for, so the memory used does not grow
    with the stream. The stream may be an array or anything with `len`, `dtype` and contiguous
    slices, such as a TokenFile that reads the slices from disk. `part` = (lo, hi) reads only
    lanes lo:hi of the B (a data-parallel rank's block); where each lane starts does not change.
    """

    def __init__(self, stream, batch, seq_len, seed, part=None):
        self.stream = stream if hasattr(stream, "dtype") else np.asarray(stream)
        self.B, self.T, self.seed = batch, seq_len, seed
        self.part = part or (0, batch)   # the lanes this process reads (a data-parallel rank's)
        self.lane_len = (len(self.stream) - 1) // batch
        if self.lane_len < seq_len + 1:
            raise ValueError(f"the training stream ({len(self.stream)} chars) is too short for "
                             f"{batch} lanes of {seq_len + 1} chars; lower batch_size or seq_len")
        self.windows_per_epoch = (self.lane_len - 1) // seq_len
        self._epoch, self._starts = None, None

    def _starts_for(self, epoch):
        if epoch != self._epoch:
            n = len(self.stream)
            offset = 0 if epoch == 0 else int(np.random.default_rng([self.seed, epoch]).integers(n))
            self._starts, self._epoch = (offset + np.arange(self.B) * self.lane_len) % n, epoch
        return self._starts

    def window(self, epoch, pos):
        n, span = len(self.stream), self.T + 1
        lo, hi = self.part
        chunk = np.empty((span, hi - lo), np.int64)                # (T + 1, lanes of this part)
        for b, start in enumerate((self._starts_for(epoch)[lo:hi] + pos * self.T) % n):
            head = self.stream[start:start + span]
            chunk[:len(head), b] = head
            if len(head) < span:                                   # the ring wraps to the start
                chunk[len(head):, b] = self.stream[:span - len(head)]
        return chunk[:-1], chunk[1:]


class Trainer:
    """Owns one training run: network, optimizer, RNG, data cursor and carried state.

    With data-parallel `ranks` (model/ranks.py) each process makes one of these, reads its
    block of lanes, and sums gradients with the others every step; every rank draws the whole
    batch's masks from the same RNG and keeps its block, so N ranks use the masks one process
    would, and they apply the same update to the same parameters.
    """

    def __init__(self, net, stream, settings: TrainSettings, ranks=None):
        self.net, self.cfg, self.ranks = net, settings, ranks or Ranks()
        part = self.ranks.lanes(settings.batch_size)
        self.lanes = Lanes(stream, settings.batch_size, settings.seq_len, settings.seed, part)
        decay_mask = np.zeros_like(net.flat)
        for name, view in net.views(decay_mask).items():
            view[...] = 1.0 if name.startswith("W") else 0.0
        self.opt = make_optimizer(settings.optimizer, net.flat.size, net.dtype,
                                  weight_decay=settings.weight_decay, decay_mask=decay_mask,
                                  **({"momentum": settings.momentum} if settings.optimizer == "sgd" else {}))
        self.rng = np.random.default_rng([settings.seed, 1])
        self.step, self.epoch, self.pos, self.seconds = 0, 0, 0, 0.0
        self.state = net.zero_state(part[1] - part[0])
        self._tail, self._summed_at = 0.0, 0.0   # ranks: rank 0's step time after the last sum
        # Float64 so that a decay of 0.9995 does not round each small update away.
        self.avg = np.zeros(net.flat.shape, np.float64) if settings.ema_decay > 0 else None

    def progress(self):
        """Fraction of the run done: by training seconds under a time budget, else by steps."""
        if self.cfg.time_budget_s > 0:
            return min(1.0, self.seconds / self.cfg.time_budget_s)
        return min(1.0, self.step / max(self.cfg.steps, 1))

    def done(self):
        return self.progress() >= 1.0

    def train_step(self, stop=False):
        """One optimizer update on the next window of every lane; returns its statistics.

        `stop`: this process was asked to stop; with ranks the request is shared in the step's
        sum, so that all stop after the same step (stats["stop"]).
        """
        t0 = time.perf_counter()
        x, y = self.lanes.window(self.epoch, self.pos)
        loss, grad, correct, top, stop = self._summed_step(x, y, stop, t0)
        norm = clip_global_norm(grad, self.cfg.clip_norm)
        if not (np.isfinite(loss) and np.isfinite(norm)):
            fix = "lower train.learning_rate" + (" or train.clip_norm" if self.cfg.clip_norm else
                                                   ", or turn on clipping with train.clip_norm")
            raise DivergenceError(f"loss became {loss} (gradient norm {norm}) at step {self.step + 1}; {fix}")
        self.step += 1
        lr = learning_rate(self.cfg.learning_rate, self.step, self.progress(), self.cfg.warmup_steps,
                           self.cfg.decay, self.cfg.min_lr_ratio)
        self.opt.step(self.net.flat, grad, lr)
        self._update_average()
        self._advance()
        if self.ranks.size == 1:   # its own clock: the whole step, now
            self.seconds += time.perf_counter() - t0
        else:   # the agreed time up to the sum; the rest of this step is counted with the next
            self._tail = time.perf_counter() - self._summed_at
        n = y.shape[0] * self.cfg.batch_size
        return {"step": self.step, "loss": loss, "lr": lr, "grad_norm": norm,
                "accuracy": correct / n, "mean_max_posterior": top / n,
                "chars": n, "epoch": self.epoch, "stop": bool(stop)}

    def _summed_step(self, x, y, stop, t0):
        """This rank's share of the step, summed over the ranks in one Allreduce (model/ranks.py,
        STEP_SUMS; one process: nothing to sum). Returns (loss, gradient, correct, top, stop).

        Every rank draws the whole batch's masks and keeps its lanes', and scales its share by
        the whole batch's positions, so the shares add up to what one process computes. Rank
        0's clock is its time from this step's start to the sum, plus the rest of its previous
        step (what it does between steps, such as validation, is not training time), so that
        every rank counts the same training time and a time budget ends them together.
        """
        T, B = y.shape[0], self.cfg.batch_size
        rng = self.rng if self.net.stochastic else None
        masks = self.net.draw_masks(rng, T, B).lanes(*self.lanes.part) if rng is not None else None
        loss, grad, self.state, probs = self.net.loss_grad_flat(x, y, self.state, masks=masks,
                                                                positions=T * B)
        many = self.ranks.size > 1   # one process reads its clock twice a step, as before ranks
        clock = time.perf_counter() - t0 + self._tail if many and self.ranks.root else 0.0
        grad, sums = self.ranks.step_sum(grad, f"step {self.step + 1}'s gradient sum", loss=loss,
                                         correct=(probs.argmax(axis=1) == y.reshape(-1)).sum(),
                                         top=probs.max(axis=1).sum(), stop=float(stop), seconds=clock)
        if many:
            self._summed_at = time.perf_counter()
            self.seconds += sums["seconds"]
        return sums["loss"], grad, float(sums["correct"]), float(sums["top"]), sums["stop"] > 0

    def _update_average(self):
        """avg <- d avg + (1 - d) params, with d = min(ema_decay, (1 + t) / (10 + t)).

        The ramp keeps the average from dwelling on the first, poor weights: early on it
        follows the parameters closely, and it reaches its full horizon of 1 / (1 - decay)
        steps only after that many steps (the schedule of TensorFlow's moving averages).
        """
        if self.avg is None:
            return
        if self.step == 1:
            self.avg[...] = self.net.flat
            return
        d = min(self.cfg.ema_decay, (1 + self.step) / (10 + self.step))
        self.avg *= d
        self.avg += (1 - d) * self.net.flat.astype(np.float64)

    @contextmanager
    def averaged(self):
        """Inside: the network holds the averaged weights (if averaging is on); restored after."""
        if self.avg is None or self.step == 0:
            yield self.net
            return
        keep = self.net.flat.copy()
        self.net.flat[...] = self.avg
        try:
            yield self.net
        finally:
            self.net.flat[...] = keep

    def _advance(self):
        self.pos += 1
        if self.pos >= self.lanes.windows_per_epoch:   # new epoch: new lanes, fresh state
            self.epoch, self.pos = self.epoch + 1, 0
            self.state = self.net.zero_state(self.state[0].shape[1])

    def state_dict(self):
        """(arrays, meta) holding everything needed to continue exactly.

        The carried state is the whole batch's: with ranks this gathers every rank's block of
        lanes, so all ranks must call it at the same step.
        """
        h, c = (self.ranks.gather_lanes(a, axis=1) for a in self.state)
        arrays = {"params": self.net.flat, "state.h": h, "state.c": c}
        if self.avg is not None:
            arrays["avg"] = self.avg
        opt = self.opt.state_dict()
        arrays.update({k: v for k, v in opt.items() if isinstance(v, np.ndarray)})
        meta = {"step": self.step, "epoch": self.epoch, "pos": self.pos, "seconds": self.seconds,
                "opt_t": opt["t"], "rng": self.rng.bit_generator.state,
                "model": self.net.config(), "train": asdict(self.cfg)}
        return arrays, meta

    def load_state_dict(self, arrays, meta):
        if arrays["params"].shape != self.net.flat.shape:
            raise ValueError("checkpoint parameters do not match this model's size")
        self.net.flat[...] = arrays["params"]
        lo, hi = self.lanes.part     # this rank's lanes of the whole batch's state
        self.state = (arrays["state.h"][:, lo:hi].copy(), arrays["state.c"][:, lo:hi].copy())
        if self.avg is not None:   # a run that had no average (continued with one) starts it here
            self.avg[...] = arrays["avg"] if "avg" in arrays else arrays["params"]
        self.opt.load_state_dict({"t": meta["opt_t"], **arrays})
        self.rng.bit_generator.state = meta["rng"]
        self.step, self.epoch, self.pos = meta["step"], meta["epoch"], meta["pos"]
        self.seconds = meta["seconds"]

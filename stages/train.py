"""Train stage: fit the CIFG-LSTM on the training shards, resumably.

Folder layout (`out_dir`):
    checkpoints/step-00001200.ckpt   complete training state, newest two kept
    metrics.jsonl                    one JSON line per evaluation point (the learning curve)
    best.ckpt / last.ckpt            parameters + model config of the best-validation / final model
    init_from.json                   only after a warm start: the model it started from
A rerun after a crash or kill resumes from the newest checkpoint that verifies; a damaged one
is reported and skipped. SIGINT/SIGTERM write a checkpoint before stopping.
"""
import json
import signal
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from model import (CheckpointError, CIFGLSTM, DivergenceError, Trainer, TrainSettings, evaluate_stream,
                   load_model, save_checkpoint)
from model.heap import reuse_freed_memory
from model.regularise import rates_of
from model.sampling import generate

from . import persist
from .atomic import atomic_write_text
from .errors import UserError
from .train_start import checkpoints, start

KEEP_CHECKPOINTS = 2


class Interrupted(UserError):
    """Training was stopped by a signal after saving a checkpoint."""


def build(model_cfg, train_cfg, seq_len, vocab_size, train_stream, ranks=None):
    net = CIFGLSTM(vocab_size, model_cfg.hidden_size, model_cfg.num_layers, vocab_size,
                   seed=model_cfg.seed, dtype=np.dtype(model_cfg.dtype), cell=model_cfg.cell,
                   char_inputs=True, **rates_of(model_cfg))
    settings = TrainSettings(batch_size=train_cfg.batch_size, seq_len=seq_len,
                             steps=train_cfg.steps, time_budget_s=train_cfg.time_budget_s,
                             learning_rate=train_cfg.learning_rate, optimizer=train_cfg.optimizer,
                             weight_decay=train_cfg.weight_decay, momentum=train_cfg.momentum,
                             clip_norm=train_cfg.clip_norm, warmup_steps=train_cfg.warmup_steps,
                             decay=train_cfg.decay, min_lr_ratio=train_cfg.min_lr_ratio,
                             ema_decay=train_cfg.ema_decay, seed=train_cfg.seed)
    try:
        return Trainer(net, train_stream, settings, ranks)
    except ValueError as e:
        raise UserError(f"{e} (train.batch_size / shards.seq_len)") from None


def remove_stale_temp_files(out_dir):
    """Delete temp files of writes a kill cut short (the caller holds the folder's lock)."""
    out_dir = Path(out_dir)
    for stale in [*out_dir.glob(".tmp-*.ckpt"), *out_dir.glob("checkpoints/.tmp-*.ckpt"),
                  *out_dir.glob(".*.tmp")]:
        stale.unlink(missing_ok=True)


class RanksDisagree(RuntimeError):
    """Data-parallel ranks no longer hold the same parameters (they must, step after step)."""


def write_checkpoint(trainer, out_dir):
    """Save the complete training state (rank 0 writes; every rank must call it together)."""
    if not trainer.ranks.same_everywhere(trainer.net.flat):
        raise RanksDisagree(f"the training ranks' parameters differ at step {trainer.step}; "
                            "rerun to resume from the last checkpoint (and report this)")
    state = trainer.state_dict()   # gathers every rank's lanes of the carried state
    if not trainer.ranks.root:
        return None
    folder = Path(out_dir, "checkpoints")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step-{trainer.step:08d}.ckpt"
    save_checkpoint(path, *state)
    for old in checkpoints(out_dir)[KEEP_CHECKPOINTS:]:
        old.unlink(missing_ok=True)
    persist.flush(out_dir)   # a remote store gets the checkpoint now: a rerun anywhere resumes
    return path


def save_net(net, path, extra):
    """Parameters and architecture only: what Sample and Evaluate need."""
    save_checkpoint(path, {"params": net.flat}, {"model": net.config(), **extra})


def save_model(trainer, path, extra):
    """The trainer's model; with weight averaging on, the averaged weights (those validated)."""
    with trainer.averaged() as net:
        save_net(net, path, {"step": trainer.step, "averaged": trainer.avg is not None, **extra})


def load_trained(folder):
    """(net, meta) of a finished Train folder's best.ckpt; damage names the folder to redo."""
    try:
        return load_model(Path(folder) / "best.ckpt")
    except CheckpointError as e:
        raise UserError(f"{e}: delete the folder {folder} and rerun") from None


@contextmanager
def stop_on_signals():
    """Turn SIGINT/SIGTERM into a flag the loop checks between steps."""
    flag = {"signal": None}

    def handler(signum, _frame):
        flag["signal"] = signal.Signals(signum).name
    old = {}
    try:
        for s in (signal.SIGINT, signal.SIGTERM):
            old[s] = signal.signal(s, handler)
    except ValueError:   # not the main thread: signals stay with whoever owns them
        pass
    try:
        yield flag
    finally:
        for s, h in old.items():
            signal.signal(s, h)


def _restore_metrics(path, upto_step):
    """Keep the learning-curve lines up to the resumed step (later ones will be redone)."""
    if not path.exists():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:   # blank, or the last line cut short by a crash: it is redone
            continue
    rows = [r for r in rows if r["step"] <= upto_step]
    atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in rows))
    return rows


class _Monitor:
    """Log lines, learning curve, best model and progress reporting for one run (rank 0's)."""

    def __init__(self, trainer, out_dir, val_ids, vocab, cfg, log, report):
        self.tr, self.out, self.val, self.vocab, self.cfg = trainer, Path(out_dir), val_ids, vocab, cfg
        self.log, self.report = log, report or (lambda fraction, message: None)
        self.root = trainer.ranks.root
        self.curve = _restore_metrics(self.out / "metrics.jsonl", trainer.step) if self.root else []
        self.best = min((r["val_nats_per_char"] for r in self.curve), default=float("inf"))
        self.window, self.t0, self.eval_seconds = [], time.perf_counter(), 0.0
        self.since_eval = []   # training losses since the last evaluation (the curve's train_loss)

    def after_step(self, stats):
        if not self.root:    # the other ranks only take part in the checkpoint's gather
            if stats["step"] % self.cfg.checkpoint_every == 0:
                write_checkpoint(self.tr, self.out)
            return
        self.window.append(stats)
        self.since_eval.append(stats["loss"])
        self.last_lr = stats["lr"]
        step = stats["step"]
        if step % self.cfg.log_every == 0:
            self._log_line()
        if step % self.cfg.eval_every == 0 or self.tr.done():
            self.evaluate()
        if step % self.cfg.sample_every == 0:
            with self.tr.averaged() as net:
                self.log("sample: " + repr(sample_text(net, self.vocab, 160)))
        if step % self.cfg.checkpoint_every == 0:
            write_checkpoint(self.tr, self.out)

    def _log_line(self):
        w, tr = self.window, self.tr
        avg = {k: float(np.mean([s[k] for s in w])) for k in ("loss", "accuracy", "mean_max_posterior")}
        rate = tr.step * tr.cfg.batch_size * tr.cfg.seq_len / max(tr.seconds, 1e-9)
        frac = tr.progress()
        eta = tr.seconds * (1 - frac) / frac if frac > 0 else float("nan")
        msg = (f"step {tr.step} loss {avg['loss']:.4f} acc {avg['accuracy']:.3f} "
               f"max-post {avg['mean_max_posterior']:.3f} lr {w[-1]['lr']:.2e} "
               f"{rate:,.0f} chars/s ETA {eta:,.0f}s")
        self.log(msg)
        self.report(frac, msg)
        self.window = []

    def evaluate(self):
        t0 = time.perf_counter()
        with self.tr.averaged() as net:   # the weights that best.ckpt would keep
            res = evaluate_stream(net, self.val, lanes=min(32, max(1, len(self.val) // 2000)),
                                  burn_in=200)
        if not np.isfinite(res["perplexity"]):   # NaN, or a loss so large exp() overflows
            raise DivergenceError(f"validation loss became {res['nats_per_char']:.4g} nats/char at step "
                                  f"{self.tr.step}; lower train.learning_rate or set train.clip_norm")
        self.eval_seconds += time.perf_counter() - t0
        row = {"step": self.tr.step, "t": round(self.tr.seconds, 3),
               "wall": round(time.perf_counter() - self.t0, 3), "train_loss":
               float(np.mean(self.since_eval)) if self.since_eval else None,
               "val_nats_per_char": res["nats_per_char"], "val_chars": res["chars"],
               "lr": self.last_lr}
        self.since_eval = []
        with open(self.out / "metrics.jsonl", "a") as fh:
            fh.write(json.dumps(row) + "\n")
        self.curve.append(row)
        self.log(f"step {self.tr.step} validation {res['nats_per_char']:.4f} nats/char "
                 f"({res['bits_per_char']:.3f} bits/char) on {res['chars']:,} chars")
        if res["nats_per_char"] < self.best:
            self.best = res["nats_per_char"]
            save_model(self.tr, self.out / "best.ckpt", {"val_nats_per_char": self.best})


def sample_text(net, vocab, length, prime="\n", temperature=0.8, seed=0):
    ids = generate(net, vocab.encode(prime, unknown="skip") if prime else [0], length,
                   temperature=temperature, seed=seed)
    return vocab.decode(ids[0])


def run_training(train_ids, val_ids, vocab, model_cfg, train_cfg, seq_len, out_dir, *, log=print,
                 report=None, continue_from=None, init=None, ranks=None):
    """Train (or resume) into `out_dir`; returns a summary dict for meta.json.

    `init(net) -> dict | None` (a warm start) sets the initial weights of a run that neither
    resumes nor continues; what it returns is kept in `init_from.json` (so a resumed run still
    reports it) and in the summary as `init_from`. `ranks` (model/ranks.py): this process is
    one of several data-parallel ranks; rank 0 writes every file and returns the summary, the
    others return None.
    """
    with reuse_freed_memory():   # each step's window buffers reused, not faulted in afresh
        return _train(train_ids, val_ids, vocab, model_cfg, train_cfg, seq_len, out_dir, log,
                      report, continue_from, init, ranks)


def _train(train_ids, val_ids, vocab, model_cfg, train_cfg, seq_len, out_dir, log, report,
           continue_from, init, ranks):
    out_dir = Path(out_dir)
    trainer = build(model_cfg, train_cfg, seq_len, vocab.size, train_ids, ranks)
    if trainer.ranks.root:
        out_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_temp_files(out_dir)
    resumed, started_from = start(trainer, out_dir, log, continue_from, init)
    if train_cfg.eval_chars:
        val_ids = val_ids[:train_cfg.eval_chars]
    mon = _Monitor(trainer, out_dir, np.asarray(val_ids, np.int64), vocab, train_cfg, log, report)
    # Overflow in the forward pass shows up as a non-finite loss, a DivergenceError naming the step.
    with stop_on_signals() as flag, np.errstate(over="ignore", invalid="ignore"):
        while not trainer.done():
            stats = trainer.train_step(stop=flag["signal"] is not None)
            mon.after_step(stats)
            if stats["stop"]:   # this process or (with ranks) another was signalled
                path = write_checkpoint(trainer, out_dir)
                raise Interrupted(f"training stopped by {flag['signal'] or 'a signal'} at step "
                                  f"{trainer.step}; checkpoint {path.name if path else ''} saved, "
                                  "rerun the same command to continue")
    write_checkpoint(trainer, out_dir)
    if not trainer.ranks.root:
        return None
    save_model(trainer, out_dir / "last.ckpt", {})
    if not (out_dir / "best.ckpt").exists():
        save_model(trainer, out_dir / "best.ckpt", {})
    return {"steps": trainer.step, "train_seconds": trainer.seconds, "eval_seconds": mon.eval_seconds,
            "chars_per_s": trainer.step * train_cfg.batch_size * seq_len / max(trainer.seconds, 1e-9),
            "best_val_nats_per_char": mon.best, "params": trainer.net.num_params,
            "processes": trainer.ranks.size,
            "resumed_from": resumed.name if resumed else None,
            "continued_from": str(continue_from) if continue_from and not resumed else None,
            "init_from": started_from}

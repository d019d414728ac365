"""How good the model gets for the training time it is given.

    python benchmarks/time_to_quality.py --config configs/tinyshakespeare-10min.yaml --budget-s 600

Prepares the data with the pipeline's own stages (cached under the config's artifacts_dir),
then trains the config's model for `--budget-s` seconds of training time, with the learning-rate
schedule driven by that budget. At `--points` evenly spaced moments it pauses the clock and
scores the whole validation split with the state carried through (the Evaluate stage's
protocol: `evaluate.lanes` lanes after `evaluate.burn_in` unscored characters, with the end of
the training text as context). Prints one JSON line per point: `t` (training seconds so far),
`val_nats_per_char`, `step`, `chars_per_s`, `eval_s` (evaluation time, not counted in `t`),
`train_nats_per_char` (mean training loss since the previous point, dropout on: the gap to
the validation loss shows overfitting) and `epoch` (passes over the training text so far).
The last line is the final model, also scored on independent 256-character windows
(`val_window256_nats_per_char`, the fixed-context protocol of character transformers), and
names the lowest validation loss of all points (`best_val_nats_per_char`, at `best_t`): the
model the pipeline would keep as best.ckpt when it evaluates at the same moments.

`--processes N` trains on N data-parallel MPI ranks (the script starts itself under mpiexec,
one BLAS thread per rank); rank 0 scores and prints, and scoring pauses no rank's clock.
"""
import argparse
import dataclasses
import json
import os
import subprocess
import sys
import time

import luigi
import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from model import evaluate_stream  # noqa: E402
from model.ranks import Ranks  # noqa: E402
from pipeline import BuildVocab, EncodeShards  # noqa: E402
from pipeline.config import load_config  # noqa: E402
from pipeline.ranks import mpiexec  # noqa: E402
from stages.errors import UserError  # noqa: E402
from stages.shards import read_stream  # noqa: E402
from stages.train import build  # noqa: E402
from stages.vocab import Vocab  # noqa: E402


def prepare(config, ranks):
    """Shards for this config via the pipeline (a no-op when cached); returns streams and vocab."""
    task = EncodeShards(config=config)
    if ranks.root and not luigi.build([task], local_scheduler=True, log_level="WARNING"):
        sys.exit("error: preparing the data failed (see the messages above)")
    ranks.share(None)   # the others wait until rank 0 has the shards
    vocab = Vocab.load(task.input_folder(BuildVocab) / "vocab.json")
    streams = [read_stream(task.folder(), s, expect_vocab_fingerprint=vocab.fingerprint).astype(np.int64)
               for s in ("train", "val")]
    return streams, vocab


def score(net, train_ids, val_ids, ev):
    t0 = time.perf_counter()
    res = evaluate_stream(net, val_ids, context=train_ids[-ev.burn_in:] if ev.burn_in else None,
                          lanes=ev.lanes, burn_in=ev.burn_in)
    return res["nats_per_char"], time.perf_counter() - t0


def point_row(trainer, nats, eval_s, losses):
    """One evaluation point: clock, validation and training loss since the previous point."""
    chars = trainer.step * trainer.lanes.B * trainer.lanes.T
    return {"t": round(trainer.seconds, 2), "step": trainer.step, "val_nats_per_char": round(nats, 4),
            "chars_per_s": round(chars / trainer.seconds), "eval_s": round(eval_s, 2),
            "train_nats_per_char": round(float(np.mean(losses)), 4), "epoch": trainer.epoch}


def run(config, budget, points, ranks):
    cfg = load_config(config)
    (train_ids, val_ids), vocab = prepare(config, ranks)
    tcfg = dataclasses.replace(cfg.train, time_budget_s=float(budget), steps=10 ** 9)
    trainer = build(cfg.model, tcfg, cfg.shards.seq_len, vocab.size, train_ids, ranks)
    marks = [budget * (k + 1) / points for k in range(points)]
    total_eval, losses, best = 0.0, [], (float("inf"), 0.0)
    while marks:
        losses.append(trainer.train_step()["loss"])
        if trainer.seconds >= marks[0] or trainer.done():
            while marks and trainer.seconds >= marks[0]:
                marks.pop(0)
            done = trainer.done() or not marks
            if not ranks.root:
                marks = [] if done else marks
                continue
            with trainer.averaged() as net:    # the weights the pipeline would keep
                nats, eval_s = score(net, train_ids, val_ids, cfg.evaluate)
                w = evaluate_stream(net, val_ids, window=256)["nats_per_char"] if done else None
            total_eval += eval_s
            best = min(best, (nats, trainer.seconds))
            row = point_row(trainer, nats, eval_s, losses)
            losses = []
            if done:
                row.update(final=True, val_window256_nats_per_char=round(w, 4),
                           best_val_nats_per_char=round(best[0], 4), best_t=round(best[1], 2),
                           total_eval_s=round(total_eval, 1), params=trainer.net.num_params,
                           config=config, budget_s=budget, processes=ranks.size)
                marks = []
            print(json.dumps(row), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--config", required=True, help="pipeline config (model, train, data)")
    p.add_argument("--budget-s", type=float, required=True, help="training seconds")
    p.add_argument("--points", type=int, default=10, help="evaluation points along the run")
    p.add_argument("--processes", type=int, default=1, help="data-parallel MPI ranks")
    args = p.parse_args()
    if args.processes > 1 and "PMI_RANK" not in os.environ:   # start the ranks, then wait
        cmd = [mpiexec(), "-n", str(args.processes), "-genv", "OPENBLAS_NUM_THREADS", "1",
               sys.executable, *sys.argv]
        sys.exit(subprocess.run(cmd).returncode)
    ranks = Ranks()
    if "PMI_RANK" in os.environ:
        from mpi4py import MPI
        ranks = Ranks(MPI.COMM_WORLD)
    try:
        run(args.config, args.budget_s, args.points, ranks)
    except UserError as e:
        sys.exit(f"error: {e}")


if __name__ == "__main__":
    main()

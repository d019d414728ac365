"""Run under mpiexec by tests/test_ranks.py: a Trainer on N ranks, results saved by rank 0.

    mpiexec -n 2 python -m tests.mpi_engine CASE_JSON OUT.npz

CASE_JSON: {"dtype", "optimizer", "steps", "rates", "resume_at"}. With resume_at = k the run
trains k steps, saves a checkpoint (rank 0 writes it, every rank gathers), makes new Trainers
on every rank that load it, and trains the rest: the same as never stopping, bitwise.
"""
import json
import sys

import numpy as np
from mpi4py import MPI

from model import CIFGLSTM, Trainer, TrainSettings, load_checkpoint, save_checkpoint
from model.ranks import Ranks

STREAM = np.random.default_rng(0).integers(0, 11, 4000)


def trainer(case, ranks=None):
    net = CIFGLSTM(11, 16, 2, 11, seed=0, dtype=np.dtype(case["dtype"]), char_inputs=True, **case["rates"])
    settings = TrainSettings(batch_size=8, seq_len=10, steps=10 ** 6, learning_rate=case.get("lr", 0.1),
                             optimizer=case["optimizer"], clip_norm=case.get("clip", 0.0),
                             warmup_steps=0, decay="constant", seed=3)
    return Trainer(net, STREAM, settings, ranks)


def run(case, ranks, out):
    tr, losses = trainer(case, ranks), []
    k = case.get("resume_at") or case["steps"]
    losses += [tr.train_step()["loss"] for _ in range(k)]
    if case.get("resume_at"):
        state = tr.state_dict()
        if ranks.root:
            save_checkpoint(out + ".ckpt", *state)
        ranks.comm.Barrier()
        tr = trainer(case, ranks)
        tr.load_state_dict(*load_checkpoint(out + ".ckpt"))
        losses += [tr.train_step()["loss"] for _ in range(case["steps"] - k)]
    h, c = tr.state_dict()[0]["state.h"], tr.state_dict()[0]["state.c"]
    if ranks.root:
        np.savez(out, params=tr.net.flat, losses=np.array(losses), h=h, c=c)


if __name__ == "__main__":
    run(json.loads(sys.argv[1]), Ranks(MPI.COMM_WORLD), sys.argv[2])

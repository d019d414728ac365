"""Run under mpiexec by tests/test_ranks.py: a Trainer on N ranks, results saved by rank 0.

    mpiexec -n 2 python -m tests.mpi_engine CASE_JSON OUT.npz

CASE_JSON: {"dtype", "optimizer", "steps", "rates", "resume_at"}. With resume_at = k the run
trains k steps, saves a checkpoint (rank 0 writes it, every rank gathers), makes new Trainers
on every rank that load it, and trains the rest: the same as never stopping, bitwise.
CASE_JSON {"sockets": true}: an Allreduce of 2x384's gradient size, then OUT (JSON) lists every
rank's TCP sockets (local address, remote address, state) and the launcher's control port.
"""
import ipaddress
import json
import os
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


def _address(hexed):
    host, port = hexed.split(":")
    raw = bytes.fromhex(host)
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))   # per-word little-endian
    return str(ipaddress.ip_address(words)), int(port, 16)


def own_sockets():
    """This process's TCP sockets as [local (addr, port), remote (addr, port), state hex]."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    found = []
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        for line in open(table).read().splitlines()[1:]:
            f = line.split()
            if f[9] in inodes:
                found.append([_address(f[1]), _address(f[2]), f[3]])
    return found


def sockets(comm, out):
    buf = np.ones(2 * 1_200_000)   # about 2x384's gradient, in float64: rendezvous, not eager
    comm.Allreduce(MPI.IN_PLACE, buf)
    parent = open(f"/proc/{os.getppid()}/cmdline", "rb").read().split(b"\0")
    control = [a.decode() for prev, a in zip(parent, parent[1:]) if prev == b"--control-port"]
    seen = comm.gather(own_sockets(), root=0)
    if comm.rank == 0:
        with open(out, "w") as f:
            json.dump({"sockets": seen, "control_port": control}, f)


if __name__ == "__main__":
    CASE = json.loads(sys.argv[1])
    if CASE.get("sockets"):
        sockets(MPI.COMM_WORLD, sys.argv[2])
    else:
        run(CASE, Ranks(MPI.COMM_WORLD), sys.argv[2])

"""The model's Allreduce between two "hosts" on shaped links, and memory-bandwidth sharing.

    sudo python benchmarks/netns_allreduce.py [--reps 10]      # links (needs root)
    python benchmarks/netns_allreduce.py --contention [--steps 6]

Links: two network namespaces joined by a veth pair (benchmarks/netns_hosts.py), MPI launched
through them with TCP pinned to the veth. For the link unshaped and shaped with tc tbf to 10
and 1 Gbit/s it prints one JSON line per model size: the median time to sum the 2x384 / 2x512
gradient buffer over the two ranks, beside benchmarks/scaling.py's network term for it
(2 (N-1)/N S / bandwidth + 2 (N-1) latency, N = 2, latency as scaling.py assumes); and one
line with the link's per-message latency (half the median ping-pong of one byte, and the
median Allreduce of 8 bytes). tbf shapes bandwidth only: this kernel has no netem, so no
delay can be added, and the latency measured is the veth's own.

Contention: N = 1 and 2 single-thread processes run the training step (64 lanes, no
communication) at the same time; the slow-down of the step at N = 2 is the memory-bandwidth
(and core) sharing that the projection's compute term leaves out.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, REPO)
from benchmarks.netns_hosts import Hosts  # noqa: E402
from pipeline.ranks import mpiexec  # noqa: E402

VOCAB, HIDDEN = 65, (384, 512)
RATES = (None, "10gbit", "1gbit")
GBIT = {None: None, "10gbit": 10, "1gbit": 1}


def grad_floats(hidden):
    from model import CIFGLSTM
    from model.ranks import STEP_SUMS
    return CIFGLSTM(VOCAB, hidden, 2, VOCAB, seed=0, char_inputs=True).flat.size + len(STEP_SUMS)


def worker(reps):
    """Under mpiexec on the two hosts: rank 0 prints the measured lines."""
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    out = []
    for hidden in HIDDEN:
        buf = np.ones(grad_floats(hidden), np.float32)
        times = []
        for _ in range(reps + 1):   # the first one connects: not counted
            comm.Barrier()
            t0 = time.perf_counter()
            comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
            times.append(time.perf_counter() - t0)
        out.append({"hidden": hidden, "bytes": buf.nbytes, "allreduce_s": statistics.median(times[1:])})
    one, rtt, small = np.zeros(1, np.uint8), [], []
    for _ in range(1000):
        t0 = time.perf_counter()
        if comm.Get_rank() == 0:
            comm.Send(one, 1)
            comm.Recv(one, 1)
        else:
            comm.Recv(one, 0)
            comm.Send(one, 0)
        rtt.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        comm.Allreduce(MPI.IN_PLACE, np.zeros(1), op=MPI.SUM)
        small.append(time.perf_counter() - t0)
    out.append({"latency_s": statistics.median(rtt) / 2, "allreduce_8b_s": statistics.median(small)})
    if comm.Get_rank() == 0:
        print(json.dumps(out), flush=True)


def links(reps):
    from benchmarks.scaling import LATENCY_S, ring_allreduce_s
    with tempfile.TemporaryDirectory() as tmp:
        hosts = Hosts(tmp).make()
        try:
            for rate in RATES:
                hosts.shape(rate)
                cmd = [*hosts.inside(0), mpiexec(), "-hosts", ",".join(hosts.ips), "-n", "2",
                       sys.executable, os.path.abspath(__file__), "--worker", str(reps)]
                env = {**os.environ, **hosts.env(), "PYTHONPATH": REPO, "OPENBLAS_NUM_THREADS": "1"}
                done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, cwd=REPO)
                rows = json.loads(done.stdout.strip().splitlines()[-1])
                link = rate or "veth unshaped"
                for row in rows[:-1]:
                    gbit = GBIT[rate]
                    proj = ring_allreduce_s(2, row["bytes"], gbit * 1e9 / 8, LATENCY_S["net"]) if gbit else None
                    print(json.dumps({"link": link, **row, "projected_s": proj}), flush=True)
                print(json.dumps({"link": link, **rows[-1]}), flush=True)
        finally:
            hosts.remove()


def contention(steps):
    """N single-thread processes each timing the step at once (scaling.py's worker)."""
    cmd = [sys.executable, os.path.join(HERE, "scaling.py"), "--worker"]
    env = {k: v for k, v in os.environ.items() if k != "PMI_RANK"}
    env.update(OPENBLAS_NUM_THREADS="1", PYTHONPATH=REPO)
    for hidden in HIDDEN:
        for n in (1, 2):
            procs = [subprocess.Popen([*cmd, str(hidden), "64", "64", str(steps)], env=env,
                                      stdout=subprocess.PIPE, text=True) for _ in range(n)]
            step = [json.loads(p.communicate()[0].strip().splitlines()[-1])["step_s"] for p in procs]
            print(json.dumps({"contention": n, "hidden": hidden, "lanes": 64, "step_s": step}), flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--reps", type=int, default=10)
    p.add_argument("--steps", type=int, default=6)
    p.add_argument("--contention", action="store_true")
    p.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        return worker(a.worker)
    return contention(a.steps) if a.contention else links(a.reps)


if __name__ == "__main__":
    main()

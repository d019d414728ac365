"""Data-parallel scaling: one process against MPI ranks, and a projection to more ranks.

    python benchmarks/scaling.py [--hidden 384,512 --rounds 3 --steps 8]

Prints one JSON line per measured configuration, then one per projection. Measured, in one
sitting, the configurations alternated round by round (medians over rounds):
  * `one_process`  - B = 64 lanes in one process, BLAS on its default (two) threads;
  * `one_rank`     - the same with one BLAS thread (what each rank runs);
  * `two_ranks`    - `mpiexec -n 2`, 32 lanes and one BLAS thread each, gradients summed every
                     step (the Train stage with `train.processes: 2`);
  * `rank_lanes_b` - one rank's step at b lanes, one thread (b = 32, 16, 8, 4), for the
                     projection at a fixed total batch;
  * `allreduce`    - the time to sum this model's gradient buffer over 2 ranks on this machine.
Projection (benchmarks/README.md, "More cores"): N ranks, step time = one rank's compute at its
lanes + a ring Allreduce of S bytes, 2 (N - 1) / N * S / bandwidth + 2 (N - 1) * latency, with
the shared-memory bandwidth taken from the measured 2-rank Allreduce and the network ones at 1,
10 and 25 Gbit/s. Efficiency = (one rank's chars/s at 64 lanes) * N / (N ranks' chars/s).
MPI traffic here stays on this machine (shared memory; TCP pinned to the loopback interface).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

REPO = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, REPO)
from pipeline.ranks import mpiexec  # noqa: E402
from benchmarks.netns_hosts import pinned  # noqa: E402

T, VOCAB, LANES = 100, 65, 64
LOCAL = pinned("lo")   # MPI on loopback
LINKS_GBIT = (1, 10, 25)
LATENCY_S = {"shm": 2e-6, "net": 20e-6}   # per message: assumed, small against the transfers


def worker(hidden, lanes, total, steps):
    """Time `steps` training steps of this process's lanes (a rank's, under mpiexec)."""
    from model import CIFGLSTM, Trainer, TrainSettings
    from model.heap import reuse_freed_memory
    from model.ranks import Ranks
    ranks = Ranks()
    if "PMI_RANK" in os.environ:
        from mpi4py import MPI
        ranks = Ranks(MPI.COMM_WORLD)
    net = CIFGLSTM(VOCAB, hidden, 2, VOCAB, seed=0, char_inputs=True)
    data = np.random.default_rng(0).integers(0, VOCAB, total * T * (steps + 3) + 1).astype(np.uint8)
    tr = Trainer(net, data, TrainSettings(batch_size=total, seq_len=T, steps=10 ** 9), ranks)
    times = []
    with reuse_freed_memory():
        tr.train_step()
        for _ in range(steps):
            t0 = time.perf_counter()
            tr.train_step()
            times.append(time.perf_counter() - t0)
    out = {"step_s": statistics.median(times), "grad_bytes": net.flat.nbytes}
    if ranks.size > 1:
        buf = np.ones(net.flat.size + 5, net.dtype)
        ar = []
        for _ in range(20):
            t0 = time.perf_counter()
            ranks.sum(buf)
            ar.append(time.perf_counter() - t0)
        out["allreduce_s"] = statistics.median(ar)
    if ranks.root:
        print(json.dumps(out), flush=True)


def measure(hidden, lanes, total, steps, ranks=1, blas=None):
    env = {**os.environ, **LOCAL}
    env.pop("OPENBLAS_NUM_THREADS", None)
    if blas:
        env["OPENBLAS_NUM_THREADS"] = str(blas)
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", str(hidden), str(lanes), str(total), str(steps)]
    if ranks > 1:
        cmd = [mpiexec(), "-n", str(ranks), "-genv", "OPENBLAS_NUM_THREADS", "1"] + cmd
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True, cwd=REPO).stdout
    return json.loads(out.strip().splitlines()[-1])


def configurations(hidden):
    """name -> (lanes of a rank, total lanes, ranks, BLAS threads)."""
    out = {"one_process": (LANES, LANES, 1, None), "one_rank": (LANES, LANES, 1, 1),
           "two_ranks": (LANES // 2, LANES, 2, 1)}
    out.update({f"rank_lanes_{b}": (b, b, 1, 1) for b in (32, 16, 8, 4)})
    return out


def ring_allreduce_s(n, nbytes, bandwidth, latency):
    return 2 * (n - 1) / n * nbytes / bandwidth + 2 * (n - 1) * latency


def project(hidden, med, nbytes, allreduce_2):
    """Rows of projected efficiency: fixed lanes per rank (weak) and fixed total batch (strong)."""
    one = med["one_rank"]["step_s"]
    shm_bw = nbytes / max(allreduce_2 - 2 * LATENCY_S["shm"], 1e-9)   # ring with n = 2: S / bw
    links = {"one machine (shared memory)": (shm_bw, LATENCY_S["shm"])}
    links.update({f"{g} Gbit/s": (g * 1e9 / 8, LATENCY_S["net"]) for g in LINKS_GBIT})
    rows = []
    for n in (4, 8, 16, 64):
        for link, (bw, lat) in links.items():
            ar = ring_allreduce_s(n, nbytes, bw, lat)
            row = {"projection": True, "hidden": hidden, "ranks": n, "link": link,
                   "allreduce_s": round(ar, 5),
                   "weak_efficiency": round(one / (one + ar), 3)}     # 64 lanes on every rank
            b = LANES // n
            key = f"rank_lanes_{b}"
            if key in med:                                            # B = 64 split n ways
                row["strong_efficiency"] = round(one / (n * (med[key]["step_s"] + ar)), 3)
            rows.append(row)
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", default="384,512")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--steps", type=int, default=8)
    p.add_argument("--worker", nargs=4, type=int, help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.worker:
        return worker(*a.worker)
    for hidden in (int(h) for h in a.hidden.split(",")):
        runs = {name: [] for name in configurations(hidden)}
        for _ in range(a.rounds):
            for name, (lanes, total, ranks, blas) in configurations(hidden).items():
                runs[name].append(measure(hidden, lanes, total, a.steps, ranks, blas))
        med = {name: {"step_s": statistics.median(r["step_s"] for r in rs)} for name, rs in runs.items()}
        nbytes = runs["one_rank"][0]["grad_bytes"]
        allreduce_2 = statistics.median(r["allreduce_s"] for r in runs["two_ranks"])
        for name, (lanes, total, ranks, blas) in configurations(hidden).items():
            steps = [r["step_s"] for r in runs[name]]
            print(json.dumps({"hidden": hidden, "config": name, "ranks": ranks, "lanes": total,
                              "blas_threads": blas or "default", "rounds": a.rounds,
                              "chars_per_s": round(total * T / med[name]["step_s"]),
                              "chars_per_s_runs": [round(total * T / s) for s in steps]}), flush=True)
        two_over_one = med["one_process"]["step_s"] / med["two_ranks"]["step_s"]
        print(json.dumps({"hidden": hidden, "grad_bytes": nbytes, "allreduce_2_ranks_s": round(allreduce_2, 5),
                          "two_ranks_over_one_process": round(two_over_one, 3)}), flush=True)
        for row in project(hidden, med, nbytes, allreduce_2):
            print(json.dumps(row), flush=True)


if __name__ == "__main__":
    main()

"""Where the stepper runs the cell's elementwise update: on the GEMM's rows or gate-major.

    OPENBLAS_NUM_THREADS=1 python benchmarks/stepper_layouts.py [--hidden 384 --steps 2000]

`model.stepper.Stepper` runs `cell_step` on strided (B, H) gate views of the (B, G*H) row the
GEMM writes. The training loop instead copies each step's gates into a gate-major (G, B, H)
scratch first, which pays at B = 64. This times `Stepper.step` both ways, alternating, for one
stream and for 32 (sampling's batch), and prints one JSON line of medians (microseconds/step).
"""
import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
from model import CIFGLSTM  # noqa: E402
from model.cell import cell_step, step_views  # noqa: E402
from model.stepper import Stepper  # noqa: E402


class GateMajorStepper(Stepper):
    """The same step with each layer's gates first copied gate-major, as the window loop does."""

    def __init__(self, net, batch):
        super().__init__(net, batch)
        self.gm = step_views(np.empty((net.G, batch, net.H), net.dtype), net.G)

    def _update(self, l):
        B, G, H = self.B, self.net.G, self.net.H
        np.copyto(self.gm.a, self.a.reshape(B, G, H).transpose(1, 0, 2))
        c_prev, c = self.c[l], self.c_new
        cell_step(self.gm, c_prev, c, self.tmp, self.tc, self.h[l])
        self.c[l], self.c_new = c, c_prev


def us_per_step(stepper, ids, steps):
    t0 = time.perf_counter()
    for _ in range(steps):
        stepper.step(ids)
    return 1e6 * (time.perf_counter() - t0) / steps


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=384)
    p.add_argument("--layers", type=int, default=2)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=7)
    a = p.parse_args()
    net = CIFGLSTM(65, a.hidden, a.layers, 65, seed=0, char_inputs=True)
    row = {"hidden": a.hidden, "layers": a.layers, "threads": os.environ.get("OPENBLAS_NUM_THREADS")}
    for batch in (1, 32):
        ids = np.arange(batch) % 65
        kinds = {"rows": Stepper(net, batch), "gate_major": GateMajorStepper(net, batch)}
        np.testing.assert_array_equal(kinds["rows"].step(ids), kinds["gate_major"].step(ids))
        times = {k: [] for k in kinds}
        for _ in range(a.rounds):
            for k, s in kinds.items():
                times[k].append(us_per_step(s, ids, a.steps))
        for k, t in times.items():
            row[f"B{batch}_{k}_us"] = round(statistics.median(t), 1)
        row[f"B{batch}_gate_major_over_rows"] = round(row[f"B{batch}_gate_major_us"] / row[f"B{batch}_rows_us"], 3)
    print(json.dumps(row))


if __name__ == "__main__":
    main()

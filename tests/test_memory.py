"""Training steps reuse their window buffers instead of faulting in fresh pages every step.

Each step's large arrays are freed at its end; without model/heap.py's setting glibc returns
them to the kernel and the next step faults them in again (thousands of page faults a step).
Measured in child processes, so the process-wide allocator setting is fresh in each.
"""
import json
import platform
import subprocess
import sys

import pytest

from tests.conftest import REPO

STEPS = """
import contextlib, json, resource, sys
import numpy as np
from model import CIFGLSTM, Trainer, TrainSettings
from model.heap import reuse_freed_memory
net = CIFGLSTM(65, 256, 2, 65, seed=0, char_inputs=True)
data = np.random.default_rng(0).integers(0, 65, 64 * 100 * 12).astype(np.uint8)
tr = Trainer(net, data, TrainSettings(batch_size=64, seq_len=100, steps=10 ** 9))
mode = sys.argv[1]
setting = reuse_freed_memory() if mode != "off" else contextlib.nullcontext()
with setting:
    for _ in range(2):
        tr.train_step()
    if mode == "on":
        counts = []
        for _ in range(4):
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            tr.train_step()
            counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
if mode != "on":   # "released": as after stages/train.py's training has ended
    counts = []
    for _ in range(4):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        tr.train_step()
        counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(json.dumps(counts))
"""


def faults_per_step(mode):
    out = subprocess.run([sys.executable, "-c", STEPS, mode], cwd=REPO, capture_output=True,
                         text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")
def test_steps_after_the_first_fault_in_no_new_pages():
    off, on = faults_per_step("off"), faults_per_step("on")
    assert min(off) > 1000, off          # the problem exists at this size: ~19 MB windows
    assert max(on) < 100, on             # and the setting removes it, every step


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the setting is glibc's")
def test_release_restores_the_defaults():
    """Once the context that Train's training runs in has ended, freed memory goes back to the
    kernel again, so that a stage after Train is not run with the setting."""
    released = faults_per_step("released")
    assert min(released) > 1000, released

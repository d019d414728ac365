"""A rank that stops answering without dying (SIGSTOP: a paused VM) fails the Train stage
within the stall bound, with one line naming it; no rank is left and the rerun resumes."""
import os
import signal

import pytest

from tests.conftest import write_config
from tests.faults_support import start, wait_for
from tests.reliability_ranks import STALLS
from tests.test_ranks_pipeline import RANKS, assert_rerun_resumes, rank_pids, train_folder

pytest.importorskip("mpi4py", reason="the mpi extra is not installed: pip install -e '.[mpi]'")

CASE = {c.id: c for c in STALLS}
ENDLESS = {"train.steps": 100000, "train.eval_every": 10 ** 5, "train.stall_timeout_s": 3, **RANKS}


def stalled_then_resumed(tmp_path, cfg, stall, ranks, prefix=(), env=None):
    """Start Train, `stall()` once a checkpoint exists, check it failed cleanly, that `ranks()`
    (true when no rank is left), and that a rerun resumes; returns the failed run's output."""
    proc = start(cfg, "Train", prefix=prefix, env=env)
    try:
        wait_for(lambda: list(tmp_path.glob("artifacts/Train/*/checkpoints/step-*.ckpt"))
                 or proc.poll() is not None, timeout=120)
        assert proc.poll() is None, proc.log.read_text()
        stall()
        proc.wait(timeout=60)              # the bound is 3 s: this is ample, a hang is not
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    failed = proc.log.read_text()
    assert proc.returncode != 0 and "Traceback" not in failed, failed
    assert not (train_folder(tmp_path) / "_COMPLETE").exists()
    wait_for(ranks, timeout=10, every=0.1)  # `ranks` is true when none is left
    assert_rerun_resumes(tmp_path, cfg, prefix, env)
    return failed


def test_a_paused_rank_fails_the_stage_naming_it(tmp_path):
    cfg = write_config(tmp_path, ENDLESS)
    paused = []

    def pause():
        paused.append(rank_pids()[1])
        os.kill(paused[0], signal.SIGSTOP)
    try:
        out = stalled_then_resumed(tmp_path, cfg, pause, ranks=lambda: not rank_pids())
    finally:
        for pid in paused:   # if the test failed with it still stopped
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
    lines = [ln for ln in out.splitlines() if CASE["stall-rank-paused"].sees in ln]
    assert len(lines) == 1 and f"training rank 1 (pid {paused[0]} on " in lines[0], out
    assert "rank 0 waited" in lines[0] and "bound 3 s" in lines[0], out

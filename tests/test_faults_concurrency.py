"""Two local-scheduler runs of the same pipeline at once: each stage runs once, nothing is torn.

Without a central scheduler, the per-folder lock (pipeline/base.py) is what keeps them apart:
the second run waits for the folder's lock, then finds `_COMPLETE` and says so.
"""
import re
import subprocess
from collections import Counter

import pytest

from tests.faults_support import (assert_same_results, check_artifacts, reference_results,
                                  seeded_config, stages_done, start, wait_for)
from tests.reliability_cases import CONCURRENCY, STAGES, UP_TO

CASES = {c.id: c for c in CONCURRENCY}


@pytest.fixture(scope="session")
def reference(tmp_path_factory):
    return reference_results(tmp_path_factory.mktemp("concurrency-ref"))


def test_same_pipeline_started_twice_at_once(tmp_path, reference):
    case = CASES["concurrent-same-run"]
    cfg = seeded_config(tmp_path, reference)
    procs = [start(cfg, "Evaluate", log=tmp_path / f"run{i}.log") for i in (1, 2)]
    for proc in procs:
        proc.wait(timeout=300)
    outs = [proc.log.read_text() for proc in procs]
    for proc, out in zip(procs, outs):
        # 10 = Luigi's own per-host lock refused an identical command line (luigi.cfg [retcode])
        assert proc.returncode == 0 or (proc.returncode == 10 and "already running" in out), out
        assert "Traceback" not in out
    assert 0 in [proc.returncode for proc in procs]
    done = Counter(s for out in outs for s in stages_done(out))
    assert done == Counter(STAGES), done                    # every stage ran exactly once
    waited = re.findall(r"(\w+) already done by another run", "".join(outs))
    assert len(waited) == len(set(waited)) and not set(waited) - set(STAGES), waited
    # Both ran: unless one started so late that it found everything complete, it waited on a lock.
    if all(proc.returncode == 0 and stages_done(out) for proc, out in zip(procs, outs)):
        assert case.sees in "".join(outs), outs
    assert check_artifacts(tmp_path / "artifacts") == set(case.kept)
    assert_same_results(reference, tmp_path, "Evaluate")


def test_waiting_run_takes_over_when_the_lock_holder_is_killed(tmp_path, reference):
    case = CASES["concurrent-holder-killed"]
    cfg = seeded_config(tmp_path, reference, UP_TO["EncodeShards"])
    artifacts = tmp_path / "artifacts"
    # A hangs for 3 s right after its step-12 checkpoint, holding the Train folder's lock, then dies.
    holder = start(cfg, "Train", ("after", str(artifacts / "Train/*/checkpoints/step-00000012.ckpt"), 1),
                   log=tmp_path / "holder.log", env={"KILLPOINT_DELAY": "3"})
    wait_for(lambda: list(artifacts.glob("Train/*/checkpoints")) or holder.poll() is not None)
    waiter = start(cfg, "Train", log=tmp_path / "waiter.log")
    assert holder.wait(timeout=120) == -9, holder.log.read_text()
    try:
        assert waiter.wait(timeout=120) == 0, waiter.log.read_text()
    except subprocess.TimeoutExpired:
        waiter.kill()
        raise
    out = waiter.log.read_text()
    assert case.sees in out and "Traceback" not in out
    assert stages_done(holder.log.read_text() + out) == ["Train"]
    assert check_artifacts(artifacts) == set(case.kept)
    assert_same_results(reference, tmp_path, "Train")

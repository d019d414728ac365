"""Faults with artifacts_dir on radosgw: the worker or the server killed at an exact write, or
the worker paused past its lease (cases in tests/reliability_s3.py).

After each, nothing is marked complete that is not, and the rerun - on another "machine" (an
empty local cache), once the server is back - finishes the work with the same bits as an
uninterrupted run, resuming training from the newest checkpoint that reached the store.
"""
import os
import signal
import time
from pathlib import Path

import pytest

from tests.faults_support import check_artifacts, stages_done
from tests.reliability_cases import STAGES
from tests.reliability_s3 import SERVER_KILLS, WORKERS
from tests.s3_support import (complete_stages, list_keys, restart_rgw, rgw_pid,  # noqa: F401
                              rgw_server, run_env, s3_config)
from tests.test_s3_pipeline import assert_same, luigi, reference, run, s3_results  # noqa: F401

pytestmark = pytest.mark.radosgw
TTL = "2"   # lease of the lock a killed run leaves behind: the rerun takes it over after 2 s
WORKER = {c.id: c for c in WORKERS}


def _env(server, cache, **extra):
    return {**run_env(server, cache), "SHAKESPEARE_CIFG_LOCK_TTL": TTL, **extra}


@pytest.mark.parametrize("case", SERVER_KILLS, ids=[c.id for c in SERVER_KILLS])
def test_server_killed_at_a_write_then_back(tmp_path, rgw_server, reference, case):  # noqa: F811
    pattern, nth, kept = case.spec["pattern"], case.spec["nth"], set(case.kept)
    bucket = rgw_server.bucket()
    cfg = s3_config(tmp_path, rgw_server, bucket, corpus=reference["folder"] / "corpus.txt")
    env = _env(rgw_server, tmp_path / "cache-a", S3_KILL_PID=str(rgw_pid(rgw_server)))
    try:
        code, out = run(cfg, env, module="tests.s3_killpoint", pre=(pattern, str(nth), "--"))
    finally:
        restart_rgw(rgw_server)
    assert "s3_killpoint: killed the server" in out, out
    assert code != 0 and "Traceback" not in out, out
    assert any(s in out for s in ("object store", "upload of")), out
    assert complete_stages(rgw_server, bucket) == kept
    code, out = run(cfg, _env(rgw_server, tmp_path / "cache-b"))
    assert code == 0 and case.sees in out and "Traceback" not in out, out
    assert set(stages_done(out)) == set(STAGES) - kept
    assert check_artifacts(tmp_path / "cache-b" / "s3" / bucket / "runs") >= set(STAGES) - kept
    assert_same(reference, s3_results(rgw_server, bucket, tmp_path))


def test_worker_killed_after_a_local_checkpoint_resumes_elsewhere_from_the_stored_one(
        tmp_path, rgw_server, reference):  # noqa: F811
    case = WORKER["s3-worker-killed"]
    bucket = rgw_server.bucket()
    cfg = s3_config(tmp_path, rgw_server, bucket, corpus=reference["folder"] / "corpus.txt")
    # SIGKILL right after step 12's checkpoint landed in the local cache, before its upload:
    # the store has step 6 (and the lock, which the rerun takes over when its lease runs out).
    code, out = run(cfg, _env(rgw_server, tmp_path / "cache-a"), module="tests.killpoint",
                    pre=("after", case.spec["pattern"], "1", "--"))
    assert code == -9, out
    assert complete_stages(rgw_server, bucket) == set(case.kept)
    code, out = run(cfg, _env(rgw_server, tmp_path / "cache-b"))
    assert code == 0 and "Traceback" not in out, out
    assert "took over the lock" in out and case.sees in out, out
    assert_same(reference, s3_results(rgw_server, bucket, tmp_path))


def _wait_for(folder, pattern, proc, timeout=300):
    deadline = time.monotonic() + timeout
    while not list(Path(folder).glob(pattern)):
        assert proc.poll() is None, Path(proc.log).read_text()
        assert time.monotonic() < deadline, f"{pattern} never appeared"
        time.sleep(0.005)


def test_worker_paused_past_its_lease_loses_the_lock_and_marks_nothing(
        tmp_path, rgw_server, reference):  # noqa: F811
    case = WORKER["s3-worker-paused"]
    bucket = rgw_server.bucket()
    cfg = s3_config(tmp_path, rgw_server, bucket, corpus=reference["folder"] / "corpus.txt")
    paused = luigi(cfg, _env(rgw_server, tmp_path / "cache-a"), log=tmp_path / "paused.log")
    try:
        # Stopped in the middle of Train, holding Train's lock (a VM frozen, a laptop lid shut).
        _wait_for(tmp_path / "cache-a", "s3/*/runs/Train/*/checkpoints/step-00000006.ckpt", paused)
        os.kill(paused.pid, signal.SIGSTOP)
        code, out = run(cfg, _env(rgw_server, tmp_path / "cache-b"))
    finally:
        os.kill(paused.pid, signal.SIGCONT)
        paused.wait(timeout=300)
    assert code == 0 and "took over the lock" in out and "Traceback" not in out, out
    late = Path(paused.log).read_text()
    assert paused.returncode != 0 and case.sees in late and "Traceback" not in late, late
    # It had finished the data stages; after waking it finished nothing.
    assert stages_done(late) == ["Download", "BuildVocab", "EncodeShards"], late
    assert set(stages_done(out)) == {"Train", "Sample", "Evaluate"}
    assert complete_stages(rgw_server, bucket) == set(case.kept)
    assert not [k for k in list_keys(rgw_server, bucket) if k.endswith(".lock")]
    assert_same(reference, s3_results(rgw_server, bucket, tmp_path))

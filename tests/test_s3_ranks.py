"""Train on 2 MPI ranks with artifacts_dir on S3: rank 0's checkpoints reach the store while the
ranks train (the worker uploads them; rank 0 waits, so it never deletes or replaces a file the
upload is reading), a killed rank fails the stage, and another machine resumes from the store
with the bits of an uninterrupted 2-rank run on a local folder."""
import os
import signal
from pathlib import Path

import pytest

from model import load_checkpoint
from tests.conftest import run_luigi, write_config
from tests.faults_support import wait_for
from tests.s3_support import complete_stages, list_keys, moto_server, rgw_server, run_env, s3_config  # noqa: F401
from tests.test_ranks_pipeline import RANKS, rank_pids
from tests.test_s3_pipeline import luigi, run, server  # noqa: F401

pytest.importorskip("mpi4py", reason="the mpi extra is not installed: pip install -e '.[mpi]'")
pytestmark = pytest.mark.radosgw
SETTINGS = {"train.steps": 60, **RANKS}   # a checkpoint every 10 steps; time to kill after one
STEP_10 = "step-00000010.ckpt"


def _env(server, cache):
    return {**run_env(server, cache), "SHAKESPEARE_CIFG_LOCK_TTL": "2"}   # MPI on loopback: conftest


def test_two_ranks_on_s3_resume_elsewhere_after_a_killed_rank(tmp_path, rgw_server):  # noqa: F811
    server = rgw_server
    local = tmp_path / "local"
    local.mkdir()
    code, out, _ = run_luigi(write_config(local, SETTINGS), task="Train")
    assert code == 0, out
    want = load_checkpoint(next((local / "artifacts" / "Train").glob("*/last.ckpt")))[0]["params"]

    bucket = server.bucket()
    cfg = s3_config(tmp_path, server, bucket, SETTINGS, corpus=local / "corpus.txt")
    first = luigi(cfg, _env(server, tmp_path / "cache-a"), task="Train", log=tmp_path / "a.log")
    try:
        wait_for(lambda: [k for k in list_keys(server, bucket, "runs/Train/") if k.endswith(STEP_10)],
                 timeout=300, every=0.02)
        os.kill(wait_for(lambda: rank_pids().get(1)), signal.SIGKILL)
    finally:
        first.wait(timeout=120)
    out = Path(first.log).read_text()
    assert first.returncode != 0 and "training rank 1" in out and "Traceback" not in out, out
    assert "Train" not in complete_stages(server, bucket)
    stored = sorted(k.rsplit("/", 1)[1] for k in list_keys(server, bucket, "runs/Train/") if "/checkpoints/" in k)
    assert STEP_10 in stored, stored

    code, out = run(cfg, _env(server, tmp_path / "cache-b"), task="Train")
    assert code == 0 and f"resumed from {stored[-1]}" in out and "Traceback" not in out, out
    path = tmp_path / "last.ckpt"
    key = next(k for k in list_keys(server, bucket, "runs/Train/") if k.endswith("/last.ckpt"))
    server.client().download_file(bucket, key, str(path))
    assert (load_checkpoint(path)[0]["params"] == want).all()

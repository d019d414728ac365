"""Faults with artifacts_dir on radosgw: the worker or the server killed at an exact write.

After each, nothing is marked complete that is not, and the rerun - on another "machine" (an
empty local cache), once the server is back - finishes the work with the same bits as an
uninterrupted run, resuming training from the newest checkpoint that reached the store.
"""
import pytest

from tests.faults_support import check_artifacts, stages_done
from tests.reliability_cases import STAGES
from tests.s3_support import complete_stages, restart_rgw, rgw_pid, rgw_server, run_env, s3_config  # noqa: F401
from tests.test_s3_pipeline import assert_same, reference, run, s3_results  # noqa: F401

pytestmark = pytest.mark.radosgw
TTL = "2"   # lease of the lock a killed run leaves behind: the rerun takes it over after 2 s

# (id, glob of the key the server dies before, nth such write, stages complete after, rerun says)
SERVER_KILLS = [
    ("mid-upload", "*/EncodeShards/*/train.tokens", 1, {"Download", "BuildVocab"}, "EncodeShards done:"),
    ("mid-checkpoint", "*/Train/*/checkpoints/step-00000012.ckpt", 1,
     {"Download", "BuildVocab", "EncodeShards"}, "resumed from step-00000006.ckpt"),
    ("mid-marker", "*/Sample/*/_COMPLETE", 1, {"Download", "BuildVocab", "EncodeShards", "Train"},
     "Sample done:"),
]


def _env(server, cache, **extra):
    return {**run_env(server, cache), "SHAKESPEARE_CIFG_LOCK_TTL": TTL, **extra}


@pytest.mark.parametrize("case", SERVER_KILLS, ids=[c[0] for c in SERVER_KILLS])
def test_server_killed_at_a_write_then_back(tmp_path, rgw_server, reference, case):  # noqa: F811
    _, pattern, nth, kept, sees = case
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
    assert code == 0 and sees in out and "Traceback" not in out, out
    assert set(stages_done(out)) == set(STAGES) - kept
    assert check_artifacts(tmp_path / "cache-b" / "s3" / bucket / "runs") >= set(STAGES) - kept
    assert_same(reference, s3_results(rgw_server, bucket, tmp_path))


def test_worker_killed_after_a_local_checkpoint_resumes_elsewhere_from_the_stored_one(
        tmp_path, rgw_server, reference):  # noqa: F811
    bucket = rgw_server.bucket()
    cfg = s3_config(tmp_path, rgw_server, bucket, corpus=reference["folder"] / "corpus.txt")
    # SIGKILL right after step 12's checkpoint landed in the local cache, before its upload:
    # the store has step 6 (and the lock, which the rerun takes over when its lease runs out).
    code, out = run(cfg, _env(rgw_server, tmp_path / "cache-a"), module="tests.killpoint",
                    pre=("after", "*/checkpoints/step-00000012.ckpt", "1", "--"))
    assert code == -9, out
    assert complete_stages(rgw_server, bucket) == {"Download", "BuildVocab", "EncodeShards"}
    code, out = run(cfg, _env(rgw_server, tmp_path / "cache-b"))
    assert code == 0 and "Traceback" not in out, out
    assert "took over the lock" in out and "resumed from step-00000006.ckpt" in out, out
    assert_same(reference, s3_results(rgw_server, bucket, tmp_path))

"""The Train stage on 2 MPI ranks, driven by Luigi as a user runs it: same folder, rank 0's
files, and the faults: a rank killed, Ctrl-C, ranks that cannot start, MPI not installed."""
import json
import os
import signal
import time
from pathlib import Path

import pytest

from tests.conftest import run_luigi, write_config
from tests.faults_support import start, wait_for

pytest.importorskip("mpi4py", reason="the mpi extra is not installed: pip install -e '.[mpi]'")

RANKS = {"train.processes": 2, "train.checkpoint_every": 10}   # MPI on loopback: tests/conftest.py


def rank_pids():
    """{rank: pid} of the running training ranks (MPICH puts PMI_RANK in each one's environment)."""
    found = {}
    for proc in Path("/proc").iterdir():
        try:
            if b"pipeline.ranks" not in (proc / "cmdline").read_bytes():
                continue
            env = dict(kv.split(b"=", 1) for kv in (proc / "environ").read_bytes().split(b"\0") if b"=" in kv)
        except OSError:
            continue
        if b"PMI_RANK" in env:
            found[int(env[b"PMI_RANK"])] = int(proc.name)
    return found


def train_folder(tmp_path):
    return next(p for p in (tmp_path / "artifacts" / "Train").iterdir() if p.is_dir())


def test_two_ranks_fill_the_one_process_folder(tmp_path):
    one = write_config(tmp_path, {"train.steps": 24})
    from pipeline.tasks import Train
    two = write_config(tmp_path, {"train.steps": 24, **RANKS}, name="two.yaml")
    assert Train(config=str(two)).folder() == Train(config=str(one)).folder()
    code, out, ran = run_luigi(two, task="Train")
    assert code == 0 and "Train" in ran, out
    folder = train_folder(tmp_path)
    meta = json.loads((folder / "meta.json").read_text())
    assert meta["result"]["processes"] == 2 and meta["result"]["steps"] == 24
    assert {p.name for p in folder.iterdir()} >= {"best.ckpt", "last.ckpt", "metrics.jsonl", "_COMPLETE"}
    assert not list(folder.glob(".ranks-result*"))
    assert "validation" in out and "Traceback" not in out           # rank 0's log reached the user
    code, out, ran = run_luigi(one, task="Train")
    assert code == 0 and ran == []                                   # one process: nothing to redo


def test_a_killed_rank_fails_the_stage_and_the_rerun_resumes(tmp_path):
    cfg = write_config(tmp_path, {"train.steps": 100000, "train.eval_every": 10 ** 5, **RANKS})
    proc = start(cfg, "Train")
    try:
        wait_for(lambda: list(tmp_path.glob("artifacts/Train/*/checkpoints/step-*.ckpt")), timeout=120)
        victim = rank_pids()[1]
        os.kill(victim, signal.SIGKILL)
        t0 = time.time()
        proc.wait(timeout=30)
        took = time.time() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    out = proc.log.read_text()
    assert proc.returncode != 0 and took < 15, out
    line = [ln for ln in out.splitlines() if f"training rank 1 (pid {victim})" in ln]
    assert len(line) == 1 and "signal 9" in line[0] and "Traceback" not in out, out
    assert not (train_folder(tmp_path) / "_COMPLETE").exists()
    wait_for(lambda: not rank_pids(), timeout=10)                   # no rank is left running
    assert_rerun_resumes(tmp_path, cfg)


def assert_rerun_resumes(tmp_path, cfg, prefix=(), env=None):
    """A rerun of Train resumes from the newest checkpoint of the failed run (stopped at once)."""
    newest = sorted(train_folder(tmp_path).glob("checkpoints/step-*.ckpt"))[-1]
    proc = start(cfg, "Train", prefix=prefix, env=env, log=tmp_path / "rerun.log")
    try:
        wait_for(lambda: "resumed from" in proc.log.read_text() or proc.poll() is not None, timeout=240)
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
        proc.wait(timeout=60)
    out = proc.log.read_text()
    assert f"resumed from {newest.name}" in out, out


def test_ctrl_c_stops_every_rank_after_a_checkpoint(tmp_path):
    cfg = write_config(tmp_path, {"train.steps": 100000, "train.eval_every": 10 ** 5, **RANKS})
    proc = start(cfg, "Train")
    wait_for(lambda: list(tmp_path.glob("artifacts/Train/*/checkpoints/step-*.ckpt")), timeout=120)
    proc.send_signal(signal.SIGINT)
    proc.wait(timeout=60)
    out = proc.log.read_text()
    stopped = [ln for ln in out.splitlines() if "training stopped by SIGINT at step" in ln]
    assert proc.returncode != 0 and len(stopped) == 1 and "Traceback" not in out, out
    step = int(stopped[0].split("at step ")[1].split(";")[0])
    assert (train_folder(tmp_path) / "checkpoints" / f"step-{step:08d}.ckpt").is_file()
    wait_for(lambda: not rank_pids(), timeout=10)


@pytest.mark.parametrize("overrides,words", [
    ({"train.hosts": ["127.0.0.2:2"]}, "the training ranks could not run"),   # no MPI daemon answers there
    ({"train.batch_size": 9}, "does not split evenly between 2 ranks"),
])
def test_ranks_that_cannot_run_are_one_line(tmp_path, overrides, words):
    cfg = write_config(tmp_path, {"train.steps": 5, **RANKS, **overrides})
    code, out, _ = run_luigi(cfg, task="Train", timeout=120)
    errors = [ln for ln in out.splitlines() if words in ln]
    assert code != 0 and errors and "Traceback" not in out, out
    assert not list(tmp_path.glob("artifacts/Train/*/_COMPLETE"))


def test_without_mpi_the_error_names_the_install_command(monkeypatch):
    import importlib.util

    from pipeline import ranks
    from stages.errors import UserError
    real = importlib.util.find_spec
    monkeypatch.setattr(ranks.importlib.util, "find_spec",
                        lambda name, *a: None if name == "mpi4py" else real(name, *a))
    with pytest.raises(UserError, match=r"pip install -e '\.\[mpi\]'"):
        ranks.mpiexec()


def test_killing_the_luigi_worker_takes_its_ranks_with_it(tmp_path):
    """The folder's lock dies with the worker; its ranks must not train on without it."""
    cfg = write_config(tmp_path, {"train.steps": 100000, "train.eval_every": 10 ** 5, **RANKS})
    proc = start(cfg, "Train")
    try:
        wait_for(lambda: len(rank_pids()) == 2, timeout=120)
    finally:
        proc.kill()
        proc.wait()
    wait_for(lambda: not rank_pids(), timeout=10)


def test_only_rank_0_looks_for_the_previous_run(tmp_path, monkeypatch):
    """Continuing a finished run: rank 0 alone lists earlier runs (on S3 it would download)."""
    from model.ranks import Ranks
    from pipeline import tasks
    code, out, _ = run_luigi(write_config(tmp_path, {"train.steps": 6}), task="Train")
    assert code == 0, out
    looked = []
    monkeypatch.setattr(tasks, "previous_run_checkpoint", lambda task: looked.append(1))
    monkeypatch.setattr(tasks, "run_training", lambda *a, **k: k["continue_from"])

    class Other(Ranks):
        rank, size, root = 1, 2, False
    task = tasks.Train(config=str(write_config(tmp_path, {"train.steps": 12})))
    assert task.train(tmp_path / "x", ranks=Other()) is None and looked == []
    task.train(tmp_path / "x", ranks=Ranks())
    assert looked == [1]

"""Interrupted training resumes to the same result; failures exit non-zero with one line."""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from model import load_checkpoint
from tests.conftest import REPO, run_luigi, write_config

LONG = {"train.steps": 120, "train.checkpoint_every": 5, "train.eval_every": 40}


def final_params(folder):
    (ckpt,) = Path(folder, "artifacts", "Train").glob("*/last.ckpt")
    return load_checkpoint(ckpt)[0]["params"]


def start_train(cfg):
    cmd = [sys.executable, "-m", "luigi", "--module", "pipeline", "Train", "--config", str(cfg),
           "--local-scheduler"]
    return subprocess.Popen(cmd, cwd=cfg.parent, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            env={**os.environ, "PYTHONPATH": str(REPO)})


def wait_for_checkpoint(folder, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if list(Path(folder, "artifacts", "Train").glob("*/checkpoints/step-*.ckpt")):
            return
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


def test_kill_9_mid_training_resumes_to_the_uninterrupted_result(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    for d in (straight, killed):
        d.mkdir()
        write_config(d, LONG)
    assert run_luigi(straight / "pipeline.yaml", task="Train")[0] == 0

    proc = start_train(killed / "pipeline.yaml")
    wait_for_checkpoint(killed)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not list((killed / "artifacts" / "Train").glob("*/_COMPLETE"))
    code, out, ran = run_luigi(killed / "pipeline.yaml", task="Train")
    assert code == 0, out
    assert "resumed from step-" in out
    assert np.array_equal(final_params(straight), final_params(killed))


def test_sigterm_checkpoints_and_exits_non_zero_with_one_line(tmp_path):
    write_config(tmp_path, {**LONG, "train.steps": 100000})
    proc = subprocess.Popen([sys.executable, "-m", "luigi", "--module", "pipeline", "Train", "--config",
                             str(tmp_path / "pipeline.yaml"), "--local-scheduler"], cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})
    wait_for_checkpoint(tmp_path)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode != 0
    assert "training stopped by SIGTERM" in out and "Traceback" not in out
    assert not list((tmp_path / "artifacts" / "Train").glob("*/_COMPLETE"))


def test_failed_download_is_one_line_non_zero_and_nothing_complete(tmp_path):
    cfg = write_config(tmp_path, {"corpus.sources": [{"url": "http://127.0.0.1:9/none.txt"}],
                                  "corpus.retries": 0})
    code, out, ran = run_luigi(cfg, task="Download")
    assert code != 0
    assert "ERROR: " in out and "Traceback" not in out
    assert not list((tmp_path / "artifacts").rglob("_COMPLETE"))


def test_config_mistakes_name_key_and_position(tmp_path):
    cfg = write_config(tmp_path)
    cfg.write_text(cfg.read_text().replace("hidden_size: 24", "hidden_size: -3"))
    code, out, _ = run_luigi(cfg, task="Download")
    assert code != 0 and "Traceback" not in out
    assert "'model.hidden_size' must be > 0" in out and "pipeline.yaml:" in out
    code, out, _ = run_luigi(tmp_path / "missing.yaml", task="Download", cwd=tmp_path)
    assert code != 0 and "does not exist" in out and "Traceback" not in out

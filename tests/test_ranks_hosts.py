"""Ranks on two "hosts": network namespaces joined by a veth pair (benchmarks/netns_hosts.py),
MPI entering each as it would ssh to a machine, TCP over the veth only. Skipped where
namespaces cannot be made (not root, no iproute2)."""
import json
from pathlib import Path
import signal
import time

import numpy as np
import pytest

from benchmarks.netns_hosts import Hosts, Unavailable
from model import load_checkpoint
from tests.conftest import run_luigi, write_config
from tests.faults_support import start, wait_for
from tests.reliability_ranks import STALLS as STALL_CASES
from tests.test_ranks_pipeline import rank_pids
from tests.test_ranks_stall import stalled_then_resumed

pytest.importorskip("mpi4py", reason="the mpi extra is not installed: pip install -e '.[mpi]'")


@pytest.fixture
def hosts(tmp_path, monkeypatch):
    try:
        made = Hosts(tmp_path).make()
    except Unavailable as e:
        pytest.skip(str(e))
    for k, v in made.env().items():
        monkeypatch.setenv(k, v)
    yield made
    made.remove()


def on_hosts(hosts, folder, overrides):
    """Run Train as a user on host 0 would, with the ranks on `train.hosts`."""
    cfg = write_config(folder, overrides)
    return run_luigi(cfg, task="Train", timeout=240, prefix=hosts.inside(0))


def params(folder):
    return load_checkpoint(next(folder.glob("artifacts/Train/*/last.ckpt")))[0]["params"]


def test_two_hosts_over_tcp_train_what_one_process_trains(hosts, tmp_path):
    steps = {"train.steps": 24, "train.eval_every": 12}
    (tmp_path / "one").mkdir()
    code, out, _ = run_luigi(write_config(tmp_path / "one", steps), task="Train")
    assert code == 0, out
    before = hosts.rx_bytes()
    code, out, ran = on_hosts(hosts, tmp_path, {**steps, "train.processes": 2, "train.hosts": hosts.ips})
    assert code == 0 and "Train" in ran, out
    meta = json.loads(next(tmp_path.glob("artifacts/Train/*/meta.json")).read_text())
    assert meta["result"]["processes"] == 2
    grad_bytes = params(tmp_path).nbytes
    assert hosts.rx_bytes() - before > 24 * grad_bytes    # every step's sum crossed the veth
    np.testing.assert_allclose(params(tmp_path), params(tmp_path / "one"), rtol=0, atol=2e-4)
    assert not np.array_equal(params(tmp_path), np.zeros_like(params(tmp_path)))


STALLS = {c.id: c for c in STALL_CASES}
TWO = {"train.processes": 2, "train.checkpoint_every": 10, "train.eval_every": 10 ** 5}


def test_a_cut_link_fails_the_stage_naming_the_far_host(hosts, tmp_path):
    cfg = write_config(tmp_path, {**TWO, "train.steps": 100000, "train.stall_timeout_s": 3,
                                  "train.hosts": hosts.ips})

    def none_left_then_mend():   # checked while the link is still down, then mended for the rerun
        if rank_pids():
            return False
        hosts.link(up=True)
        return True
    try:
        out = stalled_then_resumed(tmp_path, cfg, lambda: hosts.link(up=False), none_left_then_mend,
                                   hosts.inside(0), hosts.env())
    finally:
        hosts.link(up=True)
    lines = [ln for ln in out.splitlines() if STALLS["stall-link-down"].sees in ln]
    assert len(lines) == 1 and "training rank 1 (pid " in lines[0], out
    assert f"on {hosts.ips[1]})" in lines[0] and "rank 0 waited" in lines[0], out


def test_a_link_down_for_ten_seconds_delays_a_step_and_training_goes_on(hosts, tmp_path):
    """400 steps take ~3 s here: still running after the 10 s outage means the outage held a
    step, and finishing cleanly afterwards means the step completed late."""
    case = STALLS["stall-link-blip"]
    cfg = write_config(tmp_path, {**TWO, "train.steps": 400, "train.stall_timeout_s": 40,
                                  "train.hosts": hosts.ips})
    proc = start(cfg, "Train", prefix=hosts.inside(0), env=hosts.env())
    try:
        wait_for(lambda: list(tmp_path.glob("artifacts/Train/*/checkpoints/step-*.ckpt"))
                 or proc.poll() is not None, timeout=120)
        hosts.link(up=False)
        time.sleep(10)                      # the outage, not a timing assertion
        assert proc.poll() is None, proc.log.read_text()
        hosts.link(up=True)
        proc.wait(timeout=120)
    finally:
        hosts.link(up=True)
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    out = proc.log.read_text()
    assert proc.returncode == 0 and case.sees in out and "stopped answering" not in out, out


def test_a_host_that_never_answers_fails_the_start_naming_it(hosts, tmp_path):
    cfg = write_config(tmp_path, {**TWO, "train.steps": 50, "train.stall_timeout_s": 3,
                                  "train.hosts": [hosts.ips[0], hosts.silent]})
    code, out, _ = run_luigi(cfg, task="Train", timeout=120, prefix=hosts.inside(0))
    lines = [ln for ln in out.splitlines() if STALLS["stall-host-silent"].sees in ln]
    assert code != 0 and len(lines) == 1 and hosts.silent in lines[0] and "Traceback" not in out, out
    wait_for(lambda: not rank_pids(), timeout=10, every=0.1)
    assert not launches_to(hosts.silent)   # nor the ssh still trying the silent host


def launches_to(address):
    """Pids of processes whose command line names `address` (a launcher left behind)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if address.encode() in proc.read_bytes():
                found.append(int(proc.parent.name))
        except OSError:
            pass
    return found

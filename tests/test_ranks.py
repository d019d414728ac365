"""Data-parallel ranks over MPI: N = 2 ranks on this machine train what one process trains.

The ranks run under the real MPI of the `mpi` extra (mpiexec from the MPICH wheel), on the
loopback interface only (tests/conftest.py pins UCX); the one-process runs they are compared with
run here.
"""
import ipaddress
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO
from tests.mpi_engine import trainer

pytest.importorskip("mpi4py", reason="the mpi extra is not installed: pip install -e '.[mpi]'")

from pipeline.ranks import mpiexec  # noqa: E402

ALL_ON = {"dropout": 0.3, "locked_dropout_in": 0.25, "locked_dropout_hidden": 0.4,
          "locked_dropout_out": 0.2, "weight_drop": 0.5, "embed_dropout": 0.3}
ONE_THREAD = {"OPENBLAS_NUM_THREADS": "1"}


def on_ranks(case, tmp_path, n=2, name="out"):
    out = str(tmp_path / f"{name}.npz")
    subprocess.run([mpiexec(), "-n", str(n), sys.executable, "-m", "tests.mpi_engine", json.dumps(case), out],
                   cwd=REPO, env={**os.environ, **ONE_THREAD}, check=True, timeout=120)
    return np.load(out)


def test_two_ranks_listen_and_talk_on_loopback_only(tmp_path):
    """Every TCP socket the ranks hold after an Allreduce is on a loopback address; the one
    exception allowed is mpiexec's control port (Hydra binds it to every interface, and the
    ranks inherit it), which no rank connects to. Unpinned, UCX also listened on eth0."""
    out = tmp_path / "sockets.json"
    subprocess.run([mpiexec(), "-n", "2", sys.executable, "-m", "tests.mpi_engine", '{"sockets": true}', str(out)],
                   cwd=REPO, env={**os.environ, **ONE_THREAD}, check=True, timeout=120)
    seen = json.loads(out.read_text())
    control = {int(c.rpartition(":")[2]) for c in seen["control_port"]}
    assert len(seen["sockets"]) == 2 and control, seen
    for rank in seen["sockets"]:
        for (local, port), (remote, _), state in rank:
            if local == "0.0.0.0" and port in control and state == "0A":   # 0A: listening
                continue
            assert ipaddress.ip_address(local).is_loopback, seen
            assert state == "0A" or ipaddress.ip_address(remote).is_loopback, seen


def one_process(case):
    tr = trainer(case)
    losses = [tr.train_step()["loss"] for _ in range(case["steps"])]
    return tr.net.flat, np.array(losses), tr.state


def test_two_ranks_follow_one_process_in_float64_with_every_regulariser(tmp_path):
    """Same masks (each rank keeps its lanes of the batch's draw), gradients that add up to
    the batch mean: plain SGD leaves the parameters equal to 1e-10 after several steps."""
    case = {"dtype": "float64", "optimizer": "sgd", "steps": 4, "rates": ALL_ON, "lr": 0.5}
    ranks = on_ranks(case, tmp_path)
    params, losses, (h, c) = one_process(case)
    assert not np.allclose(params, trainer(case).net.flat)        # the runs did move
    np.testing.assert_allclose(ranks["params"], params, rtol=0, atol=1e-10)
    np.testing.assert_allclose(ranks["losses"], losses, rtol=1e-12)
    np.testing.assert_allclose(ranks["h"], h, atol=1e-10)          # the carried state of all lanes
    np.testing.assert_allclose(ranks["c"], c, atol=1e-10)


def test_two_ranks_in_float32_with_adam_stay_close_to_one_process(tmp_path):
    case = {"dtype": "float32", "optimizer": "adam", "steps": 6, "rates": {"dropout": 0.2},
            "lr": 0.01, "clip": 1.0}
    ranks = on_ranks(case, tmp_path)
    params, losses, _ = one_process(case)
    np.testing.assert_allclose(ranks["losses"], losses, rtol=1e-4)
    np.testing.assert_allclose(ranks["params"], params, atol=2e-4)


def test_two_rank_runs_are_bitwise_equal_and_resume_bitwise(tmp_path):
    case = {"dtype": "float32", "optimizer": "adam", "steps": 7, "rates": ALL_ON, "lr": 0.01, "clip": 1.0}
    first, second = on_ranks(case, tmp_path, name="a"), on_ranks(case, tmp_path, name="b")
    resumed = on_ranks({**case, "resume_at": 3}, tmp_path, name="r")
    for key in ("params", "losses", "h", "c"):
        np.testing.assert_array_equal(first[key], second[key])
        np.testing.assert_array_equal(first[key], resumed[key])


def test_uneven_split_is_refused():
    from model.ranks import Ranks

    class Three:
        def Get_size(self):
            return 3

        def Get_rank(self):
            return 0
    with pytest.raises(ValueError, match="multiple of train.processes"):
        Ranks(Three()).lanes(8)

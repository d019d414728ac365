"""The pipeline on a real Luigi central scheduler (luigid) with several workers, and Sweep."""
import ipaddress
import json
import os
import shlex
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from model import load_checkpoint
from pipeline.base import stages_done
from pipeline.sweep import read_config_list
from stages.errors import UserError
from tests.conftest import REPO, write_config

ALL = ["Download", "BuildVocab", "EncodeShards", "Train", "Sample", "Evaluate"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def luigid(tmp_path):
    """A luigid on a free 127.0.0.1 port, its state and logs in tmp_path; always stopped."""
    port, home = free_port(), tmp_path / "luigid"
    yield from running_luigid(["luigid", "--address", "127.0.0.1", "--port", str(port), "--state-path",
                               str(home / "state.pickle"), "--logdir", str(home / "logs")], port, home)


def running_luigid(cmd, port, home):
    (home / "logs").mkdir(parents=True)
    proc = subprocess.Popen(cmd, cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"luigid did not start: {(home / 'logs').iterdir()}")
                time.sleep(0.1)
        yield port
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def start(port, *args, cwd, extra=()):
    """`luigi --module pipeline ARGS` against the scheduler on `port`, as a running process."""
    cmd = [sys.executable, "-m", "luigi", "--module", "pipeline", *map(str, args),
           "--scheduler-host", "127.0.0.1", "--scheduler-port", str(port), "--workers", "2", *extra]
    return subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONPATH": str(REPO)})


def finish(proc, timeout=120):
    out, _ = proc.communicate(timeout=timeout)
    return proc.returncode, out


def done_lines(*outputs):
    """How often each stage logged "<Stage> done:" across the outputs (forked workers included)."""
    return Counter(s for out in outputs for s in stages_done(out))


def check_outputs(artifacts, trains=1):
    runs = list(Path(artifacts, "Train").glob("*/last.ckpt"))
    assert len(runs) == trains
    for ckpt in runs:
        arrays, meta = load_checkpoint(ckpt)          # verifies the checksum
        assert arrays["params"].size > 0 and meta["step"] > 0
    reports = list(Path(artifacts, "Evaluate").glob("*/report.json"))
    assert len(reports) == trains
    for report in reports:
        assert json.loads(report.read_text())["heldout"]["lstm"]["nats_per_char"] > 0
    for marker in Path(artifacts).glob("*/*/_COMPLETE"):
        assert (marker.parent / "meta.json").exists()


def test_two_concurrent_runs_share_the_work_and_run_every_stage_once(luigid, tmp_path):
    # Two invocations of the same pipeline at once, the second as if from another machine
    # (--no-lock: Luigi's per-host lock would stop an identical command line here at once).
    cfg = write_config(tmp_path)
    procs = [start(luigid, "Evaluate", "--config", cfg, cwd=tmp_path, extra=extra)
             for extra in ((), ("--no-lock",))]
    (code1, out1), (code2, out2) = [finish(p) for p in procs]
    assert done_lines(out1, out2) == Counter(ALL), out1 + out2     # every stage ran exactly once
    # (Under load the scheduler may hand a task that just finished to the other worker too; the
    # per-folder lock then makes that worker find it done instead of running it again.)
    # Luigi's exit codes: 0, or 10 (luigi.cfg [retcode] already_running) for an invocation some
    # of whose tasks another worker was running when it stopped asking for work, or 25 (not_run)
    # when the scheduler also withheld a task that the other worker was then granted. Never a
    # failure (30) or scheduling error (35): the work was shared, not lost.
    shared = {10: "being run by another worker", 25: "not granted run permission"}
    for code, out in ((code1, out1), (code2, out2)):
        assert code == 0 or (code in shared and shared[code] in out), out
    assert 0 in (code1, code2)
    check_outputs(tmp_path / "artifacts")
    code, out = finish(start(luigid, "Evaluate", "--config", cfg, cwd=tmp_path))
    assert code == 0 and done_lines(out) == Counter(), out             # complete: nothing left


def test_sweep_trains_every_config_and_shares_common_stages(luigid, tmp_path):
    write_config(tmp_path, name="a.yaml")
    write_config(tmp_path, {"model.hidden_size": 16}, name="b.yaml")
    (tmp_path / "sweep.txt").write_text("# two model sizes\na.yaml\n\nb.yaml  # smaller\na.yaml\n")
    code, out = finish(start(luigid, "Sweep", "--configs", "sweep.txt", cwd=tmp_path))
    assert code == 0, out
    assert done_lines(out) == Counter({"Download": 1, "BuildVocab": 1, "EncodeShards": 1,
                                       "Train": 2, "Sample": 2, "Evaluate": 2}), out
    check_outputs(tmp_path / "artifacts", trains=2)
    # [resources] train = 1 (the scheduler's default for a declared resource): one at a time
    spans = sorted((m["finished"] - m["seconds"], m["finished"]) for m in
                   (json.loads(p.read_text()) for p in (tmp_path / "artifacts" / "Train").glob("*/meta.json")))
    assert spans[1][0] >= spans[0][1] - 0.05, spans


def test_sweep_list_format(tmp_path):
    (tmp_path / "s.txt").write_text("a.yaml # first\n  \n# b.yaml\n/abs/c.yaml\na.yaml\n")
    assert read_config_list(tmp_path / "s.txt") == [str(tmp_path / "a.yaml"), "/abs/c.yaml"]
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(UserError, match="names no config"):
        read_config_list(tmp_path / "empty.txt")
    with pytest.raises(UserError, match="cannot read the sweep list"):
        read_config_list(tmp_path / "missing.txt")


def readme_luigid_command():
    """The single-machine luigid command as the README shows it (continuation lines joined)."""
    text = (REPO / "README.md").read_text()
    start = text.index("\nluigid ") + 1
    lines = []
    for line in text[start:].splitlines():
        lines.append(line.split("#")[0].rstrip().rstrip("\\"))
        if not line.split("#")[0].rstrip().endswith("\\"):
            break
    return shlex.split(" ".join(lines))


def listening_addresses(port):
    """Local addresses with a socket in LISTEN state on `port`, from /proc/net/tcp{,6}."""
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            local, state = row.split()[1], row.split()[3]
            address, port_hex = local.split(":")
            if state == "0A" and int(port_hex, 16) == port:
                raw = bytes.fromhex(address)
                words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))   # per-word little-endian
                found.append(str(ipaddress.ip_address(words)))
    return found


@pytest.mark.skipif(not Path("/proc/net/tcp").exists(), reason="needs Linux /proc/net/tcp")
def test_documented_single_machine_luigid_listens_on_loopback_only(tmp_path):
    cmd = readme_luigid_command()
    assert cmd[0] == "luigid" and "--background" in cmd
    port, home = free_port(), tmp_path / "luigid"
    values = {"--port": str(port), "--logdir": str(home / "logs"), "--state-path": str(home / "state.pickle"),
              "--pidfile": str(home / "luigid.pid")}
    args = [a for a in cmd if a != "--background"]   # the README's foreground variant, so we can stop it
    args = [values.get(prev, a) for prev, a in zip([None] + args, args)]
    for _ in running_luigid(args, port, home):
        addresses = listening_addresses(port)
        assert addresses and all(ipaddress.ip_address(a).is_loopback for a in addresses), addresses

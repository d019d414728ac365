"""Shared helpers: a small play-like corpus, configs in a temp folder, running Luigi."""
import os

# The tests' models are tiny: one BLAS thread is faster for them, and it keeps the test run
# (and the Luigi subprocesses it starts, which inherit this) from oversubscribing the cores.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

# MPI in the tests talks on the loopback interface only (shared memory between ranks on this
# machine is fine; unpinned, every rank also listened on eth0's address beside 127.0.0.1; why
# these variables: benchmarks/netns_hosts.py's `pinned`). Set here, once, for every test and
# every process a test starts (they inherit it); tests/test_ranks.py checks the ranks' sockets.
# The namespace-hosts tests override these with benchmarks/netns_hosts.py's Hosts.env().
from benchmarks.netns_hosts import pinned  # noqa: E402

os.environ.update(pinned("lo"))

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data" / "tinyshakespeare.txt"

WORDS = ("the my thy good lord king love death night day sweet fair what shall will not "
         "come go speak hear heart blood crown grace honour noble gentle tis thee thou and "
         "of to in is with for but his her our your me him").split()
SPEAKERS = ["ROMEO", "JULIET", "KING HENRY", "First Citizen", "GLOUCESTER", "NURSE"]


def play_text(chars=60000, seed=0):
    """A deterministic play in the tiny-shakespeare layout: NAME:, lines, blank line."""
    rng = np.random.default_rng(seed)
    out, n = [], 0
    while n < chars:
        lines = [" ".join(rng.choice(WORDS, rng.integers(4, 9))).capitalize() + rng.choice([",", ".", "!", "?"])
                 for _ in range(rng.integers(1, 4))]
        turn = f"{rng.choice(SPEAKERS)}:\n" + "\n".join(lines) + "\n\n"
        out.append(turn)
        n += len(turn)
    return "".join(out)


SMOKE = {
    "shards": {"seq_len": 32},
    "model": {"hidden_size": 24, "num_layers": 2, "dropout": 0.1},
    "train": {"steps": 24, "batch_size": 8, "learning_rate": 0.01, "warmup_steps": 4,
              "checkpoint_every": 6, "eval_every": 12, "eval_chars": 3000, "sample_every": 12,
              "log_every": 6},
    "sample": {"num_samples": 2, "length": 120, "prime": "ROMEO:\n"},
    "evaluate": {"ngram_order": 4, "lanes": 8, "burn_in": 50},
}


def write_config(folder, overrides=None, name="pipeline.yaml", corpus=None):
    """A smoke config in `folder` reading a small corpus file written next to it."""
    folder = Path(folder)
    if corpus is None:
        corpus = folder / "corpus.txt"
        if not corpus.exists():
            corpus.write_text(play_text())
    cfg = {"artifacts_dir": str(folder / "artifacts"), "corpus": {"sources": [{"path": str(corpus)}]},
           **{k: dict(v) for k, v in SMOKE.items()}}
    for key, value in (overrides or {}).items():
        section, _, leaf = key.partition(".")
        if leaf:
            cfg.setdefault(section, {})[leaf] = value
        else:
            cfg[section] = value
    path = folder / name
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


def run_luigi(config, task="Evaluate", cwd=None, timeout=300, extra=(), prefix=()):
    """Run the pipeline as a user would; returns (exit code, output, stages that ran).
    `prefix`: a command it runs under (e.g. `ip netns exec HOST`: on another "host")."""
    cmd = [*prefix, sys.executable, "-m", "luigi", "--module", "pipeline", task, "--config", str(config),
           "--local-scheduler", *extra]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run(cmd, cwd=cwd or Path(config).parent, capture_output=True, text=True,
                          timeout=timeout, env=env)
    out = proc.stdout + proc.stderr
    from pipeline.base import stages_done
    return proc.returncode, out, stages_done(out)


@pytest.fixture
def smoke_dir(tmp_path):
    write_config(tmp_path)
    return tmp_path

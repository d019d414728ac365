"""Helpers of the fault tests: start/kill runs, check every complete folder, compare results."""
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from model import load_checkpoint
from pipeline.base import stages_done  # noqa: F401 (the fault tests import it from here)
from stages.shards import read_stream
from stages.vocab import Vocab
from tests.conftest import REPO, run_luigi, write_config
from tests.reliability_cases import STAGES

ENV = {**os.environ, "PYTHONPATH": str(REPO)}
TEMP = re.compile(r"^\.(tmp-.*\.ckpt|.*\.tmp)$")   # temp names of model/checkpoint.py, stages/atomic.py


def luigi_cmd(config, task, kill=None):
    """The user's command; with kill=(when, pattern, nth) it runs under tests/killpoint.py."""
    args = ["--module", "pipeline", task, "--config", str(config), "--local-scheduler"]
    if kill:
        return [sys.executable, "-m", "tests.killpoint", kill[0], kill[1], str(kill[2]), "--", *args]
    return [sys.executable, "-m", "luigi", *args]


def start(config, task="Evaluate", kill=None, log=None, env=None, prefix=()):
    """Popen of the pipeline; output goes to `log` (a file, so no pipe can fill up). `prefix`:
    a command it runs under (e.g. `ip netns exec HOST`: on another "host")."""
    log = Path(log or Path(config).parent / "run.log")
    fh = open(log, "w")
    proc = subprocess.Popen([*prefix, *luigi_cmd(config, task, kill)], cwd=Path(config).parent, stdout=fh,
                            stderr=subprocess.STDOUT, env={**ENV, **(env or {})})
    fh.close()
    proc.log = log
    return proc


def killed_run(config, task, kill, timeout=120):
    """Run until the kill point; returns the output. The process must have died of SIGKILL."""
    proc = start(config, task, kill)
    proc.wait(timeout=timeout)
    out = proc.log.read_text()
    assert proc.returncode == -9, f"the kill point was not reached (exit {proc.returncode}):\n{out}"
    return out


def complete_stages(artifacts):
    return {p.parent.parent.name for p in Path(artifacts).glob("*/*/_COMPLETE")}


def check_artifacts(artifacts):
    """Every folder marked complete holds all its outputs, and they parse; no temp files left.

    Returns the set of stages that have a complete folder.
    """
    artifacts = Path(artifacts)
    for marker in sorted(artifacts.glob("*/*/_COMPLETE")):
        folder, stage = marker.parent, marker.parent.parent.name
        meta = json.loads((folder / "meta.json").read_text())
        assert meta["stage"] == stage and marker.read_text().strip() == meta["fingerprint"], folder
        leftovers = [p for p in folder.rglob("*") if TEMP.match(p.name)]
        assert not leftovers, f"temp files left in a complete folder: {leftovers}"
        CHECKS[stage](folder, meta["result"])
    return complete_stages(artifacts)


def _download(folder, result):
    text = (folder / "corpus.txt").read_text(encoding="utf-8")
    assert len(text) == result["chars"]   # may be 0: then BuildVocab stops with "the corpus is empty"


def _vocab(folder, result):
    assert Vocab.load(folder / "vocab.json").size == result["size"]


def _shards(folder, result):
    for split in ("train", "val"):
        ids = read_stream(folder, split, expect_vocab_fingerprint=result["vocab_fingerprint"])
        assert len(ids) == result[split]["tokens"] > 0


def _train(folder, result):
    for name in ("last.ckpt", "best.ckpt"):
        arrays, meta = load_checkpoint(folder / name)
        assert np.isfinite(arrays["params"]).all()
    assert load_checkpoint(folder / "last.ckpt")[1]["step"] == result["steps"]
    for ckpt in (folder / "checkpoints").glob("step-*.ckpt"):
        load_checkpoint(ckpt)
    rows = [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]
    steps = [r["step"] for r in rows]
    assert steps == sorted(set(steps)) and steps[-1] == result["steps"], steps


def _sample(folder, result):
    samples = json.loads((folder / "samples.json").read_text())["samples"]
    assert len(samples) == result["num_samples"] and all(len(s) == result["length"] for s in samples)
    assert (folder / "samples.txt").read_text().count("=== sample") == len(samples)


def _evaluate(folder, result):
    report = json.loads((folder / "report.json").read_text())
    assert report["heldout"]["lstm"]["nats_per_char"] == result["lstm_nats_per_char"]
    assert (folder / "report.md").read_text().strip()
    for png in folder.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(list(folder.glob("*.png"))) == 3


CHECKS = {"Download": _download, "BuildVocab": _vocab, "EncodeShards": _shards, "Train": _train,
          "Sample": _sample, "Evaluate": _evaluate}
assert set(CHECKS) == set(STAGES)


def only(artifacts, stage, name):
    """The one file `name` of the one complete folder of `stage`."""
    found = [p.parent / name for p in Path(artifacts).glob(f"{stage}/*/_COMPLETE")]
    assert len(found) == 1, found
    return found[0]


def results(folder, upto="Evaluate"):
    """What an interrupted-then-resumed run must reproduce bit for bit."""
    art = Path(folder) / "artifacts"
    out = {}
    if STAGES.index(upto) >= STAGES.index("Train"):
        out["last"] = load_checkpoint(only(art, "Train", "last.ckpt"))[0]["params"]
        out["best"] = load_checkpoint(only(art, "Train", "best.ckpt"))[0]["params"]
    if STAGES.index(upto) >= STAGES.index("Sample"):
        out["samples"] = json.loads(only(art, "Sample", "samples.json").read_text())["samples"]
    if upto == "Evaluate":
        out["heldout"] = json.loads(only(art, "Evaluate", "report.json").read_text())["heldout"]
    return out


def assert_same_results(reference, folder, upto):
    got = results(folder, upto)
    for key, value in got.items():
        if isinstance(value, np.ndarray):
            assert value.dtype == reference[key].dtype and np.array_equal(value, reference[key]), key
        else:
            assert value == reference[key], key


_REFERENCE = {}


def reference_results(base):
    """Results of one uninterrupted smoke run (computed once per test session).

    Also holds "folder", the reference run's folder, for `seeded_config`.
    """
    if not _REFERENCE:
        folder = Path(base) / "reference"
        folder.mkdir()
        code, out, ran = run_luigi(write_config(folder), task="Evaluate")
        assert code == 0, out
        check_artifacts(folder / "artifacts")
        _REFERENCE.update(results(folder), folder=folder)
    return _REFERENCE


def seeded_config(folder, reference, stages=(), overrides=None):
    """A smoke config in `folder` that reads the reference run's corpus (so every fingerprint
    matches the reference's), with the reference's complete folders of `stages` copied in."""
    cfg = write_config(folder, overrides, corpus=reference["folder"] / "corpus.txt")
    for stage in stages:
        shutil.copytree(reference["folder"] / "artifacts" / stage, Path(folder) / "artifacts" / stage)
    return cfg


def wait_for(predicate, timeout=60, every=0.005):
    deadline = time.time() + timeout
    while time.time() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(every)
    raise AssertionError("condition not reached in time")

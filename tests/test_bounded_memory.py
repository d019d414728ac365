"""Train's and Evaluate's peak memory does not grow with the corpus: a 20x larger corpus,
each stage run alone in its own process, the same peak resident set within a small margin.

With the old whole-stream lanes (an int64 index per training character) Train's peak grew by
about 9 bytes per training character, ~40 MB here; Evaluate read and decoded both splits whole.
"""
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, play_text, run_luigi, write_config

sys.path.insert(0, str(Path(REPO, "benchmarks")))
from scale import MEASURED_LUIGI  # noqa: E402

SMALL = 250_000
MARGIN_MB = 20   # what the same stage varies by between runs; the old code grew by 40+ MB here


def peak_rss_mb(stage, config):
    """Run one stage alone (its inputs already done) and return its process's peak RSS in MB.

    The process reports its own VmHWM: a child's ru_maxrss would start from the resident set of
    this (pytest) process at fork, which could hide the stage's own peak.
    """
    peak = config.parent / f"{stage}.peak_kb"
    cmd = [sys.executable, "-c", MEASURED_LUIGI, "--module", "pipeline", stage, "--config", str(config),
           "--local-scheduler"]
    env = {**os.environ, "PYTHONPATH": str(REPO), "PEAK_RSS_FILE": str(peak)}
    proc = subprocess.run(cmd, cwd=config.parent, env=env, capture_output=True, text=True)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0 and f"{stage} done:" in out, out[-3000:]
    return int(peak.read_text()) / 1024


def peaks(folder, text):
    folder.mkdir()
    (folder / "corpus.txt").write_text(text)
    cfg = write_config(folder, {"evaluate.max_chars": 20_000, "evaluate.ngram_max_chars": 100_000})
    code, out, _ = run_luigi(cfg, task="EncodeShards")
    assert code == 0, out
    train = peak_rss_mb("Train", cfg)
    assert run_luigi(cfg, task="Sample")[0] == 0
    return train, peak_rss_mb("Evaluate", cfg)


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs Linux /proc for VmHWM")
def test_train_and_evaluate_peak_memory_does_not_grow_with_a_20x_corpus(tmp_path):
    base = play_text(SMALL)
    small = peaks(tmp_path / "small", base)
    large = peaks(tmp_path / "large", "".join(play_text(SMALL, seed=s) for s in range(20)))
    for stage, a, b in zip(("Train", "Evaluate"), small, large):
        assert b < a + MARGIN_MB, f"{stage} peak RSS {a:.0f} MB -> {b:.0f} MB with a 20x corpus"

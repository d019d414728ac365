"""`python -m pipeline score` and the report's adaptive rows, on one small pipeline run.

The run has dynamic evaluation and the cache on; `score` of its validation split (after the
end of the training split as context) must give the report's static row, and bad input must
give one line on stderr, a non-zero exit and no traceback.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from pipeline.tasks import Evaluate
from stages.score import MAX_BLOCKS, BlockStats
from stages.tokens import open_tokens
from stages.vocab import Vocab
from tests.conftest import REPO, run_luigi, write_config

ON = {"evaluate.dynamic": True, "evaluate.cache": True, "evaluate.dynamic_tune_chars": 2000,
      "evaluate.dynamic_segment": 20, "train.learning_rate": 0.03}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("score")
    cfg = write_config(root, ON)
    code, out, _ = run_luigi(cfg)
    assert code == 0, out
    report = json.loads(next((root / "artifacts" / "Evaluate").glob("*/report.json")).read_text())
    shards = next((root / "artifacts" / "EncodeShards").glob("*/_COMPLETE")).parent
    vocab = Vocab.load(next((root / "artifacts" / "BuildVocab").glob("*/vocab.json")))
    val, train = (np.asarray(open_tokens(shards, s)) for s in ("val", "train"))
    (root / "val.txt").write_text(vocab.decode(val))
    (root / "context.txt").write_text(vocab.decode(train[-50:]))   # evaluate.burn_in of SMOKE
    return root, report


def score(root, *args, stdin=None):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "pipeline", "score", *args], cwd=root, env=env,
                          input=stdin, capture_output=True, timeout=300)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def test_report_has_the_adaptive_rows_with_intervals_protocols_and_times(run):
    root, report = run
    held = report["heldout"]
    for name in ("lstm_dynamic", "lstm_cache", "lstm_dynamic_cache"):
        row = held[name]
        assert row["ci95"][0] <= row["nats_per_char"] <= row["ci95"][1]
        assert row["chars"] == held["lstm"]["chars"] and report["adaptive_seconds"][name] >= 0
        assert row["protocol"] and "seconds" not in row     # reruns reproduce rows bit for bit
        diff = held["difference"][f"{name}_minus_lstm"]
        assert diff["mean"] == pytest.approx(row["nats_per_char"] - held["lstm"]["nats_per_char"])
    folds = held["lstm_dynamic"]["folds"]
    assert [f["tuned_on_half"] for f in folds] == [2, 1]
    md = next((root / "artifacts" / "Evaluate").glob("*/report.md")).read_text()
    assert "LSTM + dynamic evaluation" in md and "LSTM + cache" in md and "lanes sharing" in md


def test_score_of_the_validation_split_is_the_reports_static_figure(run):
    root, report = run
    code, out, err = score(root, "val.txt", "--context-file", "context.txt", "--format", "json")
    assert code == 0, err
    got, lstm = json.loads(out), report["heldout"]["lstm"]
    assert got["chars"] == lstm["chars"]
    assert got["nats_per_char"] == pytest.approx(lstm["nats_per_char"], abs=1e-12)
    assert got["ci95"] == pytest.approx(lstm["ci95"], abs=1e-12)
    code, text, err = score(root, "-", "--context-file", "context.txt",
                            stdin=(root / "val.txt").read_bytes())
    assert code == 0, err
    assert f"{lstm['nats_per_char']:.4f}" in text.splitlines()[1] and "bits/char" in text


def test_dynamic_score_runs_and_reports_its_protocol(run):
    root, _ = run
    code, out, err = score(root, "val.txt", "--dynamic", "--format", "json")
    assert code == 0, err
    got = json.loads(out)
    assert got["protocol"].startswith("dynamic evaluation") and got["ci95"]


def test_a_windows_file_with_crlf_and_a_bom_scores_exactly_as_the_lf_file(run):
    root, _ = run
    text = (root / "val.txt").read_text()
    (root / "val-crlf.txt").write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    got = []
    for name in ("val.txt", "val-crlf.txt"):
        code, out, err = score(root, name, "--format", "json")
        assert code == 0, err
        got.append({k: v for k, v in json.loads(out).items() if k not in ("file", "seconds")})
    assert got[0] == got[1]


@pytest.mark.parametrize("content, args, words", [
    (None, ["missing.txt"], "does not exist"),
    (b"", ["empty.txt"], "is empty"),
    (b"ROMEO:\x00\x01binary", ["bin.txt"], "not UTF-8 text"),
    (b"ROMEO: \xff\xfe caf", ["latin.txt"], "not UTF-8"),
    ("ROMEO: café ☃\n".encode(), ["odd.txt"], "--unknown skip"),
    (None, [".", ], "is a folder"),
])
def test_bad_input_is_one_line_without_a_traceback(run, content, args, words):
    root, _ = run
    if content is not None:
        (root / args[0]).write_bytes(content)
    code, out, err = score(root, *args)
    assert code != 0 and words in err and "Traceback" not in err, err
    assert len(err.strip().splitlines()) == 1


def test_unknown_characters_can_be_skipped_and_are_counted(run):
    root, _ = run
    (root / "odd.txt").write_text("ROMEO: the king ☃☃ is dead\nJULIET: ☃ good night\n")
    code, out, err = score(root, "odd.txt", "--unknown", "skip", "--format", "json")
    assert code == 0, err
    got = json.loads(out)
    assert got["unknown_chars"] == 3 and got["unknown_distinct"] == ["☃"]


def test_bootstrap_blocks_are_merged_so_memory_does_not_grow():
    stats, rng, total = BlockStats(10), np.random.default_rng(0), 0.0
    pieces = MAX_BLOCKS * 10 // 1000 + 2          # just past MAX_BLOCKS blocks of 10
    for _ in range(pieces):
        x = rng.uniform(0, 3, 1000)
        total += x.sum()
        stats.add(x)
    assert stats.block == 20 and len(stats.sums) <= MAX_BLOCKS // 2 + 200
    s, chars, ci = stats.result(200)
    assert s == pytest.approx(total) and chars == 1000 * pieces and ci[0] < s / chars < ci[1]


def test_evaluate_fingerprint_ignores_the_new_keys_while_their_rows_are_off(tmp_path):
    off = Evaluate(config=str(write_config(tmp_path, {"evaluate.cache": False}, name="off.yaml")))
    assert not any(k.startswith(("evaluate.dynamic", "evaluate.cache")) for k in off.slice())
    same = Evaluate(config=str(write_config(tmp_path, {"evaluate.cache": False, "evaluate.cache_order": 3,
                                                       "evaluate.dynamic_rate": 0.5}, name="same.yaml")))
    assert same.fingerprint() == off.fingerprint()
    on = Evaluate(config=str(write_config(tmp_path, {"evaluate.dynamic": True}, name="on.yaml")))
    assert "evaluate.dynamic_rate" in on.slice() and "evaluate.cache_order" in on.slice()
    assert on.fingerprint() != off.fingerprint()
    fixed = Evaluate(config=str(write_config(tmp_path, {"evaluate.dynamic": True, "evaluate.cache": False,
                                                        "evaluate.dynamic_tune": False}, name="f.yaml")))
    assert "evaluate.dynamic_tune_chars" not in fixed.slice()
    assert "evaluate.cache_order" not in fixed.slice()

"""`python -m pipeline score` and the report's adaptive rows, on one small pipeline run.

The run has dynamic evaluation and the cache on; `score` of its test split (after the end of the
validation split as context) must give the report's static row, `score --dynamic` with the
settings the report chose its dynamic row, and bad input must give one line on stderr, a
non-zero exit and no traceback.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from model import load_checkpoint, load_model
from model.evaluate import stream_nll
from pipeline.tasks import Evaluate
from stages.ngram_cache import cache_probs, mix_nll
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
    val, test = (np.asarray(open_tokens(shards, s)) for s in ("val", "test"))
    (root / "test.txt").write_text(vocab.decode(test))
    (root / "context.txt").write_text(vocab.decode(val[-50:]))   # evaluate.burn_in of SMOKE
    return root, report


def score(root, *args, stdin=None):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "pipeline", "score", *args], cwd=root, env=env,
                          input=stdin, capture_output=True, timeout=300)
    return proc.returncode, proc.stdout.decode(), proc.stderr.decode()


def test_report_rows_are_scored_on_test_and_tuned_on_validation(run):
    root, report = run
    held = report["heldout"]
    for name, row in held.items():
        if name != "difference":   # (the 256-character windows leave the tail unscored)
            assert row["split"] == "test", name
            assert row["chars"] == held["lstm"]["chars"] or name == "lstm_window256", name
    dyn = held["lstm_dynamic"]
    losses = {(r, d): loss for r, d, loss in dyn["grid"]}
    assert dyn["tuned_on"] == "val" and len(losses) == 10 and (0.0, 0.01) in losses
    assert min(losses, key=losses.get) == (dyn["rate"], dyn["decay"])   # the grid's best
    assert report["validation"]["split"] == "val+test" and "published" in report["validation"]["label"]
    assert report["validation"]["chars"] > held["lstm"]["chars"]
    # The cache row, recomputed here: the static test losses mixed with the cache at the weight
    # the report chose on validation.
    shards = next((root / "artifacts" / "EncodeShards").glob("*/_COMPLETE")).parent
    val, test = (np.asarray(open_tokens(shards, s), np.int64) for s in ("val", "test"))
    net, _ = load_model(next((root / "artifacts" / "Train").glob("*/best.ckpt")))
    static = stream_nll(net, test, context=val[-50:], lanes=8, burn_in=50)
    vocab = Vocab.load(next((root / "artifacts" / "BuildVocab").glob("*/vocab.json")))
    cache = held["lstm_cache"]
    mixed = mix_nll(static, cache_probs(test, cache["order"], vocab.size), cache["weight"])
    assert cache["nats_per_char"] == pytest.approx(np.nanmean(mixed), abs=1e-12)
    assert 0 < cache["weight"] and cache["tuned_on"] == "val"
    md = next((root / "artifacts" / "Evaluate").glob("*/report.md")).read_text()
    assert "LSTM + dynamic evaluation" in md and "one stream in document order" in md
    assert "(test split)" in md and "published" in md


def test_score_of_the_test_split_is_the_reports_static_figure(run):
    root, report = run
    code, out, err = score(root, "test.txt", "--context-file", "context.txt", "--format", "json")
    assert code == 0, err
    got, lstm = json.loads(out), report["heldout"]["lstm"]
    assert got["chars"] == lstm["chars"]
    assert got["nats_per_char"] == pytest.approx(lstm["nats_per_char"], abs=1e-12)
    assert got["ci95"] == pytest.approx(lstm["ci95"], abs=1e-12)
    code, text, err = score(root, "-", "--context-file", "context.txt",
                            stdin=(root / "test.txt").read_bytes())
    assert code == 0, err
    assert f"{lstm['nats_per_char']:.4f}" in text.splitlines()[1] and "bits/char" in text


def test_dynamic_score_with_the_chosen_settings_is_the_reports_dynamic_row(run):
    root, report = run
    dyn = report["heldout"]["lstm_dynamic"]
    cfg = write_config(root, {**ON, "evaluate.dynamic_rate": dyn["rate"],
                              "evaluate.dynamic_decay": dyn["decay"]}, name="chosen.yaml")
    code, out, err = score(root, "test.txt", "--context-file", "context.txt", "--dynamic",
                           "--config", str(cfg), "--format", "json")
    assert code == 0, err
    got = json.loads(out)
    assert got["protocol"].startswith("dynamic evaluation, one stream") and got["chars"] == dyn["chars"]
    assert got["nats_per_char"] == pytest.approx(dyn["nats_per_char"], abs=1e-9)
    assert got["nats_per_char"] < report["heldout"]["lstm"]["nats_per_char"] - 0.01   # it learns


def test_per_char_dynamic_scores_of_a_prefix_do_not_depend_on_what_follows(run):
    root, _ = run
    text = (root / "test.txt").read_text()[:3000]
    n = 1234
    (root / "a.txt").write_text(text)
    (root / "b.txt").write_text(text[:n] + text[n:][::-1] + text[:500])   # other text after n
    lines = {}
    for name in ("a.txt", "b.txt"):
        code, out, err = score(root, name, "--dynamic", "--per-char", "--format", "json")
        assert code == 0, err
        rows = out.splitlines()
        lines[name] = rows[:-1]
        assert json.loads(rows[-1])["chars_read"] == len(lines[name])   # then the summary
    a, b = lines["a.txt"], lines["b.txt"]
    assert a[:n] == b[:n] and a[n:] != b[n:len(a)]
    first, later = json.loads(a[0]), json.loads(a[7])
    assert first == {"position": 0, "char": text[0], "nats": None}
    assert later["position"] == 7 and later["char"] == text[7] and later["nats"] > 0


def test_a_windows_file_with_crlf_and_a_bom_scores_exactly_as_the_lf_file(run):
    root, _ = run
    text = (root / "test.txt").read_text()
    (root / "test-crlf.txt").write_bytes(b"\xef\xbb\xbf" + text.replace("\n", "\r\n").encode())
    got = []
    for name in ("test.txt", "test-crlf.txt"):
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


def test_no_choice_reads_the_test_split(run, tmp_path):
    """The same corpus with its test split rewritten (its characters reversed: the same alphabet
    and counts): the same best.ckpt, the same validation curve, the same tuned dynamic settings
    and cache weights; only the test figures move."""
    root, report = run
    text = (root / "corpus.txt").read_text()
    cut = int(len(text) * 0.95)                       # shards.test_fraction's default
    (tmp_path / "corpus.txt").write_text(text[:cut] + text[cut:][::-1])
    code, out, _ = run_luigi(write_config(tmp_path, ON))
    assert code == 0, out
    other = json.loads(next((tmp_path / "artifacts" / "Evaluate").glob("*/report.json")).read_text())
    ckpts = [load_checkpoint(next((r / "artifacts" / "Train").glob("*/best.ckpt")))[0]["params"]
             for r in (root, tmp_path)]
    assert np.array_equal(*ckpts)
    assert [r["val_nats_per_char"] for r in other["learning_curve"]] == \
           [r["val_nats_per_char"] for r in report["learning_curve"]]
    a, b = report["heldout"], other["heldout"]
    for key in ("rate", "decay", "grid"):
        assert a["lstm_dynamic"][key] == b["lstm_dynamic"][key], key
    for row in ("lstm_cache", "lstm_dynamic_cache"):
        assert (a[row]["weight"], a[row]["grid"]) == (b[row]["weight"], b[row]["grid"]), row
    assert a["lstm"]["nats_per_char"] != b["lstm"]["nats_per_char"]   # the test text did change

"""The pipeline as users run it: one command, cached reruns, exactly the affected stages rerun."""
import json
from pathlib import Path

import numpy as np
import pytest

from model import load_checkpoint
from tests.conftest import run_luigi, write_config

ALL = ["Download", "BuildVocab", "EncodeShards", "Train", "Sample", "Evaluate"]


def report_of(folder):
    reports = list(Path(folder, "artifacts", "Evaluate").glob("*/report.json"))
    assert len(reports) == 1
    return json.loads(reports[0].read_text())


# The smoke run's 24 steps at this rate are enough to learn more than character frequencies.
LEARNS = {"train.learning_rate": 0.03}


def test_end_to_end_then_cached_then_only_affected_stages(smoke_dir):
    cfg = write_config(smoke_dir, LEARNS)
    code, out, ran = run_luigi(cfg)
    assert code == 0, out
    assert sorted(ran) == sorted(ALL)
    report = report_of(smoke_dir)
    lstm, unigram = report["heldout"]["lstm"], report["heldout"]["unigram"]
    # A model that learned nothing scores ~uniform (3.93 here), one that learned only the
    # character frequencies ~unigram (3.34): the trained model must use its context.
    assert lstm["nats_per_char"] < unigram["nats_per_char"] - 0.25, (lstm, unigram)
    assert lstm["perplexity"] == pytest.approx(np.exp(lstm["nats_per_char"]))
    assert len(report["sample_texts"]) == 2
    for name, entry in report["heldout"].items():      # every model carries its interval
        if name != "difference":
            lo, hi = entry["ci95"]
            assert lo - 1e-9 <= entry["nats_per_char"] <= hi + 1e-9, name
    diff = report["heldout"]["difference"]["lstm_minus_ngram"]
    assert diff["ci95"][0] <= diff["mean"] <= diff["ci95"][1]
    assert diff["mean"] == pytest.approx(lstm["nats_per_char"] - report["heldout"]["ngram"]["nats_per_char"])
    assert any(w in report["heldout_verdict"] for w in ("beats", "is beaten by", "cannot be told apart"))
    for key in ("samples", "samples_t1"):              # every metric has a band, at both temperatures
        band = report[key]["reference_band"]
        assert set(band) == set(report[key]["model"]) == set(report[key]["reference"])
        assert all(b is None or b[0] <= b[1] for b in band.values())
    assert (next((smoke_dir / "artifacts" / "Evaluate").glob("*/report.md"))).read_text().strip()
    assert "report:" in out

    code, out, ran = run_luigi(cfg)                 # nothing changed: nothing runs
    assert code == 0 and ran == [], out

    write_config(smoke_dir, {**LEARNS, "sample.temperature": 0.5})
    code, out, ran = run_luigi(cfg)
    assert code == 0 and ran == ["Sample", "Evaluate"], out

    write_config(smoke_dir, {**LEARNS, "sample.temperature": 0.5, "model.hidden_size": 16})
    code, out, ran = run_luigi(cfg)
    assert code == 0 and ran == ["Train", "Sample", "Evaluate"], out

    write_config(smoke_dir, LEARNS)                 # revert: the first outputs are found again
    code, out, ran = run_luigi(cfg)
    assert code == 0 and ran == [], out


def test_logging_cadence_does_not_retrain(smoke_dir):
    cfg = smoke_dir / "pipeline.yaml"
    assert run_luigi(cfg, task="Train")[0] == 0
    write_config(smoke_dir, {"train.log_every": 3, "train.checkpoint_every": 4})
    code, out, ran = run_luigi(cfg, task="Train")
    assert code == 0 and ran == [], out


def test_new_corpus_file_reruns_everything_downstream(smoke_dir):
    cfg = smoke_dir / "pipeline.yaml"
    assert run_luigi(cfg, task="EncodeShards")[0] == 0
    corpus = smoke_dir / "corpus.txt"
    corpus.write_text(corpus.read_text() + "ROMEO:\nA new line of verse.\n\n")
    code, out, ran = run_luigi(cfg, task="EncodeShards")
    assert code == 0 and ran == ["Download", "BuildVocab", "EncodeShards"], out


def test_raising_steps_continues_the_finished_run(smoke_dir):
    cfg = smoke_dir / "pipeline.yaml"
    write_config(smoke_dir, {"train.decay": "constant"})
    assert run_luigi(cfg, task="Train")[0] == 0
    write_config(smoke_dir, {"train.decay": "constant", "train.steps": 36})
    code, out, ran = run_luigi(cfg, task="Train")
    assert code == 0 and ran == ["Train"], out
    assert "continuing a finished run" in out
    metas = {p.parent: json.loads(p.read_text()) for p in (smoke_dir / "artifacts" / "Train").glob("*/meta.json")}
    longer_dir, longer = next((d, m) for d, m in metas.items() if m["result"]["steps"] == 36)
    assert longer["result"]["continued_from"]
    # With a constant rate the continued run is the straight 36-step run, bit for bit.
    straight_dir = smoke_dir / "straight"
    straight_dir.mkdir()
    straight_cfg = write_config(straight_dir, {"train.decay": "constant", "train.steps": 36},
                                corpus=smoke_dir / "corpus.txt")
    code, out, ran = run_luigi(straight_cfg, task="Train")
    assert code == 0 and "continuing" not in out, out
    (straight_run,) = (straight_dir / "artifacts" / "Train").glob("*/")
    a, b = (load_checkpoint(d / "last.ckpt")[0]["params"] for d in (longer_dir, straight_run))
    assert a.dtype == b.dtype and np.array_equal(a, b)
    full = [load_checkpoint(d / "checkpoints" / "step-00000036.ckpt")[0] for d in (longer_dir, straight_run)]
    assert full[0].keys() == full[1].keys()
    assert all(np.array_equal(full[0][k], full[1][k]) for k in full[0])   # optimizer state, carried state

"""Evaluate scores a bounded, stated set of test characters and fits on a stated part of
the training split; every model and baseline is scored on exactly those characters."""
import json

import numpy as np
import pytest

from model import evaluate_stream
from stages.heldout_scope import fitting_text, scored_split
from stages.ngram import KneserNeyLM
from stages.shards import read_stream
from model.checkpoint import load_model
from stages.metrics.uncertainty import intervals
from tests.conftest import run_luigi, write_config


def test_whole_split_below_max_chars_and_even_blocks_above():
    val = np.arange(10_000) % 251
    ids, scope = scored_split(val, 10_000, 4)
    assert np.array_equal(ids, val) and scope["blocks"] == [[0, 10_000]]
    ids, scope = scored_split(val, 2_000, 4)
    starts = [s for s, _ in scope["blocks"]]
    assert starts[0] == 0 and scope["blocks"][-1][1] == 10_000           # first at the start, last at the end
    assert len(set(np.diff(starts))) <= 2 and all(e - s == 500 for s, e in scope["blocks"])
    assert np.array_equal(ids, np.concatenate([val[s:e] for s, e in scope["blocks"]]))
    assert scope["scored_chars"] == 2_000 and "4 evenly spaced" in scope["text"]


def test_fitting_text_is_the_end_of_the_training_split():
    train = np.arange(9_000) % 97
    ids, scope = fitting_text(train, 3_000)
    assert np.array_equal(ids, train[-3_000:]) and scope["range"] == [6_000, 9_000]
    ids, scope = fitting_text(train, 9_000)
    assert np.array_equal(ids, train) and "whole" in scope["text"]


def test_report_scores_every_model_on_the_stated_blocks(tmp_path):
    cfg = write_config(tmp_path, {"evaluate.max_chars": 2_000, "evaluate.ngram_max_chars": 10_000})
    code, out, _ = run_luigi(cfg)
    assert code == 0, out
    art = tmp_path / "artifacts"
    report = json.loads(next(art.glob("Evaluate/*/report.json")).read_text())
    scope, held = report["heldout_scope"], report["heldout"]
    shards = next(art.glob("EncodeShards/*/meta.json")).parent
    train, val, test = (read_stream(shards, s).astype(np.int64) for s in ("train", "val", "test"))
    assert scope["scored"]["split_chars"] == len(test) > 2_000 and scope["fitted"]["fitted_chars"] == 10_000
    expected = np.concatenate([test[s:e] for s, e in scope["scored"]["blocks"]])
    assert len(expected) == 2_000
    for name in ("lstm", "ngram", "unigram", "uniform", "lstm_cache"):
        assert held[name]["chars"] == 2_000 and held[name]["split"] == "test", name
    # Recompute the baselines and the LSTM independently on the stated characters and fit text.
    fit = train[-10_000:]
    vocab_size = len(json.loads(next(art.glob("BuildVocab/*/vocab.json")).read_text())["chars"])
    ngram_nll = KneserNeyLM(4, vocab_size).fit(fit).stream_nll(expected, context=val)   # text before test
    assert np.isclose(held["ngram"]["nats_per_char"], ngram_nll.mean(), rtol=1e-12)
    # The bootstrap's blocks stay inside the stated blocks: 8 pieces of 250, not one of 2,000.
    pieces = np.split(ngram_nll, 8)
    assert held["ngram"]["ci95"] == pytest.approx(intervals({"n": pieces}, 2000, 2000)["n"], rel=1e-9)
    net, _ = load_model(next(art.glob("Train/*/best.ckpt")))
    lstm = evaluate_stream(net, expected, context=val[-50:], lanes=8, burn_in=50)
    assert np.isclose(held["lstm"]["nats_per_char"], lstm["nats_per_char"], rtol=1e-9)
    md = next(art.glob("Evaluate/*/report.md")).read_text()
    assert "8 evenly spaced contiguous blocks of 250" in md and "last 10,000" in md

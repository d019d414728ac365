"""A corpus of thousands of distinct characters (CJK text) runs through every stage.

The n-gram used to pack a k-gram into one int64 as base-V digits, so the default order 7
failed in Evaluate, after the whole training run, from 512 distinct characters on.
"""
import json

import numpy as np

from tests.conftest import play_text, run_luigi, write_config

ALL = ["Download", "BuildVocab", "EncodeShards", "Train", "Sample", "Evaluate"]


def many_char_corpus(distinct=3000, seed=0):
    """Play text with two-ideograph words sprinkled in, `distinct` characters in all."""
    rng = np.random.default_rng(seed)
    base = play_text(60000)
    extra = [chr(0x4E00 + i) for i in range(distinct - len(set(base)))]
    words = base.split(" ")
    for i in range(0, len(words), 3):
        words[i] += " " + "".join(rng.choice(extra, 2))
    # every extra character once, at the start: in training, not in the held-out tail
    return "NURSE:\n" + "".join(extra) + "\n\n" + " ".join(words)


def test_three_thousand_characters_run_through_all_stages_at_default_ngram_order(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(many_char_corpus(), encoding="utf-8")
    # The smoke model, with the evaluate section's default n-gram order (7).
    cfg = write_config(tmp_path, {"evaluate": {"lanes": 8, "burn_in": 50}}, corpus=corpus)
    code, out, ran = run_luigi(cfg)
    assert code == 0, out
    assert sorted(ran) == sorted(ALL)
    vocab = json.loads(next((tmp_path / "artifacts" / "BuildVocab").glob("*/vocab.json")).read_text())
    assert len(vocab["chars"]) == 3000
    report = json.loads(next((tmp_path / "artifacts" / "Evaluate").glob("*/report.json")).read_text())
    held = report["heldout"]
    assert held["ngram"]["order"] == 7
    # The 7-gram has learned the play's words: far better than uniform over 3,000 characters.
    assert held["ngram"]["nats_per_char"] < held["unigram"]["nats_per_char"] < held["uniform"]["nats_per_char"]

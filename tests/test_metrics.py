"""Sample metrics on tiny hand-made texts whose answers are known exactly."""
import math
import random

import numpy as np
import pytest

import stages.metrics as metrics
from stages.errors import UserError
from stages.metrics import (MetricContext, TrainIndex, bleu4, compute_all, distinct_n,
                            in_vocab_word_rate, js_divergence, max_line_length, ngram_nll,
                            novelty, play_format, register_metric, repetition, self_bleu,
                            speakers, word_set)
from stages.metrics.bleu import reference_pool
from stages.metrics.text import window_keys
from stages.ngram import KneserNeyLM

TRAIN = """First Citizen:
Before we proceed any further, hear me speak.

All:
Speak, speak.

First Citizen:
You are all resolved rather to die than to famish?

MENENIUS:
What work's, my countrymen, in hand? where go you
With bats and clubs? The matter? speak, I pray you.
"""


def make_codec(text):
    """encode/decode over the sorted chars of `text`."""
    vocab = sorted(set(text))
    index = {c: i for i, c in enumerate(vocab)}
    return vocab, (lambda s: np.array([index[c] for c in s], dtype=np.int64))


def test_window_keys_agree_with_substring_equality():
    rng = random.Random(0)
    text = "".join(rng.choice("abc \n\x00\U0010ffff") for _ in range(400))
    for n in (1, 3, 5, 7, 10, 20):
        keys = window_keys(text, n)
        subs = [text[i:i + n] for i in range(len(text) - n + 1)]
        assert len(keys) == len(subs)
        by_key = {}
        for k, s in zip(keys.tolist(), subs):
            assert by_key.setdefault(k, s) == s  # no two substrings share a key
        assert len(by_key) == len(set(subs))


def test_train_index_matches_a_naive_substring_set():
    rng = random.Random(1)
    train = "".join(rng.choice("ab") for _ in range(300))
    text = "".join(rng.choice("abc") for _ in range(200))
    index = TrainIndex(train, ns=(5, 10))
    for n in (5, 10):
        seen = {train[i:i + n] for i in range(len(train) - n + 1)}
        expected = [text[i:i + n] in seen for i in range(len(text) - n + 1)]
        assert index.contains(text, n).tolist() == expected


def test_novelty_of_copied_random_and_half_copied_text():
    index = TrainIndex(TRAIN)
    copied = TRAIN[40:160]
    for n in (5, 10, 20):
        assert novelty(copied, index, n) == 0.0
    letters = "".join(random.Random(2).choice("abcdefghijklmnopqrstuvwxyz") for _ in range(2000))
    assert novelty(letters, index, 10) == 1.0
    assert novelty(letters, index, 5) > 0.99
    # 100 copied chars then digits (absent from TRAIN): 91 of the 10-grams are old.
    half = TRAIN[:100] + "0123456789" * 10
    assert novelty(half, index, 10) == pytest.approx((191 - 91) / 191)
    # A list pools its windows without inventing ones across the boundary.
    assert novelty([copied, "0123456789"], index, 10) == pytest.approx(1 / 112)


def test_in_vocab_word_rate_and_word_set():
    assert word_set("Know't, 'tis -- 42 THE the") == {"know't", "'tis", "the"}
    rate = in_vocab_word_rate("The cat, the dog's bone! zzz", {"the", "cat", "dog's"})
    assert rate == pytest.approx(4 / 6)


def test_distinct_n_and_repetition_flag_a_repeated_line():
    looped = "to be or not to be\n" * 30  # 19-char cycle
    varied = "one two three four five six seven eight nine ten eleven twelve"
    # Word bigrams of the loop: 5 distinct of 30 * 6 - 1 = 179.
    assert distinct_n(looped, 2) == pytest.approx(5 / 179)
    assert distinct_n(looped, 1) == pytest.approx(4 / 180)
    assert distinct_n(varied, 2) == 1.0
    assert distinct_n(["a b", "c d"], 2) == 1.0  # no ("b", "c") across texts
    assert repetition(looped) == 1.0
    assert repetition(varied) == 0.0
    # A loop filling the second half covers about half of the text.
    assert repetition(varied + " " + "abcdefgh" * 8) == pytest.approx(64 / 128, abs=0.02)


def test_js_divergence_known_values():
    assert js_divergence(TRAIN, TRAIN, 3) == 0.0
    assert js_divergence("abab", "cdcd", 1) == 1.0
    assert js_divergence("abab", "cdcd", 2) == 1.0
    # P = {a: 1}, Q = {a: .5, b: .5}, M = {a: .75, b: .25}.
    expected = 0.5 * math.log2(1 / 0.75) + 0.25 * (math.log2(0.5 / 0.75) + math.log2(2))
    assert js_divergence("aaaa", "abab", 1) == pytest.approx(expected)


def test_play_format_on_a_two_turn_play():
    train_speakers = speakers(TRAIN)
    assert train_speakers == {"First Citizen", "All", "MENENIUS"}
    assert max_line_length(TRAIN) == len("With bats and clubs? The matter? speak, I pray you.")
    play = "All:\nSpeak, speak.\nThis line is far too long for a play.\n\nGHOST:\n"
    shares = play_format(play, train_speakers, 20)
    assert shares == {"speaker_line_share": 2 / 4, "known_speaker_share": 1 / 2,
                      "overlong_line_share": 1 / 4, "malformed_turn_share": 1 / 2}
    # A turn opening with speech is malformed even if a speaker line follows.
    shares = play_format("hello\nAll:\nhi\n\n\nAll:\nyes", train_speakers, 80)
    assert shares["malformed_turn_share"] == 1 / 2
    assert shares["speaker_line_share"] == 2 / 5
    # A whitespace-only line separates turns like an empty one.
    shares = play_format("All:\nhi\n   \nMENENIUS:\nyes", train_speakers, 80)
    assert shares["malformed_turn_share"] == 0.0 and shares["speaker_line_share"] == 2 / 4


def test_bleu4_exact_values():
    assert bleu4(["The cat sat on the mat."], ["the cat sat on the mat"]) == 1.0
    # Matches 2/3, 1/2, 0/1, 0/0, add-one smoothed: (3/4 * 2/3 * 1/2 * 1) ** (1/4).
    assert bleu4(["the cat sat"], ["the cat ran"]) == pytest.approx(0.25 ** 0.25)
    # Short candidate: every p_n is 1 but the brevity penalty is exp(1 - 4/2).
    assert bleu4(["the cat"], ["the cat sat on"]) == pytest.approx(math.exp(-1))
    # Clipping by the best single reference line: "the" at most 2, "the the" at most 1.
    assert bleu4(["the the the"], ["the cat", "the the dog"]) == pytest.approx(0.25 ** 0.25)
    # The reference length is the closest line length (2, not 8): no penalty.
    assert bleu4(["the cat sat"], ["the cat", "a b c d e f g h"]) == pytest.approx(0.25 ** 0.25)
    # On a tie (2 and 4 around 3) the shorter length wins: again no penalty.
    assert bleu4(["the cat sat"], ["the cat", "x y z w"]) == pytest.approx(0.25 ** 0.25)


def test_bleu4_against_a_pool_built_once_equals_against_the_lines():
    lines = TRAIN.split("\n")
    pool = reference_pool(lines[10:])
    for cand in (lines[:4], lines[4:9], ["the king is dead"]):
        assert bleu4(cand, pool) == bleu4(cand, lines[10:])


def test_self_bleu_of_identical_and_disjoint_samples():
    same = ["to be or not to be\nthat is the question"] * 3
    assert self_bleu(same) == pytest.approx(1.0)
    # Disjoint words: every p_n is 0 matches, add-one smoothed to 1 / (total_n + 1).
    disjoint = self_bleu(["alpha beta gamma delta", "one two three four"])
    assert disjoint == pytest.approx((1 / 5 * 1 / 4 * 1 / 3 * 1 / 2) ** 0.25)
    assert math.isnan(self_bleu(["only one"]))


def test_ngram_nll_under_order_one_model_by_hand():
    vocab, encode = make_codec("abcd")
    lm = KneserNeyLM(1, len(vocab)).fit(encode("aaaabbc"))
    # Counts 4, 2, 1 have count-of-counts n3 = 0: fallback discounts 0.5, 1, 1.5;
    # gamma = (1.5 + 1 + 0.5) / 7 spread uniformly over the 4 ids.
    p = {"a": 2.5 / 7 + 3 / 28, "b": 1 / 7 + 3 / 28, "c": 0.5 / 7 + 3 / 28, "d": 3 / 28}
    expected = -(math.log(p["a"]) + math.log(p["b"]) + math.log(p["d"])) / 3
    assert ngram_nll("abd", lm, encode) == pytest.approx(expected)
    assert ngram_nll(["ab", "d"], lm, encode) == pytest.approx(expected)


def test_ngram_nll_reads_the_text_before_each_sample_as_context():
    vocab, encode = make_codec(TRAIN)
    lm = KneserNeyLM(4, len(vocab)).fit(encode(TRAIN))
    prime, text = "First Citizen:\n", "Before we"
    with_context = lm.stream_nll(encode(prime + text))[len(prime):].mean()
    assert ngram_nll([text], lm, encode, {text: prime}) == pytest.approx(with_context)
    # The context matters here: from its start the text scores differently.
    assert abs(ngram_nll([text], lm, encode) - with_context) > 0.1
    assert ngram_nll([text], lm, encode, {"other": prime}) == pytest.approx(ngram_nll(text, lm, encode))


def test_order_one_sample_scores_about_the_unigram_entropy():
    vocab, encode = make_codec(TRAIN)
    lm = KneserNeyLM(1, len(vocab)).fit(encode(TRAIN))
    p = lm.distribution(np.zeros(0, dtype=np.int64))
    entropy = float(-(p * np.log(p)).sum())
    draws = lm.sample(1000, np.random.default_rng(0), num=20)
    texts = ["".join(vocab[i] for i in row) for row in draws]
    assert ngram_nll(texts, lm, encode) == pytest.approx(entropy, abs=0.03)
    # A text of the model's single likeliest char scores well below the entropy.
    assert ngram_nll(vocab[int(p.argmax())] * 50, lm, encode) < entropy - 1


@pytest.fixture
def context():
    heldout = "All:\nWe know't, we know't.\n\nFirst Citizen:\nLet us kill him.\n"
    vocab, encode = make_codec(TRAIN + heldout)
    lm = KneserNeyLM(3, len(vocab)).fit(encode(TRAIN))
    return MetricContext.build(TRAIN, heldout, lm, encode)


def test_compute_all_returns_every_stable_name(context):
    names = {"in_vocab_word_rate", "novelty_5", "novelty_10", "novelty_20", "distinct_1",
             "distinct_2", "distinct_3", "repetition", "js_1", "js_2", "js_3", "js_4",
             "ngram_nll", "speaker_line_share", "known_speaker_share", "overlong_line_share",
             "malformed_turn_share", "bleu4", "self_bleu"}
    lines = TRAIN.split("\n")
    result = compute_all(["\n".join(lines[:5]), "\n".join(lines[5:10])], context)
    assert names <= set(result)
    assert result["novelty_10"] == 0.0 and result["in_vocab_word_rate"] == 1.0
    assert result["known_speaker_share"] == 1.0
    with pytest.raises(UserError, match="list"):
        compute_all(TRAIN, context)


def test_registered_and_plugin_metrics_join_compute_all(context, monkeypatch):
    monkeypatch.setattr(metrics, "METRICS", dict(metrics.METRICS))
    monkeypatch.setattr(metrics, "_plugins_loaded", False)

    class FakeEntryPoint:
        name, value = "sample_count", "plugin:count"

        def load(self):
            return lambda samples, ctx: len(samples)

    monkeypatch.setattr(metrics, "entry_points", lambda group: [FakeEntryPoint()]
                        if group == metrics.ENTRY_POINT_GROUP else [])
    register_metric("total_chars")(lambda samples, ctx: sum(map(len, samples)))
    result = compute_all(["abc", "de"], context)
    assert result["sample_count"] == 2.0 and result["total_chars"] == 5.0
    with pytest.raises(UserError, match="twice"):
        register_metric("bleu4")(lambda samples, ctx: 0.0)

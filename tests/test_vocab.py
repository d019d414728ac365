"""Character vocabulary: counting, deterministic ids, round trips, unknown chars."""

import json
from collections import Counter

import numpy as np
import pytest

from stages.errors import UserError
from stages.vocab import Vocab, build_vocab, count_chars

TEXT = "ROMEO:\nBut soft, what light?\n\nJULIET:\nAy me!\n"


def test_count_chars_streams_in_small_chunks(tmp_path):
    path = tmp_path / "c.txt"
    path.write_bytes((TEXT + "é\r\n").encode("utf-8"))
    assert count_chars(path, chunk_chars=3) == Counter(TEXT + "é\r\n")


def test_count_chars_counts_codepoints_above_255_and_astral_ones(tmp_path):
    # Counted apart from the first 256 codepoints: chunks with and without them, and a mix.
    text = TEXT * 3 + "ſ—’“\U0001F600ſ" + TEXT + "—\U0001F600"
    path = tmp_path / "c.txt"
    path.write_bytes(text.encode("utf-8"))
    for chunk in (1, 7, 1 << 20):
        assert count_chars(path, chunk_chars=chunk) == Counter(text)


def test_ids_follow_codepoint_order_whatever_the_counts():
    vocab = build_vocab(Counter("cab\n"))
    assert vocab.chars == ("\n", "a", "b", "c")
    assert vocab.stoi == {"\n": 0, "a": 1, "b": 2, "c": 3}
    assert vocab.itos[3] == "c" and vocab.size == 4
    assert build_vocab(Counter("abc\n" * 5)).fingerprint == vocab.fingerprint
    assert build_vocab(Counter("abd\n")).fingerprint != vocab.fingerprint


def test_encode_decode_round_trip():
    vocab = build_vocab(Counter(TEXT))
    ids = vocab.encode(TEXT)
    assert ids.dtype == np.uint8 and len(ids) == len(TEXT)
    assert vocab.decode(ids) == TEXT
    assert [vocab.itos[int(i)] for i in ids[:3]] == ["R", "O", "M"]


def test_large_vocab_uses_uint16():
    text = "".join(chr(c) for c in range(0x100, 0x100 + 300))
    vocab = build_vocab(Counter(text))
    ids = vocab.encode(text)
    assert ids.dtype == np.dtype("<u2") and ids.max() == 299
    assert vocab.decode(ids) == text


def test_unknown_chars_error_by_default_and_skip_on_request():
    vocab = build_vocab(Counter(TEXT))
    with pytest.raises(UserError, match=r"not in the corpus vocabulary: 'q', 'é'") as err:
        vocab.encode("quiét")
    assert "\n" not in str(err.value)
    assert vocab.decode(vocab.encode("quiét", unknown="skip")) == "uit"


def test_decode_rejects_out_of_range_ids():
    vocab = build_vocab(Counter("ab"))
    with pytest.raises(ValueError):
        vocab.decode([0, 2])


def test_save_load_round_trip_with_both_directions(tmp_path):
    vocab = build_vocab(Counter(TEXT))
    vocab.save(tmp_path / "vocab.json")
    data = json.loads((tmp_path / "vocab.json").read_text(encoding="utf-8"))
    assert data["chars"] == list(vocab.chars)
    assert data["stoi"]["R"] == vocab.stoi["R"] and data["itos"][str(vocab.stoi["R"])] == "R"
    assert data["counts"]["\n"] == TEXT.count("\n")
    loaded = Vocab.load(tmp_path / "vocab.json")
    assert loaded == vocab and loaded.counts == vocab.counts
    assert Vocab.from_json(vocab.to_json()) == vocab


@pytest.mark.parametrize("damage", [
    lambda text: text[: len(text) // 2],
    lambda text: text.replace('"R": ', '"R": 1', 1),
    lambda text: json.dumps({"chars": ["b", "a"], "stoi": {}, "itos": {}, "counts": {}}),
])
def test_damaged_vocab_file_is_a_user_error(tmp_path, damage):
    path = tmp_path / "vocab" / "vocab.json"
    build_vocab(Counter(TEXT)).save(path)
    path.write_text(damage(path.read_text(encoding="utf-8")), encoding="utf-8")
    with pytest.raises(UserError, match=r"vocab\.json is damaged .*delete the folder .*vocab and rerun") as err:
        Vocab.load(path)
    assert "\n" not in str(err.value)


def test_empty_corpus_is_a_user_error():
    with pytest.raises(UserError, match="corpus is empty"):
        build_vocab(Counter())

"""Parquet sequence shards: exact round trip, split point, metadata, damage handling."""

from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stages.errors import UserError
from stages.shards import encode_shards, read_stream, shard_name
from stages.vocab import build_vocab

TEXT = "".join(f"SPEAKER {i % 7}:\nLine {i}, with words; and more!\n\n" for i in range(60))


def make(tmp_path, text=TEXT, **layout):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(text, encoding="utf-8", newline="")
    vocab = build_vocab(Counter(text))
    layout = {"seq_len": 16, "rows_per_group": 8, "rows_per_shard": 20, **layout}
    info = encode_shards(corpus, vocab, tmp_path / "shards", **layout)
    return vocab, info, tmp_path / "shards"


def test_streams_decode_back_to_the_corpus_split_at_90_and_95_percent(tmp_path):
    vocab, info, out = make(tmp_path)
    train = read_stream(out, "train", expect_vocab_fingerprint=vocab.fingerprint)
    val, test = read_stream(out, "val"), read_stream(out, "test")
    n_train, n_test = int(len(TEXT) * 0.9), int(len(TEXT) * 0.95)
    assert vocab.decode(train) == TEXT[:n_train]     # the training text is the usual first 90%
    assert vocab.decode(val) == TEXT[n_train:n_test] and vocab.decode(test) == TEXT[n_test:]
    assert info["train"]["tokens"] == n_train and info["val"]["tokens"] == n_test - n_train
    assert info["test"]["tokens"] == len(TEXT) - n_test
    assert info["train"]["rows"] == -(-n_train // 16)
    assert info["train"]["files"] == [shard_name("train", i) for i in range(-(-info["train"]["rows"] // 20))]
    assert len(info["train"]["files"]) > 1
    assert info["vocab_fingerprint"] == vocab.fingerprint and info["seq_len"] == 16


def test_rows_are_consecutive_windows_in_zstd_row_groups(tmp_path):
    vocab, info, out = make(tmp_path)
    shard = pq.ParquetFile(out / "train-00001.parquet")
    meta = {k.decode(): v.decode() for k, v in shard.schema_arrow.metadata.items()}
    n_train = int(len(TEXT) * 0.9)
    assert meta["vocab_fingerprint"] == vocab.fingerprint and meta["split"] == "train"
    assert (meta["split_start"], meta["split_end"]) == ("0", str(n_train))
    assert (meta["seq_len"], meta["token_dtype"], meta["split_tokens"]) == ("16", "|u1", str(n_train))
    assert shard.metadata.num_row_groups == 3  # 20 rows in groups of 8, 8, 4
    assert shard.metadata.row_group(0).column(1).compression == "ZSTD"
    table = shard.read()
    assert table.column("row").to_pylist() == list(range(20, 40))
    assert table.column("tokens")[0].as_py() == vocab.encode(TEXT[20 * 16 : 21 * 16]).tolist()
    assert table.schema.field("tokens").type == pa.list_(pa.uint8())
    val_meta = pq.read_schema(out / "val-00000.parquet").metadata
    n_test = int(len(TEXT) * 0.95)
    assert val_meta[b"split_start"] == str(n_train).encode() and val_meta[b"split_end"] == str(n_test).encode()


def test_last_row_of_a_split_may_be_shorter(tmp_path):
    vocab, info, out = make(tmp_path, seq_len=7)
    last = pq.read_table(out / info["val"]["files"][-1]).column("tokens").to_pylist()[-1]
    assert 0 < len(last) <= 7 and len(last) == info["val"]["tokens"] - 7 * (info["val"]["rows"] - 1)


def test_large_vocab_stores_little_endian_uint16(tmp_path):
    text = "".join(chr(0x400 + i % 300) for i in range(3000))
    vocab, info, out = make(tmp_path, text)
    train = read_stream(out, "train")
    assert train.dtype == np.dtype("<u2")
    assert vocab.decode(np.concatenate([train, read_stream(out, "val"), read_stream(out, "test")])) == text
    tokens = pq.read_table(out / "train-00000.parquet").column("tokens")
    assert tokens.type == pa.list_(pa.uint16())
    assert tokens[0].as_py() == vocab.encode(text[:16]).tolist()


def test_truncated_shard_is_a_user_error(tmp_path):
    _, _, out = make(tmp_path)
    path = out / "train-00001.parquet"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(UserError, match=r"train-00001\.parquet is damaged.*rerun EncodeShards") as err:
        read_stream(out, "train")
    assert "\n" not in str(err.value)


def test_missing_or_foreign_shards_are_user_errors(tmp_path):
    vocab, info, out = make(tmp_path)
    with pytest.raises(UserError, match="encoded with vocabulary .*delete .*rerun EncodeShards"):
        read_stream(out, "train", expect_vocab_fingerprint="0" * 64)
    pq.write_table(pa.table({"row": [0], "tokens": [[1]]}), out / "val-00000.parquet")
    with pytest.raises(UserError, match="val-00000.parquet is damaged .*metadata lacks"):
        read_stream(out, "val")
    (out / info["train"]["files"][-1]).unlink()
    with pytest.raises(UserError, match=r"train-0000\d\.parquet is damaged"):
        read_stream(out, "train")
    with pytest.raises(UserError, match="no other shards"):
        read_stream(out, "other")


def test_out_of_sequence_rows_are_detected(tmp_path):
    _, _, out = make(tmp_path)
    path = out / "train-00000.parquet"
    shard = pq.read_table(path)
    swapped = shard.take([1, 0] + list(range(2, shard.num_rows)))
    pq.write_table(swapped, path)
    with pytest.raises(UserError, match="out of sequence"):
        read_stream(out, "train")


def test_too_short_corpus_or_empty_validation_split(tmp_path):
    with pytest.raises(UserError, match="fewer than seq_len"):
        make(tmp_path, "short text", seq_len=16)
    with pytest.raises(UserError, match="validation split .* is empty"):
        make(tmp_path, "x" * 40, seq_len=4, val_fraction=0.01, test_fraction=0.005)
    with pytest.raises(UserError, match="test split .* is empty"):
        make(tmp_path, "x" * 40, seq_len=4, val_fraction=0.5, test_fraction=0.01)
    with pytest.raises(UserError, match="test_fraction must be above 0 and below val_fraction"):
        make(tmp_path, seq_len=4, val_fraction=0.1, test_fraction=0.1)
    with pytest.raises(UserError, match="seq_len must be a positive integer"):
        make(tmp_path, seq_len=0)


def test_stale_character_count_is_detected(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT)
    vocab = build_vocab(Counter(TEXT))
    for wrong in (len(TEXT) - 5, len(TEXT) + 5):
        with pytest.raises(UserError, match="count"):
            encode_shards(corpus, vocab, tmp_path / "s", seq_len=16, total_chars=wrong)

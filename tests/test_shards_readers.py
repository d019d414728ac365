"""The shards as other programs see them: token ids, not bytes, and the exact split back.

pandas and DuckDB are optional (not install requirements): their checks are skipped when the
library is missing; the pyarrow check always runs.
"""
from collections import Counter

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from stages.errors import UserError
from stages.shards import encode_shards, read_stream
from stages.vocab import build_vocab

TEXT = "".join(f"KING {i % 5}:\nO what a rogue and peasant slave, line {i}!\n\n" for i in range(80))


def make(tmp_path, text=TEXT):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(text, encoding="utf-8", newline="")
    vocab = build_vocab(Counter(text))
    info = encode_shards(corpus, vocab, tmp_path / "shards", seq_len=16, rows_per_group=8, rows_per_shard=20)
    n_train, n_test = int(len(text) * 0.9), int(len(text) * 0.95)
    return vocab, info, tmp_path / "shards", {"train": text[:n_train], "val": text[n_train:n_test],
                                              "test": text[n_test:]}


@pytest.mark.parametrize("text", [TEXT, "".join(chr(0x400 + i % 300) for i in range(3000))],
                         ids=["uint8", "uint16"])
def test_pyarrow_reads_integer_lists_that_concatenate_to_the_split(tmp_path, text):
    vocab, info, out, splits = make(tmp_path, text)
    for split in ("train", "val", "test"):
        table = pa.concat_tables(pq.read_table(out / f) for f in info[split]["files"])
        assert pa.types.is_list(table.schema.field("tokens").type)
        ids = table.column("tokens").combine_chunks().flatten().to_numpy()
        assert np.issubdtype(ids.dtype, np.unsignedinteger)
        assert vocab.decode(ids) == splits[split]


def test_pandas_reads_token_ids(tmp_path):
    pd = pytest.importorskip("pandas")
    vocab, info, out, splits = make(tmp_path)
    frame = pd.concat([pd.read_parquet(out / f) for f in info["train"]["files"]], ignore_index=True)
    assert list(frame["row"]) == list(range(info["train"]["rows"]))
    first = list(frame["tokens"].iloc[0])
    assert first == vocab.encode(splits["train"][:16]).tolist()
    assert vocab.decode(np.concatenate(frame["tokens"].to_list())) == splits["train"]


def test_duckdb_counts_and_reads_token_ids(tmp_path):
    duckdb = pytest.importorskip("duckdb")
    vocab, info, out, splits = make(tmp_path)
    glob, con = str(out / "train-*.parquet"), duckdb.connect()
    [(total,)] = con.execute(f"SELECT sum(len(tokens)) FROM read_parquet('{glob}')").fetchall()
    assert total == len(splits["train"])
    rows = con.execute(f"SELECT tokens FROM read_parquet('{glob}') ORDER BY row").fetchall()
    assert vocab.decode([i for (tokens,) in rows for i in tokens]) == splits["train"]


def test_token_file_holds_the_same_ids_as_the_shards(tmp_path):
    vocab, info, out, splits = make(tmp_path)
    for split in ("train", "val", "test"):
        raw = np.fromfile(out / info[split]["token_file"], dtype=np.uint8)
        assert np.array_equal(raw, read_stream(out, split))


def test_old_binary_shards_are_reported_as_damaged(tmp_path):
    # A shard whose tokens are packed bytes (the old layout) must not be read as ids.
    vocab, info, out, splits = make(tmp_path)
    path = out / info["train"]["files"][0]
    table = pq.read_table(path)
    packed = pa.array([bytes(r) for r in table.column("tokens").to_pylist()], pa.binary())
    pq.write_table(table.set_column(1, "tokens", packed).replace_schema_metadata(table.schema.metadata), path)
    with pytest.raises(UserError, match="is damaged"):
        read_stream(out, "train")

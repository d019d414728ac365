"""Parquet sequence shards: the encoded corpus split into train, validation and test.

The corpus is split by characters: the first ``1 - val_fraction`` of them go to
``train`` (the usual first 90%); the held-out rest is cut in two, its last
``test_fraction`` of the corpus going to ``test`` and what lies between to ``val``.
Every choice (the best checkpoint, every tuned setting) reads ``val``; ``test`` is read
only by the report's scoring, so no choice has seen the text its figures are measured on. Each split's
token stream is cut into consecutive rows of `seq_len` tokens (the last row may
be shorter) stored in ``<split>-00000.parquet``, ``<split>-00001.parquet``...
Columns: ``row`` (int64, index of the row within its split) and ``tokens``
(``list<uint8>`` ids, or ``list<uint16>`` when the vocabulary has more than 256
characters), so any Parquet reader (pyarrow, pandas, DuckDB, Polars) sees token
ids. Concatenating the rows in order gives back the exact split stream, which is
what lets training carry hidden state from one window to the next. Schema
metadata records the vocabulary fingerprint, the split, its char offsets in the
corpus, `seq_len`, the token dtype, the split's token count and its token file.

Next to the shards, ``<split>.tokens`` holds the same ids as one raw array (the
token dtype, little-endian): training and evaluation read their windows from it
with positioned reads (stages/tokens.py), so their memory does not grow with the
corpus. It is written in the same pass, atomically, before the stage completes.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from stages.atomic import atomic_path
from stages.errors import UserError
from stages.vocab import Vocab

_READ_CHARS = 1 << 20
_ARROW_IDS = {"|u1": pa.uint8(), "<u2": pa.uint16()}
_REQUIRED_META = ("vocab_fingerprint", "vocab_size", "split", "split_tokens", "seq_len", "token_dtype", "shard_count", "shard_index")


def shard_name(split: str, index: int) -> str:
    """File name of shard `index` of `split`."""
    return f"{split}-{index:05d}.parquet"


def token_file_name(split: str) -> str:
    """File name of the raw token array of `split`."""
    return f"{split}.tokens"


def encode_shards(
    corpus_path: str | os.PathLike, vocab: Vocab, out_dir: str | os.PathLike, *, seq_len: int,
    val_fraction: float = 0.1, test_fraction: float = 0.05, rows_per_group: int = 1024,
    rows_per_shard: int = 65536, total_chars: int | None = None, progress=None,
) -> dict:
    """Encode the corpus into train/val/test Parquet shards in `out_dir`, streaming.

    `total_chars` (e.g. the sum of the vocabulary counts) saves a counting pass;
    `progress(n)` is called after every n ids read.
    Returns ``{"train": {"files", "tokens", "rows"}, "val": {...}, "test": {...},
    "vocab_fingerprint", "seq_len"}`` with file names relative to `out_dir`.
    """
    _check_layout(seq_len, val_fraction, test_fraction, rows_per_group, rows_per_shard)
    total = _count_chars(corpus_path) if total_chars is None else total_chars
    n_train = int(total * (1 - val_fraction))
    n_test = int(total * (1 - test_fraction))
    if n_train < seq_len + 1:
        raise UserError(f"the corpus train split has {n_train} characters, fewer than seq_len + 1 = {seq_len + 1}: use a longer corpus or a smaller seq_len")
    for name, n, key in (("validation", n_test - n_train, "val_fraction"), ("test", total - n_test, "test_fraction")):
        if n < 2:  # one character holds no (input, target) pair: nothing to evaluate
            raise UserError(f"the {name} split of the {total}-character corpus is empty ({n} characters): raise {key} or use a longer corpus")
    result: dict = {"vocab_fingerprint": vocab.fingerprint, "seq_len": seq_len}
    progress = progress or (lambda n: None)
    with _open_corpus(corpus_path) as fh, ThreadPoolExecutor(max_workers=2) as pool:
        reader = _TokenReader(fh, vocab, str(corpus_path))
        for split, start, end in (("train", 0, n_train), ("val", n_train, n_test), ("test", n_test, total)):
            meta = {"vocab_fingerprint": vocab.fingerprint, "vocab_size": vocab.size, "split": split,
                    "split_start": start, "split_end": end, "seq_len": seq_len,
                    "token_dtype": vocab.token_dtype.str, "split_tokens": end - start,
                    "token_file": token_file_name(split)}
            result[split] = _write_split(reader, Path(out_dir), meta, rows_per_group, rows_per_shard, pool, progress)
        if len(reader.read(1)):
            raise _corpus_changed(corpus_path, "is longer than the character count")
    return result


def _check_layout(seq_len: int, val_fraction: float, test_fraction: float, rows_per_group: int,
                  rows_per_shard: int) -> None:
    for name, value in (("seq_len", seq_len), ("rows_per_group", rows_per_group), ("rows_per_shard", rows_per_shard)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
            raise UserError(f"{name} must be a positive integer, not {value!r}: fix it in the config")
    if not 0 < val_fraction < 1:
        raise UserError(f"val_fraction must be between 0 and 1 (exclusive), not {val_fraction!r}: fix it in the config")
    if not 0 < test_fraction < val_fraction:
        raise UserError(f"test_fraction must be above 0 and below val_fraction ({val_fraction!r}), not "
                        f"{test_fraction!r}: the test split is the end of the held-out text; fix it in the config")
    if rows_per_group * seq_len * 2 >= 1 << 31:
        raise UserError(f"rows_per_group * seq_len = {rows_per_group * seq_len} is too large for one row group: lower rows_per_group")


def _open_corpus(path: str | os.PathLike):
    try:
        return open(path, encoding="utf-8", newline="")  # no newline translation: offsets stay exact
    except FileNotFoundError:
        raise UserError(f"corpus {path} is missing: rerun the download stage") from None


def _count_chars(path: str | os.PathLike) -> int:
    total = 0
    with _open_corpus(path) as fh:
        while chunk := _read_text(fh, path):
            total += len(chunk)
    return total


def _read_text(fh, path: str | os.PathLike, size: int = _READ_CHARS) -> str:
    try:
        return fh.read(size)
    except UnicodeDecodeError:
        raise UserError(f"corpus {path} is not valid UTF-8: delete it and rerun the download stage") from None


def _corpus_changed(path: str | os.PathLike, what: str) -> UserError:
    return UserError(f"corpus {path} {what} given for it: it changed during encoding or the count is stale; rerun EncodeShards")


class _TokenReader:
    """Hands out the corpus as token ids, exactly `n` at a time, from a text stream."""

    def __init__(self, fh, vocab: Vocab, label: str):
        self.fh, self.vocab, self.label = fh, vocab, label
        self.pending = np.empty(0, dtype=vocab.token_dtype)

    def read(self, n: int) -> np.ndarray:
        """Return the next `n` ids (fewer only at the end of the corpus)."""
        parts, have = [self.pending], len(self.pending)
        while have < n and (text := _read_text(self.fh, self.label, max(_READ_CHARS, n - have))):
            ids = self.vocab.encode(text, unknown="skip")
            if len(ids) != len(text):
                raise UserError(
                    f"corpus {self.label} has characters missing from vocabulary {self.vocab.fingerprint[:12]}: "
                    "delete the vocabulary folder and rerun so it is rebuilt from this corpus"
                )
            parts.append(ids)
            have += len(ids)
        data = np.concatenate(parts)
        self.pending = data[n:]
        return data[:n]


def _write_split(reader: _TokenReader, out_dir: Path, meta: dict, rows_per_group: int, rows_per_shard: int,
                 pool: ThreadPoolExecutor, progress) -> dict:
    # The ids are read in order here; the Parquet encoding (the slow part, and list columns cost
    # twice what the old binary one did) runs in two threads, one shard each, which Arrow lets
    # run in parallel. At most two shards of ids wait in memory.
    seq_len, tokens = meta["seq_len"], meta["split_tokens"]
    rows = -(-tokens // seq_len)
    shard_count = -(-rows // rows_per_shard)
    files, pending = [], []
    with atomic_path(out_dir / meta["token_file"]) as tmp, open(tmp, "wb") as token_fh:
        for index in range(shard_count):
            first_row = index * rows_per_shard
            shard_meta = {**meta, "split_rows": rows, "shard_index": index, "shard_count": shard_count,
                          "first_row": first_row, "shard_rows": min(rows_per_shard, rows - first_row)}
            want = min(rows_per_shard * seq_len, tokens - first_row * seq_len)
            ids = reader.read(want)
            if len(ids) != want:
                raise _corpus_changed(reader.label, "is shorter than the character count")
            ids.tofile(token_fh)   # token_dtype is little-endian by construction
            files.append(shard_name(meta["split"], index))
            pending.append(pool.submit(_write_shard, ids, out_dir / files[-1], shard_meta, rows_per_group))
            while len(pending) >= 2:
                pending.pop(0).result()
            progress(len(ids))
        for job in pending:
            job.result()
    return {"files": files, "tokens": tokens, "rows": rows, "token_file": meta["token_file"]}


def _write_shard(ids: np.ndarray, path: Path, meta: dict, rows_per_group: int) -> None:
    seq_len, first_row = meta["seq_len"], meta["first_row"]
    fields = [("row", pa.int64()), ("tokens", pa.list_(_ARROW_IDS[meta["token_dtype"]]))]
    schema = pa.schema(fields, metadata={k.encode(): str(v).encode() for k, v in meta.items()})
    with atomic_path(path) as tmp, pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
        for group in range(0, meta["shard_rows"], rows_per_group):
            rows = min(rows_per_group, meta["shard_rows"] - group)
            chunk = ids[group * seq_len:(group + rows) * seq_len]
            writer.write_table(_rows_table(chunk, first_row + group, seq_len, schema), row_group_size=rows)


def _rows_table(ids: np.ndarray, first_row: int, seq_len: int, schema: pa.Schema) -> pa.Table:
    # Build the list column straight from the id buffer plus offsets: no per-row Python objects.
    # Arrays from raw buffers, not pa.array(ndarray): that imports pandas when it is installed
    # (a second or more per process, longer than encoding 10 MB).
    rows = -(-len(ids) // seq_len)
    offsets = np.minimum(np.arange(rows + 1, dtype=np.int32) * seq_len, len(ids))
    values = _from_numpy(schema.field("tokens").type.value_type, np.ascontiguousarray(ids))
    tokens = pa.ListArray.from_arrays(_from_numpy(pa.int32(), offsets), values)
    row_ids = _from_numpy(pa.int64(), np.arange(first_row, first_row + rows, dtype=np.int64))
    return pa.Table.from_arrays([row_ids, tokens], schema=schema)


def _from_numpy(arrow_type: pa.DataType, values: np.ndarray) -> pa.Array:
    return pa.Array.from_buffers(arrow_type, len(values), [None, pa.py_buffer(values)])


def first_shard_meta(out_dir: Path, split: str, expect_vocab_fingerprint: str | None) -> dict:
    """Metadata of the split's first shard, checked against the expected vocabulary."""
    first = out_dir / shard_name(split, 0)
    if not first.is_file():
        raise UserError(f"no {split} shards in {out_dir} ({first.name} is missing): rerun EncodeShards")
    head = _shard_meta(first)
    if expect_vocab_fingerprint and head["vocab_fingerprint"] != expect_vocab_fingerprint:
        raise UserError(
            f"shards in {out_dir} were encoded with vocabulary {head['vocab_fingerprint'][:12]}, not "
            f"{expect_vocab_fingerprint[:12]}: delete {out_dir} and rerun EncodeShards"
        )
    return head


def read_stream(out_dir: str | os.PathLike, split: str, *, expect_vocab_fingerprint: str | None = None) -> np.ndarray:
    """Return the whole token stream of `split` ("train", "val" or "test") from its shards.

    Checks every shard's metadata and row sequence; a missing, damaged or
    mismatched shard raises UserError naming the file.
    """
    out_dir = Path(out_dir)
    head = first_shard_meta(out_dir, split, expect_vocab_fingerprint)
    out = np.empty(int(head["split_tokens"]), dtype=np.dtype(head["token_dtype"]))
    pos = 0
    for index in range(int(head["shard_count"])):
        pos = _read_shard(out_dir / shard_name(split, index), head, index, out, pos)
    if pos != len(out) or (len(out) and out.max() >= int(head["vocab_size"])):
        raise damaged(out_dir / shard_name(split, 0), "shards do not add up to the split")
    return out


def _shard_meta(path: Path) -> dict[str, str]:
    try:
        raw = pq.read_schema(path).metadata or {}
        meta = {k.decode(): v.decode() for k, v in raw.items()}
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise damaged(path, exc) from None
    missing = [key for key in _REQUIRED_META if key not in meta]
    if missing:
        raise damaged(path, f"metadata lacks {', '.join(missing)}")
    return meta


def matching_shard_meta(path: Path, head: dict[str, str], index: int, keys) -> dict[str, str]:
    """Metadata of shard `index` of a split, checked to agree with the first shard's on `keys`."""
    meta = _shard_meta(path)
    if any(meta.get(k) != head.get(k) for k in keys) or meta.get("shard_index") != str(index):
        raise damaged(path, "its metadata does not match the first shard of the split")
    return meta


def _read_shard(path: Path, head: dict[str, str], index: int, out: np.ndarray, pos: int) -> int:
    matching_shard_meta(path, head, index,
                        ("vocab_fingerprint", "split", "split_tokens", "seq_len", "token_dtype", "shard_count"))
    try:
        for batch in pq.ParquetFile(path).iter_batches(columns=["row", "tokens"]):
            pos = _copy_batch(path, batch, out, pos, int(head["seq_len"]))
    except (pa.ArrowException, OSError, ValueError) as exc:
        raise damaged(path, exc) from None
    return pos


def _copy_batch(path: Path, batch: pa.RecordBatch, out: np.ndarray, pos: int, seq_len: int) -> int:
    rows, tokens = batch.column(0), batch.column(1)
    first = pos // seq_len
    expected_rows = np.arange(first, first + len(rows))
    expected_lens = np.clip(len(out) - expected_rows * seq_len, 0, seq_len)
    if (not pa.types.is_list(tokens.type) or rows.null_count or tokens.null_count
            or not np.array_equal(_numpy_view(rows, np.int64), expected_rows)
            or not np.array_equal(np.diff(_numpy_view(tokens.offsets, np.int32)), expected_lens)
            or not expected_lens.all()):
        raise damaged(path, f"rows from {first} are out of sequence or have the wrong length")
    values = tokens.flatten()   # the ids of these rows, sliced without copying
    if values.null_count or values.type != _ARROW_IDS.get(out.dtype.str):
        raise damaged(path, f"token ids of rows from {first} are missing or not {out.dtype}")
    data = _numpy_view(values, out.dtype)
    out[pos:pos + len(data)] = data
    return pos + len(data)


def _numpy_view(array: pa.Array, dtype) -> np.ndarray:
    # The array's data buffer seen as NumPy, without copying; Array.to_numpy() would do the same
    # but imports pandas when it is installed.
    if array.type.bit_width != np.dtype(dtype).itemsize * 8:
        raise ValueError(f"column of {array.type} where {np.dtype(dtype)} was expected")
    return np.frombuffer(array.buffers()[1], dtype)[array.offset:array.offset + len(array)]


def damaged(path: Path, reason: object) -> UserError:
    """The one-line error for a shard (or its split's token file) that cannot be trusted."""
    text = " ".join(str(reason).split()) or type(reason).__name__
    return UserError(f"shard {path} is damaged or unreadable ({text}): delete {path.parent} and rerun EncodeShards")

"""A split's token ids read on demand from its raw token file, in memory that does not grow.

EncodeShards writes ``<split>.tokens`` next to the Parquet shards: the split's ids as one raw
little-endian array. `TokenFile` reads slices of it with positioned reads (os.pread), so a
reader holds only the slices it asked for; a memory map would do the same reads but leave every
page it touched counted in the process's resident memory. A `TokenFile` looks like a read-only
1-d array to its users: `len()`, `dtype`, `t[a:b]` (a copy), `np.asarray(t)` (the whole split).
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from stages.errors import UserError
from stages.shards import damaged, first_shard_meta, matching_shard_meta, shard_name

CHUNK = 1 << 22   # ids per read when a caller walks the whole split


class TokenFile:
    """Read-only view of a raw token file: ``len``, ``dtype``, slices read with pread."""

    def __init__(self, path: str | os.PathLike, dtype, length: int):
        self.path, self.dtype, self._len = Path(path), np.dtype(dtype), int(length)
        self._fd = os.open(self.path, os.O_RDONLY)

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, key) -> np.ndarray:
        if not isinstance(key, slice) or key.step not in (None, 1):
            raise TypeError("TokenFile supports contiguous slices only")
        start, stop, _ = key.indices(self._len)
        return self.read(start, max(stop - start, 0))

    def read(self, start: int, count: int) -> np.ndarray:
        """`count` ids from position `start` (a new array)."""
        size = self.dtype.itemsize
        data = os.pread(self._fd, count * size, start * size)
        if len(data) != count * size:
            raise UserError(f"token file {self.path} is shorter than its shards say: delete "
                            f"{self.path.parent} and rerun EncodeShards")
        return np.frombuffer(data, self.dtype).copy()

    def chunks(self, start: int = 0, stop: int | None = None, size: int = CHUNK):
        """(position, ids) pieces of [start, stop) in order, `size` ids at most each."""
        stop = self._len if stop is None else stop
        for pos in range(start, stop, size):
            yield pos, self.read(pos, min(size, stop - pos))

    def __array__(self, dtype=None, copy=None):
        whole = self.read(0, self._len)
        return whole if dtype is None else whole.astype(dtype)

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __del__(self):
        self.close()


def open_tokens(out_dir: str | os.PathLike, split: str, *,
                expect_vocab_fingerprint: str | None = None) -> TokenFile:
    """The token file of `split`, checked against every shard's metadata (footers only).

    A missing, damaged or mismatched shard or token file raises UserError naming the file,
    as `read_stream` does; the ids themselves are not read here.
    """
    out_dir = Path(out_dir)
    head = first_shard_meta(out_dir, split, expect_vocab_fingerprint)
    same = ("vocab_fingerprint", "split", "split_tokens", "token_dtype", "shard_count", "token_file")
    for index in range(1, int(head["shard_count"])):
        matching_shard_meta(out_dir / shard_name(split, index), head, index, same)
    if "token_file" not in head:
        raise damaged(out_dir / shard_name(split, 0), "metadata lacks token_file (shards from an older version)")
    dtype, tokens = np.dtype(head["token_dtype"]), int(head["split_tokens"])
    path = out_dir / head["token_file"]
    try:
        size = path.stat().st_size
    except OSError:
        size = None
    if size != tokens * dtype.itemsize:
        raise UserError(f"token file {path} is missing or has the wrong size ({size} bytes, not "
                        f"{tokens * dtype.itemsize}): delete {out_dir} and rerun EncodeShards")
    return TokenFile(path, dtype, tokens)

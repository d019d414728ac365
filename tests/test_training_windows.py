"""Lanes read from a token file give the same windows, and training the same parameters, as
the old whole-stream index grid (kept here as the slow reference)."""
from collections import Counter

import numpy as np
import pytest

from model import CIFGLSTM, Trainer, TrainSettings
from model.training import Lanes
from stages.shards import encode_shards, read_stream
from stages.tokens import open_tokens
from stages.vocab import build_vocab


class GridLanes(Lanes):
    """The previous implementation: a (B, lane_len + 1) grid of the whole stream per epoch."""

    def __init__(self, stream, batch, seq_len, seed):
        super().__init__(np.asarray(stream), batch, seq_len, seed)
        self._grid_epoch = None

    def window(self, epoch, pos):
        if epoch != self._grid_epoch:
            n = len(self.stream)
            offset = 0 if epoch == 0 else int(np.random.default_rng([self.seed, epoch]).integers(n))
            starts = offset + np.arange(self.B) * self.lane_len
            idx = (starts[:, None] + np.arange(self.lane_len + 1)[None, :]) % n
            self._grid, self._grid_epoch = self.stream[idx], epoch
        a = pos * self.T
        chunk = self._grid[:, a:a + self.T + 1].T.astype(np.int64)
        return chunk[:-1], chunk[1:]


TEXT = "".join(f"CLOWN {i % 3}:\nA fool, a fool! I met a fool i' the forest, {i}.\n\n" for i in range(40))


@pytest.fixture
def token_file(tmp_path):
    corpus = tmp_path / "corpus.txt"
    corpus.write_text(TEXT, encoding="utf-8", newline="")
    vocab = build_vocab(Counter(TEXT))
    encode_shards(corpus, vocab, tmp_path / "shards", seq_len=9, rows_per_group=8, rows_per_shard=20)
    return vocab, open_tokens(tmp_path / "shards", "train"), read_stream(tmp_path / "shards", "train")


def test_windows_match_the_grid_in_every_epoch_including_the_wrap(token_file):
    _, tokens, ids = token_file
    new, old = Lanes(tokens, 7, 9, seed=3), GridLanes(ids, 7, 9, seed=3)
    wrapped = False
    for epoch in range(6):   # epochs > 0 start at random offsets: some lanes cross the end
        wrapped |= bool(((new._starts_for(epoch) + new.lane_len) >= len(ids)).any())
        for pos in range(new.windows_per_epoch):
            for a, b in zip(new.window(epoch, pos), old.window(epoch, pos)):
                assert a.dtype == b.dtype == np.int64 and np.array_equal(a, b), (epoch, pos)
    assert wrapped


def test_training_from_the_token_file_gives_the_grid_parameters_bitwise(token_file):
    vocab, tokens, ids = token_file
    cfg = TrainSettings(batch_size=6, seq_len=9, steps=0, learning_rate=0.01, seed=2)
    runs = []
    for lanes_cls, stream in ((Lanes, tokens), (GridLanes, ids)):
        tr = Trainer(CIFGLSTM(vocab.size, 12, 2, vocab.size, seed=1, dropout=0.2), stream, cfg)
        tr.lanes = lanes_cls(stream, 6, 9, 2)
        steps = 2 * tr.lanes.windows_per_epoch + 3    # past two epoch boundaries
        for _ in range(steps):
            tr.train_step()
        runs.append(tr.net.flat.copy())
    assert np.array_equal(runs[0], runs[1])


def test_token_file_slices_and_errors(token_file, tmp_path):
    _, tokens, ids = token_file
    assert len(tokens) == len(ids) and np.array_equal(tokens[5:40], ids[5:40])
    assert np.array_equal(np.asarray(tokens), ids) and len(tokens[len(ids) - 3:len(ids) + 10]) == 3
    path = tmp_path / "shards" / "train.tokens"
    path.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(Exception, match="wrong size.*rerun EncodeShards"):
        open_tokens(tmp_path / "shards", "train")

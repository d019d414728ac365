"""The work behind `python -m pipeline score`: held-out loss of any text, streamed.

The text is read and decoded a piece at a time and scored in blocks of `block_chars` characters
(Evaluate's `evaluate.max_chars`), each exactly as Evaluate scores the validation split:
`lanes` lanes side by side, each after `burn_in` unscored characters (the text before it; the
first block reads an optional context first, e.g. the end of the training text). A text no
longer than one block is therefore scored exactly as the report scores a split of that text.
Only a block, the last `burn_in` ids and one (sum, count) per bootstrap block are held, and the
bootstrap blocks are merged in pairs whenever there are more than MAX_BLOCKS of them: memory
does not grow with the text.

With a `DynamicStream` the text is scored by dynamic evaluation (model/dynamic.py): one stream
in document order, read in blocks of whole segments with the weights and the state carried, so
the scores are those of one pass over the whole text, whatever the block size.
"""
import time

import numpy as np

from model.evaluate import stream_nll, summarize

from .errors import UserError
from .metrics.uncertainty import percentile_interval, resampled_means

class NothingToScore(UserError):
    """The text has no character that can be scored."""


MAX_BLOCKS = 1 << 15   # bootstrap blocks kept; more are merged in pairs (the blocks get longer)
DYNAMIC_SEGMENTS = 100   # segments per block of dynamic evaluation (per-character lines stream per block)


class Unknowns:
    """Counts the characters outside the vocabulary; with unknown="error" the first is fatal."""

    def __init__(self, vocab, unknown, name):
        self.vocab, self.unknown, self.name = vocab, unknown, name
        self.known, self.count, self.distinct, self.seen = set(vocab.chars), 0, set(), 0

    def encode(self, text):
        ids = self.vocab.encode(text, unknown="skip")
        missing = len(text) - len(ids)
        if missing:
            self.count += missing
            self.distinct |= set(text) - self.known
            if self.unknown == "error":
                shown = ", ".join(map(repr, sorted(self.distinct)[:5]))
                raise UserError(f"{self.name} has characters outside the model's vocabulary "
                                f"({missing:,} in its characters {self.seen + 1:,}-"
                                f"{self.seen + len(text):,}: {shown}); pass --unknown skip to drop "
                                "them, or score text of the training corpus's alphabet")
        self.seen += len(text)
        return ids


class BlockStats:
    """Per bootstrap block (sum of nats, scored characters), blocks of `block` positions."""

    def __init__(self, block):
        self.block, self.sums, self.counts = block, [], []
        self.part_sum, self.part_count, self.part_len = 0.0, 0, 0

    def add(self, nll):
        scored = ~np.isnan(nll)
        values = np.where(scored, nll, 0.0)
        i = 0
        while i < len(nll):
            take = min(self.block - self.part_len, len(nll) - i)
            self.part_sum += float(values[i:i + take].sum())
            self.part_count += int(scored[i:i + take].sum())
            self.part_len += take
            i += take
            if self.part_len == self.block:
                self._close()

    def _close(self):
        if self.part_count:
            self.sums.append(self.part_sum)
            self.counts.append(self.part_count)
        self.part_sum, self.part_count, self.part_len = 0.0, 0, 0
        if len(self.sums) > MAX_BLOCKS:   # merge neighbours: blocks twice as long, half as many
            n = len(self.sums) // 2 * 2
            self.sums = [a + b for a, b in zip(self.sums[0:n:2], self.sums[1:n:2])] + self.sums[n:]
            self.counts = [a + b for a, b in zip(self.counts[0:n:2], self.counts[1:n:2])] + self.counts[n:]
            self.block *= 2

    def result(self, resamples):
        if self.part_len:
            self._close()
        sums, counts = np.array(self.sums), np.array(self.counts, np.int64)
        total, chars = float(sums.sum()), int(counts.sum())
        ci = (percentile_interval(resampled_means(sums, counts, resamples)[:, 0])
              if len(sums) >= 2 else None)
        return total, chars, ci


class StaticBlocks:
    """Evaluate's static protocol on each block: lanes, each after `burn_in` unscored ids."""

    def __init__(self, net, context, lanes, burn_in, block_chars):
        self.net, self.lanes, self.burn_in, self.block = net, lanes, burn_in, block_chars
        self.tail = np.asarray(context if context is not None else [], np.int64)

    def next_size(self):
        return self.block

    def __call__(self, block):
        nll = stream_nll(self.net, block, context=self.tail if len(self.tail) else None,
                         lanes=self.lanes, burn_in=self.burn_in)
        b = self.burn_in
        self.tail = np.concatenate([self.tail, block])[-b:] if b else self.tail[:0]
        return nll


class DynamicBlocks:
    """One `DynamicStream` over all blocks; each block but the last is whole segments."""

    def __init__(self, stream, context, burn_in):
        self.stream = stream
        if context is not None and len(context) and burn_in:
            stream.read(np.asarray(context, np.int64)[-burn_in:])

    def next_size(self):   # the stream's first id is read, not scored: one more then
        return self.stream.segment * DYNAMIC_SEGMENTS + (self.stream.last is None)

    def __call__(self, block):
        return self.stream.score(block)


def _blocks(id_pieces, scorer):
    """The stream of ids cut into blocks of the sizes the scorer asks for."""
    pending, have = [], 0
    for ids in id_pieces:
        pending.append(np.asarray(ids, np.int64))
        have += len(ids)
        while have >= scorer.next_size():
            joined, size = np.concatenate(pending), scorer.next_size()
            yield joined[:size]
            pending, have = [joined[size:]], have - size
    if have:
        yield np.concatenate(pending)


def score_stream(scorer, id_pieces, boot_block, resamples, per_char=None):
    """Summary dict of the loss over a stream of id arrays (see the module docstring).

    `scorer`: StaticBlocks or DynamicBlocks; `per_char(ids, nll, offset)` is told each block's
    per-character losses as they are computed.
    """
    t0 = time.perf_counter()
    stats, total_chars = BlockStats(boot_block), 0
    for block in _blocks(id_pieces, scorer):
        nll = scorer(block)
        stats.add(nll)
        if per_char is not None:
            per_char(block, nll, total_chars)
        total_chars += len(block)
    total, chars, ci = stats.result(resamples)
    if chars == 0:
        raise NothingToScore("nothing to score: the text has fewer than two characters of the "
                        "vocabulary (the first has no context); give a longer text or --context-file")
    out = summarize(total, chars)
    out.update({"ci95": ci, "chars_read": total_chars, "chars_unscored": total_chars - chars,
                "bootstrap_block_chars": stats.block, "seconds": round(time.perf_counter() - t0, 3)})
    return out

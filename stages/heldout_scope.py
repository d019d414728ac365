"""Which characters Evaluate scores and fits on, so its memory and time do not grow with the corpus.

Scored: the whole split (test; validation for tuning) up to `evaluate.max_chars` characters;
above it, `blocks` evenly spaced contiguous blocks of max_chars // blocks characters each (the
first at the start of the split, the last at its end), joined into one stream. Every model and
baseline scores exactly these characters, each given the joined text before it (the first block
continues the text before the split, as the whole split does). Fitted: the n-gram and unigram baselines and the
sample metrics' training statistics use the whole training split up to
`evaluate.ngram_max_chars` characters, else its last ngram_max_chars characters (the text
nearest the validation split). Both choices are recorded in the report in words and numbers.
"""
import numpy as np


class Joined:
    """Two token streams read as one (slices only), e.g. the validation and test splits."""

    def __init__(self, a, b):
        self.a, self.b = a, b

    def __len__(self):
        return len(self.a) + len(self.b)

    def __getitem__(self, key):
        start, stop, _ = key.indices(len(self))
        na = len(self.a)
        head = np.asarray(self.a[min(start, na):min(stop, na)], np.int64)
        tail = np.asarray(self.b[max(start - na, 0):max(stop - na, 0)], np.int64)
        return np.concatenate([head, tail])


def scored_split(split, max_chars, blocks, name="validation split"):
    """(ids as int64, scope dict) of the characters of `split` to score."""
    n = len(split)
    if n <= max_chars:
        return np.asarray(split[0:n], np.int64), {
            "split_chars": n, "scored_chars": n, "blocks": [[0, n]],
            "text": f"the whole {name} ({n:,} characters)"}
    blocks = max(1, min(blocks, max_chars))
    size = max_chars // blocks
    starts = np.linspace(0, n - size, blocks).round().astype(int).tolist()
    ids = np.concatenate([np.asarray(split[s:s + size], np.int64) for s in starts])
    text = (f"{len(ids):,} of the {name}'s {n:,} characters: {blocks} evenly spaced "
            f"contiguous blocks of {size:,} (evaluate.max_chars = {max_chars:,}), joined into one "
            "stream that every model scores")
    return ids, {"split_chars": n, "scored_chars": len(ids), "blocks": [[s, s + size] for s in starts],
                 "text": text}


def fitting_text(train, max_chars):
    """(ids as int64, scope dict) of the training characters the baselines are fitted on."""
    n = len(train)
    start = max(0, n - max_chars)
    ids = np.asarray(train[start:n], np.int64)
    if start == 0:
        text = f"the whole training split ({n:,} characters)"
    else:
        text = (f"the last {n - start:,} of the training split's {n:,} characters "
                f"(evaluate.ngram_max_chars = {max_chars:,})")
    return ids, {"train_chars": n, "fitted_chars": n - start, "range": [start, n], "text": text}


def seen_in_training(train, vocab_size):
    """Boolean per id: does it occur anywhere in the training split (read in chunks)?"""
    seen = np.zeros(vocab_size, bool)
    chunks = train.chunks() if hasattr(train, "chunks") else [(0, np.asarray(train))]
    for _, ids in chunks:
        seen |= np.bincount(ids, minlength=vocab_size) > 0
    return seen

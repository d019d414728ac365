"""The work behind `python -m pipeline generate`: texts as they are produced, and their likelihood.

`generate_stream` yields (sample index, text piece) in output order, one sample after another:
sample 0 arrives piece by piece as it is produced (a character per step when sampling, the
characters that became certain when beam searching); the other samples were produced alongside
it in the same batch and follow whole. Sampling draws exactly the ids of model.sampling.generate
for the same seed, so the streamed texts equal the Sample stage's non-streamed ones.

`cancelled`, when given, is asked once per model step, whatever the strategy; once it says True
the stream raises `model.beam.Cancelled` (the server's way to stop a search whose client left).
"""
from dataclasses import dataclass

import numpy as np

from model.beam import Cancelled, beam_stream, check_beam_args
from model.evaluate import evaluate_stream
from model.sampling import check_sampling_args, stream

from .errors import UserError
from .sample import strategies


@dataclass(frozen=True)
class GenerateSettings:
    length: int = 500
    num: int = 1
    strategy: str = "sample"
    temperature: float = 0.8
    top_k: int = 0
    top_p: float = 1.0
    seed: int = 0
    beam_width: int = 4
    length_penalty: float = 1.0
    no_repeat_ngram: int = 0
    stop: str = ""


def strategy_names():
    return sorted([*strategies(), "beam"])


class StopCutter:
    """Cuts a text arriving in pieces just after the first occurrence of `stop` ("" = never).

    Holds back a tail that could be the start of `stop`, so nothing after it is ever emitted.
    """

    def __init__(self, stop):
        self.stop, self.held, self.done = stop, "", False

    def feed(self, piece):
        """The text that is safe to emit now (sets `done` once `stop` has been seen)."""
        if self.done:
            return ""
        if not self.stop:
            return piece
        text = self.held + piece
        at = text.find(self.stop)
        if at >= 0:
            self.done, self.held = True, ""
            return text[:at + len(self.stop)]
        keep = next((k for k in range(min(len(self.stop) - 1, len(text)), 0, -1)
                     if self.stop.startswith(text[-k:])), 0)
        self.held = text[len(text) - keep:]
        return text[:len(text) - keep]

    def flush(self):
        out, self.held = self.held, ""
        return out


def cut_at_stop(text, stop):
    cutter = StopCutter(stop)
    return cutter.feed(text) + cutter.flush()


def generate_stream(net, vocab, prime_ids, s, cancelled=None):
    """Yield (index, text piece) for s.num texts continuing prime_ids; see the module docstring.

    Bad settings raise ValueError here, before anything is generated. Every sample starts
    with a piece (maybe empty), so a caller can show the prime before the first step.
    """
    if s.strategy == "beam":
        check_beam_args(s.length, s.beam_width, s.num, s.length_penalty, s.no_repeat_ngram)
        return _beam(net, vocab, prime_ids, s, cancelled)
    if s.strategy not in strategies():
        raise UserError(f"--strategy {s.strategy!r} is unknown; choose one of {strategy_names()}")
    check_sampling_args(s.length, s.num, s.temperature, s.top_k, s.top_p, s.strategy)
    return _sampled(net, vocab, prime_ids, s, cancelled)


def _sampled(net, vocab, prime_ids, s, cancelled):
    steps = stream(net, prime_ids, s.length, s.num, s.temperature, s.top_k, s.top_p, s.strategy,
                   s.seed)
    first, rows = StopCutter(s.stop), []
    yield 0, ""
    for ids in steps:
        if cancelled is not None and cancelled():   # after the step: `stream` draws as it goes
            raise Cancelled()
        rows.append(ids)
        piece = first.feed(vocab.decode(ids[:1]))
        if piece:
            yield 0, piece
        if first.done and s.num == 1:
            break                    # the only text has ended: no need to draw the rest
    tail = first.flush()
    if tail:
        yield 0, tail
    ids = np.array(rows, np.int64).reshape(len(rows), s.num).T
    for i in range(1, s.num):
        yield i, cut_at_stop(vocab.decode(ids[i]), s.stop)


def _beam(net, vocab, prime_ids, s, cancelled):
    stop_ids = vocab.encode(s.stop) if s.stop else ()
    steps = beam_stream(net, prime_ids, s.length, s.beam_width, s.num, s.length_penalty,
                        s.no_repeat_ngram, stop_ids, cancelled)
    yield 0, ""
    while True:
        try:
            piece = next(steps)
        except StopIteration as end:
            best = end.value
            break
        yield 0, vocab.decode(piece)
    for i, (ids, _) in enumerate(best[1:], 1):
        yield i, vocab.decode(ids)


def nats_of(net, prime_ids, ids):
    """-log p(ids | prime) under the model (temperature 1): total and per character."""
    ids = np.asarray(ids, np.int64)
    if ids.size == 0:
        return 0.0, 0.0
    res = evaluate_stream(net, ids, context=np.asarray(prime_ids, np.int64), lanes=1,
                          burn_in=len(prime_ids))
    return res["nats_per_char"] * res["chars"], res["nats_per_char"]

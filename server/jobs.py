"""One request's generation: what a worker thread produces and the event loop reads.

`Output` is the hand-over: the producer (the scheduler thread, or a beam's own thread) appends
pieces under a lock, the HTTP side takes them every few milliseconds. Nothing crosses threads
but this list and two flags, so a client that leaves only has to set `cancelled`.

`SampledJob` is a request the scheduler advances one character per step, in a batch with every
other request's streams. Its random generator, prime state and stop cut-offs are its own, set
up exactly as `stages.generate` sets them up, so alone in the batch it draws the CLI's text.
"""
import math
import threading

import numpy as np

from model.beam import Cancelled
from model.evaluate import stream_nll, summarize
from model.sampling import effective_temperature, primed
from stages.generate import StopCutter, generate_stream


class Output:
    """Text pieces (index, text, probabilities or None) waiting to be taken, and the final texts."""

    def __init__(self, num):
        self.num = num
        self.texts = [""] * num
        self.lock = threading.Lock()
        self.pending = []
        self.finished = False
        self.cancelled = False
        self.error = None

    def put(self, index, text, probs):
        with self.lock:
            self.pending.append((index, text, probs))
            self.texts[index] += text

    def finish(self, error=None):
        with self.lock:
            self.error, self.finished = error, True

    def take(self):
        """(pieces since the last call, one per text, whether the generation has ended)."""
        with self.lock:
            pieces, self.pending, finished = self.pending, [], self.finished
        merged = {}
        for index, text, probs in pieces:     # a few long pieces: less to encode and to send
            if index in merged:
                old = merged[index]
                merged[index] = (index, old[1] + text, None if probs is None else old[2] + probs)
            else:
                merged[index] = (index, text, probs)
        return list(merged.values()), finished

    def cancel(self):
        """The client left: the producer stops at its next step."""
        self.cancelled = True


class SampledJob(Output):
    """`num` sampled streams of one request, advanced by the scheduler (see module docstring)."""

    def __init__(self, net, chars, prime_ids, s):
        super().__init__(s.num)
        self.s, self.chars = s, chars
        self.rng = np.random.default_rng(s.seed)
        # the key under which requests share one filtered_probs call
        self.key = (s.strategy, effective_temperature(s.strategy, s.temperature), s.top_k, s.top_p)
        self.state, self.cur = primed(net, prime_ids, s.num)   # as model.sampling.stream starts
        self.offset, self.steps = 0, 0
        self.cutters = [StopCutter(s.stop) for _ in range(s.num)]
        self.nll = [[] for _ in range(s.num)]       # -log p (model, T = 1) of every drawn character
        self.sent = [0] * s.num                     # characters emitted (the rest is held back)
        if s.length == 0:
            self.finish()

    def advance(self, ids, nll):
        """Take the step's ids (num,) and their nats; emit what the stop cut lets out."""
        self.steps += 1
        for i, cutter in enumerate(self.cutters):
            if cutter.done:
                continue
            self.nll[i].append(float(nll[i]))
            self._emit(i, cutter.feed(self.chars[ids[i]]))
        if self.steps == self.s.length or all(c.done for c in self.cutters):
            for i, cutter in enumerate(self.cutters):
                self._emit(i, cutter.flush())
            self.finish()

    def _emit(self, i, piece):
        if piece:
            start = self.sent[i]
            self.sent[i] += len(piece)
            # probabilities to 4 significant digits: enough for a tint, short in JSON
            self.put(i, piece, [float(f"{math.exp(-x):.4g}") for x in self.nll[i][start:self.sent[i]]])

    def results(self):
        """{"text", "nats", "nats_per_char", "char_nats"} per text, from the logits it was drawn
        with: the numbers `generate --format json` gets from a separate forward pass, to float32
        rounding (about six significant digits), without running that pass again."""
        out = []
        for text, nll in zip(self.texts, self.nll):
            nll = np.asarray(nll[:len(text)])
            nats = float(nll.sum())
            out.append(_result(text, nats, nats / max(len(text), 1), nll))
        return out


class StreamJob(Output):
    """Any strategy `stages.generate.generate_stream` runs (beam search), on its own thread.

    Beam search reorders its hypotheses at every step, so it does not join the shared batch; it
    runs the CLI's own code. It can go many steps without yielding a piece, so the stream asks
    `cancelled` before every step and stops at the next one once the client has left.
    """

    def __init__(self, net, vocab, prime_ids, s):
        super().__init__(s.num)
        self.pieces = generate_stream(net, vocab, prime_ids, s,    # checks the settings now
                                      cancelled=lambda: self.cancelled)

    def results(self, net, vocab, prime_ids):
        """As SampledJob.results, by a forward pass over each text, exactly as `generate`."""
        out = []
        for text in self.texts:
            nll, nats, per_char = text_nats(net, prime_ids, vocab.encode(text))
            out.append(_result(text, nats, per_char, nll))
        return out

    def run(self):
        try:
            for index, piece in self.pieces:
                if piece:
                    self.put(index, piece, None)
        except Cancelled:
            pass
        except Exception as e:      # reported to the client as one line, never a dead thread
            self.finish(error=f"generation failed: {e}")
            return
        finally:
            self.pieces.close()
        self.finish()


def _result(text, nats, nats_per_char, char_nats):
    return {"text": text, "nats": nats, "nats_per_char": nats_per_char,
            "char_nats": [round(float(x), 5) for x in char_nats]}


def text_nats(net, context_ids, ids):
    """Per-character nats of `ids` given `context_ids` (NaN where unscored: the first character
    without context), and (nats, nats_per_char) computed exactly as `stages.generate.nats_of`."""
    ids = np.asarray(ids, np.int64)
    if ids.size == 0:
        return np.zeros(0), 0.0, 0.0
    ctx = np.asarray(context_ids, np.int64)
    nll = stream_nll(net, ids, context=ctx, lanes=1, burn_in=len(ctx))
    scored = ~np.isnan(nll)
    res = summarize(float(nll[scored].sum()), int(scored.sum()))
    return nll, res["nats_per_char"] * res["chars"], res["nats_per_char"]

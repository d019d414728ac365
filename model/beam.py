"""Beam search over characters: the most likely continuation instead of a random one.

A hypothesis's log-likelihood is the sum of log p(next char) under the model as trained
(temperature 1, no cut-offs). Hypotheses are ranked by that sum divided by
len ** length_penalty (1: mean per character, 0: plain sum). Among hypotheses of one length the
division changes nothing; it matters when a `stop` sequence ends some early, because a plain
sum favours whatever stops first.

Two additions to the textbook search:
- the greedy path rides along as one extra row (argmax at every step, under the same n-gram
  ban) and takes part in the final ranking, so the result is never less likely than greedy's.
  Plain beam search can prune the greedy path and end worse than greedy.
- `no_repeat_ngram` = n >= 2 forbids a character that would complete an n-gram of characters
  already in the hypothesis (the prime's last n-1 characters count), against the loops
  ("the sent of the sent of the ...") that likely-text search falls into.

`beam_stream` yields characters as soon as they are certain: the longest prefix shared by every
hypothesis that can still be returned (live beams, the greedy row, finished ones). That can take
many steps, so a caller that may stop wanting the text (the server, when its client leaves)
passes `cancelled`, a callable asked once before every step: when it says True the search
raises `Cancelled` instead of taking the step.
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from .sampling import primed
from .stepper import Stepper


class Cancelled(Exception):
    """The caller's `cancelled()` said True: the search stopped between two steps."""


def check_beam_args(length, width, num, length_penalty, no_repeat_ngram):
    """Raise ValueError naming the first bad argument."""
    if int(length) != length or length < 0:
        raise ValueError(f"length must be a non-negative integer, got {length!r}")
    if int(width) != width or width < 1:
        raise ValueError(f"beam width must be a positive integer, got {width!r}")
    if int(num) != num or not 1 <= num <= width:
        raise ValueError(f"num must be between 1 and the beam width {width} (the n best), got {num!r}")
    if not length_penalty >= 0:
        raise ValueError(f"length penalty must be >= 0 (0 = plain sum), got {length_penalty!r}")
    if int(no_repeat_ngram) != no_repeat_ngram or no_repeat_ngram == 1 or no_repeat_ngram < 0:
        raise ValueError(f"no-repeat n-gram size must be 0 (off) or >= 2, got {no_repeat_ngram!r}")


def log_softmax(logits):
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def repeat_bans(seqs, n, vocab_size):
    """(R, V) mask of the characters that would repeat an n-gram already in each row of seqs.

    A row whose every character is banned gets no ban (there must be a next character).
    """
    R, T = seqs.shape
    ban = np.zeros((R, vocab_size), bool)
    if T < n:
        return ban
    windows = sliding_window_view(seqs[:, :-1], n - 1, axis=1)          # (R, T-n+1, n-1)
    match = (windows == seqs[:, None, T - n + 1:]).all(axis=-1)         # same (n-1)-gram as the end
    rows, at = np.nonzero(match)
    ban[rows, seqs[rows, at + n - 1]] = True                            # the char that followed it
    ban[ban.all(axis=1)] = False
    return ban


def _ends_with(prefix, tok, stop):
    k = stop.size
    if k == 0 or prefix.size + 1 < k:
        return False
    return tok == stop[-1] and np.array_equal(prefix[prefix.size - k + 1:], stop[:-1])


def _select(cand, width, hist, t, stop):
    """Best `width` live extensions (parent, char, score), and those that end with `stop`."""
    flat = cand.ravel()
    order = np.argsort(-flat, kind="stable")[:2 * width]   # enough even if `width` of them finish
    live, done = [], []
    for rank, idx in enumerate(order):
        if len(live) == width or not np.isfinite(flat[idx]):
            break
        parent, tok = divmod(int(idx), cand.shape[1])
        if _ends_with(hist[parent, :t], tok, stop):
            if rank < width:       # it would have entered the beam: it is finished instead
                done.append((np.append(hist[parent, :t], tok), float(flat[idx])))
            continue
        live.append((parent, tok, float(flat[idx])))
    return live, done


def _common_prefix(start, seqs):
    ref, k = seqs[0], start
    end = min(s.size for s in seqs)
    while k < end and all(s[k] == ref[k] for s in seqs):
        k += 1
    return k


def _best(pool, num, length_penalty):
    """The `num` best distinct (ids, log-likelihood) of the pool, by length-normalised score."""
    norm = [lp / max(ids.size, 1) ** length_penalty for ids, lp in pool]
    out, seen = [], set()
    for i in sorted(range(len(pool)), key=lambda i: -norm[i]):
        key = pool[i][0].tobytes()
        if key not in seen:
            seen.add(key)
            out.append(pool[i])
    return out[:num]


def beam_stream(net, prime_ids, length, width=4, num=1, length_penalty=1.0, no_repeat_ngram=0,
                stop_ids=(), cancelled=None):
    """Yield arrays of ids as they become certain; return [(ids, nats), ...] best first.

    The yielded pieces concatenate to the best hypothesis. `num` <= width asks for the n best.
    `cancelled()`, when given, is asked before each step; True raises `Cancelled`.
    """
    check_beam_args(length, width, num, length_penalty, no_repeat_ngram)
    prime = np.asarray(prime_ids, dtype=np.int64).reshape(-1)
    stop, n, g = np.asarray(stop_ids, np.int64).reshape(-1), int(no_repeat_ngram), width
    R = width + 1                                                   # row `g` is the greedy path
    state, cur = primed(net, prime, R)
    k = min(prime.size, n - 1) if n else 0
    tail = np.broadcast_to(prime[prime.size - k:], (R, k))   # context of the first n-grams
    stepper = Stepper(net, R, state)          # the forward's arithmetic, buffers reused
    hist = np.zeros((R, length), np.int64)
    score = np.full(R, -np.inf)
    score[0] = score[g] = 0.0
    finished, committed, steps = [], 0, 0
    for t in range(length):
        if cancelled is not None and cancelled():
            raise Cancelled()
        logp = log_softmax(stepper.step(cur))
        if n:
            logp[repeat_bans(np.concatenate([tail, hist[:, :t]], axis=1), n, logp.shape[1])] = -np.inf
        live, done = _select(score[:width, None] + logp[:width], width, hist, t, stop)
        finished += done
        greedy_tok = int(np.argmax(logp[g]))
        if np.isfinite(score[g]) and _ends_with(hist[g, :t], greedy_tok, stop):
            finished.append((np.append(hist[g, :t], greedy_tok), score[g] + logp[g, greedy_tok]))
            score[g] = -np.inf
        finished = _best(finished, num, length_penalty)   # a finished one outside these can't win
        if not live and not np.isfinite(score[g]):
            score[:] = -np.inf             # every hypothesis has finished
            break
        pad = width - len(live)
        sel = np.array([p for p, _, _ in live] + [0] * pad + [g])
        hist = hist[sel]
        stepper.reorder(sel)                                       # rows follow their parents
        cur = np.array([tok for _, tok, _ in live] + [0] * pad + [greedy_tok], np.int64)
        score = np.array([s for _, _, s in live] + [-np.inf] * pad + [score[g] + logp[g, greedy_tok]])
        hist[:, t], steps = cur, t + 1
        alive = [hist[r, :t + 1] for r in range(R) if np.isfinite(score[r])]
        certain = _common_prefix(committed, alive + [ids for ids, _ in finished])
        if certain > committed:
            yield (alive or [finished[0][0]])[0][committed:certain].copy()
            committed = certain
    pool = finished + [(hist[r, :steps].copy(), float(score[r]))
                       for r in range(R) if np.isfinite(score[r])]
    best = _best(pool, num, length_penalty) or [(np.zeros(0, np.int64), 0.0)]
    if best[0][0].size > committed:
        yield best[0][0][committed:].copy()
    return [(ids, 0.0 - lp) for ids, lp in best]   # 0.0 - lp: an empty text has 0.0 nats, not -0.0


def beam_search(net, prime_ids, length, width=4, num=1, length_penalty=1.0, no_repeat_ngram=0,
                stop_ids=()):
    """The `num` most likely continuations found with a beam of `width`: [(ids, nats), ...]."""
    steps = beam_stream(net, prime_ids, length, width, num, length_penalty, no_repeat_ngram, stop_ids)
    while True:
        try:
            next(steps)
        except StopIteration as end:
            return end.value

"""The "LSTM + cache" row: an online Kneser-Ney n-gram over the text already scored, mixed in.

`cache_probs` walks the scored stream once, in order. Character i is given the probability the
cache assigns it from ids[:i] only (interpolated Kneser-Ney, one absolute discount per level,
lower levels on continuation counts, uniform below the unigram), and only then is it counted.
So the cache is an adaptive model of the validation text itself: the speakers, names and
phrases of the play being read, which the trained models know only as far as training had them.

The mixture is p = (1 - w) p_model + w p_cache, computed in log space so that w = 0 gives the
model's losses exactly. The weight w is chosen on the validation split, like the dynamic row's
settings, and the test split is scored with it.
"""
import math

import numpy as np

from .ngram import unique_ranks

DISCOUNT = 0.75    # Kneser-Ney's usual single discount: the cache's counts are too few to estimate more
WEIGHTS = (0.0, 0.01, 0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.5)   # mixing weights tried
CHUNK = 1 << 16    # positions converted to Python ints at a time (the loop is plain Python)


def gram_ids(ids, order):
    """[g_1, ..., g_order]: g_k[i] is a dense id of the k-gram ids[i-k+1..i] (-1 for i < k-1)."""
    ids = np.asarray(ids, np.int64)
    grams = [ids.copy()]
    for k in range(2, order + 1):
        prev = grams[-1]
        keys = np.full(len(ids), -1, np.int64)
        if len(ids) >= k:
            # (id of the (k-1)-gram ending at i-1, char i) numbered densely; the stream's first
            # k-1 positions have no k-gram
            pair = prev[k - 2:-1] * (int(ids.max()) + 1) + ids[k - 1:]
            keys[k - 1:] = unique_ranks(pair)[2]
        grams.append(keys)
    return grams


def cache_probs(ids, order, vocab_size, discount=DISCOUNT):
    """p_cache(ids[i] | ids[:i]) for every i, from the counts of ids[:i] alone."""
    ids = np.asarray(ids, np.int64)
    n = len(ids)
    grams = gram_ids(ids, order)
    size = [0] + [int(g.max()) + 2 if n else 1 for g in grams]
    # Level k (1..order): counts of its k-grams, and per history ((k-1)-gram id, 0 for k = 1)
    # the total count and the number of distinct continuations. The top level counts
    # occurrences; lower levels count distinct left neighbours (Kneser-Ney continuation counts).
    count = [None] + [[0] * size[k] for k in range(1, order + 1)]
    total = [None] + [[0] * (size[k - 1] if k > 1 else 1) for k in range(1, order + 1)]
    types = [None] + [[0] * (size[k - 1] if k > 1 else 1) for k in range(1, order + 1)]
    seen = [None] + [bytearray(size[k]) for k in range(1, order + 1)]   # k-gram occurred yet?
    out = np.empty(n)
    uniform = 1.0 / vocab_size
    for c0 in range(0, n, CHUNK):
        g = [None] + [grams[k - 1][c0:c0 + CHUNK].tolist() for k in range(1, order + 1)]
        h = [None, None] + [grams[k - 2][max(c0 - 1, 0):c0 + CHUNK - 1].tolist()
                            for k in range(2, order + 1)]
        shift = 1 if c0 == 0 else 0   # at the stream start there is no history before i = 0
        for j in range(len(g[1])):
            i = c0 + j
            levels = min(order, i + 1)
            hist = [0] * (levels + 1)
            for k in range(2, levels + 1):
                hist[k] = h[k][j - shift]
            p = uniform
            for k in range(1, levels + 1):
                t = total[k][hist[k]]
                if t:
                    c = count[k][g[k][j]]
                    p = (max(c - discount, 0.0) + discount * types[k][hist[k]] * p) / t
            out[i] = p
            # Count character i. Level k gains a continuation when the (k+1)-gram ending here is
            # new; the top level counts every occurrence.
            for k in range(1, levels + 1):
                gk = g[k][j]
                if k < levels and seen[k + 1][g[k + 1][j]]:
                    continue            # the (k+1)-gram was seen: no new left neighbour of gk
                if k < order and k == levels:
                    continue            # the stream start: gk has no left neighbour to count
                if count[k][gk] == 0:
                    types[k][hist[k]] += 1
                count[k][gk] += 1
                total[k][hist[k]] += 1
            for k in range(1, levels + 1):
                seen[k][g[k][j]] = 1
    return out


def mix_nll(model_nll, cache_p, weight):
    """-log((1 - w) exp(-model_nll) + w cache_p): w = 0 returns model_nll unchanged (NaN kept)."""
    if weight == 0:
        return np.array(model_nll, np.float64)
    with np.errstate(divide="ignore"):
        return -np.logaddexp(math.log1p(-weight) - model_nll, math.log(weight) + np.log(cache_p))


def tuned_mix(val_nll, val_p, test_nll, test_p, weights=WEIGHTS):
    """(mixed test nll, info): the test split mixed with the weight that scores `val` best."""
    scored = ~np.isnan(val_nll)
    losses = {w: float(np.mean(mix_nll(val_nll[scored], val_p[scored], w))) for w in weights}
    best = min(losses, key=losses.get)
    return mix_nll(test_nll, test_p, best), {"weight": best, "tuned_on": "val",
                                             "tuned_chars": int(scored.sum()),
                                             "grid": [[w, l] for w, l in losses.items()]}

"""Beam search: exact when wide enough, greedy at width 1, never less likely than greedy."""
import itertools

import numpy as np
import pytest

from model import CIFGLSTM, generate
from model.beam import Cancelled, beam_search, beam_stream, repeat_bans
from tests.reference import reference_forward


def random_net(seed, vocab=8, hidden=12, layers=1, scale=0.7):
    net = CIFGLSTM(vocab, hidden, layers, vocab, seed=seed, dtype=np.float64)
    net.flat[...] = np.random.default_rng(seed).normal(0, scale, net.flat.shape)
    return net


def nats(net, prime, ids):
    """-log p(ids | prime) from the gate-by-gate reference LSTM (shares nothing with model/)."""
    seq = np.concatenate([prime, ids]).astype(np.int64)
    logits, _, _ = reference_forward(net, seq[:-1, None])
    z = logits[:, 0] - logits[:, 0].max(axis=-1, keepdims=True)
    logp = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return -logp[np.arange(len(prime) - 1, len(seq) - 1), seq[len(prime):]].sum()


def test_wide_enough_beam_finds_the_most_likely_text():
    net, prime, L = random_net(3, vocab=5, scale=1.0), [1, 2], 4
    best = min(itertools.product(range(5), repeat=L), key=lambda s: nats(net, prime, np.array(s)))
    (ids, found), = beam_search(net, prime, L, width=5 ** (L - 1))   # keeps every prefix
    assert tuple(ids) == best
    assert found == pytest.approx(nats(net, prime, ids))


@pytest.mark.parametrize("seed", range(6))
def test_width_one_is_greedy(seed):
    net, prime = random_net(seed, scale=0.5), [seed % 8, 3]
    (ids, _), = beam_search(net, prime, 40, width=1)
    assert np.array_equal(ids, generate(net, prime, 40, strategy="greedy")[0])


def test_never_less_likely_than_greedy():
    # Plain beam search can prune the greedy path and end worse (it does on several of these
    # nets); the result must still be at least as likely as greedy's.
    for seed, scale in itertools.product(range(70), (0.7, 1.0)):
        net = random_net(seed, scale=scale)
        greedy = nats(net, [1, 2], generate(net, [1, 2], 30, strategy="greedy")[0])
        for width in (2, 3, 4):
            (ids, reported), = beam_search(net, [1, 2], 30, width=width)
            assert reported == pytest.approx(nats(net, [1, 2], ids))
            assert reported <= greedy + 1e-9, (seed, width)


def test_n_best_are_distinct_and_ranked():
    net = random_net(5)
    best = beam_search(net, [1, 2], 30, width=4, num=4)
    assert len({ids.tobytes() for ids, _ in best}) == 4
    totals = [n for _, n in best]
    assert totals == sorted(totals)
    assert all(n == pytest.approx(nats(net, [1, 2], ids)) for ids, n in best)


def test_streamed_pieces_arrive_early_and_make_the_result():
    net = random_net(7, vocab=12, hidden=16, layers=2, scale=0.8)
    steps, pieces = beam_stream(net, [1, 2, 3], 60, width=4, no_repeat_ngram=6), []
    while True:
        try:
            pieces.append(next(steps))
        except StopIteration as end:
            (ids, _), = end.value
            break
    assert len(pieces) > 5 and np.array_equal(np.concatenate(pieces), ids)


def test_cancelled_is_asked_before_every_step_and_stops_the_search():
    """The server stops a search whose client left through this hook alone (server/jobs.py)."""
    net, asked = random_net(7, vocab=12, hidden=16), []

    def cancelled():
        asked.append(1)
        return len(asked) > 30             # the 31st question comes before step 31
    steps = beam_stream(net, [1, 2], 1000, width=3, cancelled=cancelled)
    with pytest.raises(Cancelled):
        for _ in steps:
            pass
    assert len(asked) == 31


def test_no_repeat_ngram_forbids_repeats():
    n, prime = 5, [1, 2, 3, 4]
    for seed in range(5):
        net = random_net(seed, scale=0.7)
        plain, _ = beam_search(net, prime, 60, width=3)[0]
        ids, _ = beam_search(net, prime, 60, width=3, no_repeat_ngram=n)[0]
        grams = lambda s: [tuple(s[i:i + n]) for i in range(len(s) - n + 1)]
        seq = np.concatenate([prime[-(n - 1):], ids])
        assert len(set(grams(seq))) == len(grams(seq)), seed
        assert len(set(grams(plain))) < len(grams(plain))    # without it, these nets loop


def test_repeat_bans_names_the_char_that_followed():
    seqs = np.array([[0, 1, 2, 0, 1], [3, 3, 3, 3, 3]])
    ban = repeat_bans(seqs, 3, 4)
    assert ban[0].tolist() == [False, False, True, False]      # "0 1" was followed by 2
    assert ban[1].tolist() == [False, False, False, True]      # "3 3" was followed by 3


def test_stop_ends_hypotheses_and_ranking_is_length_normalised():
    net, stop, lengths = random_net(0, scale=0.5), [6], {}
    for penalty in (0.0, 1.0):
        best = beam_search(net, [1], 40, width=4, num=4, stop_ids=stop, length_penalty=penalty)
        for ids, _ in best:
            assert len(ids) == 40 and 6 not in ids or (ids[-1] == 6 and 6 not in ids[:-1])
        scores = [n / len(ids) ** penalty for ids, n in best]
        assert scores == sorted(scores)
        lengths[penalty] = [len(ids) for ids, _ in best]
    # a plain sum (penalty 0) favours what stops first; per character it does not
    assert sum(lengths[0.0]) < sum(lengths[1.0])


@pytest.mark.parametrize("kw,msg", [({"width": 0}, "width"), ({"num": 5}, "num"),
                                    ({"no_repeat_ngram": 1}, "n-gram"),
                                    ({"length_penalty": -1}, "penalty")])
def test_bad_arguments_are_refused(kw, msg):
    with pytest.raises(ValueError, match=msg):
        beam_search(random_net(0), [1], 5, **kw)

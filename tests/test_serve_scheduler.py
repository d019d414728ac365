"""The scheduler in-process: batched draws give each request its own numbers, and requests that
join, share and leave the batch keep their own states and texts."""
import threading

import numpy as np
import pytest

from model import CIFGLSTM
from model.sampling import STRATEGIES, draw_rows
from server.jobs import SampledJob, StreamJob
from server.scheduler import Scheduler
from stages.generate import GenerateSettings, generate_stream
from stages.vocab import Vocab
from tests.serve_support import wait_until


def choose(strategy, p, jobs):
    return draw_rows(strategy, p, [j.rng for j in jobs], [j.num for j in jobs])


class FakeJob:
    def __init__(self, num, seed):
        self.num, self.rng = num, np.random.default_rng(seed)


@pytest.mark.parametrize("strategy", ["sample", "redraw_once", "greedy"])
def test_a_batched_draw_gives_each_request_its_own_draw(strategy):
    rng = np.random.default_rng(0)
    jobs = [FakeJob(1, 5), FakeJob(3, 6), FakeJob(2, 7)]
    alone = [FakeJob(j.num, s) for j, s in zip(jobs, (5, 6, 7))]
    for _ in range(20):
        p = rng.dirichlet(np.full(30, 0.3), size=6)
        p[p < 0.01] = 0.0
        p /= p.sum(axis=1, keepdims=True)
        batched = choose(strategy, p, jobs)
        own = np.concatenate([STRATEGIES[strategy](p[a:a + j.num], j.rng)
                              for a, j in zip((0, 1, 4), alone)])
        assert np.array_equal(batched, own)


def test_a_plug_in_draws_with_each_requests_generator(monkeypatch):
    calls = []

    def plug(p, rng):
        calls.append(len(p))
        return rng.integers(0, p.shape[1], len(p))
    monkeypatch.setitem(STRATEGIES, "plug", plug)
    jobs = [FakeJob(2, 1), FakeJob(1, 2)]
    out = choose("plug", np.full((3, 4), 0.25), jobs)
    assert calls == [2, 1]
    assert np.array_equal(out, np.concatenate([np.random.default_rng(1).integers(0, 4, 2),
                                               np.random.default_rng(2).integers(0, 4, 1)]))


def test_requests_joining_and_leaving_keep_their_texts():
    """float64 weights: the batch's rounding differences (BLAS picks kernels by size) are far
    too small to move a draw, so every text must equal the one generated alone."""
    net = CIFGLSTM(20, 24, 2, 20, seed=0, char_inputs=True, dtype=np.float64)
    net.flat[...] = np.random.default_rng(3).normal(0, 0.4, net.flat.shape)
    vocab = Vocab(chars=tuple(sorted("abcdefghij klmnop.\n,")), counts=(1,) * 20)
    chars = [vocab.decode([i]) for i in range(20)]
    settings = [GenerateSettings(length=300, seed=1),
                GenerateSettings(length=40, num=3, seed=2, temperature=0.6, top_k=5),
                GenerateSettings(length=200, seed=3, stop="a"),
                GenerateSettings(length=150, num=2, strategy="redraw_once", seed=4, top_p=0.8),
                GenerateSettings(length=0, seed=5)]
    prime = vocab.encode("abc de")
    scheduler = Scheduler(net)
    try:
        jobs = []
        for s in settings:                    # each joins while the earlier ones are mid-way
            jobs.append(SampledJob(net, chars, prime, s))
            scheduler.submit(jobs[-1])
            assert wait_until(lambda: jobs[0].steps >= 10 * len(jobs) or jobs[0].finished)
        assert wait_until(lambda: all(j.finished for j in jobs))
    finally:
        scheduler.close()
    for s, job in zip(settings, jobs):
        texts = [""] * s.num
        for index, piece in generate_stream(net, vocab, prime, s):
            texts[index] += piece
        assert job.texts == texts and job.error is None
    assert jobs[2].texts[0].endswith("a") and len(jobs[2].texts[0]) < 200
    assert 300 <= scheduler.steps < sum(s.length for s in settings)


def test_an_abandoned_request_leaves_the_batch():
    net = CIFGLSTM(20, 8, 1, 20, seed=0, char_inputs=True)
    chars = [chr(97 + i) for i in range(20)]
    scheduler = Scheduler(net)
    try:
        long = SampledJob(net, chars, [0, 1], GenerateSettings(length=10 ** 7))
        scheduler.submit(long)
        assert wait_until(lambda: long.steps > 5)
        long.cancel()
        assert wait_until(lambda: scheduler.active() == (0, 0) and not scheduler.jobs)
        steps = scheduler.steps
        assert not wait_until(lambda: scheduler.steps != steps, timeout=0.3)   # asleep
    finally:
        scheduler.close()


@pytest.mark.parametrize("strategy", ["beam", "sample"])
def test_a_cancelled_stream_job_stops_at_its_next_step(strategy):
    """A beam search can run many steps without a piece to hand over; the job's `cancelled`
    hook, asked every step, is what ends it when the client leaves (app.JobStream)."""
    net = CIFGLSTM(20, 8, 1, 20, seed=0, char_inputs=True)
    vocab = Vocab(chars=tuple(sorted("abcdefghij klmnop.\n,")), counts=(1,) * 20)
    length = 10 ** 5 if strategy == "beam" else 10 ** 7     # each far longer than the test waits
    job = StreamJob(net, vocab, [0, 1], GenerateSettings(length=length, strategy=strategy,
                                                         beam_width=2))
    worker = threading.Thread(target=job.run, daemon=True)
    worker.start()
    assert not wait_until(lambda: job.finished, timeout=0.3)       # running, far from its end
    job.cancel()
    worker.join(timeout=5)
    assert not worker.is_alive() and job.finished and job.error is None

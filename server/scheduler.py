"""One thread steps every sampled stream of every request together: one batched forward a step.

Generation is a loop of small matrix products, one character per step. Run per request, 16
clients cost 16 products of one row each; run together they cost one product of 16 rows, which
on this machine takes about as long as one of one row (the weights are read once either way).
So the scheduler keeps one `Stepper` over the rows of all active requests, and at each step:

1. feeds each row its last character and gets the logits of all rows at once;
2. per group of requests with the same strategy, temperature, top-k and top-p, filters the
   posteriors with one `filtered_probs` call (a row-wise computation: each row's numbers are
   what its request alone would get) and draws with `model.sampling.draw_rows`, each
   request's rows from its own generator;
3. hands every request its characters and their nats (-log p at temperature 1), which make
   the `nats` of its answer, so no second pass over the texts is needed.

Requests join and leave between steps: the carried states of the remaining rows are kept and
the new requests' post-prime states appended (the prime's own forward runs on the request's
thread, not here). A request whose client left is dropped at the next step. With nothing to
do the thread sleeps on a condition variable: an idle server uses no CPU.

Exactness: alone in the batch, a request computes with the same operand shapes as
`python -m pipeline generate` and draws the same text for the same seed. Sharing the batch,
BLAS may round a row's logits differently (it picks its kernels by matrix size); a draw
changes only if a random number falls within that rounding of a boundary, which is rare but
possible (benchmarks/README.md counts it).
"""
import logging
import threading

import numpy as np

from model.sampling import draw_rows, filtered_probs
from model.stepper import Stepper

log = logging.getLogger("server.scheduler")


def model_nll(logits, ids):
    """-log p(ids) under the model at temperature 1, row by row (the nats, and the page's tint)."""
    z = np.asarray(logits, np.float64)
    z = z - z.max(axis=1, keepdims=True)
    return np.log(np.exp(z).sum(axis=1)) - z[np.arange(len(ids)), ids]


class Scheduler:
    """The stepping thread; `submit(job)` adds a `jobs.SampledJob`, `job.cancel()` removes it."""

    def __init__(self, net):
        self.net = net
        self.cond = threading.Condition()
        self.incoming, self.jobs = [], []
        self.stepper, self.cur, self.groups, self.closed = None, None, [], False
        self.steps = 0                  # batched steps so far (for tests and the status route)
        self.thread = threading.Thread(target=self._run, name="generation", daemon=True)
        self.thread.start()

    def submit(self, job):
        if job.finished:               # zero length: nothing to step
            return
        with self.cond:
            self.incoming.append(job)
            self.cond.notify()

    def active(self):
        """(requests, streams) being stepped or about to be."""
        with self.cond:
            jobs = [j for j in self.jobs + self.incoming if not (j.finished or j.cancelled)]
        return len(jobs), sum(j.num for j in jobs)

    def close(self):
        with self.cond:
            self.closed = True
            self.cond.notify()
        self.thread.join(timeout=5)

    def _run(self):
        while True:
            with self.cond:
                while not (self.incoming or self.jobs or self.closed):
                    self.cond.wait()
                if self.closed:
                    return
                joining, self.incoming = self.incoming, []
            try:
                self._regroup(joining)
                if self.jobs:
                    self._step()
            except Exception as e:     # a bug: fail these requests, keep serving the next ones
                log.exception("generation step failed")
                for job in self.jobs + joining:
                    job.finish(error=f"generation failed: {e}")
                self.jobs, self.stepper = [], None

    def _regroup(self, joining):
        """Drop finished and abandoned requests, add the new ones, keep the others' states.

        Requests are ordered by their drawing settings, so that each group's rows are one slice.
        """
        keep = [j for j in self.jobs if not (j.finished or j.cancelled)]
        if len(keep) == len(self.jobs) and not joining:
            return
        if keep:
            h, c = self.stepper.state
            for j in keep:
                rows = slice(j.offset, j.offset + j.num)
                j.state, j.cur = (h[:, rows], c[:, rows]), self.cur[rows].copy()
        self.jobs = sorted(keep + joining, key=lambda j: j.key)     # stable: arrival order within
        self.groups, self.stepper, self.cur = [], None, None
        if not self.jobs:
            return
        offset = 0
        for j in self.jobs:
            j.offset, offset = offset, offset + j.num
            if self.groups and self.groups[-1][0] == j.key:
                self.groups[-1][2].append(j)
            else:
                self.groups.append((j.key, j.offset, [j]))
        self.groups = [(key, slice(start, start + sum(j.num for j in jobs)), jobs)
                       for key, start, jobs in self.groups]
        state = (np.concatenate([j.state[0] for j in self.jobs], axis=1),
                 np.concatenate([j.state[1] for j in self.jobs], axis=1))
        self.cur = np.concatenate([j.cur for j in self.jobs])
        for j in self.jobs:
            j.state = None                        # the stepper holds it from now on
        self.stepper = Stepper(self.net, offset, state)

    def _step(self):
        logits = self.stepper.step(self.cur)
        for (strategy, temperature, top_k, top_p), rows, jobs in self.groups:
            p = filtered_probs(logits[rows], temperature, top_k, top_p)
            self.cur[rows] = draw_rows(strategy, p, [j.rng for j in jobs], [j.num for j in jobs])
        nll = model_nll(logits, self.cur)
        for j in self.jobs:
            rows = slice(j.offset, j.offset + j.num)
            j.advance(self.cur[rows], nll[rows])
        self.steps += 1

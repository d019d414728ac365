"""Data-parallel ranks: which lanes of the batch this process trains, and the collectives.

With N ranks every process holds the whole model and the same optimizer state; the B lanes of
a step are split into N contiguous blocks of B / N, rank r taking block r. A step's gradient is
the sum of the ranks' gradients (each computed as its share of the mean over all T * B
positions), summed with one Allreduce over a single flat buffer that also carries STEP_SUMS (the
numbers the logs need, the stop votes and rank 0's clock). Every rank then applies the same
update to the same parameters, so the ranks stay identical without ever sending weights.

`Ranks()` is the one-process group (size 1): no MPI is imported and every collective is the
identity, so the Trainer's one-process path is unchanged. `Ranks(comm)` wraps an mpi4py
communicator made by the caller (pipeline/ranks.py); `sum` then imports mpi4py itself, for
`MPI.IN_PLACE` and `MPI.SUM`, when it runs (never with one process, so mpi4py stays an
optional extra). With a `watch` (model/stall.py) every collective of the steps is timed, so a
peer that stops answering ends the job instead of hanging it.
"""
from contextlib import nullcontext

import numpy as np

# What rides after the gradient in a step's one Allreduce, in this order: this rank's share of
# the loss, its correct top-1 count, its summed max posterior, its stop vote (1 = asked to stop),
# and rank 0's clock (the others add 0), so that every rank counts the same training time.
STEP_SUMS = ("loss", "correct", "top", "stop", "seconds")


def check_split(batch, size):
    """ValueError unless `batch` lanes split evenly between `size` ranks (the launcher asks
    before starting them, each rank again when it takes its block)."""
    if batch % size:
        raise ValueError(f"train.batch_size {batch} does not split evenly between "
                         f"{size} ranks; make it a multiple of train.processes")


class Ranks:
    """This process's place in the group of ranks training one model."""

    def __init__(self, comm=None, watch=None):
        self.comm, self.watch = comm, watch
        self.size = 1 if comm is None else comm.Get_size()
        self.rank = 0 if comm is None else comm.Get_rank()

    def _timed(self, label, step=False):
        return nullcontext() if self.watch is None else self.watch.watch(label, step)

    @property
    def root(self):
        """True on the rank that writes files and logs (rank 0)."""
        return self.rank == 0

    def lanes(self, batch):
        """(lo, hi): this rank's block of the batch's lanes."""
        check_split(batch, self.size)
        part = batch // self.size
        return self.rank * part, (self.rank + 1) * part

    def sum(self, buf, label="a sum", step=False):
        """Sum `buf` over all ranks, in place (one Allreduce); every rank gets the same sum."""
        if self.comm is not None:
            from mpi4py import MPI
            with self._timed(label, step):
                self.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        return buf

    def step_sum(self, grad, label, **values):
        """The step's gradient and its `values` (named in STEP_SUMS) summed over the ranks in
        one Allreduce; returns (gradient, {name: sum}). One process: both as given."""
        if self.comm is None:
            return grad, {k: values[k] for k in STEP_SUMS}
        buf = np.empty(grad.size + len(STEP_SUMS), grad.dtype)
        buf[:grad.size] = grad
        buf[grad.size:] = [values[k] for k in STEP_SUMS]
        self.sum(buf, label, step=True)
        return buf[:grad.size], dict(zip(STEP_SUMS, map(float, buf[grad.size:])))

    def gather_lanes(self, arr, axis):
        """The ranks' blocks of lanes joined along `axis` (the whole batch), on every rank."""
        if self.comm is None:
            return arr
        with self._timed("the checkpoint's gather of the carried state"):
            return np.concatenate(self.comm.allgather(arr), axis=axis)

    def share(self, obj):
        """Rank 0's `obj` on every rank (a broadcast of a picklable object). Not timed: it is
        used at the start, while rank 0 alone may be downloading a checkpoint of any size."""
        return obj if self.comm is None else self.comm.bcast(obj, root=0)

    def same_everywhere(self, arr):
        """True when `arr` is bitwise the same on every rank (a digest compared across ranks)."""
        if self.comm is None:
            return True
        import hashlib
        digest = hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()
        with self._timed("the checkpoint's comparison of the parameters"):
            return len(set(self.comm.allgather(digest))) == 1

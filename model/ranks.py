"""Data-parallel ranks: which lanes of the batch this process trains, and the collectives.

With N ranks every process holds the whole model and the same optimizer state; the B lanes of
a step are split into N contiguous blocks of B / N, rank r taking block r. A step's gradient is
the sum of the ranks' gradients (each computed as its share of the mean over all T * B
positions), summed with one Allreduce over a single flat buffer that also carries the numbers
the logs need. Every rank then applies the same update to the same parameters, so the ranks
stay identical without ever sending weights.

`Ranks()` is the one-process group (size 1): no MPI is imported and every collective is the
identity, so the Trainer's one-process path is unchanged. `Ranks(comm)` wraps an mpi4py
communicator; mpi4py is imported by whoever makes the communicator (pipeline/ranks.py).
"""
import numpy as np


class Ranks:
    """This process's place in the group of ranks training one model."""

    def __init__(self, comm=None):
        self.comm = comm
        self.size = 1 if comm is None else comm.Get_size()
        self.rank = 0 if comm is None else comm.Get_rank()

    @property
    def root(self):
        """True on the rank that writes files and logs (rank 0)."""
        return self.rank == 0

    def lanes(self, batch):
        """(lo, hi): this rank's block of the batch's lanes."""
        if batch % self.size:
            raise ValueError(f"train.batch_size {batch} does not split evenly between "
                             f"{self.size} ranks; make it a multiple of train.processes")
        part = batch // self.size
        return self.rank * part, (self.rank + 1) * part

    def sum(self, buf):
        """Sum `buf` over all ranks, in place (one Allreduce); every rank gets the same sum."""
        if self.comm is not None:
            from mpi4py import MPI
            self.comm.Allreduce(MPI.IN_PLACE, buf, op=MPI.SUM)
        return buf

    def gather_lanes(self, arr, axis):
        """The ranks' blocks of lanes joined along `axis` (the whole batch), on every rank."""
        if self.comm is None:
            return arr
        return np.concatenate(self.comm.allgather(arr), axis=axis)

    def share(self, obj):
        """Rank 0's `obj` on every rank (a broadcast of a picklable object)."""
        return obj if self.comm is None else self.comm.bcast(obj, root=0)

    def same_everywhere(self, arr):
        """True when `arr` is bitwise the same on every rank (a digest compared across ranks)."""
        if self.comm is None:
            return True
        import hashlib
        digest = hashlib.sha256(np.ascontiguousarray(arr).tobytes()).hexdigest()
        return len(set(self.comm.allgather(digest))) == 1

"""A collective that does not complete: noticed by a thread, within a bound set by the run.

A peer that stops without dying (a paused VM, a cut link, a switch dropping packets) leaves
every other rank waiting in its Allreduce forever: MPI itself has no timeout. So each rank's
collectives run inside `StallWatch.watch(label)`, and a daemon thread compares the time spent
in the current one with the bound; past it, `on_stall(label, waited, bound)` is called once (the
caller reports and ends the job: pipeline/ranks.py). The thread can run while the main thread
waits because mpi4py releases the GIL inside MPI calls.

The bound adapts to the run: max(floor, 20 x the median step, 2 x the longest step). A "step"
here is the time between two completed gradient sums, which every rank sees alike (the sum
ends at about the same moment everywhere), so all ranks hold about the same bound without
exchanging it. The longest one covers rank 0's pauses (validation, checkpoints, uploads) once
each has happened; before that only the floor does, which is why it is generous by default.
"""
import statistics
import threading
import time
from collections import deque
from contextlib import contextmanager

STEPS_OF_SLACK = 20     # a step 20 times its median is a stall, not noise
LONGEST_OF_SLACK = 2    # nor is twice the longest gap between two sums seen so far
RECENT_STEPS = 101      # median over this many recent steps: it follows a changing pace


class StallWatch:
    """Times each collective of this rank against the bound; one thread per rank."""

    def __init__(self, floor_s, on_stall):
        self.floor, self.on_stall = float(floor_s), on_stall
        self.steps, self.longest = deque(maxlen=RECENT_STEPS), 0.0
        self._last_sum = None      # when the previous gradient sum completed
        self._current = None       # (label, started, bound) while in a collective: one
        #                            attribute, so the thread never sees half an update
        self._poll = min(1.0, self.floor / 10)
        threading.Thread(target=self._run, daemon=True, name="stall-watch").start()

    def bound(self):
        """Seconds a collective may take before it counts as stalled."""
        median = statistics.median(self.steps) if self.steps else 0.0
        return max(self.floor, STEPS_OF_SLACK * median, LONGEST_OF_SLACK * self.longest)

    @contextmanager
    def watch(self, label, step=False):
        """Around one collective; `step`: it is the step's gradient sum (it sets the pace)."""
        self._current = (label, time.monotonic(), self.bound())
        try:
            yield
        finally:
            self._current = None
            if step:
                self._paced(time.monotonic())

    def _paced(self, now):
        if self._last_sum is not None:
            gap = now - self._last_sum
            self.steps.append(gap)
            self.longest = max(self.longest, gap)
        self._last_sum = now

    def _run(self):
        while True:
            time.sleep(self._poll)
            current = self._current
            if current is not None and time.monotonic() - current[1] > current[2]:
                label, started, bound = current
                self.on_stall(label, time.monotonic() - started, bound)
                return

"""What the launcher learns from the ranks' lines, and the one line a failed job ends with.

Every rank announces `pid R P` before MPI starts (so a host whose ranks never started can be
named) and `ready R` once MPI has connected them all; a rank whose collective has not
completed within the stall bound says `stalled R WAITED BOUND LABEL` (model/stall.py). The
ranks that did not say so while the others waited are the ones that stalled.
"""
import re
import socket


def rank_hosts(hosts, n):
    """Host of each of n ranks, as MPICH's Hydra places them: each host's slots (1 when not
    given) filled in order, then round again from the first."""
    slots = [name for h in hosts for name in [h.partition(":")[0]] * int(h.partition(":")[2] or 1)]
    return [slots[r % len(slots)] for r in range(n)] if slots else [socket.gethostname()] * n


class Job:
    """The ranks' announcements so far: pids, who is ready, who reported a stall."""

    def __init__(self, train):
        self.n, self.floor = train.processes, train.stall_timeout_s
        self.hosts = rank_hosts(train.hosts, self.n)
        self.pids, self.ready, self.stalls, self.other = {}, set(), {}, []
        self.unstarted = False   # the launcher ended the job: not every rank was ready in time

    def take(self, line):
        """Keep what a line says about the ranks; False when it is none of the ranks' own lines."""
        kind, _, rest = line.partition(" ")
        if kind == "pid" and re.fullmatch(r"\d+ \d+", rest):
            rank, pid = rest.split()
            self.pids[pid] = int(rank)
        elif kind == "ready" and rest.isdigit():
            self.ready.add(int(rest))
        elif kind == "stalled" and re.match(r"\d+ [0-9.]+ [0-9.]+ ", rest):
            rank, waited, bound, label = rest.split(" ", 3)
            self.stalls[int(rank)] = (float(waited), float(bound), label)
        else:
            return False
        return True

    def all_ready(self):
        return len(self.ready) == self.n

    def _who(self, rank):
        pid = next((p for p, r in self.pids.items() if r == rank), None)
        return f"rank {rank} ({'pid ' + pid + ' ' if pid else ''}on {self.hosts[rank]})"

    def stalled(self):
        """The line for a job ended by a stall: the ranks that did not report waiting."""
        waited, bound, label = max(self.stalls.values())
        late = [r for r in range(self.n) if r not in self.stalls]
        waiting = ", ".join(map(str, sorted(self.stalls)))
        who = " and ".join(map(self._who, late)) or "no rank (every rank was waiting)"
        return (f"training {who} stopped answering: {label} had not completed after "
                f"{waited:.0f} s (bound {bound:.0f} s; rank {waiting} waited); every rank was stopped. "
                f"Check that host (paused? overloaded? its network?), then rerun the same command to "
                f"resume from the newest checkpoint (train.stall_timeout_s sets the bound)")

    def unstarted_line(self):
        """The line for ranks that did not all start within the bound."""
        started = set(self.pids.values())
        missing = sorted({self.hosts[r] for r in range(self.n) if r not in started})
        if missing:
            return (f"the training ranks did not start within {self.floor:.0f} s: no answer from "
                    f"host {', '.join(missing)}; check that it is up and reachable (MPI starts ranks "
                    "over ssh), or fix train.hosts (train.stall_timeout_s sets the bound)")
        return (f"the training ranks started but could not connect to each other within "
                f"{self.floor:.0f} s; check the network between train.hosts (and any firewall)")

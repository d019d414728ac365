"""Stalled peers of a Train on ranks, as data: tests/test_ranks_stall.py and
tests/test_ranks_hosts.py run them (rendered into docs/reliability.md with the other cases).

A stalled peer is a rank that stops answering without dying; MPI waits for it forever, so the
ranks' stall watch (model/stall.py) bounds every collective by max(train.stall_timeout_s,
20 x median step, 2 x longest step). The tests set train.stall_timeout_s to 3 s on a tiny
model, so the bound is 3 s; the default is 60 s. "Hosts" are network namespaces joined by a
veth pair (benchmarks/netns_hosts.py), MPI's TCP on that link only.
"""
from tests.reliability_cases import UP_TO, Case

STALLED = "stopped answering: step"   # then: "...'s gradient sum had not completed after N s"
RESUMES = ("every rank is stopped (none left running); the newest checkpoint is kept; rerunning "
           "the same command resumes from it (`resumed from step-…`, tested)")

STALLS = [
    Case("stall-rank-paused", "one of two ranks on one host SIGSTOPped mid-training (a paused VM)",
         STALLED, UP_TO["EncodeShards"], "the line names rank 1, its pid and host; " + RESUMES,
         "non-zero, after the bound + ~2 s"),
    Case("stall-link-down", "two hosts: their link taken down mid-training (`ip link set … down`)",
         STALLED, UP_TO["EncodeShards"], "the line names rank 1 and its host (its own report cannot "
         "cross the cut link); the far rank ends itself too; " + RESUMES,
         "non-zero, after the bound + up to ~20 s (mpiexec cannot reach the far proxy: the launcher ends it)"),
    Case("stall-link-blip", "two hosts: their link down for 10 s, then up again, with a bound "
         "longer than the outage (train.stall_timeout_s: 40)", "Train done:", UP_TO["Train"],
         "the step in flight completes late (TCP retransmits once the link is back) and training "
         "goes on; the longest step (~10 s) now raises the bound to 2 x that. With a bound shorter "
         "than the outage it ends as `stall-link-down`", "0"),
    Case("stall-host-silent", "train.hosts names an address that resolves but never answers "
         "(packets dropped: no reply, no refusal)", "no answer from host", UP_TO["EncodeShards"],
         "the launcher stops the ranks that did start after train.stall_timeout_s (MPI's own "
         "ssh would wait minutes); fix train.hosts or the host and rerun",
         "non-zero after the bound"),
]

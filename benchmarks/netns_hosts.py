"""Hosts on one machine: Linux network namespaces joined by a veth pair, for MPI across "hosts".

Each namespace is a separate network stack, so two of them joined by a veth pair behave as
two machines on a LAN: each has its own address (10.231.N.1, .2), which exists only inside
them, nothing is routed anywhere else, and the link can be shaped (tc tbf) or cut (link down).
MPICH's launcher enters a namespace the way it would ssh to a host: `launcher-exec` is a small
script that runs the command in the namespace that owns the host's address (and, for an address
none owns, really runs ssh, inside the namespace: a host that does not answer).

The ranks must talk TCP over the veth only, never shared memory: the MPICH wheel's default
netmod is UCX, which would otherwise find the other "host" on the same machine and use shared
memory (measured: 7 KB crossed the link for a 100 MB Allreduce). Hence UCX_TLS / UCX_NET_DEVICES.
Needs root and iproute2; `Hosts.make()` raises Unavailable where namespaces cannot be made.
"""
import os
import subprocess
from pathlib import Path

LINK = "mpi0"   # the veth end's name inside every namespace, so one setting pins them all


def pinned(dev):
    """Environment that keeps MPI's traffic on network device `dev` ("lo": loopback only).

    The MPICH wheel's default netmod is UCX: unpinned, every rank also listens on every other
    interface, and FI_TCP_IFACE alone pins nothing. UCX_NET_DEVICES pins UCX (its shared memory
    stays); FI_PROVIDER + FI_TCP_IFACE do the same for the ofi netmod (MPIR_CVAR_CH4_NETMOD=ofi).
    """
    return {"UCX_NET_DEVICES": dev, "FI_PROVIDER": "tcp", "FI_TCP_IFACE": dev}
LAUNCHER = f"""#!/bin/sh
# ssh-like for MPICH's Hydra: [-OPTIONS] HOST COMMAND...; runs COMMAND in the namespace that owns HOST.
[ -n "$(ip netns identify)" ] || {{ echo "nsexec: only from inside a namespace" >&2; exit 255; }}
while [ "${{1#-}}" != "$1" ]; do shift; done
host=$1; shift
for ns in $(ip netns list | cut -d' ' -f1); do
  if ip -n "$ns" -4 -o addr show dev {LINK} 2>/dev/null | grep -q " inet $host/"; then
    exec ip netns exec "$ns" sh -c "$*"
  fi
done
exec ssh -o BatchMode=yes "$host" "$@"   # no namespace has it: what a real launch would try
"""


class Unavailable(Exception):
    """Network namespaces cannot be made here (not root, no iproute2, no permission)."""


def sh(*args, check=True):
    return subprocess.run(args, capture_output=True, text=True, check=check, timeout=30)


class Hosts:
    """n namespaces (n = 2) on one veth pair; `ips[i]` is host i's address; `silent` is an
    address on the same LAN that resolves (a fixed neighbour entry) but never answers."""

    def __init__(self, folder, n=2):
        tag = f"{os.getpid() % 100000}"
        self.names = [f"t31h{i}-{tag}" for i in range(n)]
        net = 10 + os.getpid() % 200
        self.ips = [f"10.231.{net}.{i + 1}" for i in range(n)]
        self.silent = f"10.231.{net}.99"
        self.launcher = Path(folder) / "nsexec.sh"

    def make(self):
        if os.geteuid() != 0:
            raise Unavailable("network namespaces need root")
        try:
            for name in self.names:
                sh("ip", "netns", "add", name)
            a, b = (f"t31v{i}{os.getpid() % 100000}" for i in range(2))
            sh("ip", "link", "add", a, "type", "veth", "peer", "name", b)
            for name, ip, end in zip(self.names, self.ips, (a, b)):
                sh("ip", "link", "set", end, "netns", name)
                sh("ip", "-n", name, "link", "set", end, "name", LINK)
                sh("ip", "-n", name, "addr", "add", f"{ip}/24", "dev", LINK)
                sh("ip", "-n", name, "link", "set", "lo", "up")
                sh("ip", "-n", name, "link", "set", LINK, "up")
            sh("ip", "-n", self.names[0], "neigh", "add", self.silent, "lladdr", "02:00:00:00:31:99",
               "dev", LINK, "nud", "permanent")   # packets to it leave, and nobody takes them
        except (OSError, subprocess.CalledProcessError) as e:
            self.remove()
            raise Unavailable(f"cannot make network namespaces: {getattr(e, 'stderr', e)}".strip()) from None
        self.launcher.write_text(LAUNCHER)
        self.launcher.chmod(0o755)
        return self

    def remove(self):
        for name in self.names:   # deleting a namespace deletes its veth end, and so the pair
            sh("ip", "netns", "delete", name, check=False)

    def env(self):
        """Environment for mpiexec (and so every rank): launch through the namespaces, TCP on
        the veth only."""
        return {"HYDRA_LAUNCHER": "ssh", "HYDRA_LAUNCHER_EXEC": str(self.launcher),
                "UCX_TLS": "self,tcp", **pinned(LINK)}

    def inside(self, i=0):
        """Command prefix that runs a program on host i."""
        return ["ip", "netns", "exec", self.names[i]]

    def link(self, up, i=1):
        sh("ip", "-n", self.names[i], "link", "set", LINK, "up" if up else "down")

    def rx_bytes(self, i=1):
        return int(sh("ip", "netns", "exec", self.names[i], "cat",
                      f"/sys/class/net/{LINK}/statistics/rx_bytes").stdout)

    def shape(self, rate):
        """tbf on both ends of the link (`rate` as tc says it, e.g. 1gbit), or none (None)."""
        for name in self.names:
            sh("tc", "-n", name, "qdisc", "del", "dev", LINK, "root", check=False)
            if rate:
                sh("tc", "-n", name, "qdisc", "add", "dev", LINK, "root", "tbf", "rate", rate,
                   "burst", "256kbit" if rate.startswith("1g") else "2mbit", "latency", "400ms")

"""Neighbours for the ARP probes (installer/checks/neighbours.py): hosts that already hold an
address, and a small switched segment where the box has two ports.

    with holding(lab, "machine", "198.51.100.2"):   # the plant namespace answers for .2 too
        ...
    with Segment("ein123") as seg:                   # box (2 ports) -- switch -- intruder
        seg.box(["arping", ...])

`holding` gives a namespace of the running lab (tests/lab/lab.py) one more address, as /32 so
that nothing else in its routing changes: the plant namespace sits on the machine segment
(the edge's eno1), the cloud namespace on the uplink segment (enp2s0). Both answer ARP for it
(Linux answers for any of its addresses, and answers RFC 5227 probes whose sender is 0.0.0.0).

`Segment` is the case the lab's point-to-point veths cannot show: a switch (a Linux bridge in
its own namespace) with the box's two machine ports on it, and a third host. It is built and
removed whole, inside its own namespaces; addresses only from 198.51.100.0/24.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator, Sequence

from tests.lab import netns
from tests.lab import topology as T

SEGMENTS = {"machine": ("plant", T.PLANT_IF), "uplink": ("cloud", T.CLOUD_IF)}


def mac_of(ns: str, interface: str) -> str:
    """The MAC address of `interface` in namespace `ns`, lower case."""
    out = netns.run(netns.exec_argv(ns, ["cat", f"/sys/class/net/{interface}/address"])).stdout
    return out.strip().lower()


@contextlib.contextmanager
def holding(lab, segment: str, address: str) -> Iterator[str]:
    """While inside: the lab's namespace on `segment` ("machine": plant, "uplink": cloud) also
    holds `address`. Yields the MAC that will answer for it. Removed on the way out."""
    role, interface = SEGMENTS[segment]
    ns = lab.ns[role]
    netns.run(["ip", "-n", ns, "addr", "add", f"{address}/32", "dev", interface])
    try:
        yield mac_of(ns, interface)
    finally:
        netns.run(["ip", "-n", ns, "addr", "del", f"{address}/32", "dev", interface], check=False)
        # The edge must not keep the holder's MAC for the address in its cache.
        netns.run(["ip", "-n", lab.edge_ns, "neigh", "flush", "all"], check=False)


class Segment:
    """<name>-box (ports p1, p2; optionally bridged as br-machines) -- <name>-sw (a bridge) --
    <name>-h (a host). Build with `up()` or as a context manager; `down()` removes everything."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.box_ns, self.sw_ns, self.host_ns = f"{name}-box", f"{name}-sw", f"{name}-h"

    def __enter__(self) -> Segment:
        return self.up()

    def __exit__(self, *exc) -> None:
        self.down()

    def up(self) -> Segment:
        self.down()
        try:
            for ns in (self.box_ns, self.sw_ns, self.host_ns):
                netns.add(ns)
                netns.in_netns(ns, netns.write_sysctls, {"net.ipv6.conf.all.disable_ipv6": "1",
                                                         "net.ipv6.conf.default.disable_ipv6": "1"})
            netns.run(["ip", "-n", self.sw_ns, "link", "add", "sw", "type", "bridge"])
            for port, peer, ns in (("p1", "s1", self.box_ns), ("p2", "s2", self.box_ns), ("h0", "s3", self.host_ns)):
                netns.run(["ip", "-n", ns, "link", "add", port, "type", "veth", "peer", "name", peer,
                           "netns", self.sw_ns])
                netns.run(["ip", "-n", self.sw_ns, "link", "set", peer, "master", "sw", "up"])
                netns.run(["ip", "-n", ns, "link", "set", port, "up"])
            netns.run(["ip", "-n", self.sw_ns, "link", "set", "sw", "up"])
        except BaseException:
            self.down()
            raise
        return self

    def down(self) -> None:
        for ns in (self.box_ns, self.sw_ns, self.host_ns):
            with contextlib.suppress(Exception):
                netns.kill_all(ns)
            with contextlib.suppress(Exception):
                netns.delete(ns)

    def bridge_box_ports(self, bridge: str = "br-machines") -> None:
        """The box's two ports as one bridge, as the plan's machine network renders them."""
        netns.run(["ip", "-n", self.box_ns, "link", "add", bridge, "type", "bridge"])
        for port in ("p1", "p2"):
            netns.run(["ip", "-n", self.box_ns, "link", "set", port, "master", bridge])
        netns.run(["ip", "-n", self.box_ns, "link", "set", bridge, "up"])

    def address(self, where: str, interface: str, cidr: str) -> None:
        ns = {"box": self.box_ns, "host": self.host_ns}[where]
        netns.run(["ip", "-n", ns, "addr", "add", cidr, "dev", interface])

    def box(self, argv: Sequence[str], timeout: float = 30, env: dict | None = None) -> subprocess.CompletedProcess:
        """Run argv in the box namespace (captured, text)."""
        return subprocess.run(netns.exec_argv(self.box_ns, list(argv)), capture_output=True, text=True,
                              timeout=timeout, env=env)

"""`BoxLab`: the network lab (tests.lab.Lab) with a VM's NICs as the edge box's ports.

The lab's edge namespace stops being the box: its addresses and routes go, and two bridges
join a tap per port (which QEMU, run in that namespace, opens) to the lab's veth links:

    VM enp2s0 = tap-up   --br-up--   enp2s0 veth ---- site0  <name>-cloud  203.0.113.0/24
    VM eno1   = tap-mach --br-mach-- eno1 veth   ---- floor0 <name>-plant  198.51.100.0/24
    VM eno2.. = tap-eno2 (unbridged, for a test's own wiring)

So the VM's uplink is on the cloud's segment (gateway .1, DNS .53, NTP .123, the vendors'
names at .10) with a DHCP server of its own (203.0.113.100-199), and its machine port on the
plant's. The lab translated public addresses (Google DNS, NATS IPs) in the edge's output
chain, which the VM's packets never cross; the cloud gets the same translation in its
prerouting chain, fed from the same state, so faults (block, serve_from) apply to the VM too.
The cloud has no default route and forwards nothing: a packet for anything else dies there.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from tests.lab import netns
from tests.lab import topology as T
from tests.lab.lab import Lab
from tests.lab.servers import Service

UPLINK_TAP, MACHINE_TAP = "tap-up", "tap-mach"
UPLINK_BRIDGE, MACHINE_BRIDGE = "br-up", "br-mach"
DHCP_RANGE = ("203.0.113.100", "203.0.113.199")
BOX_TABLE = "boxlab"
_NAME = re.compile(r"eib(\d+)n(\d+)")


class BoxLab(Lab):
    """A Lab whose edge namespace is the wire of one VM (see the module docstring).

    `extra_ports` adds taps tap-eno2, tap-eno3, ... (unbridged) for more wired NICs.
    Use `taps` to wire a Box: {"enp2s0": "tap-up", "eno1": "tap-mach", ...}.
    """

    def __init__(self, name: str, workdir: Path | str | None = None, extra_ports: int = 0) -> None:
        super().__init__(name, workdir)
        self.extra_ports = extra_ports
        self._box_ready = False  # bridges made: the box's rules and DHCP follow every _sync

    @property
    def taps(self) -> dict[str, str]:
        """Guest NIC name -> tap in the edge namespace."""
        taps = {T.UPLINK_IF: UPLINK_TAP, T.MACHINE_IF: MACHINE_TAP}
        taps.update({f"eno{i}": f"tap-eno{i}" for i in range(2, 2 + self.extra_ports)})
        return taps

    @property
    def dhcp_leases(self) -> Path:
        """dnsmasq's lease file for the cloud segment."""
        return self.workdir / "dhcp.leases"

    def _build(self) -> None:
        super()._build()
        e = self.edge_ns
        lines = [f"addr flush dev {T.UPLINK_IF}", f"addr flush dev {T.MACHINE_IF}",
                 "route flush table main"]
        for bridge, veth, tap in ((UPLINK_BRIDGE, T.UPLINK_IF, UPLINK_TAP),
                                  (MACHINE_BRIDGE, T.MACHINE_IF, MACHINE_TAP)):
            lines += [f"link add {bridge} type bridge forward_delay 0 stp_state 0",
                      f"tuntap add dev {tap} mode tap",
                      f"link set {veth} master {bridge}", f"link set {tap} master {bridge}",
                      f"link set {tap} up", f"link set {bridge} up"]
        for i in range(2, 2 + self.extra_ports):
            lines += [f"tuntap add dev tap-eno{i} mode tap", f"link set tap-eno{i} up"]
        # The edge's own output NAT is for processes in the edge, which no longer have a route.
        netns.run(["ip", "-n", e, "-batch", "-"], input="\n".join(lines) + "\n")
        self._sync_box()

    def _sync(self) -> None:
        super()._sync()
        if self._box_ready:
            self._sync_box()

    def _sync_box(self) -> None:
        """The cloud's prerouting translation for the VM and the DHCP server, as the state says."""
        self._box_ready = True
        rules = "\n".join(f"        iifname \"{T.CLOUD_IF}\" ip daddr {addr} {proto} dport {port} dnat to {target}"
                          for (addr, proto, port), target in sorted(self._edge_translations().items()))
        text = (f"add table ip {BOX_TABLE}\ndelete table ip {BOX_TABLE}\ntable ip {BOX_TABLE} {{\n"
                f"    chain nat_pre {{\n        type nat hook prerouting priority -110; policy accept;\n"
                f"{rules}\n    }}\n}}\n")
        if self._applied_fw.get("box") != text:
            netns.run(netns.exec_argv(self.ns["cloud"], ["nft", "-f", "-"]), input=text)
            self._applied_fw["box"] = text
        self._services.sync([self._dhcp_service()], set())

    def _dhcp_service(self) -> Service:
        d = self.workdir
        conf = d / "dnsmasq" / "dhcp.conf"
        text = "\n".join([
            "# edge-installer box lab: DHCP only (port=0: no DNS), on the cloud segment only",
            "port=0", "no-resolv", "no-hosts", "bind-interfaces", f"interface={T.CLOUD_IF}",
            "except-interface=lo", "user=root", "group=root", "dhcp-authoritative",
            f"dhcp-range={DHCP_RANGE[0]},{DHCP_RANGE[1]},255.255.255.0,12h",
            f"dhcp-option=option:router,{T.GATEWAY}", f"dhcp-option=option:dns-server,{T.DNS}",
            f"dhcp-option=option:ntp-server,{T.NTP}", f"dhcp-leasefile={self.dhcp_leases}",
            f"pid-file={d / 'run' / 'dhcp'}.pid", f"log-facility={d / 'logs' / 'dhcp'}.log",
            "log-dhcp"]) + "\n"
        return Service("dhcp", "cloud", ("dnsmasq", "--keep-in-foreground", f"--conf-file={conf}"),
                       (("udp", "0.0.0.0", 67),), files={conf: text})

    def down(self) -> None:
        """As Lab.down() (QEMU in the edge namespace dies with it); forgets the box state."""
        self._box_ready = False
        super().down()


def lab_name(n: int = 0, pid: int | None = None) -> str:
    """The name of this process's n-th box lab: eib<pid>n<n> (unique per process)."""
    return f"eib{pid or os.getpid()}n{n}"


def sweep_stale_boxlabs() -> list[str]:
    """Remove box labs (namespaces, their VMs, work directories) of test sessions that died,
    with a fleet lab's controller namespace (<lab>-ctl, tests/box/fleetlab.py)."""
    from tests.lab import netns
    from tests.lab.fixtures import sweep_stale_labs

    class _Stale(BoxLab):
        def down(self) -> None:
            super().down()
            netns.kill_all(f"{self.name}-ctl")
            netns.delete(f"{self.name}-ctl")

    return sweep_stale_labs(r"eib(\d+)n\d+", _Stale)

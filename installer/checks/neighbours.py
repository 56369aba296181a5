"""Neighbours on the wire: addresses nobody else holds, the static gateway, the listed machines.

Every question here is asked with an ARP probe as RFC 5227 ("IPv4 Address Conflict
Detection") describes it: an ARP request from the box's own port whose sender IP address is
0.0.0.0, so that no host's ARP cache learns anything from it. It needs no address on the port,
so it works before the plan is applied. An answer (an ARP reply, or the holder's own request)
whose sender IP is the probed address names the holder's MAC.

Two senders, one probe. The checks and apply use a packet socket of this process (AF_PACKET,
ARP only, bound to the port: `_raw_probe`); where the process may not open one (not root), the
real tool `arping -D` from Debian's iputils-arping, which carries its own capability. Why not
arping always: it was measured first (iputils 20221126) and does the probe right, but
- it sends one probe a second and waits whole seconds (-w and -i take integers only), so a
  free address costs at least a second: the healthy check suite, under half a second without
  these probes, grew to 2.4 s with them (bench/checks.py); the socket sends three probes
  within CHECK_WINDOW_S;
- its exit code is 1 both for "someone answered" and for a bad argument (2 for a port that is
  down or missing), so its verdict must be read from its "Unicast reply from ADDR [MAC]" line;
- a process per probe (eight in a plan with five machines) on a loaded box.
Both are proven against the same namespaces (tests/test_addresses.py). What both share:
- on a port without carrier a probe goes into the void and comes back "free": the carrier is
  read from /sys/class/net first, and a port that is down, has no carrier or cannot do ARP
  gives "could not probe", never "free";
- answers from the probing port's own MAC are ignored; answers from another of the box's ports
  (two ports on one switch, one still holding the address) are told apart by comparing the
  MAC with every MAC of this box;
- a port enslaved to a bridge does not hand ARP answers to a socket bound to it (the bridge
  takes them): where the plan's machine bridge exists and is up, the probe goes out on the
  bridge.

Used three ways: as checks (`address-free`, `gateway-present`), by `machines.machine_port`
(`presence`, when its connection failed) to tell "absent" from "port filtered" from "port
closed", and by apply (`preflight`) before anything is written.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import shutil
import signal
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NotRequired, TypedDict

from installer.checks.base import Check, Context, Outcome, Result
from installer.planning.plan import Plan
from installer.render import MACHINE_BRIDGE
from installer.text import ascii_safe
from installer.vendors.sources import cite

ARPING = "arping"
ARPING_PACKAGE = "iputils-arping"
_REPLY = re.compile(r"(?:Unicast|Broadcast) (?:reply|request) from ([0-9.]+) \[([0-9A-Fa-f:]{17})\]")
_IFF_UP = 0x1
_IFF_NOARP = 0x80
_ETH_P_ARP = 0x0806
_NOT_REPORTING = cite("000_d0122341ad91427d.txt#Machines Not Reporting Data")
_INTERFACES = cite("000_d0122341ad91427d.txt#Edge Network Interface Configuration")
_NOT_CONNECTING = cite("000_d0122341ad91427d.txt#Edge Device Not Connecting")


@dataclass(frozen=True)
class Probe:
    """One ARP probe for `address` out of `interface`, and what came back.

    state: "answered" (someone sent an ARP reply: `mac`), "claimed" (another device sent its own
    RFC 5227 probe for the address while this one listened: it is taking the address at this
    moment, `mac`; only asked for by a probe with `claim`), "silent" (nobody, within `window_s`)
    or "unchecked" (the probe could not be sent: `problem` says why). `own` is set when the
    MAC that answered belongs to this box."""

    address: str
    interface: str
    state: str
    mac: str | None = None
    own: bool = False
    problem: str = ""
    window_s: float = 0

    @property
    def other(self) -> bool:
        """Another device answered, or claims the address (not this box)."""
        return self.state in ("answered", "claimed") and not self.own

    def conflict_words(self) -> str:
        """Why another device's answer makes the address taken (after "ADDRESS (FIELD) ")."""
        if self.state == "claimed":
            return (f"is being taken by another device at this moment: MAC {self.mac} sent its own probe for it "
                    f"on {self.interface} (RFC 5227)")
        return f"is already held by another device: MAC {self.mac} answers ARP for it on {self.interface}"

    def words(self) -> str:
        if self.state == "unchecked":
            return f"not probed on {self.interface}: {self.problem}"
        if self.state == "silent":
            return f"no ARP answer for {self.address} on {self.interface} within {self.window_s:g} s"
        if self.state == "claimed":
            return (f"another device ({self.mac}) is probing for {self.address} on {self.interface} to take it "
                    "now (RFC 5227: a simultaneous claim)")
        who = "this box's own port" if self.own else "another device"
        return f"{self.address} answers ARP on {self.interface} from {self.mac} ({who})"


class ProbeLine(TypedDict):
    """One probe in the facts of a check (see `Probe`)."""

    interface: str
    state: str
    mac: str | None
    own: bool
    problem: str


class ProbeFacts(TypedDict):
    """The facts of the probes for one address: `address-free`, `gateway-present`, and
    `presence` (which adds `words`, the probes in words)."""

    host: str
    port: None
    interfaces: list[str]
    macs: list[str]
    state: str  # "present" | "absent" | "unchecked"
    probes: list[ProbeLine]
    words: NotRequired[str]


# How long the probes listen. Among the checks (run beside everything else, and again and
# again while a technician fixes things) 0.2 s with three probes (arping: one): a device on
# the same segment answers ARP within milliseconds (0.5 ms in the lab; an embedded
# controller's stack within tens). Before apply, where a wrong "free" would put two devices on
# one address, 2 s with three probes spread over it, as RFC 5227 spreads its three.
CHECK_WINDOW_S = 0.2
PRESENCE_WINDOW_S = 1.0
PREFLIGHT_WINDOW_S = 2


def probe_window(timeout: float) -> float:
    """The listening window of a check's probe: CHECK_WINDOW_S, never more than half the
    check's timeout (the runner allows a check 2 x timeout + 0.5 s)."""
    return max(0.1, min(CHECK_WINDOW_S, timeout / 2))


def presence_window(timeout: float) -> float:
    """The window of a probe whose silence is a failure (a gateway or a machine called absent):
    PRESENCE_WINDOW_S, never more than half the check's timeout. A probe stops at the first
    answer, so a device that is there costs milliseconds; only an absent one waits it out,
    and a slow router or a loaded box is not called absent after 0.2 s."""
    return max(0.1, min(PRESENCE_WINDOW_S, timeout / 2))


def box_macs(sys_class_net: str = "/sys/class/net") -> set[str]:
    """Every MAC address of this box's interfaces, lower case."""
    macs: set[str] = set()
    try:
        entries = list(Path(sys_class_net).iterdir())
    except OSError:
        return macs
    for entry in entries:
        mac = _read(entry / "address")
        if mac and mac != "00:00:00:00:00:00":
            macs.add(mac.lower())
    return macs


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip()
    except OSError:
        return None


def port_problem(interface: str, sys_class_net: str = "/sys/class/net") -> str | None:
    """Why an ARP probe cannot go out of `interface` now (missing, down, no carrier, no ARP),
    or None when it can."""
    base = Path(sys_class_net, interface)
    if not base.exists():
        return f"{interface} does not exist on this box"
    flags = _read(base / "flags")
    try:
        value = int(flags, 16) if flags else 0
    except ValueError:
        value = 0
    if flags is not None and not value & _IFF_UP:
        return f"{interface} is down (administratively: nothing has brought it up yet)"
    if value & _IFF_NOARP:
        return f"{interface} does not use ARP (a point-to-point link)"
    if _read(base / "carrier") != "1":
        return f"{interface} has no carrier (cable unplugged or the switch port is off)"
    return None


def _guarded() -> str | None:
    """The test suite's network interlock (installer/checks/netguard.py): arping is a separate
    process the audit hook cannot see, so it is refused here, from this machine's own network
    namespace, whenever the suite's guard is on. Inside a lab namespace it runs."""
    from installer.checks import netguard

    if not os.environ.get(netguard.ENV):
        return None
    here = netguard.namespace_id()
    own = os.environ.get(netguard.ENV_NETNS, "")
    try:
        machine = int(own) if own.isdigit() else os.stat("/proc/1/ns/net").st_ino
    except OSError:
        machine = None
    if here is None or machine is None or here == machine:
        return "the test suite's network guard refuses ARP probes from this machine's own network"
    return None


def arping_path() -> str | None:
    return shutil.which(ARPING, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin:/usr/bin")


async def arp_probe(address: str, interface: str, *, window_s: float = 1, own_macs: set[str] | None = None,
                    sys_class_net: str = "/sys/class/net", method: str = "auto", claim: bool = False) -> Probe:
    """Send RFC 5227 ARP probes for `address` out of `interface` during `window_s` seconds; stop
    at the first answer. Never raises; bounded by window_s + 2 s.

    `method` "raw": a packet socket of this process (needs CAP_NET_RAW, i.e. root); "arping":
    `arping -D`; "auto": the socket, and arping when the socket is not allowed (arping is
    installed with its own capability). Both send the same probe; the socket costs no process
    and no whole-second timing (see the module's text).

    `claim`: the box is about to take `address` (a conflict check, not a presence check). As
    RFC 5227 section 2.1.1 says, another device's own probe for it, heard while listening, is
    then a conflict too ("claimed"): two boxes set up at once with one address. Only the
    packet socket hears it: arping -D reports replies alone."""
    problem = port_problem(interface, sys_class_net)  # reads files only: no packet
    if problem:
        return Probe(address, interface, "unchecked", problem=problem, window_s=window_s)
    refused = _guarded()
    if refused:
        return Probe(address, interface, "unchecked", problem=refused, window_s=window_s)
    if method in ("auto", "raw"):
        probe = await _raw_probe(address, interface, window_s, own_macs or set(), sys_class_net, claim)
        if probe is not None or method == "raw":
            return probe or Probe(address, interface, "unchecked", window_s=window_s,
                                  problem="a packet socket needs root (CAP_NET_RAW)")
    return await _arping_probe(address, interface, window_s, own_macs or set())


PROBES_IN_WINDOW = 3


async def _raw_probe(address: str, interface: str, window_s: float, own_macs: set[str],
                     sys_class_net: str, claim: bool = False) -> Probe | None:
    """The probe from a packet socket (AF_PACKET, ARP only, bound to `interface`): an ARP
    request from this port's MAC with sender IP 0.0.0.0 for `address`, PROBES_IN_WINDOW times
    spread over the window, and every ARP packet read until one comes from `address` (a
    reply, or a request it sends itself) from a MAC not this port's, or, with `claim`, another
    device's probe for `address` (sender IP 0.0.0.0, not from this box). None when this process
    may not open a packet socket (not root): the caller falls back to arping."""
    import socket
    import struct

    def unchecked(problem: str) -> Probe:
        return Probe(address, interface, "unchecked", problem=problem, window_s=window_s)

    try:
        own_port = bytes.fromhex((_read(Path(sys_class_net, interface, "address")) or "").replace(":", ""))
        target = socket.inet_aton(address)
    except (ValueError, OSError):
        return unchecked(f"{interface} has no usable MAC address, or {address} is not an IPv4 address")
    if len(own_port) != 6:
        return unchecked(f"{interface} is not an Ethernet-like port (no 6-byte MAC)")
    try:
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(_ETH_P_ARP))
    except PermissionError:
        return None
    except OSError as e:
        return unchecked(f"no packet socket: {e.strerror or e}")
    loop = asyncio.get_running_loop()
    request = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, own_port, bytes(4), bytes(6), target)
    try:
        sock.setblocking(False)
        sock.bind((interface, _ETH_P_ARP))
        start = loop.time()
        end = start + window_s
        gap = window_s / PROBES_IN_WINDOW
        sent = 0
        while True:
            now = loop.time()
            if sent < PROBES_IN_WINDOW and now >= start + sent * gap:
                sock.sendto(request, (interface, _ETH_P_ARP, 0, 1, b"\xff" * 6))
                sent += 1
                continue
            if now >= end:
                return Probe(address, interface, "silent", window_s=window_s)
            wake = min(end, start + sent * gap) if sent < PROBES_IN_WINDOW else end
            try:
                data, where = await asyncio.wait_for(loop.sock_recvfrom(sock, 256), max(0.001, wake - now))
            except TimeoutError:
                continue
            if (len(where) > 2 and where[2] == socket.PACKET_OUTGOING) or len(data) < 28:
                continue
            _, ptype, hlen, plen, op, sha, spa, _, tpa = struct.unpack("!HHBBH6s4s6s4s", data[:28])
            if ptype != 0x0800 or hlen != 6 or plen != 4 or op not in (1, 2) or sha == own_port:
                continue
            mac = ":".join(f"{b:02x}" for b in sha)
            if spa == target:
                return Probe(address, interface, "answered", mac, mac in own_macs, window_s=window_s)
            if claim and op == 1 and spa == bytes(4) and tpa == target and mac not in own_macs:
                return Probe(address, interface, "claimed", mac, window_s=window_s)
    except OSError as e:
        return unchecked(f"the probe could not be sent: {e.strerror or e}")
    finally:
        sock.close()


async def _arping_probe(address: str, interface: str, window_s: float, own_macs: set[str]) -> Probe:
    """The probe by `arping -D` (one probe a second; under a second, one probe, and arping is
    interrupted with SIGINT, on which it prints what it received and exits, when the window
    ends). Bounded by window_s + 2 s whatever arping does."""
    short = window_s < 1
    if not short:
        window_s = int(window_s)

    def unchecked(problem: str) -> Probe:
        return Probe(address, interface, "unchecked", problem=problem, window_s=window_s)

    tool = arping_path()
    if tool is None:
        return unchecked(f"arping is not installed (Debian package {ARPING_PACKAGE})")
    whole = 1 if short else int(window_s)
    argv = [tool, "-D", "-I", interface, "-c", "1" if short else str(whole + 1), "-w", str(whole), address]
    try:
        proc = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, env={**os.environ, "LC_ALL": "C"}, start_new_session=True)
    except OSError as e:
        return unchecked(f"arping could not start: {e.strerror or e}")
    talk = asyncio.ensure_future(proc.communicate())
    try:
        if short:
            done, _ = await asyncio.wait({talk}, timeout=window_s)
            if not done:
                _signal(proc, signal.SIGINT)  # the window is over: arping reports and exits
        out, err = await asyncio.wait_for(talk, whole + 2)
    except (TimeoutError, asyncio.CancelledError) as e:
        _signal(proc, signal.SIGKILL)
        await _reap(proc)
        talk.cancel()
        if isinstance(e, asyncio.CancelledError):
            raise
        return unchecked(f"arping did not finish within {whole + 2} s")
    text = out.decode(errors="replace")
    for found, mac in _REPLY.findall(text):
        if found == address:
            mac = mac.lower()
            return Probe(address, interface, "answered", mac, mac in own_macs, window_s=window_s)
    if proc.returncode == 0:
        return Probe(address, interface, "silent", window_s=window_s)
    said = (err.decode(errors="replace").strip() or text.strip()).splitlines()
    line = said[-1] if said else ""
    return unchecked(f"arping failed (exit {proc.returncode}): {ascii_safe(line, 160)}")


def _signal(proc: asyncio.subprocess.Process, sig: int) -> None:
    try:
        os.killpg(proc.pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


async def _reap(proc: asyncio.subprocess.Process) -> None:
    try:
        await asyncio.wait_for(proc.wait(), 1.0)
    except (TimeoutError, asyncio.CancelledError):
        pass


# --------------------------------------------------------------------------- where to probe


@dataclass(frozen=True)
class Planned:
    """A static address the plan sets: the field it comes from, its role, the ports it lives on."""

    field: str
    role: str
    address: str
    interfaces: tuple[str, ...]


def on_box(plan: Plan, name: str, sys_class_net: str = "/sys/class/net") -> str:
    """The kernel name of the plan's port `name` on this box: through its hardware binding
    (plan.ports: MAC, driver, path; installer.box.ports) when it has one and it matches exactly one
    port, else the name itself (a probe then says the port does not exist)."""
    if plan.port(name) is None:
        return name
    from installer.box import ports

    found = ports.resolve_name(plan, name, Path(sys_class_net))
    return found.interface or name


def machine_ports(plan: Plan, sys_class_net: str = "/sys/class/net") -> tuple[str, ...]:
    """Where to probe the machine network from: the plan's bridge when it exists and is up
    (its ports hand ARP answers to the bridge, not to a probe bound to a port), else the
    plan's port(s)."""
    mn = plan.machine_network
    if mn is None or not mn.interfaces:
        return ()
    if len(mn.interfaces) > 1 and port_problem(MACHINE_BRIDGE, sys_class_net) is None:
        return (MACHINE_BRIDGE,)
    return tuple(on_box(plan, name, sys_class_net) for name in mn.interfaces)


def static_addresses(plan: Plan, sys_class_net: str = "/sys/class/net") -> list[Planned]:
    """Every static address the plan sets, with the ports to probe it from."""
    found = []
    mn = plan.machine_network
    if mn is not None and mn.address and mn.interfaces:
        found.append(Planned("machine_network.address", "machine network", _ip(mn.address),
                             machine_ports(plan, sys_class_net)))
    up = plan.uplink
    if up is not None and up.ipv4 == "static" and up.address and up.interface:
        found.append(Planned("uplink.address", "uplink", _ip(up.address), (on_box(plan, up.interface, sys_class_net),)))
    return found


def static_gateway(plan: Plan, sys_class_net: str = "/sys/class/net") -> tuple[str, str] | None:
    """(gateway, uplink interface on this box) when the plan's uplink is static with a gateway."""
    up = plan.uplink
    if up is not None and up.ipv4 == "static" and up.gateway and up.interface:
        return up.gateway, on_box(plan, up.interface, sys_class_net)
    return None


def _ip(cidr: str) -> str:
    return str(ipaddress.ip_interface(cidr).ip)


def on_machine_network(plan: Plan, address: str) -> bool:
    """The machine's address is inside the plan's machine network (so ARP can find it)."""
    mn = plan.machine_network
    if mn is None or not mn.address:
        return False
    try:
        return ipaddress.ip_address(address) in ipaddress.ip_interface(mn.address).network
    except ValueError:
        return False


async def probe_all(address: str, interfaces: Sequence[str], *, window_s: float, own_macs: set[str],
                    sys_class_net: str, claim: bool = False) -> list[Probe]:
    return list(await asyncio.gather(*(arp_probe(address, i, window_s=window_s, own_macs=own_macs,
                                                 sys_class_net=sys_class_net, claim=claim) for i in interfaces)))


# --------------------------------------------------------------------------- checks


def _facts(probes: Sequence[Probe], address: str) -> ProbeFacts:
    answered = [p for p in probes if p.state in ("answered", "claimed")]
    return {"host": address, "port": None, "interfaces": [p.interface for p in probes],
            "macs": sorted({p.mac for p in answered if p.mac and not p.own}),
            "state": ("present" if answered else
                      "unchecked" if all(p.state == "unchecked" for p in probes) else "absent"),
            "probes": [{"interface": p.interface, "state": p.state, "mac": p.mac, "own": p.own,
                        "problem": p.problem} for p in probes]}


def _held_by_box(address: str) -> bool:
    """This box holds `address` now (on any port): binding a socket to it succeeds. No packet
    is sent, and no thread is taken from the runner's pool (a discovery per check would be)."""
    import socket

    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((address, 0))
        return True
    except OSError:
        return False


async def address_free(ctx: Context, prereqs: Mapping[str, Result], *, address: str, field: str, role: str,
                       interfaces: tuple[str, ...]) -> Outcome:
    """Does any device other than this box answer ARP for `address` on its port(s)?

    Diagnoses: ok; address-conflict (fail: another device holds it, its MAC named);
    address-unchecked (warn: the probe could not go out, e.g. no carrier: the address is
    not known to be free)."""
    own = box_macs(ctx.sys_class_net)
    probes = await probe_all(address, interfaces, window_s=probe_window(ctx.timeout), own_macs=own,
                             sys_class_net=ctx.sys_class_net, claim=True)
    facts = _facts(probes, address)
    conflict = next((p for p in probes if p.other), None)
    if conflict is not None:
        return Outcome("fail", "address-conflict",
                       f"{address} ({field}) {conflict.conflict_words()}", facts,
                       remediation=conflict_remediation(address, field, conflict.mac or "?", role))
    unchecked = [p for p in probes if p.state == "unchecked"]
    if unchecked:
        checked = [p.words() for p in probes if p.state != "unchecked"]
        return Outcome("warn", "address-unchecked",
                       f"{address} ({field}) could not be checked: "
                       + "; ".join([p.words() for p in unchecked] + checked)
                       + "; the address is not known to be free", facts,
                       remediation=(f"Connect the {role} port (carrier) and run the checks again before relying "
                                    f"on {address}: nothing could ask the wire whether another device holds it."))
    mine = [p for p in probes if p.own]
    tail = ""
    if mine:
        tail = f"; only this box's own port answers (MAC {mine[0].mac})"
    elif _held_by_box(address):
        tail = "; this box holds it itself"
    return Outcome("pass", "ok", f"no other device answers ARP for {address} ({field}) on "
                                 f"{', '.join(p.interface for p in probes)} within {probes[0].window_s:g} s{tail}",
                   facts)


def conflict_remediation(address: str, field: str, mac: str, role: str) -> str:
    """What to do when another device answers for a planned address."""
    return (f"Two devices with one address cut each other off. Choose a free address for {field} "
            f"(ask the plant's controls or IT engineer which {role} addresses are free), or find the device "
            f"with MAC {mac} (the switch's MAC address table names its port) and change its address; "
            f"{_INTERFACES}: the machine network port needs a static address of its own.")


async def gateway_present(ctx: Context, prereqs: Mapping[str, Result], *, gateway: str, interface: str) -> Outcome:
    """Does the static uplink's gateway answer ARP on the uplink port?

    Diagnoses: ok (its MAC named); gateway-absent (fail: nothing answers: wrong gateway,
    wrong VLAN or cable); gateway-unchecked (warn: the probe could not go out)."""
    own = box_macs(ctx.sys_class_net)
    probe = await arp_probe(gateway, interface, window_s=presence_window(ctx.timeout), own_macs=own,
                            sys_class_net=ctx.sys_class_net)
    facts = _facts([probe], gateway)
    if probe.other:
        return Outcome("pass", "ok", f"the gateway {gateway} answers ARP on {interface} from {probe.mac}", facts)
    if probe.state == "unchecked":
        return Outcome("warn", "gateway-unchecked", f"the gateway {gateway} could not be looked for: {probe.words()}",
                       facts, remediation=f"Connect the uplink port {interface} and run the checks again.")
    mine = " (only this box's own port answers for it)" if probe.own else ""
    return Outcome("fail", "gateway-absent",
                   f"nothing answers for {gateway} on {interface}: wrong gateway, wrong VLAN or cable{mine}", facts,
                   remediation=(f"No device on the uplink's network answers for the planned gateway {gateway}. Ask "
                                f"the plant's IT for the uplink network's gateway (uplink.gateway), check that "
                                f"{interface}'s switch port is in the VLAN that gateway serves, and the cable; "
                                f"{_NOT_CONNECTING}: verify internet connectivity from the Edge location."))


async def presence(ctx: Context, address: str) -> ProbeFacts | None:
    """Is a device at `address` on the machine network? The facts of an ARP probe from the
    plan's machine port(s): {"state": "present" | "absent" | "unchecked", "macs", "interfaces",
    "probes"}; None when the plan has no machine network holding that address (ARP could not
    find it: it would be routed)."""
    ports = machine_ports(ctx.plan, ctx.sys_class_net)
    if not ports or not on_machine_network(ctx.plan, address):
        return None
    probes = await probe_all(address, ports, window_s=presence_window(ctx.timeout),
                             own_macs=box_macs(ctx.sys_class_net), sys_class_net=ctx.sys_class_net)
    facts = _facts(probes, address)
    facts["words"] = "; ".join(p.words() for p in probes)
    return facts


def absent_remediation(address: str, where: str) -> str:
    return (f"Nothing on the machine network answers for {address}: the machine is off, its cable or switch "
            f"port is down, it sits on another VLAN than {where}, or its IP address is not {address}. Check the "
            f"machine's network settings on its controller and the switch or VLAN it shares with the Edge "
            f"({_NOT_REPORTING}: verify local network connectivity, confirm machine IP addresses are correct, "
            f"check for VLAN or switch configuration issues).")


def plan_checks(plan: Plan, add: Callable[[Check], str], *, sys_class_net: str = "/sys/class/net") -> None:
    """`address-free` for every static address, `gateway-present` for a static gateway."""
    import functools

    for p in static_addresses(plan, sys_class_net):
        if p.interfaces:
            add(Check("address-free", "address", f"{p.address} on {', '.join(p.interfaces)}", functools.partial(
                address_free, address=p.address, field=p.field, role=p.role, interfaces=p.interfaces),
                timeout_diagnosis="address-unchecked"))
    gw = static_gateway(plan, sys_class_net)
    if gw is not None:
        add(Check("gateway-present", "address", f"{gw[0]} on {gw[1]}", functools.partial(
            gateway_present, gateway=gw[0], interface=gw[1]), timeout_diagnosis="gateway-unchecked"))


# --------------------------------------------------------------------------- before apply


@dataclass(frozen=True)
class Preflight:
    """What the probes before apply found: conflicts refuse the apply; the rest is said."""

    conflicts: list[tuple[Planned, Probe]]
    lines: list[str]

    @property
    def ok(self) -> bool:
        return not self.conflicts


def conflict_line(planned: Planned, probe: Probe, how: str = "cli") -> str:
    """The one line that refuses an apply: the address, the port, the MAC, and how to go on
    (`how`: "cli" for the command line, "wizard" for the wizard's terms)."""
    name = planned.field if how == "cli" else planned.role + " address"
    said = f"{planned.address} ({name}) {probe.conflict_words()}"
    if how == "wizard":
        return f"{said}; choose another address on the Addressing step, or free this one on that device"
    return (f"{said}; choose another address (--set {planned.field}=ADDRESS/PREFIX), or free it on that device, "
            f"or apply anyway with --force-address")


def preflight(plan: Plan, *, timeout: float = 3.0, sys_class_net: str = "/sys/class/net") -> Preflight:
    """Probe every static address of the plan (and its static gateway) on the live box, before
    anything is written: RFC 5227's probes, one a second, for PREFLIGHT_WINDOW_S seconds (fewer
    when `timeout` is shorter; at least one second). Never raises."""
    return asyncio.run(preflight_async(plan, timeout=timeout, sys_class_net=sys_class_net))


async def preflight_async(plan: Plan, *, timeout: float = 3.0, sys_class_net: str = "/sys/class/net") -> Preflight:
    own = box_macs(sys_class_net)
    window = max(1, min(PREFLIGHT_WINDOW_S, int(timeout)))  # whole seconds, for arping too
    planned = [p for p in static_addresses(plan, sys_class_net) if p.interfaces]
    gw = static_gateway(plan, sys_class_net)
    jobs = [probe_all(p.address, p.interfaces, window_s=window, own_macs=own, sys_class_net=sys_class_net,
                      claim=True) for p in planned]
    if gw is not None:
        jobs.append(probe_all(gw[0], (gw[1],), window_s=window, own_macs=own, sys_class_net=sys_class_net))
    found = await asyncio.gather(*jobs)
    conflicts, lines = [], []
    for p, probes in zip(planned, found, strict=False):  # found ends with the gateway's probes
        bad = next((pr for pr in probes if pr.other), None)
        if bad is not None:
            conflicts.append((p, bad))
            continue
        for pr in probes:
            if pr.state == "unchecked":
                lines.append(f"address {p.address} ({p.field}) not checked: {pr.problem}; it is not known to be free")
            else:
                lines.append(f"address {p.address} ({p.field}): no other device answers for it on {pr.interface}")
    if gw is not None:
        (probe,) = found[-1]
        if probe.other:
            lines.append(f"gateway {gw[0]} answers on {gw[1]} from {probe.mac}")
        elif probe.state == "unchecked":
            lines.append(f"gateway {gw[0]} not looked for: {probe.problem}")
        else:
            lines.append(f"WARNING: nothing answers for the gateway {gw[0]} on {gw[1]}: wrong gateway, wrong VLAN "
                         "or cable (the uplink will have no way out)")
    return Preflight(conflicts, lines)

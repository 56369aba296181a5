"""Finding, on this box, the port a plan binds to the hardware (plan `ports`).

A plan may name a port by what it is rather than by what the kernel calls it: its MAC
address, its kernel driver, or its udev ID_PATH (the socket on this box model). Rendered,
udev gives the port the plan's name (netplan's set-name, our .link file) or NetworkManager
matches it itself; before that, and on a NetworkManager box for good, the kernel's name
differs. The checks find the port here, from /sys, exactly as those matchers would:

- mac: the interface's permanent MAC address (ethtool's, as netplan's PermanentMACAddress= and
  NetworkManager's mac-address match it), else its current one (/sys/class/net/X/address:
  virtual links have no permanent address); lower case;
- driver: udev's ID_NET_DRIVER, which is what ethtool's driver query answers (virtual links
  have one too: "veth", "dummy", "bridge"); /sys/class/net/X/device/driver where the query
  cannot be made;
- path: udev's ID_PATH from its database (/run/udev/data/n<ifindex>) where udevd runs, else
  "pci-<address>" for a port that is a PCI function (what udev's path_id gives it). A virtual
  link (veth, dummy, bridge) has no device and so no path: it never matches a path binding.

Exactly one interface must match: none is "missing", two or more "ambiguous" (two ports of
one driver), each a finding that names what the box has. Reads only; sends nothing.
"""

from __future__ import annotations

import array
import fcntl
import os
import re
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

from installer.planning.plan import Plan, Port

SYS_CLASS_NET = Path("/sys/class/net")
UDEV_DATA = Path("/run/udev/data")

_SIOCETHTOOL = 0x8946
_ETHTOOL_GDRVINFO = 0x00000003
_ETHTOOL_GPERMADDR = 0x00000020
_DRVINFO_SIZE = 196  # struct ethtool_drvinfo: cmd, driver[32], version[32], fw[32], bus[32], erom[32], ...
_PCI_ADDRESS = re.compile(r"^[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]$")


@dataclass(frozen=True)
class PortFacts:
    """What the matchers see of one interface."""

    name: str
    mac: str | None
    driver: str | None
    path: str | None


@dataclass(frozen=True)
class Found:
    """Where the plan's port is on this box: `interface` (the kernel's name) or `problem`."""

    name: str  # the plan's name
    interface: str | None
    problem: str | None = None  # "missing" | "ambiguous"
    evidence: str = ""  # what was looked for and what the box has, in words

    @property
    def ok(self) -> bool:
        """True when exactly one interface matched."""
        return self.interface is not None


def binding_words(port: Port) -> str:
    """ "MAC 52:54:00:12:34:56", "driver igb", "path pci-0000:02:00.0"."""
    kind, value = port.binding or ("name", port.name)
    return f"{'MAC' if kind == 'mac' else kind} {value.lower() if kind == 'mac' else value}"


def facts(name: str, sys_class_net: Path = SYS_CLASS_NET, udev_data: Path = UDEV_DATA) -> PortFacts:
    """MAC, driver and udev path of the interface `name` (None where it has none)."""
    node = Path(sys_class_net) / name
    live = Path(sys_class_net) == SYS_CLASS_NET  # ethtool asks this namespace's kernel, by name
    mac = (ethtool_permanent_mac(name) if live else None) or _read(node / "address")
    mac = mac.lower() if mac and mac != "00:00:00:00:00:00" else None
    udev = _udev_properties(node, udev_data)
    driver = udev.get("ID_NET_DRIVER") or _sysfs_driver(node)
    if driver is None and live:
        driver = ethtool_driver(name)
    return PortFacts(name=name, mac=mac, driver=driver, path=udev.get("ID_PATH") or _pci_path(node))


def inventory(sys_class_net: Path = SYS_CLASS_NET, udev_data: Path = UDEV_DATA) -> list[PortFacts]:
    """The facts of every interface but the loopback, in name order."""
    try:
        names = sorted(os.listdir(sys_class_net))
    except OSError:
        return []
    return [facts(n, Path(sys_class_net), udev_data) for n in names if n != "lo"]


def resolve(port: Port, sys_class_net: Path = SYS_CLASS_NET, udev_data: Path = UDEV_DATA,
            box: list[PortFacts] | None = None) -> Found:
    """The interface that matches `port`'s binding on this box, or why none does."""
    binding = port.binding
    if binding is None:
        return Found(port.name, port.name, None, f"{port.name} (a kernel name)")
    kind, value = binding
    want = value.lower() if kind == "mac" else value
    box = inventory(sys_class_net, udev_data) if box is None else box
    hits = [f.name for f in box if getattr(f, kind) == want]
    words = binding_words(port)
    if len(hits) == 1:
        shown = "" if hits[0] == port.name else f", {hits[0]} on this box"
        return Found(port.name, hits[0], None, f"{port.name} (the port with {words}{shown})")
    if not hits:
        have = "; ".join(_fact_words(f, kind) for f in box) or "no interfaces"
        extra = (" (a virtual link has no path)" if kind == "path" else "")
        return Found(port.name, None, "missing",
                     f"no port with {words} on this box for {port.name}{extra}; it has: {have}")
    return Found(port.name, None, "ambiguous",
                 f"{len(hits)} ports have {words} ({', '.join(hits)}): {port.name} cannot be told apart; "
                 "bind it by path (the socket) or by MAC instead")


def resolve_name(plan: Plan, name: str, sys_class_net: Path = SYS_CLASS_NET,
                 udev_data: Path = UDEV_DATA) -> Found:
    """The plan's port `name` on this box: through its binding when the plan has one, else the
    name itself (a kernel name, judged by whoever looks it up)."""
    port = plan.port(name)
    if port is None:
        return Found(name, name, None, name)
    return resolve(port, sys_class_net, udev_data)


def _fact_words(f: PortFacts, kind: str) -> str:
    value = getattr(f, kind)
    return f"{f.name} {value or ('no ' + kind)}"


def ethtool_driver(name: str) -> str | None:
    """The driver ethtool reports for `name` (SIOCETHTOOL, ETHTOOL_GDRVINFO), as udev's
    ID_NET_DRIVER does; None when the link does not answer or does not exist."""
    if not name or len(name.encode()) > 15:
        return None
    info = array.array("B", struct.pack("I", _ETHTOOL_GDRVINFO) + bytes(_DRVINFO_SIZE - 4))
    address, _ = info.buffer_info()
    request = struct.pack("16sP", name.encode(), address) + bytes(16)  # struct ifreq is 40 bytes
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            fcntl.ioctl(s.fileno(), _SIOCETHTOOL, request)
    except OSError:
        return None
    driver = info.tobytes()[4:36].split(b"\0", 1)[0].decode("ascii", "replace")
    return driver or None


def ethtool_permanent_mac(name: str) -> str | None:
    """The permanent (burnt-in) MAC address ethtool -P reports for `name`; None for a link
    without one (virtual links report zeros) or that does not answer."""
    if not name or len(name.encode()) > 15:
        return None
    buf = array.array("B", struct.pack("II", _ETHTOOL_GPERMADDR, 32) + bytes(32))
    address, _ = buf.buffer_info()
    request = struct.pack("16sP", name.encode(), address) + bytes(16)
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            fcntl.ioctl(s.fileno(), _SIOCETHTOOL, request)
    except OSError:
        return None
    raw = buf.tobytes()
    size = struct.unpack_from("I", raw, 4)[0]
    data = raw[8:8 + min(size, 32)]
    if size != 6 or not any(data):
        return None
    return ":".join(f"{b:02x}" for b in data)


def _read(path: Path) -> str | None:
    try:
        return path.read_text().strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def _sysfs_driver(node: Path) -> str | None:
    try:
        return os.path.basename(os.readlink(node / "device" / "driver")) or None
    except OSError:
        return None


def _pci_path(node: Path) -> str | None:
    """udev's path_id for a port that is itself a PCI function: pci-0000:02:00.0."""
    try:
        device = Path(os.path.realpath(node / "device"))
    except OSError:
        return None
    if not (node / "device").exists():
        return None
    if _PCI_ADDRESS.match(device.name) and Path(os.path.realpath(device / "subsystem")).name == "pci":
        return f"pci-{device.name}"
    return None  # USB and platform ports: udev's database (above) knows their path


def _udev_properties(node: Path, udev_data: Path) -> dict[str, str]:
    ifindex = _read(node / "ifindex")
    if not ifindex or not ifindex.isdigit():
        return {}
    try:
        text = (Path(udev_data) / f"n{ifindex}").read_text(errors="replace")
    except OSError:
        return {}
    out = {}
    for line in text.splitlines():
        if line.startswith("E:") and "=" in line:
            key, _, value = line[2:].partition("=")
            out[key] = value
    return out

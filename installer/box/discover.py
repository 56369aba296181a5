"""Discovery: which network interfaces this box has, and which network stack runs them.

Everything here only reads. The kind, MAC, carrier and driver of an interface come from
sysfs (/sys/class/net), its addresses and the default gateways from netifaces (both reflect
the calling process's network namespace), and the stack from the package database, /run and
/proc. Nothing here imports Textual or Rich: the wizard, the CLI and tests share it.
"""

from __future__ import annotations

import ipaddress
import os
import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import netifaces

from installer.box.stack import Stack, _dotted, detect_stack
from installer.box.stack import read_int as _read_int
from installer.box.stack import read_value as _read
from installer.text import ascii_safe

KINDS = ("wired", "wireless", "cellular", "virtual", "loopback")


JSON_VERSION = 1

# netifaces.ifaddresses(name): address family -> one {"addr", "netmask", "broadcast", ...} per address.
IfAddresses = Mapping[int, list[dict[str, str]]]

_ARPHRD_LOOPBACK = 772  # include/uapi/linux/if_arp.h
_IFF_LOOPBACK = 0x8  # include/uapi/linux/if.h

# Drivers whose net device is a modem's data channel. In-tree usbnet drivers built with
# FLAG_WWAN and netdevs of the WWAN framework already say DEVTYPE=wwan in uevent; this list
# catches out-of-tree drivers (GobiNet, Quectel's qmi_wwan_q) and drivers that predate it.
_WWAN_DRIVERS = frozenset(
    {"qmi_wwan", "qmi_wwan_q", "cdc_mbim", "huawei_cdc_ncm", "sierra_net", "hso", "GobiNet",
     "mhi_net", "ipa"}
)
# Drivers of a modem's *other* USB functions (AT/diagnostic serial ports, QMI/MBIM control).
# A cdc_ether or cdc_ncm data port is a modem's only when a sibling function is one of these;
# cdc_acm is left out on purpose: USB gadgets and PLCs pair ECM with a plain ACM console.
_MODEM_SIBLING_DRIVERS = frozenset(
    {"option", "qcserial", "sierra", "cdc_wdm", "qmi_wwan", "cdc_mbim", "huawei_cdc_ncm"}
)
_USB_INTERFACE = re.compile(r"^\d+-[\d.]+:\d+\.\d+$")  # bus-port[.port]:config.interface


@dataclass(frozen=True)
class Interface:
    """One network link as the box sees it now."""

    name: str
    kind: str  # "wired" | "wireless" | "cellular" | "virtual" | "loopback"
    mac: str | None  # lower-case aa:bb:..., None where the link has none
    carrier: bool | None  # None when unknown (an interface that is down)
    operstate: str | None
    addresses: tuple[str, ...]  # "addr/prefix", IPv4 first, then IPv6
    driver: str | None


@dataclass(frozen=True)
class Inventory:
    """Everything discovery found: the links, the default gateways and the stack."""

    interfaces: tuple[Interface, ...]
    default_gateways: tuple[tuple[str, str], ...]  # (gateway address, interface)
    stack: Stack

    def get(self, name: str) -> Interface | None:
        """The interface called `name`, or None when the box has none by that name."""
        for interface in self.interfaces:
            if interface.name == name:
                return interface
        return None

    def to_json(self) -> dict[str, Any]:
        """The stable shape printed by `edge-installer interfaces --json`.

        {"version": 1,
         "interfaces": [{"name", "kind", "mac", "carrier", "operstate", "addresses",
                         "driver"}],
         "default_gateways": [{"gateway", "interface"}],
         "stack": {"netplan_version": "0.106" or null, "networkmanager_installed",
                   "networkmanager_running", "networkd_running", "cloud_init_installed",
                   "in_charge", "description", "resolved", "time_daemon", "wpa_supplicant",
                   "modemmanager", "ifupdown"}}
        mac, carrier, operstate and driver may be null; addresses are "addr/prefix" strings;
        netplan_version is "0" when netplan is present but its version unknown. Fields may
        be added in a later version, never renamed or removed.
        """
        s = self.stack
        return {
            "version": JSON_VERSION,
            "interfaces": [
                {"name": i.name, "kind": i.kind, "mac": i.mac, "carrier": i.carrier,
                 "operstate": i.operstate, "addresses": list(i.addresses), "driver": i.driver}
                for i in self.interfaces
            ],
            "default_gateways": [{"gateway": gw, "interface": dev}
                                 for gw, dev in self.default_gateways],
            "stack": {
                "netplan_version": None if s.netplan_version is None
                else _dotted(s.netplan_version),
                "networkmanager_installed": s.networkmanager_installed,
                "networkmanager_running": s.networkmanager_running,
                "networkd_running": s.networkd_running,
                "cloud_init_installed": s.cloud_init_installed,
                "in_charge": s.in_charge,
                "description": s.describe(),
                # null where not known (no package database, or not the booted box)
                "resolved": s.resolved,
                "time_daemon": s.time_daemon,
                "wpa_supplicant": s.wpa_supplicant,
                "modemmanager": s.modemmanager,
                "ifupdown": s.ifupdown,
            },
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Inventory:
        """Rebuild an Inventory from `to_json()` output (another box's, or a test's)."""
        s = data["stack"]
        version = s.get("netplan_version")
        return cls(
            interfaces=tuple(
                Interface(name=i["name"], kind=i["kind"], mac=i.get("mac"),
                          carrier=i.get("carrier"), operstate=i.get("operstate"),
                          addresses=tuple(i.get("addresses", ())), driver=i.get("driver"))
                for i in data["interfaces"]
            ),
            default_gateways=tuple((g["gateway"], g["interface"])
                                   for g in data.get("default_gateways", ())),
            stack=Stack(
                netplan_version=None if version is None
                else tuple(int(p) for p in str(version).split(".")),
                networkmanager_installed=bool(s.get("networkmanager_installed")),
                networkmanager_running=bool(s.get("networkmanager_running")),
                networkd_running=bool(s.get("networkd_running")),
                cloud_init_installed=bool(s.get("cloud_init_installed")),
                resolved=s.get("resolved"),
                time_daemon=s.get("time_daemon"),
                wpa_supplicant=s.get("wpa_supplicant"),
                modemmanager=s.get("modemmanager"),
                ifupdown=s.get("ifupdown"),
            ),
        )


# ---------------------------------------------------------------- interfaces


def kind_from_name(name: str) -> str:
    """Best guess of a kind from the name alone, for an interface this box does not have.

    wl* is wireless; ww*, cdc-wdm*, ttyUSB* and ttyACM* are cellular (netplan's modems
    section names the control port); lo is loopback; everything else is taken as wired.
    """
    if name == "lo":
        return "loopback"
    if name.startswith("wl"):
        return "wireless"
    if name.startswith(("ww", "cdc-wdm", "ttyUSB", "ttyACM")):
        return "cellular"
    return "wired"


def classify(name: str, sys_class_net: Path) -> str:
    """The kind of link `name` is, from the kernel's view in sys_class_net/<name>.

    loopback: type 772 (ARPHRD_LOOPBACK) or the IFF_LOOPBACK flag. wireless: a cfg80211
    device, which has a phy80211 link, a wireless/ group and DEVTYPE=wlan. cellular:
    DEVTYPE=wwan (usbnet drivers with FLAG_WWAN, the WWAN framework), a modem data driver,
    or a CDC Ethernet/NCM port of a USB device whose other functions are modem ports.
    virtual: no device/ link (the netdev lives under /sys/devices/virtual: veth, bridge,
    dummy, tun, bond, vlan, docker...). Everything else is wired. An interface missing from
    sys_class_net falls back to kind_from_name().
    """
    node = Path(sys_class_net) / name
    if not node.is_dir():
        return kind_from_name(name)
    flags = _read_int(node / "flags") or 0
    if _read_int(node / "type") == _ARPHRD_LOOPBACK or flags & _IFF_LOOPBACK:
        return "loopback"
    devtype = _uevent(node).get("DEVTYPE")
    # lexists: the link itself is the kernel's statement; its target may be outside a fixture.
    if os.path.lexists(node / "phy80211") or (node / "wireless").is_dir() or devtype == "wlan":
        return "wireless"
    if devtype == "wwan" or _driver(node) in _WWAN_DRIVERS or _behind_modem(node):
        return "cellular"
    if not os.path.lexists(node / "device"):
        return "virtual"
    return "wired"


def discover(sys_class_net: Path = Path("/sys/class/net"), root: Path = Path("/")) -> Inventory:
    """Take stock of this box's links, addresses, default gateways and network stack.

    Reflects the calling process's network namespace (netifaces) and whatever network
    namespace sys_class_net was mounted in. Links listed in sys_class_net are the inventory;
    only when it cannot be read (no /sys in a container) does netifaces' list stand in.
    """
    sys_class_net = Path(sys_class_net)
    try:
        names = [e.name for e in os.scandir(sys_class_net) if e.is_dir()]  # skips bonding_masters
    except OSError:
        names = []
    if not names:
        names = list(netifaces.interfaces())
    interfaces = [_interface(name, sys_class_net) for name in names]
    # Kernel order (ifindex) puts lo first and on-board ports before hot-plugged ones.
    interfaces.sort(key=lambda i: (_read_int(sys_class_net / i.name / "ifindex") or 1 << 31,
                                   i.name))
    return Inventory(
        interfaces=tuple(interfaces),
        default_gateways=_default_gateways(),
        stack=detect_stack(root),
    )


def interface(name: str, sys_class_net: Path = Path("/sys/class/net")) -> Interface | None:
    """One link by name, as `discover` sees it; None when the box has no such link."""
    if not (Path(sys_class_net) / name).is_dir() and name not in netifaces.interfaces():
        return None
    return _interface(name, Path(sys_class_net))


@dataclass(frozen=True)
class LinkStatus:
    """What a port says now, re-read as often as a screen likes (a few small sysfs files)."""

    name: str
    present: bool  # False: the link is gone (unplugged USB adapter, renamed)
    carrier: bool | None  # None when unknown (the interface is administratively down)
    speed: int | None  # Mb/s; None when unknown (no link, a virtual link, a WiFi card)
    mac: str | None
    operstate: str | None


def link_status(name: str, sys_class_net: Path = Path("/sys/class/net")) -> LinkStatus:
    """Carrier, speed and MAC of one link, from sysfs only (no netifaces: cheap enough to poll)."""
    node = Path(sys_class_net) / name
    if not node.is_dir():
        return LinkStatus(name, False, None, None, None, None)
    return LinkStatus(name, True, _carrier(node), _speed(node),
                      _mac(_read(node / "address"), _read_int(node / "addr_len")),
                      _read(node / "operstate") or None)


def _speed(node: Path) -> int | None:
    # The kernel answers EINVAL while the link is down, -1 (SPEED_UNKNOWN, as 4294967295 from
    # older drivers) when the driver does not know: both are "unknown".
    value = _read_int(node / "speed")
    return value if value is not None and 0 < value < 4_000_000 else None


def speed_text(speed: int | None) -> str:
    """A link speed as a technician reads it: "1000 Mb/s", "10 Gb/s", "-" when unknown."""
    if speed is None:
        return "-"
    if speed >= 10_000 and speed % 1000 == 0:
        return f"{speed // 1000} Gb/s"
    return f"{speed} Mb/s"


def _interface(name: str, sys_class_net: Path) -> Interface:
    node = sys_class_net / name
    links = _ifaddresses(name)
    mac = _mac(_read(node / "address"), _read_int(node / "addr_len"))
    if mac is None and not node.is_dir():
        mac = next((_mac(a.get("addr")) for a in links.get(netifaces.AF_LINK, ())), None)
    return Interface(
        name=name,
        kind=classify(name, sys_class_net),
        mac=mac,
        carrier=_carrier(node),
        operstate=_read(node / "operstate") or None,
        addresses=_addresses(links),
        driver=_driver(node),
    )


def _ifaddresses(name: str) -> IfAddresses:
    try:
        links: IfAddresses = netifaces.ifaddresses(name)  # netifaces has no type hints
        return links
    except (ValueError, OSError):  # the link vanished, or it lives in another namespace
        return {}


def _mac(text: str | None, addr_len: int | None = None) -> str | None:
    """A 6-octet, non-zero link-layer address, lower-cased; None otherwise.

    Tunnels show their IPv4/IPv6 endpoint here (4 or 16 octets), raw-IP modems nothing,
    and loopback all zeros: none of them is a MAC a technician could match on a label.
    """
    if not text or (addr_len is not None and addr_len != 6):
        return None
    octets = text.strip().lower().split(":")
    if len(octets) != 6 or not all(re.fullmatch(r"[0-9a-f]{2}", o) for o in octets):
        return None
    if all(o == "00" for o in octets):
        return None
    return ":".join(octets)


def _carrier(node: Path) -> bool | None:
    # The kernel answers EINVAL while the interface is administratively down.
    value = _read(node / "carrier")
    return {"1": True, "0": False}.get(value or "")


def _addresses(links: IfAddresses) -> tuple[str, ...]:
    found = []
    for family, host_bits in ((netifaces.AF_INET, 32), (netifaces.AF_INET6, 128)):
        for entry in links.get(family, ()):
            text = _with_prefix(entry.get("addr", ""), entry.get("netmask"), host_bits)
            if text:
                found.append(text)
    return tuple(found)


def _with_prefix(addr: str, netmask: str | None, host_bits: int) -> str | None:
    """ "addr/prefix" from netifaces' address and netmask; None for garbage."""
    addr = addr.split("%", 1)[0]  # the link-local scope is the interface this is listed under
    mask = (netmask or "").strip()
    if "/" in mask:
        # netifaces writes IPv6 masks as "ffff:ffff:ffff:ffff::/64".
        mask = mask.rsplit("/", 1)[1]
    try:
        if mask:
            if ":" in mask:
                mask = str(bin(int(ipaddress.IPv6Address(mask))).count("1"))
            return ipaddress.ip_interface(f"{addr}/{mask}").with_prefixlen
    except ValueError:
        pass
    try:
        # A point-to-point link may come without a netmask: it is then a host address.
        return ipaddress.ip_interface(f"{addr}/{host_bits}").with_prefixlen
    except ValueError:
        return None


def _default_gateways() -> tuple[tuple[str, str], ...]:
    try:
        table = netifaces.gateways()
    except (OSError, ValueError):
        return ()
    found: list[tuple[str, str]] = []
    for family in (netifaces.AF_INET, netifaces.AF_INET6):
        # The per-family lists keep every default route; table["default"] only the first.
        for entry in table.get(family, ()):
            gateway, interface = entry[0], entry[1]
            is_default = entry[2] if len(entry) > 2 else False
            gateway = gateway.split("%", 1)[0]
            if is_default and (gateway, interface) not in found:
                found.append((gateway, interface))
        default = table.get("default", {}).get(family)
        if default and (default[0].split("%", 1)[0], default[1]) not in found:
            found.append((default[0].split("%", 1)[0], default[1]))
    return tuple(found)


def _driver(node: Path) -> str | None:
    target = _readlink(node / "device" / "driver")
    return os.path.basename(target) if target else None


def _behind_modem(node: Path) -> bool:
    """Is this the data port of a USB modem whose other functions are modem ports?"""
    try:
        interface = (node / "device").resolve(strict=True)
        if not _USB_INTERFACE.match(interface.name):
            return False
        siblings = [p for p in interface.parent.iterdir()
                    if _USB_INTERFACE.match(p.name) and p.name != interface.name]
    except (OSError, RuntimeError):  # no device link, or a loop in a broken tree
        return False
    for sibling in siblings:
        driver = _readlink(sibling / "driver")
        if driver and os.path.basename(driver) in _MODEM_SIBLING_DRIVERS:
            return True
        if any((sibling / "usbmisc").glob("cdc-wdm*")):
            return True
    return False


# ---------------------------------------------------------------- the table


def format_table(inv: Inventory, width: int = 80) -> str:
    """The human table of `edge-installer interfaces`: 7-bit ASCII, at most `width` columns
    (80 on a terminal; less inside the wizard's frame).

    One row per interface (name, kind, MAC, carrier, addresses; further addresses on
    continuation rows), then the default gateways and the network stack.
    """
    names = [ascii_safe(i.name) for i in inv.interfaces]
    name_w = max([4] + [len(n) for n in names if len(n) <= 15])
    columns = (name_w, 8, 17, 7)
    address_col = sum(columns) + 2 * len(columns)

    def row(cells: tuple[str, str, str, str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, columns, strict=True)) + "  "

    lines = [(row(("NAME", "KIND", "MAC", "CARRIER")) + "ADDRESSES").rstrip()]
    for name, interface in zip(names, inv.interfaces, strict=True):
        if len(name) > name_w:
            lines.append(name[:width])  # an escaped exotic name gets a line of its own
            name = ""
        head = row((name, interface.kind, interface.mac or "-", _carrier_text(interface)))
        addresses = list(interface.addresses) or ["-"]
        first = addresses[0]
        if address_col + len(first) <= width:
            lines.append((head + first).rstrip())
            addresses = addresses[1:]
        else:
            lines.append(head.rstrip())
        for address in addresses:
            lines.append(" " * min(address_col, max(0, width - len(address))) + address)
    gateways = ", ".join(f"{gw} via {ascii_safe(dev)}" for gw, dev in inv.default_gateways)
    wrap = textwrap.TextWrapper(width=width, subsequent_indent="  ", break_on_hyphens=False)
    lines += wrap.wrap("Default gateway: " + (gateways or "none"))
    lines += wrap.wrap("Network stack: " + inv.stack.describe())
    return "\n".join(lines)  # no final newline: callers print() it


def _carrier_text(interface: Interface) -> str:
    if interface.carrier is True:
        return "yes"
    if interface.carrier is False:
        return "no"
    return "down" if interface.operstate == "down" else "?"


# ---------------------------------------------------------------- small readers


def _readlink(path: Path) -> str | None:
    try:
        return os.readlink(path)
    except OSError:
        return None


def _uevent(node: Path) -> dict[str, str]:
    text = _read(node / "uevent") or ""
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line)

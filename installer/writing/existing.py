"""Configuration already on the box that would change what ours does.

netplan merges every YAML file in /etc/netplan and /run/netplan (cloud-init's
50-cloud-init.yaml, an installer's 00-installer-config.yaml): a file that also configures
our interfaces would silently combine with ours. NetworkManager would hold two profiles for
one device. These are moved aside when we write (kept in the backup set, not deleted);
ifupdown's /etc/network/interfaces also holds the loopback, so it is reported, never moved.
"""

from __future__ import annotations

import configparser
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from installer.planning.model import Plan
from installer.planning.yamlfile import read_regular
from installer.render.base import KEYFILE_DIR, LEGACY_PROXY_FILE, NETPLAN_FILE, RenderedFile
from installer.render.base import plan_interfaces as plan_interfaces  # its home is with the renderers

NETPLAN_DIRS = ("/etc/netplan", "/run/netplan")
# Configuration files on the box are a few KB; anything past this is not read (nor a FIFO or a
# device found where a file should be: read_regular refuses them without blocking).
MAX_CONFIG_BYTES = 1_000_000


def _read_config(f: Path) -> str:
    return read_regular(f, MAX_CONFIG_BYTES).decode("utf-8", errors="replace")


@dataclass(frozen=True)
class Conflict:
    """A file on the box that conflicts with ours: what it is and what writing will do."""

    path: str      # path on the box
    reason: str
    action: str    # "move-aside" (done when writing) | "report" (the technician must edit it)


def bound_interfaces(root: Path, plan: Plan, sys_class_net: Path | None = None) -> set[str]:
    """The kernel names, on the box being written, of the ports the plan binds to hardware
    (`ports`: lan0 bound by MAC is enp3s0 here). The running kernel's interfaces are the
    box's only when writing to "/"; `sys_class_net` gives them otherwise (tests)."""
    if not plan.ports or (sys_class_net is None and Path(root).resolve() != Path("/")):
        return set()
    from installer.box import ports

    box = ports.inventory(sys_class_net or ports.SYS_CLASS_NET)
    found = (ports.resolve(p, box=box) for p in plan.ports if p.binding is not None)
    return {f.interface for f in found if f.interface}


def find_conflicts(root: Path, plan: Plan, ours: list[RenderedFile], sys_class_net: Path | None = None,
                   ) -> list[Conflict]:
    """Files under root that would merge or compete with the files we render. A port the plan
    binds to hardware is looked for under both names: the plan's and the kernel's on this box."""
    root = Path(root)
    mine = {f.path for f in ours}
    names = plan_interfaces(plan) | bound_interfaces(root, plan, sys_class_net)
    found: list[Conflict] = []
    for d in NETPLAN_DIRS:
        directory = root / d.lstrip("/")
        if not directory.is_dir():
            continue
        for f in sorted(directory.glob("*.yaml")):
            path = f"{d}/{f.name}"
            if path in mine:
                continue
            if path == NETPLAN_FILE:
                found.append(Conflict(path, "an earlier edge-installer run wrote it for the netplan renderer; "
                                            "this plan uses NetworkManager keyfiles", "move-aside"))
                continue
            found.append(Conflict(path, "netplan merges it with ours" + _netplan_detail(f), "move-aside"))
    keyfiles = root / KEYFILE_DIR.lstrip("/")
    if keyfiles.is_dir():
        for f in sorted(keyfiles.iterdir()):
            path = f"{KEYFILE_DIR}/{f.name}"
            if path in mine or not f.is_file() or f.name.startswith("."):
                continue
            if f.name.startswith("edge-") and f.name.endswith(".nmconnection"):
                found.append(Conflict(path, "an earlier edge-installer run wrote it; this plan no longer "
                                            "uses it", "move-aside"))
                continue
            bound = _keyfile_binding(f)
            if bound is None:
                continue
            if bound == "" or bound in names:
                what = f"binds {bound}" if bound else "binds any Ethernet port (no interface-name)"
                found.append(Conflict(path, f"NetworkManager profile that {what}: the device would have two "
                                            "profiles", "move-aside"))
    if (root / LEGACY_PROXY_FILE.lstrip("/")).is_file():
        found.append(Conflict(LEGACY_PROXY_FILE, "an earlier edge-installer put the proxy (and its password) in "
                                                 "the service manager's environment, which every user can read",
                              "move-aside"))
    ifupdown = root / "etc/network/interfaces"
    if ifupdown.is_file():
        try:
            text = _read_config(ifupdown)
        except OSError:
            text = ""
        clash = sorted(n for n in names if re.search(rf"^\s*(iface|auto|allow-hotplug)\s+.*\b{re.escape(n)}\b",
                                                     text, re.M))
        if clash:
            found.append(Conflict("/etc/network/interfaces", f"ifupdown also configures {', '.join(clash)}; "
                                  "comment out those stanzas (keep 'lo') before applying", "report"))
    return found


def _netplan_detail(f: Path) -> str:
    try:
        text = _read_config(f)
    except OSError as e:
        return f" (it was not read: {e.strerror})"
    try:
        data = yaml.safe_load(text[:200_000])
    except yaml.YAMLError:
        return " (it cannot be read as YAML)"
    names: set[str] = set()
    network = data.get("network") if isinstance(data, dict) else None
    if isinstance(network, dict):
        for kind in ("ethernets", "wifis", "bridges", "bonds", "vlans", "modems", "tunnels"):
            section = network.get(kind)
            if isinstance(section, dict):
                names.update(str(k) for k in section)
    detail = f" (configures {', '.join(sorted(names))})" if names else ""
    if "cloud-init" in text or f.name == "50-cloud-init.yaml":
        detail += "; written by cloud-init"
    return detail


def _keyfile_binding(f: Path) -> str | None:
    """The interface a keyfile binds ('' = any device of its type), or None if irrelevant."""
    cp = configparser.RawConfigParser(strict=False, interpolation=None)
    try:
        cp.read_string(_read_config(f))
    except (configparser.Error, OSError):
        return None
    if not cp.has_section("connection"):
        return None
    ctype = cp.get("connection", "type", fallback="")
    name = cp.get("connection", "interface-name", fallback="")
    if name:
        return name
    # Debian's "Wired connection 1" style profiles match any Ethernet device.
    return "" if ctype in ("ethernet", "802-3-ethernet") and not cp.has_section("match") else None


def move_aside_paths(conflicts: list[Conflict]) -> list[str]:
    """The conflicts that writing moves aside."""
    return [c.path for c in conflicts if c.action == "move-aside"]

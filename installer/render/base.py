"""What every renderer shares: the file they return (`RenderedFile`), the box they render for
(`Target`), the paths and connection names they agree on, and the choices they all make the
same way (which netplan backend, who sets the resolvers, which interfaces the plan configures).

A module of its own so that the renderers (netplan, keyfile, dropins) and the writer's
conflict finder import it without importing `installer.render`, whose `render` calls them;
`installer.render` re-exports every name here.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING

from installer.planning.model import Plan

if TYPE_CHECKING:
    from installer.box.stack import Stack

NETPLAN_FILE = "/etc/netplan/90-edge-installer.yaml"
KEYFILE_DIR = "/etc/NetworkManager/system-connections"
MACHINE_BRIDGE = "br-machines"  # the bridge of the fully wireless topology's machine ports
# Where versions before 0.2 put the proxy: the manager's DefaultEnvironment, readable by every
# local user and mangled by systemd's %-specifiers. The drop-ins no longer write it; the writer
# moves it aside when found.
LEGACY_PROXY_FILE = "/etc/systemd/system.conf.d/60-edge-installer-proxy.conf"

# Connection names, shared by the netplan (NetworkManager backend) and keyfile renderers
# so that a technician finds the same names whichever renderer wrote them.
CONN_MACHINES = "edge-machines"
CONN_UPLINK = "edge-uplink"

_UUID_NAMESPACE = uuid.UUID("8f6b2a3e-5b0c-4d55-9c53-6c1d2e7f0a41")  # edge-installer's own


@dataclass(frozen=True)
class RenderedFile:
    """One file to write: absolute path on the box, exact content, permission bits."""

    path: str
    content: bytes
    mode: int
    purpose: str
    secret: bool = False  # holds a passphrase or password: never shown or exported in clear

    @property
    def text(self) -> str:
        """The content as text (every file we render is UTF-8)."""
        return self.content.decode("utf-8")


@dataclass(frozen=True)
class Target:
    """What the renderers need to know about the box they render for.

    `netplan_version` decides WPA3 syntax (netplan 0.107 reads `key-management: sae`,
    0.106 needs NetworkManager passthrough); `networkmanager` says NetworkManager is the
    stack in charge (the netplan renderer then uses its backend); `cloud_init` says
    cloud-init is installed (its network configuration must be disabled).
    """

    netplan_version: tuple[int, ...] = (0, 106)
    networkmanager: bool = False
    cloud_init: bool = False
    # Where the box takes its resolvers and time from. The defaults are the Ubuntu-like box
    # (systemd-resolved and timesyncd) and what a box whose stack is not known gets.
    resolved: bool = True               # systemd-resolved in use: DNS through its drop-in
    time_daemon: str = "timesyncd"      # "timesyncd" | "chrony" | "none"
    # What the box has installed; None: not known (nothing is refused, nothing added for it).
    networkmanager_installed: bool | None = None
    netplan_installed: bool | None = None
    wpa_supplicant: bool | None = None
    modemmanager: bool | None = None


# The box nothing more is known about: what a renderer called without a Target renders for.
DEFAULT_TARGET = Target()


def target_for(stack: Stack, netplan_version: tuple[int, ...] | None = None, networkmanager: bool | None = None,
               cloud_init: bool | None = None) -> Target:
    """The Target for a box whose stack `detect_stack` found, with explicit overrides.

    Unknown or absent netplan renders for 0.106 (Debian 12), whose syntax later versions
    accept. Package facts count only where they describe an edge box (Stack.facts_apply).
    """
    known = stack.netplan_version if stack.netplan_version and stack.netplan_version > (0,) else None
    facts = stack.facts_apply
    return Target(
        netplan_version=tuple(netplan_version or known or DEFAULT_TARGET.netplan_version),
        networkmanager=networkmanager if networkmanager is not None else stack.in_charge == "networkmanager",
        cloud_init=cloud_init if cloud_init is not None else stack.cloud_init_installed,
        resolved=stack.resolved is not False if facts else True,
        time_daemon=(stack.time_daemon or "timesyncd") if facts else "timesyncd",
        networkmanager_installed=(stack.networkmanager_installed or stack.networkmanager_running) if facts else None,
        netplan_installed=(stack.netplan_version is not None) if facts else None,
        wpa_supplicant=stack.wpa_supplicant if facts else None,
        modemmanager=stack.modemmanager if facts else None,
    )


def connection_uuid(name: str) -> str:
    """A deterministic UUID for a NetworkManager connection: the same name, the same UUID."""
    return str(uuid.uuid5(_UUID_NAMESPACE, f"edge-installer/{name}"))


def needs_networkmanager(plan: Plan, target: Target) -> bool:
    """True when only NetworkManager can drive this plan (a modem; WPA3 on netplan < 0.107)."""
    if plan.topology == "cellular":
        return True
    if plan.wifi is not None and plan.wifi.security == "wpa3-sae" and target.netplan_version < (0, 107):
        return True
    # WPA3-Enterprise needs management-frame protection required (pmf=3), which netplan
    # carries only to NetworkManager (passthrough); its networkd side writes plain WPA-EAP.
    return plan.wifi is not None and plan.wifi.security == "wpa3-enterprise"


def netplan_backend(plan: Plan, target: Target) -> str:
    """The netplan backend: 'NetworkManager' where the plan or the box needs it, else 'networkd'."""
    if target.networkmanager or needs_networkmanager(plan, target):
        return "NetworkManager"
    return "networkd"


def dns_by_networkmanager(plan: Plan, target: Target) -> bool:
    """NetworkManager sets the resolvers (from the uplink's profile) and writes resolv.conf."""
    return plan.renderer == "networkmanager" or netplan_backend(plan, target) == "NetworkManager"


def plan_interfaces(plan: Plan) -> set[str]:
    """Every interface the plan configures."""
    names = set(plan.machine_network.interfaces) if plan.machine_network else set()
    if plan.uplink and plan.uplink.interface:
        names.add(plan.uplink.interface)
    return names

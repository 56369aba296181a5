"""Renderers: pure functions from a validated Plan to the files the box needs.

Every renderer returns `RenderedFile`s (path on the box, exact bytes, mode); one writer
(`installer.writing.writer`) does all the I/O. The same plan and target always give the same bytes.
Renderers assume a plan that `installer.planning.validate` accepted.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from installer.planning.plan import Plan

NETPLAN_FILE = "/etc/netplan/90-edge-installer.yaml"
KEYFILE_DIR = "/etc/NetworkManager/system-connections"
MACHINE_BRIDGE = "br-machines"  # the bridge of the fully wireless topology's machine ports

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


def target_for(stack, netplan_version: tuple[int, ...] | None = None, networkmanager: bool | None = None,
               cloud_init: bool | None = None) -> Target:
    """The Target for a box whose stack `detect_stack` found, with explicit overrides.

    Unknown or absent netplan renders for 0.106 (Debian 12), whose syntax later versions
    accept. Package facts count only where they describe an edge box (Stack.facts_apply).
    """
    known = stack.netplan_version if stack.netplan_version and stack.netplan_version > (0,) else None
    facts = stack.facts_apply
    return Target(
        netplan_version=tuple(netplan_version or known or Target().netplan_version),
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
    if plan.wifi is not None and plan.wifi.security == "wpa3-enterprise":
        # WPA3-Enterprise needs management-frame protection required (pmf=3), which netplan
        # carries only to NetworkManager (passthrough); its networkd side writes plain WPA-EAP.
        return True
    return False


def netplan_backend(plan: Plan, target: Target) -> str:
    """The netplan backend: 'NetworkManager' where the plan or the box needs it, else 'networkd'."""
    if target.networkmanager or needs_networkmanager(plan, target):
        return "NetworkManager"
    return "networkd"


def dns_by_networkmanager(plan: Plan, target: Target) -> bool:
    """NetworkManager sets the resolvers (from the uplink's profile) and writes resolv.conf."""
    return plan.renderer == "networkmanager" or netplan_backend(plan, target) == "NetworkManager"


def unmet_needs(plan: Plan, target: Target) -> list[tuple[str, str]]:
    """What the plan needs that the box does not have, as (field, message) naming the
    package to install or the choice that would work. Nothing for facts not known."""
    problems: list[tuple[str, str]] = []
    cellular = plan.topology == "cellular"
    wifi = plan.wifi is not None and plan.topology in ("wifi", "wireless-bridge")
    if plan.renderer == "netplan" and target.netplan_installed is False:
        problems.append(("renderer", "this box has no netplan (Debian package netplan.io): install it, or set "
                                     "renderer: networkmanager"))
    if target.networkmanager_installed is False:
        if plan.renderer == "networkmanager":
            problems.append(("renderer", "this box has no NetworkManager (Debian package network-manager): "
                                         "install it, or set renderer: netplan"))
        elif cellular:
            problems.append(("topology", "cellular needs NetworkManager to drive the modem, and this box has "
                                         "none (Debian package network-manager): install it or choose another "
                                         "topology"))
        elif wifi and needs_networkmanager(plan, target) and plan.wifi.security == "wpa3-enterprise":
            problems.append(("wifi.security", "WPA3-Enterprise needs NetworkManager (netplan's systemd-networkd "
                                              "side cannot require management-frame protection), which this box "
                                              "does not have (Debian package network-manager): install it, or "
                                              "choose wpa2-enterprise"))
        elif wifi and needs_networkmanager(plan, target):
            version = ".".join(str(x) for x in target.netplan_version)
            problems.append(("wifi.security", f"WPA3-SAE needs netplan 0.107 or later with systemd-networkd "
                                              f"(this box has netplan {version}) or NetworkManager, which this "
                                              "box does not have (Debian package network-manager): install it, "
                                              "or choose wpa2-wpa3 or wpa2-psk"))
    if cellular and target.modemmanager is False:
        problems.append(("topology", "cellular needs ModemManager to find the modem, and this box has none "
                                     "(Debian package modemmanager): install it or choose another topology"))
    if wifi and target.wpa_supplicant is False:
        problems.append(("wifi", "WiFi needs wpa_supplicant, and this box has none (Debian package "
                                 "wpasupplicant): install it or choose a wired topology"))
    if plan.dns.mode == "dhcp" and not target.resolved and not dns_by_networkmanager(plan, target):
        problems.append(("dns.mode", "with systemd-networkd and no systemd-resolved the resolvers DHCP hands "
                                     "out never reach /etc/resolv.conf: install systemd-resolved, or use "
                                     "google or custom"))
    if target.time_daemon == "none":
        problems.append(("ntp.mode", "this box runs no time service to take the NTP servers (Debian package "
                                     "systemd-timesyncd or chrony): install one; TLS needs a correct clock"))
    return problems


def render(plan: Plan, target: Target = Target()) -> list[RenderedFile]:
    """Every file for the plan, sorted by path: network configuration plus systemd drop-ins."""
    from installer.render import dropins, keyfile, netplan

    if plan.renderer == "networkmanager":
        files = keyfile.render(plan, target)
    else:
        files = netplan.render(plan, target)
    files += dropins.render(plan, target)
    return sorted(files, key=lambda f: f.path)

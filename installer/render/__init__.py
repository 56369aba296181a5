"""Renderers: pure functions from a validated Plan to the files the box needs.

Every renderer returns `RenderedFile`s (path on the box, exact bytes, mode); one writer
(`installer.writing.writer`) does all the I/O. The same plan and target always give the same bytes.
Renderers assume a plan that `installer.planning.validate` accepted. What the renderers share
(`RenderedFile`, `Target`, paths, connection names) is in `installer.render.base` and re-exported
here; the renderers import it from there, never from this package, whose `render` calls them.
"""

from __future__ import annotations

from installer.planning.model import Plan
from installer.render.base import (
    CONN_MACHINES,
    CONN_UPLINK,
    DEFAULT_TARGET,
    KEYFILE_DIR,
    LEGACY_PROXY_FILE,
    MACHINE_BRIDGE,
    NETPLAN_FILE,
    RenderedFile,
    Target,
    connection_uuid,
    dns_by_networkmanager,
    needs_networkmanager,
    netplan_backend,
    plan_interfaces,
    target_for,
)

__all__ = [
    "CONN_MACHINES",
    "CONN_UPLINK",
    "KEYFILE_DIR",
    "LEGACY_PROXY_FILE",
    "MACHINE_BRIDGE",
    "NETPLAN_FILE",
    "RenderedFile",
    "Target",
    "connection_uuid",
    "dns_by_networkmanager",
    "needs_networkmanager",
    "netplan_backend",
    "plan_interfaces",
    "render",
    "target_for",
    "unmet_needs",
]


def unmet_needs(plan: Plan, target: Target) -> list[tuple[str, str]]:
    """What the plan needs that the box does not have, as (field, message) naming the
    package to install or the choice that would work. Nothing for facts not known."""
    problems: list[tuple[str, str]] = []
    cellular = plan.topology == "cellular"
    wifi = plan.wifi is not None and plan.topology in ("wifi", "wireless-bridge")
    security = plan.wifi.security if plan.wifi is not None else None
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
        elif wifi and needs_networkmanager(plan, target) and security == "wpa3-enterprise":
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


def render(plan: Plan, target: Target = DEFAULT_TARGET) -> list[RenderedFile]:
    """Every file for the plan, sorted by path: network configuration plus systemd drop-ins."""
    from installer.render import dropins, keyfile, netplan

    if plan.renderer == "networkmanager":
        files = keyfile.render(plan, target)
    else:
        files = netplan.render(plan, target)
    files += dropins.render(plan, target)
    return sorted(files, key=lambda f: f.path)

"""Renderers: pure functions from a validated Plan to the files the box needs.

Every renderer returns `RenderedFile`s (path on the box, exact bytes, mode); one writer
(`installer.writer`) does all the I/O. The same plan and target always give the same bytes.
Renderers assume a plan that `installer.validate` accepted.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from installer.plan import Plan

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


def connection_uuid(name: str) -> str:
    """A deterministic UUID for a NetworkManager connection: the same name, the same UUID."""
    return str(uuid.uuid5(_UUID_NAMESPACE, f"edge-installer/{name}"))


def needs_networkmanager(plan: Plan, target: Target) -> bool:
    """True when only NetworkManager can drive this plan (a modem; WPA3 on netplan < 0.107)."""
    if plan.topology == "cellular":
        return True
    if plan.wifi is not None and plan.wifi.security == "wpa3-sae" and target.netplan_version < (0, 107):
        return True
    return False


def netplan_backend(plan: Plan, target: Target) -> str:
    """The netplan backend: 'NetworkManager' where the plan or the box needs it, else 'networkd'."""
    if target.networkmanager or needs_networkmanager(plan, target):
        return "NetworkManager"
    return "networkd"


def render(plan: Plan, target: Target = Target()) -> list[RenderedFile]:
    """Every file for the plan, sorted by path: network configuration plus systemd drop-ins."""
    from installer.render import dropins, keyfile, netplan

    if plan.renderer == "networkmanager":
        files = keyfile.render(plan, target)
    else:
        files = netplan.render(plan, target)
    files += dropins.render(plan, target)
    return sorted(files, key=lambda f: f.path)

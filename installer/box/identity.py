"""Which box a report is about: what a plant's IT team needs to find it on their network.

Every check report and firewall request starts with it: the box's host name, its uplink's
address and MAC (the two things a firewall or DHCP log shows), the program's version and the
date. Read from the running box (the plan's host name is shown beside it when they differ).
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path

from installer.planning.plan import Plan
from installer.vendors.sources import version


@dataclass(frozen=True)
class Identity:
    """The box a report is about."""

    hostname: str
    planned_hostname: str | None
    uplink: str | None
    address: str | None  # the uplink's IPv4 address with prefix, when it has one
    mac: str | None
    version: str
    when: float

    @property
    def date(self) -> str:
        """The report's date in UTC, as 2026-12-06 20:30 UTC."""
        return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(self.when))

    def lines(self) -> list[str]:
        """The identity as "label: value" lines (ASCII)."""
        name = self.hostname + (f" (the plan names it {self.planned_hostname})"
                                if self.planned_hostname and self.planned_hostname != self.hostname else "")
        uplink = "none found"
        if self.uplink:
            uplink = f"{self.uplink}, address {self.address or 'none'}, MAC {self.mac or 'unknown'}"
        return [f"Box: {name}", f"Uplink: {uplink}", f"edge-installer {self.version}, {self.date}"]

    def to_json(self) -> dict[str, str | None]:
        """The identity in a report's JSON."""
        return {"hostname": self.hostname, "planned_hostname": self.planned_hostname, "uplink": self.uplink,
                "address": self.address, "mac": self.mac, "version": self.version, "date": self.date}


def identify(plan: Plan | None, *, sys_class_net: Path = Path("/sys/class/net"), when: float | None = None
             ) -> Identity:
    """The identity of the box this runs on, for the plan's uplink (else the default route's)."""
    from installer.box import discover

    uplink = plan.uplink.interface if plan is not None and plan.uplink is not None else None
    if not uplink:
        gateways = discover._default_gateways()
        uplink = gateways[0][1] if gateways else None
    address = mac = None
    if uplink:
        found = discover.interface(uplink, Path(sys_class_net))
        if found is not None:
            mac = found.mac
            address = next((a for a in found.addresses if ":" not in a), None)
    try:
        hostname = socket.gethostname()
    except OSError:
        hostname = "unknown"
    return Identity(hostname=hostname, planned_hostname=plan.hostname if plan is not None else None,
                    uplink=uplink, address=address, mac=mac, version=version(),
                    when=time.time() if when is None else when)

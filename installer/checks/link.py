"""Link checks: each planned interface exists, has carrier and its planned address; the
machine network carries no default route and the box does not forward between networks
(seed 000: "Machines have no internet access").

Before the plan is applied (the wizard checks the plant's network first), a missing
planned address or an unisolated machine network is a warning: writing fixes it. After
applying, or from the command line, it is a failure.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from installer.box.ports import Found, resolve
from installer.checks.base import Context, Outcome, Result
from installer.planning.plan import Port
from installer.render import MACHINE_BRIDGE

if TYPE_CHECKING:  # discover (and netifaces) load when a check runs, not at import
    from installer.box.discover import Inventory


def _inventory(ctx: Context) -> Inventory:
    from installer.box.discover import discover

    return discover(Path(ctx.sys_class_net))


def _has_address(addresses: tuple[str, ...], planned: str | None) -> bool:
    if planned is None:
        return any(":" not in a for a in addresses)
    want = ipaddress.IPv4Interface(planned)
    return any(":" not in a and ipaddress.IPv4Interface(a) == want for a in addresses)


def _find(ctx: Context, port: Port) -> Found:
    return resolve(port, Path(ctx.sys_class_net))


async def link_state(ctx: Context, prereqs: Mapping[str, Result], *, interface: str, role: str, address: str | None,
                     expect_applied: bool = True, port: Port | None = None) -> Outcome:
    """Does `interface` exist, have carrier, and carry `address` (or any IPv4 address)?

    With `port` (the plan binds `interface` to a MAC, driver or path) the port is first found
    by that binding, so the check reports the right port on a box that names it otherwise."""
    shown_as = interface
    if port is not None and port.binding is not None:
        found = await asyncio.to_thread(_find, ctx, port)
        if found.interface is None:  # not found.ok
            return Outcome("fail", f"port-{found.problem}", f"{interface} ({role}): {found.evidence}",
                           remediation="Check that this box has the port the plan binds (see `edge-installer "
                                       "interfaces`), or set the binding for this box, e.g. --set "
                                       f"ports.{interface}.mac=... (a MAC belongs to one box).")
        interface, shown_as = found.interface, found.evidence
    inventory = await asyncio.to_thread(_inventory, ctx)
    iface = inventory.get(interface)
    if iface is None:
        if Path("/dev", interface).exists():  # a modem's control port (cdc-wdm0) is not a netdev
            return Outcome("pass", "ok", f"{interface}: the modem's control port is present; NetworkManager "
                                         "brings its data link up")
        names = ", ".join(i.name for i in inventory.interfaces if i.kind != "loopback") or "none"
        return Outcome("fail", "link-missing", f"{shown_as} ({role}) does not exist on this box; it has: {names}",
                       remediation="Choose the box's real interface for this role (see `edge-installer "
                                   "interfaces`), or check that the adapter is detected.")
    if iface.carrier is False or (iface.carrier is None and iface.operstate == "down" and expect_applied):
        state = "no carrier" if iface.carrier is False else "the link is down"
        return Outcome("fail", "link-down", f"{shown_as} ({role}): {state} (operstate {iface.operstate})",
                       remediation="Check the cable and the switch port (or the WiFi association) for this "
                                   "interface; MachineMetrics' Network Requirements: verify local network "
                                   "connectivity and VLAN/switch configuration.")
    shown = ", ".join(a for a in iface.addresses if ":" not in a) or "no IPv4 address"
    if not _has_address(iface.addresses, address):
        want = address or "an IPv4 address (DHCP)"
        status = "fail" if expect_applied else "warn"
        words = f"{shown_as} ({role}) has {shown}, not {want}"
        if not expect_applied:
            words += "; writing the configuration sets it"
        return Outcome(status, "address-missing", words,
                       remediation=("No DHCP lease: check that the plant's DHCP serves this port." if address is None
                                    else "Apply the plan (write step), or check that nothing else manages "
                                         "this interface (`edge-installer render` lists conflicting files)."))
    return Outcome("pass", "ok", f"{shown_as} ({role}): carrier, {shown}")


async def link_isolation(ctx: Context, prereqs: Mapping[str, Result], *, interfaces: tuple[str, ...],
                         expect_applied: bool = True, ports: tuple[Port, ...] = ()) -> Outcome:
    """The machine network has no default route and IPv4 forwarding is off. A port the plan
    binds to the hardware (`ports`) counts under the kernel's name for it as well."""
    inventory = await asyncio.to_thread(_inventory, ctx)
    machine_side = set(interfaces) | ({MACHINE_BRIDGE} if len(interfaces) > 1 else set())
    for port in ports:
        if port.name in interfaces:
            found = await asyncio.to_thread(_find, ctx, port)
            if found.interface is not None:  # found.ok
                machine_side.add(found.interface)
    problems = []
    for gateway, iface in inventory.default_gateways:
        if iface in machine_side:
            problems.append(("isolation-default-route", f"a default route via {gateway} on {iface}"))
    try:
        forwarding = Path(ctx.proc_sys, "net/ipv4/ip_forward").read_text().strip()
    except OSError:
        forwarding = "unknown"
    if forwarding == "1":
        problems.append(("isolation-forwarding", "IPv4 forwarding is on"))
    if not problems:
        return Outcome("pass", "ok", f"no default route on {', '.join(sorted(machine_side))}; "
                                     f"IPv4 forwarding {'off' if forwarding == '0' else forwarding}")
    code, _ = problems[0]
    words = "; ".join(w for _, w in problems)
    status = "fail" if expect_applied else "warn"
    return Outcome(status, code, f"{words}: machines could reach beyond the machine network",
                   remediation="Seed 000 (isolated networks): machines have no internet access. Remove the "
                               "machine network's gateway and turn forwarding off (the plan's sysctl drop-in "
                               "does: apply it).")

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
from pathlib import Path

from installer.checks.base import Context, Outcome
from installer.render import MACHINE_BRIDGE


def _inventory(ctx: Context):
    from installer.discover import discover

    return discover(Path(ctx.sys_class_net))


def _has_address(addresses: tuple[str, ...], planned: str | None) -> bool:
    if planned is None:
        return any(":" not in a for a in addresses)
    want = ipaddress.IPv4Interface(planned)
    return any(":" not in a and ipaddress.IPv4Interface(a) == want for a in addresses)


async def link_state(ctx: Context, prereqs, *, interface: str, role: str, address: str | None,
                     expect_applied: bool = True) -> Outcome:
    """Does `interface` exist, have carrier, and carry `address` (or any IPv4 address)?"""
    inventory = await asyncio.to_thread(_inventory, ctx)
    iface = inventory.get(interface)
    if iface is None:
        if Path("/dev", interface).exists():  # a modem's control port (cdc-wdm0) is not a netdev
            return Outcome("pass", "ok", f"{interface}: the modem's control port is present; NetworkManager "
                                         "brings its data link up")
        names = ", ".join(i.name for i in inventory.interfaces if i.kind != "loopback") or "none"
        return Outcome("fail", "link-missing", f"{interface} ({role}) does not exist on this box; it has: {names}",
                       remediation="Choose the box's real interface for this role (see `edge-installer "
                                   "interfaces`), or check that the adapter is detected.")
    if iface.carrier is False or (iface.carrier is None and iface.operstate == "down" and expect_applied):
        state = "no carrier" if iface.carrier is False else "the link is down"
        return Outcome("fail", "link-down", f"{interface} ({role}): {state} (operstate {iface.operstate})",
                       remediation="Check the cable and the switch port (or the WiFi association) for this "
                                   "interface; MachineMetrics' Network Requirements: verify local network connectivity and VLAN/switch "
                                   "configuration.")
    shown = ", ".join(a for a in iface.addresses if ":" not in a) or "no IPv4 address"
    if not _has_address(iface.addresses, address):
        want = address or "an IPv4 address (DHCP)"
        status = "fail" if expect_applied else "warn"
        words = f"{interface} ({role}) has {shown}, not {want}"
        if not expect_applied:
            words += "; writing the configuration sets it"
        return Outcome(status, "address-missing", words,
                       remediation=("No DHCP lease: check that the plant's DHCP serves this port." if address is None
                                    else "Apply the plan (write step), or check that nothing else manages "
                                         "this interface (`edge-installer render` lists conflicting files)."))
    return Outcome("pass", "ok", f"{interface} ({role}): carrier, {shown}")


async def link_isolation(ctx: Context, prereqs, *, interfaces: tuple[str, ...], expect_applied: bool = True) -> Outcome:
    """The machine network has no default route and IPv4 forwarding is off."""
    inventory = await asyncio.to_thread(_inventory, ctx)
    machine_side = set(interfaces) | ({MACHINE_BRIDGE} if len(interfaces) > 1 else set())
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

"""Step 3, interfaces: which port faces the machines and which one is the uplink.

The roles come from the topology (seed 000, "Edge Network Interface Configuration"):
LAN Port 1 (eno1) on the machine network, LAN Port 2 (enp2s0) on the company network.
Names are typed, not picked from a list, so a plan can be made for another box and a
modem's control port (cdc-wdm0, not a network interface) can be named.
"""

from __future__ import annotations

import dataclasses
import re

from textual.app import ComposeResult
from textual.widgets import Static

from installer.discover import kind_from_name
from installer.fields import check_ifname
from installer.plan import MachineNetwork, Plan, Uplink
from installer.validate import UPLINK_KIND
from screens.base import FieldInput, StepScreen, Toggle

ROLE_KINDS = ("wired", "wireless", "cellular")
MAX_LISTED = 6  # keeps the step on one 80x24 screen; a box rarely has more physical ports

UPLINK_LABEL = {
    "wired": "Uplink: the port on the company network (wired, LAN Port 2)",
    "wireless": "Uplink: the WiFi interface that joins the plant's WiFi",
    "cellular": "Uplink: the cellular modem (its control port, e.g. cdc-wdm0)",
}
SEED_NAMES = {"machine": "eno1", "wired": "enp2s0", "wireless": "wlan0", "cellular": "cdc-wdm0"}


def split_names(text: str) -> tuple[str, ...]:
    """Interface names typed in one field, separated by spaces or commas."""
    return tuple(n for n in re.split(r"[\s,]+", text) if n)


def interface_line(interface) -> str:
    """One short line for a detected interface: name, kind, carrier, MAC (ASCII only)."""
    name = "".join(c if " " < c < "\x7f" else "?" for c in interface.name)
    carrier = {True: "link up", False: "no link"}.get(interface.carrier, "link ?")
    return f"  {name:<15} {interface.kind:<9} {carrier:<8} {interface.mac or '-'}"


def default_roles(topology: str | None, inventory) -> tuple[tuple[str, ...], str]:
    """(machine network ports, uplink) for a topology, as seed 000 names them when the box has
    those ports, else picked by kind; a port holding the default route is taken as the uplink."""
    interfaces = inventory.interfaces if inventory is not None else ()
    by_kind = {k: [i.name for i in interfaces if i.kind == k] for k in ROLE_KINDS}
    routed = [dev for _, dev in inventory.default_gateways] if inventory is not None else []
    wired = by_kind["wired"]

    def pick(preferred: list[str], allowed: list[str], avoid: tuple[str, ...] = ()) -> str | None:
        return next((n for n in preferred if n in allowed and n not in avoid), None)

    want = UPLINK_KIND.get(topology or "isolated", "wired")
    if want == "wired":
        avoid = ("eno1",) if topology != "single" else ()
        uplink = pick(["enp2s0"] + routed + wired, wired, avoid) or SEED_NAMES["wired"]
    else:
        found = by_kind[want]
        uplink = pick(routed + found, found) or SEED_NAMES[want]
    if topology == "wireless-bridge":
        machine = tuple(wired) or ("eno1", "enp2s0")  # every wired port is bridged (seed 000, Option 4)
    else:
        not_routed = [n for n in wired if n not in routed]
        one = pick(["eno1"] + not_routed + wired, wired, (uplink,)) or SEED_NAMES["machine"]
        machine = (one,)
    return machine, uplink


class InterfacesScreen(StepScreen):
    STEP = "interfaces"
    TITLE = "Interfaces"
    SECTIONS = ("machine_network.interfaces", "uplink.interface")
    AUTO_FOCUS = "#body Checkbox, #body Input"  # the first field, not the scrolling body

    def _kind(self, name: str) -> str:
        inventory = self.context.inventory
        found = inventory.get(name) if inventory is not None else None
        return found.kind if found is not None else kind_from_name(name)

    def _initial(self) -> tuple[tuple[str, ...], str]:
        """What the plan already says, where it fits this topology; the seed's defaults otherwise."""
        topology = self.plan.topology
        machine, uplink = default_roles(topology, self.context.inventory)
        mn, up = self.plan.machine_network, self.plan.uplink
        if mn is not None and mn.interfaces:
            machine = mn.interfaces if topology == "wireless-bridge" else mn.interfaces[:1]
        if up is not None and up.interface and self._kind(up.interface) == UPLINK_KIND.get(topology or "", ""):
            uplink = up.interface  # a wired uplink typed for isolated does not carry over to wifi
        return machine, uplink

    def _detected(self, named: set[str]) -> tuple[list, int]:
        inventory = self.context.inventory
        if inventory is None:
            return [], 0
        # Physical ports, and the virtual links (a VLAN, a bond, a lab's veth) the plan or the
        # defaults give a role (`named`): a technician who chose one sees it is there.
        shown = [i for i in inventory.interfaces
                 if i.kind in ROLE_KINDS or (i.kind == "virtual" and i.name in named)]
        return shown, len(inventory.interfaces) - len(shown)

    def compose_body(self) -> ComposeResult:
        topology = self.plan.topology or "isolated"
        machine, uplink = self._initial()
        shown, others = self._detected(set(machine) | {uplink})
        self._ports: dict[str, str] = {}  # toggle id -> wired port (wireless-bridge)
        if self.context.inventory is None:
            yield Static("No interfaces detected (a plan for another box?): type their names.", classes="hint")
        else:
            lines = [interface_line(i) for i in shown[:MAX_LISTED]]
            if len(shown) > MAX_LISTED:
                lines.append(f"  ... and {len(shown) - MAX_LISTED} more")
            more = f" ({others} virtual/loopback not shown)" if others else ""
            yield Static(f"This box has{more}:", classes="hint", markup=False)
            yield Static("\n".join(lines) or "  no Ethernet, WiFi or modem interfaces", id="detected", markup=False)
        if topology == "wireless-bridge":
            wired = [i.name for i in shown if i.kind == "wired"]
            yield Static("Machine network ports (wired, bridged; Space ticks):", classes="hint")
            for n, name in enumerate(wired):
                # Not the field's path: errors by index belong to the typed list below.
                self._ports[f"port-{n}"] = name
                yield Toggle(name, field=f"machine_network.port.{n}", value=name in machine, id=f"port-{n}")
            extra = [n for n in machine if n not in wired]
            yield FieldInput("Other machine ports, not detected here (space separated)" if wired
                             else "Machine network ports (wired, bridged; space separated)",
                             field="machine_network.interfaces", value=" ".join(extra),
                             placeholder="e.g. eno1 enp2s0", check=_check_names, id="machine")
        elif topology != "single":
            yield FieldInput("Machine network port (wired, LAN Port 1: static, no gateway)",
                             field="machine_network.interfaces", value=" ".join(machine),
                             placeholder="e.g. eno1", check=_check_name, id="machine")
        want = UPLINK_KIND.get(topology, "wired")
        yield FieldInput(UPLINK_LABEL[want], field="uplink.interface", value=uplink,
                         placeholder=f"e.g. {SEED_NAMES[want]}", check=_check_name, id="uplink")
        if want == "cellular":
            yield Static("NetworkManager knows a modem by its control port (nmcli device: cdc-wdm0, "
                         "ttyUSB2), which may not be listed above.", classes="hint")
        yield Static("Other interfaces stay unused. An interface has one role only.", classes="hint")

    def read(self) -> Plan:
        topology = self.plan.topology
        plan = self.plan
        uplink = self.query_one("#uplink", FieldInput).value or None
        plan = dataclasses.replace(plan, uplink=dataclasses.replace(plan.uplink or Uplink(), interface=uplink))
        if topology == "single":
            return dataclasses.replace(plan, machine_network=None)
        names = split_names(self.query_one("#machine", FieldInput).value)
        if topology == "wireless-bridge":
            ticked = tuple(self._ports[t.id] for t in self.query(Toggle) if t.value)
            names = ticked + names
        mn = dataclasses.replace(plan.machine_network or MachineNetwork(), interfaces=names)
        return dataclasses.replace(plan, machine_network=mn)


def _check_name(value: str) -> str | None:
    return check_ifname(value.strip())


def _check_names(value: str) -> str | None:
    # Optional here: the ticked ports may be all there is.
    return next((p for p in map(check_ifname, split_names(value)) if p), None)

"""Step 4, addressing: the machine network's static address, the uplink's DHCP or static.

MachineMetrics, Network Requirements: LAN Port 1 (machine network) "must use a static IP address", machines have no
internet access, so it never gets a gateway; LAN Port 2 "can use DHCP" or static.
"""

from __future__ import annotations

import dataclasses
import ipaddress

from textual import on
from textual.app import ComposeResult
from textual.containers import VerticalGroup
from textual.widgets import Static

from installer.planning.fields import check_host_address, check_interface_address
from installer.planning.plan import MachineNetwork, Plan, Uplink
from installer.vendors.sources import cite
from screens.base import Choice, FieldInput, StepScreen

MACHINE_TEXT = ("Machine network on {ports}: always a static address and no gateway, so the "
                "machines have no internet access ("
                + cite("000_d0122341ad91427d.txt#Option 2: Isolated Networks").replace("{", "{{") + ").")
CELLULAR_TEXT = ("Uplink {port}: DHCP only. A modem gets its address from the cellular network; "
                 "there is no static address to give.")


class AddressingScreen(StepScreen):
    STEP = "addressing"
    TITLE = "Addressing"
    SECTIONS = ("machine_network.address", "uplink.ipv4", "uplink.address", "uplink.gateway")
    AUTO_FOCUS = "#body Input, #body RadioSet"

    def compose_body(self) -> ComposeResult:
        plan = self.plan
        up = plan.uplink or Uplink()
        port = up.interface or "the uplink"
        if plan.topology != "single":
            mn = plan.machine_network or MachineNetwork()
            yield Static(MACHINE_TEXT.format(ports=", ".join(mn.interfaces) or "eno1"), classes="hint",
                         markup=False)
            yield FieldInput("Machine network address/prefix (static)", field="machine_network.address",
                             value=mn.address, placeholder="e.g. 192.168.50.2/24", check=_check_address,
                             id="machine-address")
        if plan.topology == "cellular":
            yield Static(CELLULAR_TEXT.format(port=port), classes="hint", id="cellular-dhcp", markup=False)
            return
        yield Choice(f"Uplink {port} (company network)",
                     [("dhcp", "DHCP: the plant's network gives the address"), ("static", "Static address")],
                     field="uplink.ipv4", value=up.ipv4, id="ipv4")
        with VerticalGroup(id="static"):
            yield FieldInput("Uplink address/prefix", field="uplink.address", value=up.address,
                             placeholder="e.g. 10.20.0.15/24", check=_check_address, id="uplink-address")
            yield FieldInput("Gateway (the router to the internet, inside the uplink's subnet)",
                             field="uplink.gateway", value=up.gateway, placeholder="e.g. 10.20.0.1",
                             check=self._check_gateway, id="gateway")

    def on_mount(self) -> None:
        if self.plan.topology != "cellular":
            self.query_one("#static").display = (self.plan.uplink or Uplink()).ipv4 == "static"

    @on(Choice.Chosen, "#ipv4")
    def _mode_chosen(self, event: Choice.Chosen) -> None:
        self.query_one("#static").display = event.value == "static"

    def _check_gateway(self, value: str) -> str | None:
        try:
            subnet = ipaddress.IPv4Interface(self.query_one("#uplink-address", FieldInput).value).network
        except ValueError:
            subnet = None  # the address field shows its own problem
        return check_host_address(value.strip(), within=subnet, what="gateway")

    def read(self) -> Plan:
        plan = self.plan
        if plan.topology != "single":
            address = self.query_one("#machine-address", FieldInput).value or None
            plan = dataclasses.replace(plan, machine_network=dataclasses.replace(
                plan.machine_network or MachineNetwork(), address=address))
        up = plan.uplink or Uplink()
        if plan.topology == "cellular":
            up = dataclasses.replace(up, ipv4="dhcp", address=None, gateway=None)
        elif self.query_one("#ipv4", Choice).value == "static":
            up = dataclasses.replace(up, ipv4="static",
                                     address=self.query_one("#uplink-address", FieldInput).value or None,
                                     gateway=self.query_one("#gateway", FieldInput).value or None)
        else:
            # Static values typed before switching to DHCP stay in the (hidden) widgets, not in the plan.
            up = dataclasses.replace(up, ipv4="dhcp", address=None, gateway=None)
        return dataclasses.replace(plan, uplink=up)


def _check_address(value: str) -> str | None:
    return check_interface_address(value.strip())

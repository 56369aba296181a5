"""Step 2, topology: the five options of the MachineMetrics network requirements with a diagram and their
"best for" text.
Cellular shows the vendor's warning and cannot be chosen without the acknowledgement."""

from __future__ import annotations

import dataclasses

from textual import on
from textual.app import ComposeResult
from textual.widgets import Static

from installer.planning.plan import Cellular, FieldError, Plan
from installer.vendors.sources import cite
from screens.base import Choice, StepScreen, Toggle

# (value, label, diagram, best for) - the texts of MachineMetrics, Network Requirements: "Network Architecture Options".
OPTIONS = [
    ("isolated", "Isolated networks, two ports (recommended)",
     " [machines]--[switch]--eno1 [EDGE BOX] enp2s0--[company network]--internet\n"
     "              static, no gateway        DHCP or static",
     "Best for maximum security: keeps the machine network completely isolated from the "
     "corporate network and internet."),
    ("single", "Company network, one port",
     " [machines]--+--[company network]--[firewall]--internet\n"
     " [EDGE BOX]--+ enp2s0, DHCP or static",
     "Best for facilities with a single converged network where machines and internet are "
     "on the same network."),
    ("wifi", "Wireless LAN",
     " [machines]--[switch]--eno1 [EDGE BOX] wlan0 ~~ [corporate WiFi]--internet",
     "Best for flexibility when running Ethernet cables to machines is impractical, but "
     "corporate WiFi is available (WPA2/WPA3)."),
    ("wireless-bridge", "Fully wireless (bridge)",
     " [machine]--eno1  \\\n"
     "                   [EDGE BOX, bridge] wlan0 ~~ [corporate WiFi]--internet\n"
     " [machine]--enp2s0 /",
     "Best when WiFi is available but cabling each machine is impractical: machines plug into "
     "the box's Ethernet ports, the box bridges them over WiFi."),
    ("cellular", "Cellular (at your own risk)",
     " [machines]--[switch]--eno1 [EDGE BOX] modem ~~ [cellular network]--internet",
     "Best for remote locations without reliable internet."),
]
CELLULAR_WARNING = (
    "Use at your own risk - least preferred option. Cellular connectivity is not officially "
    "supported by MachineMetrics; connectivity issues related to cellular networks are the "
    "customer's responsibility. Expect higher latency, variable bandwidth, data caps and "
    "overage charges, and data gaps when the signal drops. ("
    + cite("000_d0122341ad91427d.txt#Option 5: Cellular Network") + ")")


class TopologyScreen(StepScreen):
    STEP = "topology"
    TITLE = "Topology"
    SECTIONS = ("topology", "cellular.acknowledge_unsupported")

    def compose_body(self) -> ComposeResult:
        current = self.plan.topology or "isolated"
        yield Choice("How does this box connect?", [(v, label) for v, label, _, _ in OPTIONS],
                     field="topology", value=current, id="topology")
        yield Static("", id="diagram", classes="diagram", markup=False)
        yield Static("", id="best-for", classes="hint", markup=False)
        yield Static(CELLULAR_WARNING, id="cellular-warning", classes="warning", markup=False)
        ack = bool(self.plan.cellular and self.plan.cellular.acknowledge_unsupported)
        yield Toggle("I understand and accept the risk", field="cellular.acknowledge_unsupported", value=ack,
                     id="acknowledge")

    def on_mount(self) -> None:
        self._describe(self.plan.topology or "isolated")

    @on(Choice.Chosen, "#topology")
    def _chosen(self, event: Choice.Chosen) -> None:
        self._describe(event.value)

    def _describe(self, value: str) -> None:
        _, _, diagram, best = next(o for o in OPTIONS if o[0] == value)
        self.query_one("#diagram", Static).update(diagram)
        self.query_one("#best-for", Static).update(best)
        cellular = value == "cellular"
        self.query_one("#cellular-warning").display = cellular
        self.query_one("#acknowledge").display = cellular

    def read(self) -> Plan:
        topology = self.query_one("#topology", Choice).value
        plan = dataclasses.replace(self.plan, topology=topology)
        if topology == "cellular":
            ack = self.query_one("#acknowledge", Toggle).value
            plan = dataclasses.replace(plan, cellular=dataclasses.replace(plan.cellular or Cellular(),
                                                                          acknowledge_unsupported=ack))
        # Sections the new topology does not have would make the plan invalid later on.
        if topology == "single":
            plan = dataclasses.replace(plan, machine_network=None)
        if topology not in ("wifi", "wireless-bridge"):
            plan = dataclasses.replace(plan, wifi=None)
        if topology != "cellular":
            plan = dataclasses.replace(plan, cellular=None)
        return plan

    def extra_errors(self, plan: Plan) -> list[FieldError]:
        if plan.topology == "cellular" and not (plan.cellular and plan.cellular.acknowledge_unsupported):
            return [FieldError("cellular.acknowledge_unsupported",
                               "cellular cannot be chosen without accepting the warning above: tick the box "
                               "(Space) or choose another topology")]
        return []

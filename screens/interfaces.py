"""Step 3, interfaces: which port faces the machines and which one is the uplink.

The roles come from the topology (MachineMetrics, Network Requirements: "Edge Network
Interface Configuration"): LAN Port 1 (eno1) on the machine network, LAN Port 2 (enp2s0) on
the company network. Names are typed, so a modem's control port (cdc-wdm0, not a network
interface) can be named; on a box whose interfaces were detected, a name it does not have is
refused at its field.

The ports list stays live while the step is open: carrier, speed and MAC are re-read from
sysfs every second (installer.box.discover.link_status), and only a row whose text changed is
repainted (a serial line is slow), never taking the focus. On the list (Tab to it, arrows to
choose a port): I blinks the chosen port's LED with `ethtool -p PORT 5` (in a worker; I again
or leaving the step stops it), P watches the carrier of every listed port while the technician
unplugs and plugs a cable, and names the port that went down and came back.
"""

from __future__ import annotations

import dataclasses
import re
import signal
import subprocess
import threading
from pathlib import Path
from time import monotonic

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.widget import Widget
from textual.widgets import Static

from installer.box.discover import kind_from_name, link_status, speed_text
from installer.planning.fields import check_ifname
from installer.planning.plan import FieldError, MachineNetwork, Plan, Uplink
from installer.planning.validate import UPLINK_KIND, WIRED_KINDS
from installer.text import ascii_safe
from screens.base import FieldInput, Prose, StepScreen, Toggle, any_case

REFRESH_S = 1.0  # how often the ports list re-reads carrier, speed and MAC
IDENTIFY_S = 5  # how long `ethtool -p` blinks a port's LED
PLUG_WATCH_S = 30.0  # how long P watches for a cable unplugged and plugged back
PLUG_POLL_S = 0.25  # carrier polling while watching (a short unplug must not be missed)
# A modem's control port is no network interface: discovery cannot list it.
CONTROL_PORTS = ("cdc-wdm", "ttyUSB", "ttyACM")

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


def interface_line(interface, speed: int | None = None, *, mark: str = " ") -> str:
    """One short line for a detected interface: name, kind, carrier, speed, MAC (ASCII only)."""
    name = "".join(c if " " < c < "\x7f" else "?" for c in interface.name)
    if len(name) > 15:
        name = name[:14] + "~"
    carrier = {True: "link up", False: "no link"}.get(interface.carrier, "link ?")
    if interface.carrier is None and interface.operstate == "down":
        carrier = "down"
    return f"{mark} {name:<15} {interface.kind:<9} {carrier:<8} {speed_text(speed):<10} {interface.mac or '-'}"


def ethtool_problem(stderr: str) -> str:
    """ethtool's complaint in one line: its last line, the reason after the last colon
    ("Cannot identify NIC: Operation not supported" -> "Operation not supported")."""
    lines = [line.strip() for line in (stderr or "").splitlines() if line.strip()]
    if not lines:
        return "ethtool failed"
    return ascii_safe(lines[-1].rsplit(": ", 1)[-1], 60)



def _bound_in_use(plan: Plan) -> Plan:
    """The plan without the hardware bindings (`ports`) of names it no longer uses: a role moved
    to another port here is that port, named as this box names it; the old name's binding
    would otherwise be left behind, an error the technician could not fix on any step."""
    used = set(plan.machine_network.interfaces if plan.machine_network else ())
    if plan.uplink is not None and plan.uplink.interface:
        used.add(plan.uplink.interface)
    kept = tuple(p for p in plan.ports if p.name in used)
    return plan if kept == plan.ports else dataclasses.replace(plan, ports=kept)

class PortRow(Widget):
    """One line of the ports list: repainted alone, and only when its text changes."""

    DEFAULT_CSS = """
    PortRow { height: 1; width: 1fr; }
    """

    def __init__(self, text: str = "", **kwargs):
        super().__init__(**kwargs)
        self.text = text
        self.repaints = 0  # how often its text changed (tests: only changed rows repaint)

    def render(self):
        return Content(self.text)

    def set_text(self, text: str) -> bool:
        """Show `text`; True when it changed (then this row alone is repainted)."""
        if text == self.text:
            return False
        self.text = text
        self.repaints += 1
        self.refresh()
        return True


class PortList(Vertical, can_focus=True):
    """The detected ports, one row each (and a note line under each for what I found).
    Focusable: the arrows choose a port, I identifies it, P finds a port by its cable."""

    DEFAULT_CSS = """
    PortList { height: auto; }
    PortList:focus > PortRow.-chosen { text-style: reverse; }
    PortList > .-note { color: $warning; padding-left: 2; }
    PortList > .-note.-empty { display: none; }
    """

    BINDINGS = any_case([
        Binding("up", "move(-1)", "Previous port", show=False),
        Binding("down", "move(1)", "Next port", show=False),
        Binding("i", "screen.identify", "Identify (blink LED)"),
        Binding("p", "screen.plug", "Find by cable"),
    ])

    def __init__(self, ports: list, **kwargs):
        super().__init__(**kwargs)
        self.ports = list(ports)
        self.chosen = 0

    def compose(self) -> ComposeResult:
        for n, port in enumerate(self.ports):
            yield PortRow(interface_line(port, mark=">" if n == self.chosen else " "), id=f"row-{n}",
                          classes="-chosen" if n == self.chosen else "")
            yield Prose("", id=f"note-{n}", classes="-note -empty")

    def action_move(self, step: int) -> None:
        if not self.ports:
            return
        before = self.chosen
        self.chosen = (self.chosen + step) % len(self.ports)
        if before != self.chosen:
            for n in (before, self.chosen):
                row = self.query_one(f"#row-{n}", PortRow)
                row.set_class(n == self.chosen, "-chosen")
                row.set_text(("> " if n == self.chosen else "  ") + row.text[2:])

    @property
    def chosen_name(self) -> str | None:
        return self.ports[self.chosen].name if self.ports else None



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
    SECTIONS = ("machine_network.interfaces", "uplink.interface", "ports")
    AUTO_FOCUS = "#body Checkbox, #body Input"  # the first field, not the scrolling body

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        extras = self.context.extras
        # Live only on the box discovered (run.build_context says where its sysfs is): a fixed
        # inventory (another box's, a test's) is shown as it was given.
        self.live = "sys_class_net" in extras
        self.sys_class_net = Path(extras.get("sys_class_net", "/sys/class/net"))
        self.refresh_s = float(extras.get("port_refresh_s", REFRESH_S))
        self.identify_s = int(extras.get("identify_s", IDENTIFY_S))
        self.plug_watch_s = float(extras.get("plug_watch_s", PLUG_WATCH_S))
        self._identifying: subprocess.Popen | None = None
        self._identify_lock = threading.Lock()
        self._plug: dict | None = None  # while P watches: baseline, what changed, the deadline
        self._plug_timer = None

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
        current = up.interface if up is not None else None
        kind = self._kind(current) if current else None
        if current and kind is not None and UPLINK_KIND.get(topology or "", "") == (
                "wired" if kind in WIRED_KINDS else kind):
            uplink = current  # a wired uplink typed for isolated does not carry over to wifi
            # (a VLAN or a lab's veth on a wired role does: installer.planning.validate.WIRED_KINDS)
        return machine, uplink

    def _detected(self, named: set[str]) -> tuple[list, list]:
        inventory = self.context.inventory
        if inventory is None:
            return [], []
        # Physical ports, and the virtual links (a VLAN, a bond, a lab's veth) the plan or the
        # defaults give a role (`named`): a technician who chose one sees it is there.
        shown = [i for i in inventory.interfaces
                 if i.kind in ROLE_KINDS or (i.kind == "virtual" and i.name in named)]
        return shown, [i for i in inventory.interfaces if i not in shown]

    def compose_body(self) -> ComposeResult:
        topology = self.plan.topology or "isolated"
        machine, uplink = self._initial()
        shown, hidden = self._detected(set(machine) | {uplink})
        self._ports: dict[str, str] = {}  # toggle id -> wired port (wireless-bridge)
        if self.context.inventory is None:
            yield Static("No interfaces detected (a plan for another box?): type their names.", classes="hint")
        else:
            listed = shown[:MAX_LISTED]
            more = ""
            if hidden:  # named, so the count and the list can never disagree
                names = ", ".join(ascii_safe(i.name) for i in hidden[:4]) + (", ..." if len(hidden) > 4 else "")
                more = f" (not listed: {names})"
            if len(shown) > MAX_LISTED:
                more += f" (and {len(shown) - MAX_LISTED} more ports)"
            yield Static(f"This box has{more}:", classes="hint", markup=False)
            if listed:
                yield PortList(listed, id="detected")
                yield Static("", id="port-status", markup=False)
                yield Static("Tab to the list: arrows choose a port, I blinks its LED, P finds a "
                             "port by unplugging and plugging its cable.", classes="hint", markup=False)
            else:
                yield Static("  no Ethernet, WiFi or modem interfaces", id="no-ports", markup=False)
        if topology == "wireless-bridge":
            wired = [i.name for i in shown if i.kind == "wired"]
            yield Static("Machine network ports (wired, bridged; Space ticks):", classes="hint")
            for n, name in enumerate(wired):
                # Not the field's path: errors by index belong to the typed list below.
                self._ports[f"port-{n}"] = name
                yield Toggle(name, field=f"machine_network.port.{n}", value=name in machine, id=f"port-{n}")
            extra = [n for n in machine if n not in wired]
            yield FieldInput("Other machine ports: a VLAN, a bond (space separated)" if wired
                             else "Machine network ports (wired, bridged; space separated)",
                             field="machine_network.interfaces", value=" ".join(extra),
                             placeholder="e.g. eno1 enp2s0", check=self._check_names, id="machine")
        elif topology != "single":
            yield FieldInput("Machine network port (wired, LAN Port 1: static, no gateway)",
                             field="machine_network.interfaces", value=" ".join(machine),
                             placeholder="e.g. eno1", check=self._check_name, id="machine")
        want = UPLINK_KIND.get(topology, "wired")
        yield FieldInput(UPLINK_LABEL[want], field="uplink.interface", value=uplink,
                         placeholder=f"e.g. {SEED_NAMES[want]}", check=self._check_name, id="uplink")
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
            return _bound_in_use(dataclasses.replace(plan, machine_network=None))
        names = split_names(self.query_one("#machine", FieldInput).value)
        if topology == "wireless-bridge":
            ticked = tuple(self._ports[t.id or ""] for t in self.query(Toggle) if t.value)  # ids: port-N
            names = ticked + names
        mn = dataclasses.replace(plan.machine_network or MachineNetwork(), interfaces=names)
        return _bound_in_use(dataclasses.replace(plan, machine_network=mn))

    # --- names this box does not have ----------------------------------------------------
    def missing(self, name: str) -> str | None:
        """Why `name` cannot be used on this box (None: it can, or nothing was detected)."""
        inventory = self.context.inventory
        if inventory is None or not name or inventory.get(name) is not None:
            return None
        if name.startswith(CONTROL_PORTS):
            return None  # a modem's control port: not a network interface, never listed
        if any(p.name == name for p in getattr(self.plan, "ports", ())):
            return None  # bound by the plan to a MAC, driver or socket: renamed when applied
        have = [i.name for i in inventory.interfaces if i.kind in ROLE_KINDS]
        have += [i.name for i in inventory.interfaces if i.kind == "virtual"]  # VLANs, bonds, veths
        has = (", ".join(ascii_safe(n) for n in have[:8]) + (", ..." if len(have) > 8 else "") if have
               else "no interface but loopback")
        return f"{ascii_safe(name)}: this box has no interface by that name; it has {has}"

    def _check_name(self, value: str) -> str | None:
        return check_ifname(value.strip()) or self.missing(value.strip())

    def _check_names(self, value: str) -> str | None:
        # Optional here: the ticked ports may be all there is.
        names = split_names(value)
        return (next((p for p in map(check_ifname, names) if p), None)
                or next((p for p in map(self.missing, names) if p), None))

    def extra_errors(self, plan: Plan) -> list[FieldError]:
        errors = []
        for i, name in enumerate(plan.machine_network.interfaces if plan.machine_network else ()):
            problem = None if check_ifname(name) else self.missing(name)
            if problem:
                errors.append(FieldError(f"machine_network.interfaces[{i}]", problem))
        uplink = plan.uplink.interface if plan.uplink else None
        problem = None if not uplink or check_ifname(uplink) else self.missing(uplink)
        if problem:
            errors.append(FieldError("uplink.interface", problem))
        return errors

    # --- live ports ------------------------------------------------------------------------
    def on_mount(self) -> None:
        if self.live and self.query("#detected"):
            self.refresh_ports()
            self.set_interval(self.refresh_s, self.refresh_ports, name="ports-refresh")

    def _port_list(self) -> PortList | None:
        found = self.query("#detected")
        return found.first(PortList) if found else None

    def refresh_ports(self) -> int:
        """Re-read carrier, speed and MAC of every listed port; repaint the rows that changed
        (their number is returned). Never moves the focus."""
        ports = self._port_list()
        if ports is None:
            return 0
        changed = 0
        for n, port in enumerate(ports.ports):
            status = link_status(port.name, self.sys_class_net)
            if status.present:
                port = dataclasses.replace(port, carrier=status.carrier, mac=status.mac or port.mac,
                                           operstate=status.operstate)
                speed = status.speed
            else:
                port = dataclasses.replace(port, carrier=None, operstate="gone")
                speed = None
            ports.ports[n] = port
            line = interface_line(port, speed, mark=">" if n == ports.chosen else " ")
            if not status.present:
                line = line.replace("link ?  ", "GONE    ", 1)
            changed += ports.query_one(f"#row-{n}", PortRow).set_text(line)
        return changed

    def _note(self, name: str, text: str) -> None:
        ports = self._port_list()
        if ports is None:
            return
        for n, port in enumerate(ports.ports):
            if port.name == name:
                note = ports.query_one(f"#note-{n}", Prose)
                if note.text != text:
                    note.update(text)
                    note.set_class(not text, "-empty")

    # --- identify: ethtool -p ------------------------------------------------------------
    def action_identify(self) -> None:
        ports = self._port_list()
        name = ports.chosen_name if ports is not None else None
        if name is None:
            return
        if self._identifying is not None:
            self.stop_identify()
            return
        self._note(name, f"Blinking {name}'s LED for {self.identify_s} s (I stops)...")
        self._identify(name)

    @work(thread=True, exclusive=True, group="identify")
    def _identify(self, name: str) -> None:
        try:
            proc = subprocess.Popen(["ethtool", "-p", name, str(self.identify_s)], stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        except OSError as e:
            self.app.call_from_thread(self._note, name, f"Cannot blink the LED: ethtool: {e.strerror or e}")
            return
        with self._identify_lock:
            self._identifying = proc
        try:
            _, err = proc.communicate(timeout=self.identify_s + 5)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
        finally:
            with self._identify_lock:
                self._identifying = None
        if proc.returncode == 0:
            text = f"{name}'s LED blinked for {self.identify_s} s: the socket that blinked is {name}."
        elif proc.returncode < 0 or proc.returncode == 130:
            text = "Stopped."
        else:
            text = f"{name}: its driver cannot blink the LED ({ethtool_problem(err)})."  # P still works
        try:
            self.app.call_from_thread(self._note, name, text)
        except RuntimeError:  # the app has gone
            pass

    def stop_identify(self) -> None:
        """Stop a blinking LED: SIGINT as a person's Ctrl+C would (any signal that ends ethtool
        interrupts its request, and the driver puts the LED back); SIGTERM half a second later
        if it is still there (a wizard started with SIGINT ignored, as background jobs are,
        hands that to its children)."""
        with self._identify_lock:
            proc = self._identifying
        if proc is not None and proc.poll() is None:
            try:
                proc.send_signal(signal.SIGINT)
            except OSError:
                return

            def insist() -> None:
                if proc.poll() is None:
                    try:
                        proc.terminate()
                    except OSError:
                        pass

            timer = threading.Timer(0.5, insist)
            timer.daemon = True
            timer.start()

    # --- find a port by its cable ----------------------------------------------------------
    def action_plug(self) -> None:
        ports = self._port_list()
        if ports is None:
            return
        if self._plug is not None:
            self._plug_finish(stopped=True)
            return
        watched = [p.name for p in ports.ports if p.kind in ("wired", "virtual")]
        if not watched:
            self._plug_say("No wired port to watch.")
            return
        base = {name: link_status(name, self.sys_class_net).carrier is True for name in watched}
        self._plug = {"base": base, "now": dict(base), "down": set(), "back": [],
                      "deadline": monotonic() + self.plug_watch_s}
        self._plug_say(f"Watching {len(watched)} port{'s' if len(watched) != 1 else ''} for "
                       f"{self.plug_watch_s:.0f} s: unplug the cable, plug it back (P stops).")
        self._plug_timer = self.set_interval(min(PLUG_POLL_S, self.refresh_s), self._plug_poll, name="plug-watch")

    def _plug_say(self, text: str) -> None:
        self.query_one("#port-status", Static).update(text)

    def _plug_poll(self) -> None:
        watch = self._plug
        if watch is None:
            return
        for name, before in watch["now"].items():
            up = link_status(name, self.sys_class_net).carrier is True
            if up == before:
                continue
            watch["now"][name] = up
            if not up:
                watch["down"].add(name)
            elif name in watch["down"] and watch["base"][name] and name not in watch["back"]:
                watch["back"].append(name)  # out and back in: the port looked for
        if watch["back"] or monotonic() >= watch["deadline"]:
            self._plug_finish()

    def _plug_finish(self, stopped: bool = False) -> None:
        watch, self._plug = self._plug, None
        if self._plug_timer is not None:
            self._plug_timer.stop()
            self._plug_timer = None
        if watch is None:
            return
        back = watch["back"]
        changed = [n for n in watch["base"] if watch["now"][n] != watch["base"][n]]
        if back:
            text = f"Found: {', '.join(back)} (its carrier went down and came back)."
        elif changed:
            text = "Changed: " + ", ".join(
                f"{n} (link {'up' if watch['now'][n] else 'down'} now)" for n in changed) + "."
        elif stopped:
            text = "Stopped: no port's carrier changed."
        else:
            text = (f"No port's carrier changed in {self.plug_watch_s:.0f} s: the cable is on a port "
                    "not listed, or the far end has no power.")
        self._plug_say(text)
        self.refresh_ports()

    def on_unmount(self) -> None:
        self.stop_identify()
        self._plug = None



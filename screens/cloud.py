"""Step: cloud and machines. Which vendor profiles to verify (with their parameters, such as
the Siemens IEM's address), and the machines to reach on the machine network (optional):
a list the technician adds to and removes from by keyboard, each with its controller's port
from MachineMetrics, Network Requirements: "Machine Protocol Ports".
"""

from __future__ import annotations

import dataclasses

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Button, Checkbox, Label, OptionList, Static

from installer.planning.plan import FieldError, Machine, Plan
from installer.planning.validate import validate
from screens.base import Choice, FieldInput, StepScreen, Toggle, WizardButton

# The order the SPEC names them in; profiles the catalogue adds later follow.
PROFILE_ORDER = ("machinemetrics", "machinemetrics-govcloud", "siemens-industrial-edge", "izuma-device-management")
MACHINE_ROWS = 4  # rows the machine list shows before it scrolls (CloudScreen #machines)


def catalog_of(context):
    """The context's catalogue, or the packaged one."""
    catalog = context.catalogue()
    if catalog is not None:
        return catalog
    from installer.vendors.profiles import load_catalog

    return load_catalog()


def _param_id(pid: str, name: str) -> str:
    return f"param-{pid}-{name}".replace("_", "-")


class CloudScreen(StepScreen):
    STEP = "cloud"
    TITLE = "Cloud and machines"
    SECTIONS = ("profiles", "profile_params", "machines")

    DEFAULT_CSS = """
    CloudScreen #controller RadioSet { height: auto; max-height: 5; }
    CloudScreen #machines { height: auto; max-height: 6; }  /* MACHINE_ROWS + the border */
    CloudScreen #machines.-empty { display: none; }
    CloudScreen #machine-form { height: auto; }
    CloudScreen .param { height: auto; }
    CloudScreen .param.-hidden { display: none; }
    CloudScreen #machines-error { color: $error; height: auto; }
    CloudScreen #machines-error.-empty { display: none; }
    """

    BINDINGS = [Binding("delete", "remove_machine", "Remove machine", show=False),
                Binding("backspace", "remove_machine", "Remove machine", show=False)]

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.catalog = catalog_of(self.context)
        self.machines: list[Machine] = list(self.plan.machines)

    # --- widgets -------------------------------------------------------------------------
    def _profile_ids(self) -> list[str]:
        known = list(self.catalog.profiles)
        return [p for p in PROFILE_ORDER if p in known] + [p for p in known if p not in PROFILE_ORDER]

    def compose_body(self) -> ComposeResult:
        yield Label("Which cloud must this box reach? (Space ticks)")
        for pid in self._profile_ids():
            profile = self.catalog.profiles[pid]
            ticked = pid in self.plan.profiles
            yield Toggle(profile.title, field=f"profiles.{pid}", value=ticked, id=f"profile-{pid}")
            params = self.plan.profile_params.get(pid, {})
            for name, spec in profile.params.items():
                field = FieldInput(f"{_param_label(pid, name)}", field=f"profile_params.{pid}.{name}",
                                   value=params.get(name, ""), placeholder=_param_placeholder(name),
                                   check=spec.validate, id=_param_id(pid, name))
                field.add_class("param")
                field.set_class(not ticked, "-hidden")
                yield field
        yield Label("Machines to reach on the machine network (optional)")
        yield Static("", classes="hint", markup=False, id="machines-hint")
        yield OptionList(markup=False, compact=True, id="machines")
        yield Static("", id="machines-error", classes="-empty", markup=False)
        with Vertical(id="machine-form"):
            yield FieldInput("Machine name", field="machine.name", placeholder="e.g. Lathe 3", id="m-name")
            yield FieldInput("Address on the machine network", field="machine.address",
                             placeholder=self._address_hint(), id="m-address")
            controllers = [(c.id, f"{c.label} ({c.port}/{c.protocol})") for c in self.catalog.controllers.values()]
            yield Choice("Controller (arrows move, Space chooses)", controllers, field="machine.controller",
                         value=None, id="controller")
            yield WizardButton("Add machine", id="add-machine")

    def on_mount(self) -> None:
        self._refresh_machines()
        self.query(Toggle).first().focus()

    def _address_hint(self) -> str:
        mn = self.plan.machine_network
        if mn is not None and mn.address and "/" in mn.address:
            base = mn.address.split("/")[0].rsplit(".", 1)[0]
            return f"e.g. {base}.21"
        return "e.g. 192.168.50.21"

    def _controller_words(self, controller_id: str | None) -> str:
        c = self.catalog.controllers.get(controller_id or "")
        return f"{c.label}, port {c.port}/{c.protocol}" if c is not None else f"{controller_id or 'no controller'}"

    def _machines_hint(self) -> str:
        n = len(self.machines)
        if not n:
            return "None yet: fill in the form below and choose Add machine."
        # The list shows 4 rows (6 in all with its border); with more, say so: plain mode
        # draws no scroll bar.
        more = f", {MACHINE_ROWS} shown: Up/Down scrolls" if n > MACHINE_ROWS else ""
        return f"{n} machine{'s' if n != 1 else ''}{more}. Enter on a machine edits it, Del removes it."

    def _refresh_machines(self, highlight: int | None = None) -> None:
        olist = self.query_one("#machines", OptionList)
        olist.clear_options()
        for m in self.machines:
            olist.add_option(f"{m.name or '(unnamed)'}  {m.address or '(no address)'}  "
                             f"{self._controller_words(m.controller)}")
        olist.set_class(not self.machines, "-empty")
        self.query_one("#machines-hint", Static).update(self._machines_hint())
        if self.machines:
            olist.highlighted = min(highlight or 0, len(self.machines) - 1)
        # The form edits the machine that would come next in the list: its errors land there.
        n = len(self.machines)
        for key in ("name", "address"):
            self.query_one(f"#m-{key}", FieldInput).field_path = f"machines[{n}].{key}"
        self.query_one("#controller", Choice).field_path = f"machines[{n}].controller"

    # --- profiles --------------------------------------------------------------------------
    @on(Checkbox.Changed)
    def _profile_toggled(self, event: Checkbox.Changed) -> None:
        toggle = event.checkbox
        toggle_id = toggle.id or ""
        if not toggle_id.startswith("profile-"):
            return
        pid = toggle_id.removeprefix("profile-")
        profile = self.catalog.profiles.get(pid)
        if profile is None:
            return
        for name in profile.params:
            self.query_one(f"#{_param_id(pid, name)}", FieldInput).set_class(not event.value, "-hidden")

    # --- machines --------------------------------------------------------------------------
    def _form_machine(self) -> Machine | None:
        name = self.query_one("#m-name", FieldInput).value
        address = self.query_one("#m-address", FieldInput).value
        if not name and not address:
            return None
        return Machine(name=name or None, address=address or None,
                       controller=self.query_one("#controller", Choice).value)

    def _form_errors(self, plan: Plan) -> list[FieldError]:
        prefix = f"machines[{len(self.machines)}]"
        return [e for e in validate(plan, self.context.rules())
                if e.field == prefix or e.field.startswith(prefix + ".")]

    def _set_form_errors(self, errors: list[FieldError]) -> None:
        n = len(self.machines)
        targets: dict[str, FieldInput | Choice] = {f"machines[{n}].name": self.query_one("#m-name", FieldInput),
                   f"machines[{n}].address": self.query_one("#m-address", FieldInput),
                   f"machines[{n}].controller": self.query_one("#controller", Choice),
                   f"machines[{n}]": self.query_one("#m-address", FieldInput)}
        for w in set(targets.values()):
            w.set_error(None)
        for e in errors:
            targets[e.field].set_error(e.message)

    @on(Button.Pressed, "#add-machine")
    def action_add_machine(self) -> None:
        candidate = self._form_machine()
        if candidate is None:
            self.query_one("#m-name", FieldInput).set_error("give the machine's name and address first")
            self.query_one("#m-name", FieldInput).input.focus()
            return
        errors = self._form_errors(self.read())
        self._set_form_errors(errors)
        if errors:
            first = self.query_one("#m-name" if errors[0].field.endswith(".name") else "#m-address", FieldInput)
            first.input.focus()
            return
        self.machines.append(candidate)
        self.query_one("#m-name", FieldInput).input.value = ""
        self.query_one("#m-address", FieldInput).input.value = ""
        self._refresh_machines(highlight=len(self.machines) - 1)
        self._set_form_errors([])
        self.query_one("#m-name", FieldInput).input.focus()

    def action_remove_machine(self) -> None:
        olist = self.query_one("#machines", OptionList)
        if not olist.has_focus or olist.highlighted is None or not self.machines:
            return
        index = olist.highlighted
        self.machines.pop(index)
        self._refresh_machines(highlight=index)
        if not self.machines:
            self.query_one("#m-name", FieldInput).input.focus()

    @on(OptionList.OptionSelected, "#machines")
    def _edit_machine(self, event: OptionList.OptionSelected) -> None:
        # Enter takes the machine back into the form; Add puts it back (at the end).
        if self._form_machine() is not None:
            self.query_one("#m-name", FieldInput).set_error(
                "the form holds a machine not yet added: add it (Enter on Add machine) or clear it first")
            return
        m = self.machines.pop(event.option_index)
        self.query_one("#m-name", FieldInput).input.value = m.name or ""
        self.query_one("#m-address", FieldInput).input.value = m.address or ""
        choice = self.query_one("#controller", Choice)
        ids = list(self.catalog.controllers)
        if m.controller in ids:
            radio = choice.radio_set
            radio._selected = ids.index(m.controller)
            radio.action_toggle_button()
        self._refresh_machines(highlight=event.option_index)
        self.query_one("#m-name", FieldInput).input.focus()

    # --- the step --------------------------------------------------------------------------
    def read(self) -> Plan:
        ticked = [pid for pid in self._profile_ids() if self.query_one(f"#profile-{pid}", Toggle).value]
        # Keep the plan's order for profiles it had (the first one's remediation is the default).
        profiles = [p for p in self.plan.profiles if p in ticked] + [p for p in ticked if p not in self.plan.profiles]
        params: dict[str, dict[str, str]] = {}
        for pid in profiles:
            values = {}
            for name in self.catalog.profiles[pid].params:
                value = self.query_one(f"#{_param_id(pid, name)}", FieldInput).value
                if value:
                    values[name] = value
            if values:
                params[pid] = values
        machines = list(self.machines)
        pending = self._form_machine()
        if pending is not None:  # typed but not added: it counts, and its errors show at the form
            machines.append(pending)
        return dataclasses.replace(self.plan, profiles=tuple(profiles), profile_params=params,
                                   machines=tuple(machines))

    def show_errors(self, errors: list[FieldError], *, move_focus: bool = True) -> None:
        super().show_errors(errors, move_focus=move_focus)
        n = len(self.machines)
        listed = [e for e in errors if e.field.startswith("machines[") and not e.field.startswith(f"machines[{n}]")]
        line = self.query_one("#machines-error", Static)
        if listed:
            line.update("Fix or remove (Enter edits, Del removes): " + "; ".join(str(e) for e in listed))
        else:
            line.update("")
        line.set_class(not listed, "-empty")


def _param_label(pid: str, name: str) -> str:
    if name == "iem_host":
        return "IEM address (host name or IP, as in the IEM's certificate)"
    return f"{pid}: {name.replace('_', ' ')}"


def _param_placeholder(name: str) -> str:
    return "e.g. iem.plant.local" if name.endswith("host") else ""

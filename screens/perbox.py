"""Step after welcome when the wizard starts from a bundle: only what must differ on this
box (host name, static addresses) and the secrets the bundle left out. Everything else
comes from the first box's answers; Next goes straight to the review."""

from __future__ import annotations

import dataclasses

from textual.app import ComposeResult
from textual.widgets import Static

from installer import fields
from installer.plan import SECRET_FIELDS, Plan
from screens.base import FieldInput, StepScreen

LABELS = {
    "hostname": ("Host name of this box", "e.g. edge-02", fields.check_hostname),
    "machine_network.address": ("Machine network address/prefix of this box", "e.g. 192.168.50.3/24",
                                fields.check_interface_address),
    "uplink.address": ("Uplink address/prefix of this box", "e.g. 10.20.0.16/24", fields.check_interface_address),
    "uplink.gateway": ("Uplink gateway", "e.g. 10.20.0.1", lambda v: fields.check_host_address(v, what="gateway")),
    "wifi.passphrase": ("WiFi passphrase", "", None),
    "cellular.password": ("APN password", "", None),
    "proxy.password": ("Proxy password", "", None),
}
# Why a secret is asked for: left out at export, or encrypted and no passphrase was given.
LEFT_OUT = " (the bundle left it out; never shown)"
LOCKED = " (encrypted in the bundle; or start with --passphrase-file)"


def bundle_extras(bundle, name: str) -> dict:
    """What this step reads from WizardContext.extras, for a loaded bundle (installer.bundle)."""
    return {"per_box": bundle.per_box_fields(), "bundle_name": name, "secrets_locked": bundle.secrets_locked}


def _get(plan: Plan, path: str):
    section, _, key = path.partition(".")
    obj = getattr(plan, section)
    return getattr(obj, key) if key and obj is not None else (obj if not key else None)


def _set(plan: Plan, path: str, value: str | None) -> Plan:
    section, _, key = path.partition(".")
    if not key:
        return dataclasses.replace(plan, **{section: value})
    obj = getattr(plan, section)
    if obj is None:
        return plan
    return dataclasses.replace(plan, **{section: dataclasses.replace(obj, **{key: value})})


class PerBoxScreen(StepScreen):
    STEP = "this-box"
    TITLE = "This box"

    @property
    def paths(self) -> list[str]:
        """The fields this box must give (from the bundle)."""
        return [p for p in self.context.extras.get("per_box", []) if p in LABELS]

    @property
    def SECTIONS(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self.paths)

    def compose_body(self) -> ComposeResult:
        source = self.context.extras.get("bundle_name", "the bundle")
        yield Static(f"Everything else comes from {source}. The values shown are its box's: change "
                     "them for this one. Next goes to the review.", classes="hint", markup=False)
        why = LOCKED if self.context.extras.get("secrets_locked") else LEFT_OUT
        for path in self.paths:
            label, placeholder, check = LABELS[path]
            secret = path in SECRET_FIELDS
            label += why if secret else ""
            value = None if secret else _get(self.plan, path)
            yield FieldInput(label, field=path, value=value, placeholder=placeholder, password=secret,
                             check=check, id=path.replace(".", "-"))

    def read(self) -> Plan:
        plan = self.plan
        for w in self.query(FieldInput):
            raw = w.input.value if w.field_path in SECRET_FIELDS else w.value  # secrets exactly as typed
            plan = _set(plan, w.field_path, raw or None)
        return plan

    def action_next(self) -> None:
        plan = self.read()
        errors = self.errors_for_step(plan)
        self.show_errors(errors)
        if not errors:
            self.post_message(self.Done(plan, "next", goto="review"))

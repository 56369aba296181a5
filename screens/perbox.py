"""Step after welcome when the wizard starts from a bundle: only what must differ on this
box (host name, static addresses), the bundle's passphrase when its secrets are encrypted,
and the secrets the bundle left out. Everything else comes from the first box's answers;
Next goes straight to the review.

A bundle is used only when it verifies and its signer is trusted on this box (the keys in
<root>/etc/edge-installer/trusted-keys, and the wizard's --trust-key), or when the technician
accepts it anyway (--allow-unsigned, or the welcome step's tick box): then a warning stays at
the top of every step (StepScreen.compose reads extras["trust_warning"]).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.widgets import Static

from installer.planning import fields
from installer.planning.plan import SECRET_FIELDS, FieldError, Plan
from screens.base import FieldInput, StepScreen

if TYPE_CHECKING:
    from installer.fleet.bundle import LoadedBundle

# (label, placeholder, check) of a field the step asks for
FieldLabel = tuple[str, str, Callable[[str], str | None] | None]

LABELS: dict[str, FieldLabel] = {
    "hostname": ("Host name of this box", "e.g. edge-02", fields.check_hostname),
    "machine_network.address": ("Machine network address/prefix of this box", "e.g. 192.168.50.3/24",
                                fields.check_interface_address),
    "uplink.address": ("Uplink address/prefix of this box", "e.g. 10.20.0.16/24", fields.check_interface_address),
    "uplink.gateway": ("Uplink gateway", "e.g. 10.20.0.1", lambda v: fields.check_host_address(v, what="gateway")),
    "wifi.passphrase": ("WiFi passphrase", "", None),
    "wifi.eap_password": ("WiFi 802.1X (EAP) password", "", None),
    "wifi.private_key_password": ("WiFi client key's password (EAP-TLS)", "", None),
    "cellular.password": ("APN password", "", None),
    "proxy.password": ("Proxy password", "", None),
}
# Why a secret is asked for: left out at export, or encrypted and no passphrase was given.
LEFT_OUT = " (the bundle left it out; never shown)"
LOCKED = " (only without the bundle's passphrase)"
PASSPHRASE_FIELD = "bundle-passphrase"  # not a plan field: it unlocks the bundle's secrets
PASSPHRASE_LABEL = "Bundle passphrase (unlocks the secrets it carries; not a WiFi key)"
# The wizard's ways out of a refused bundle, in its own terms (installer.fleet.bundle.trust_verdict).
TRUST_WORDS = {"trust_hint": "or start the wizard with --trust-key KEY.pub",
               "opt_in": "tick \"Use it anyway\" if you know where it came from",
               "because": "(the technician accepted it)"}


class BundleRefused(Exception):
    """The wizard does not use this bundle; the message is one line saying why and what to do.
    `untrusted`: it verified, but it is unsigned or its signer is not trusted (the technician may
    accept it anyway); otherwise it is damaged, altered or unreadable (never used)."""

    def __init__(self, message: str, untrusted: bool = False):
        super().__init__(message)
        self.untrusted = untrusted


def open_bundle(path: str, root, trust_keys: list[str] | tuple[str, ...] = (), allow_unsigned: bool = False,
                passphrase: str | None = None, words: dict[str, str] = TRUST_WORDS) -> tuple[LoadedBundle, dict]:
    """Load and verify a bundle for the wizard: (installer.fleet.bundle.LoadedBundle, the extras this step
    and the frame read); BundleRefused when it does not verify or its signer is not trusted."""
    from pathlib import Path

    from installer.fleet.bundle import BundleError, load_bundle, trust_verdict
    from installer.fleet.keys import TRUST_FILE, KeyFileError, read_trusted_keys
    from installer.text import ascii_safe

    shown = ascii_safe(Path(path).name, 200)
    try:
        loaded = load_bundle(path, passphrase)
        trusted = read_trusted_keys(root, list(trust_keys))
    except (BundleError, KeyFileError) as e:
        raise BundleRefused(str(e)) from None
    try:
        line, warning = trust_verdict(loaded, trusted, allow_unsigned, str(Path(root or "/") / TRUST_FILE),
                                      **words, name=shown)
    except BundleError as e:
        raise BundleRefused(f"this bundle {e}", untrusted=True) from None
    # What this step and the frame read from WizardContext.extras.
    return loaded, {"per_box": loaded.per_box_fields(), "bundle_name": shown, "secrets_locked": loaded.secrets_locked,
                    "bundle": loaded, "trust_line": "" if warning else line, "trust_warning": line if warning else None}


def _halves(fingerprint: str) -> str:
    """A long colon-grouped fingerprint as two lines at a group boundary (never broken mid-group)."""
    groups = fingerprint.split(":")
    if len(fingerprint) <= 60 or len(groups) < 4:
        return fingerprint
    half = (len(groups) + 1) // 2
    return ":".join(groups[:half]) + ":\n" + ":".join(groups[half:])


def label(path: str) -> FieldLabel | None:
    """(label, placeholder, check) of a field this step may ask for; None for one it does not know.
    A port bound by MAC (`ports.lan0.mac`) is asked per box: each box's NIC has its own."""
    if path in LABELS:
        return LABELS[path]
    head, _, rest = path.partition(".")
    name, _, kind = rest.rpartition(".")
    if head == "ports" and name and kind == "mac":
        return (f"MAC address of the port the plan calls {name} (ip link shows it as link/ether)",
                "e.g. 52:54:00:12:34:56", lambda v: fields.check_mac(fields.canonical_mac(v) if v else v))
    return None


def _widget_id(path: str) -> str:
    """A widget id from a field path (a port's name may hold characters an id may not)."""
    return "".join(c if c.isascii() and (c.isalnum() or c in "-_") else f"_{ord(c):x}_" for c in path.replace(".", "-"))


class PerBoxScreen(StepScreen):
    STEP = "this-box"
    TITLE = "This box"

    @property
    def paths(self) -> list[str]:
        """The fields this box must give (from the bundle)."""
        return [path for path, _ in self._asked()]

    def _asked(self) -> list[tuple[str, FieldLabel]]:
        """(path, its label) of each field this box must give, for those this step knows."""
        return [(p, known) for p in self.context.extras.get("per_box", []) if (known := label(p)) is not None]

    @property
    def SECTIONS(self) -> tuple[str, ...]:  # type: ignore[override]
        return tuple(self.paths)

    @property
    def locked(self) -> bool:
        """The bundle's secrets are encrypted and not yet unlocked."""
        return bool(self.context.extras.get("secrets_locked"))

    def compose_body(self) -> ComposeResult:
        source = self.context.extras.get("bundle_name", "the bundle")
        yield Static(f"Everything else comes from {source}. The values shown are its box's: change "
                     "them for this one. Next goes to the review.", classes="hint", markup=False)
        if self.context.extras.get("trust_line"):
            fp = self.context.extras["trust_line"].removeprefix("Signed by ")
            yield Static(f"Signed by a key this box trusts:\n{_halves(fp)}", classes="hint", id="signed-by",
                         markup=False)
        if self.locked:
            yield FieldInput(PASSPHRASE_LABEL, field=PASSPHRASE_FIELD, value=None, password=True,
                             id=PASSPHRASE_FIELD)
        why = LOCKED if self.locked else LEFT_OUT
        for path, (text, placeholder, check) in self._asked():
            secret = path in SECRET_FIELDS
            text += why if secret else ""
            value = None if secret else self.plan.field(path)
            yield FieldInput(text, field=path, value=value, placeholder=placeholder, password=secret,
                             check=check, id=_widget_id(path))

    def read(self) -> Plan:
        plan = self.plan
        for w in self.query(FieldInput):
            if w.field_path == PASSPHRASE_FIELD:
                continue
            raw = w.input.value if w.field_path in SECRET_FIELDS else w.value  # secrets exactly as typed
            if raw and w.field_path.startswith("ports."):
                raw = fields.canonical_mac(raw.strip())
            plan = plan.with_field(w.field_path, raw or None)
        return plan

    def _unlock(self, plan: Plan) -> tuple[Plan, list[FieldError]]:
        """The plan with the bundle's encrypted secrets filled in where nothing was typed (the
        technician's own value wins); or an error at the bundle passphrase."""
        from installer.fleet.bundle import BundleError, merge_secrets

        if not self.locked:
            return plan, []
        typed = self.query_one(f"#{PASSPHRASE_FIELD}", FieldInput).input.value  # exactly as typed
        bundle = self.context.extras["bundle"]
        if not typed:
            still = [p for p in bundle.missing_secrets if plan.field(p) is None]
            if not still:
                return plan, []
            names = ", ".join(LABELS[p][0] for p in still if p in LABELS)
            return plan, [FieldError(PASSPHRASE_FIELD, f"the bundle holds the {names} encrypted: give its "
                                                      "passphrase, or type them below")]
        try:
            secrets = bundle.unlock(typed)
        except BundleError as e:
            return plan, [FieldError(PASSPHRASE_FIELD, str(e))]
        plan = merge_secrets(plan, {p: v for p, v in secrets.items() if plan.field(p) is None})
        # Unlocked once: going back to this step asks only for what is still missing.
        extras = self.context.extras
        extras["secrets_locked"] = False
        extras["per_box"] = [p for p in extras.get("per_box", []) if p not in secrets]
        return plan, []

    def action_next(self) -> None:
        plan = self.read()
        errors = [e for e in self.errors_for_step(plan) if not (self.locked and e.field in SECRET_FIELDS)]
        if not errors:
            plan, errors = self._unlock(plan)
            errors += self.errors_for_step(plan) if not errors else []
        self.show_errors(errors)
        if not errors:
            self.post_message(self.Done(plan, "next", goto="review"))

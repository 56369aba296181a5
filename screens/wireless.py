"""Step 5, wireless or cellular (only where the topology needs one of them).

WiFi (seed 000, Options 3 and 4): "WPA2/WPA3 encrypted wireless network" is a requirement,
so open and WEP networks are refused. Cellular (Option 5, "use at your own risk"): the APN,
optional credentials, and the expected monthly volume against the plan's data cap, because
the seed lists "Potential data caps and overage charges" among its risks.
"""

from __future__ import annotations

import dataclasses
import re

from textual import on
from textual.app import ComposeResult
from textual.widgets import Input, Static

from installer.checks.bandwidth import estimate, monthly_mb
from installer.fields import check_apn, check_passphrase, check_ssid
from installer.plan import WIFI_SECURITY, Cellular, FieldError, Plan, Uplink, Wifi
from installer.profiles import load_catalog
from screens.base import Choice, FieldInput, StepScreen, Toggle
from screens.services import core_problem

SECURITY_OPTIONS = [("wpa2-psk", "WPA2-Personal (PSK)"), ("wpa3-sae", "WPA3-Personal (SAE)"),
                    ("wpa2-wpa3", "WPA2/WPA3 transition (both)")]
REFUSED = "Open and WEP networks are refused: seed 000 requires a WPA2/WPA3 encrypted network."


class WirelessScreen(StepScreen):
    STEP = "wireless"
    TITLE = "WiFi"
    SECTIONS = ("wifi",)
    AUTO_FOCUS = "#body Input"

    def compose_body(self) -> ComposeResult:
        wifi = self.plan.wifi or Wifi()
        port = (self.plan.uplink or Uplink()).interface or "the WiFi interface"
        yield FieldInput(f"Network name (SSID) that {port} joins", field="wifi.ssid", value=wifi.ssid,
                         placeholder="e.g. Plant-Floor", check=_check_ssid, id="ssid")
        yield Choice("Security", SECURITY_OPTIONS, field="wifi.security", value=wifi.security, id="security")
        refused = REFUSED
        if wifi.security not in WIFI_SECURITY:
            refused += f" The plan's {wifi.security!r} is not accepted: choose one above."
        yield Static(refused, classes="hint", id="refused", markup=False)
        yield FieldInput("Passphrase (8-63 characters; never shown)", field="wifi.passphrase",
                         value=wifi.passphrase, password=True, check=self._check_passphrase, id="passphrase")
        yield Toggle("Hidden network (the SSID is not broadcast)", field="wifi.hidden", value=wifi.hidden,
                     id="hidden")

    def _check_passphrase(self, value: str) -> str | None:
        return check_passphrase(value, self.query_one("#security", Choice).value)

    @on(Choice.Chosen, "#security")
    def _security_chosen(self) -> None:
        # WPA3 refuses a raw 64-hex key that WPA2 takes: judge a typed passphrase again.
        field = self.query_one("#passphrase", FieldInput)
        if field.input.value:
            field.set_error(self._check_passphrase(field.input.value))

    def read(self) -> Plan:
        wifi = Wifi(ssid=self.query_one("#ssid", FieldInput).value or None,
                    security=self.query_one("#security", Choice).value,
                    passphrase=self.query_one("#passphrase", FieldInput).input.value or None,  # as typed
                    hidden=self.query_one("#hidden", Toggle).value)
        return dataclasses.replace(self.plan, wifi=wifi)


class CellularScreen(StepScreen):
    STEP = "cellular"
    TITLE = "Cellular"
    SECTIONS = ("cellular.apn", "cellular.username", "cellular.password", "cellular.data_cap_mb")
    AUTO_FOCUS = "#body Input"

    def compose_body(self) -> ComposeResult:
        c = self.plan.cellular or Cellular()
        modem = (self.plan.uplink or Uplink()).interface or "the modem"
        yield Static(f"Modem: {modem} (Interfaces step). Cellular is at your own risk (seed 000).",
                     classes="hint", markup=False)
        yield FieldInput("APN (from the cellular provider)", field="cellular.apn", value=c.apn,
                         placeholder="e.g. internet", check=_check_apn, id="apn")
        yield FieldInput("User name (optional; only if the provider gives one)", field="cellular.username",
                         value=c.username, placeholder="(none)", id="username")
        yield FieldInput("Password (optional; never shown)", field="cellular.password", value=c.password,
                         placeholder="(none)", password=True, id="password")
        yield FieldInput("Monthly data cap of the SIM's plan, in MB (optional)", field="cellular.data_cap_mb",
                         value=None if c.data_cap_mb is None else str(c.data_cap_mb), placeholder="e.g. 5000",
                         check=self._check_cap, id="cap")
        yield Static("", id="volume", markup=False)

    def on_mount(self) -> None:
        self._show_volume()

    @on(Input.Changed, "#cap-input")
    def _show_volume(self) -> None:
        text = self.query_one("#cap", FieldInput).value
        cap = parse_mb(text)
        over, words = volume_words(self._estimate(cap), bool(text) and cap is None)
        volume = self.query_one("#volume", Static)
        volume.update(words)
        volume.set_class(over, "warning")
        volume.set_class(not over, "hint")

    def _estimate(self, cap: int | None) -> dict:
        plan = self.read()
        plan = dataclasses.replace(plan, cellular=dataclasses.replace(plan.cellular, data_cap_mb=cap))
        return estimate(plan, self.context.catalog or load_catalog())

    def _check_cap(self, value: str) -> str | None:
        if not value.strip():
            return None
        cap = parse_mb(value)
        if cap is None:
            return f"{value.strip()!r} is not a number of MB; give a whole number such as 5000, or leave it empty"
        plan = dataclasses.replace(self.plan, cellular=dataclasses.replace(self.plan.cellular or Cellular(),
                                                                           data_cap_mb=cap))
        return core_problem(plan, "cellular.data_cap_mb", self.context.validation)

    def read(self) -> Plan:
        c = self.plan.cellular or Cellular()
        cap = parse_mb(self.query_one("#cap", FieldInput).value)
        c = dataclasses.replace(c, apn=self.query_one("#apn", FieldInput).value or None,
                                username=self.query_one("#username", FieldInput).value or None,
                                password=self.query_one("#password", FieldInput).input.value or None,  # as typed
                                data_cap_mb=cap)
        return dataclasses.replace(self.plan, cellular=c)

    def extra_errors(self, plan: Plan) -> list[FieldError]:
        # A cap that is not a number cannot be in the plan (read() leaves it out): say so here.
        problem = self._check_cap(self.query_one("#cap", FieldInput).value)
        return [FieldError("cellular.data_cap_mb", problem)] if problem else []


def parse_mb(text: str) -> int | None:
    """A typed number of megabytes ("5000", "5,000", "5 000"), or None when it is not one."""
    digits = re.sub(r"(?<=\d)[ ,_'](?=\d{3}\b)", "", text.strip())
    return int(digits) if re.fullmatch(r"-?\d{1,9}", digits) else None


def volume_words(e: dict, cap_unreadable: bool = False) -> tuple[bool, str]:
    """(over the cap?, the expected monthly volume against the cap, in words)."""
    if e["machines"]:
        counted = e["machines"] - len(e["unknown"])
        head = (f"Expected upload: about {e['monthly_upload_mb']:,.0f} MB per {e['days']} days for "
                f"{counted} machine{'s' if counted != 1 else ''} (seed 000 figures, an estimate).")
    else:
        head = (f"Expected upload: no machines listed yet (Cloud step). Seed 000: about "
                f"{monthly_mb(1):,.0f} MB a month per standard machine, {monthly_mb(5):,.0f} MB per FANUC FOCAS.")
    cap = e["data_cap_mb"]
    if cap_unreadable:
        return False, head + " Give the cap as a whole number of MB to compare."
    if cap is None:
        return False, head + " No cap given: compare with the SIM's data plan."
    if e["over_cap"]:
        return True, (head + f" WARNING: more than the {cap:,} MB cap: expect overage charges or a cut-off "
                             "(seed 000: potential data caps and overage charges).")
    return False, head + f" Within the {cap:,} MB cap; updates and remote support come on top."


def _check_ssid(value: str) -> str | None:
    return check_ssid(value.strip())


def _check_apn(value: str) -> str | None:
    return check_apn(value.strip())

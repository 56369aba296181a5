"""Step 5, wireless or cellular (only where the topology needs one of them).

WiFi (MachineMetrics, Network Requirements, Options 3 and 4): "WPA2/WPA3 encrypted wireless
network" is a requirement, so open and WEP networks are refused. The networks the radio hears
are listed strongest first (installer.box.wifi.scan, in a worker: a scan takes seconds); choosing
one fills the name and the security. Enterprise networks (802.1X) ask for the login: PEAP with
MSCHAPv2 or EAP-TLS, always against the plant's CA. Cellular (Option 5, "use at your own
risk"): the APN, optional credentials, and the expected monthly volume against the plan's data
cap, because the document lists "Potential data caps and overage charges" among its risks.
"""

from __future__ import annotations

import dataclasses

from rich.cells import set_cell_size
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, OptionList, RadioButton, Static
from textual.widgets.option_list import Option

from installer.checks.bandwidth import estimate, monthly_mb
from installer.planning.fields import (
    check_apn,
    check_country,
    check_passphrase,
    check_ssid,
    has_control,
    parse_data_cap,
)
from installer.planning.plan import WIFI_ENTERPRISE, WIFI_SECURITY, Cellular, FieldError, Plan, Uplink, Wifi
from installer.text import ascii_safe
from installer.vendors.profiles import load_catalog
from installer.vendors.sources import TITLES
from screens.ascii import is_plain
from screens.base import Choice, FieldInput, StepScreen, Toggle, words
from screens.services import core_problem

DOC = TITLES["000"]  # the vendor document every requirement on this step comes from
SECURITY_OPTIONS = [("wpa2-psk", "WPA2-Personal (PSK)"), ("wpa3-sae", "WPA3-Personal (SAE)"),
                    ("wpa2-wpa3", "WPA2/WPA3 transition (both)"),
                    ("wpa2-enterprise", "WPA2-Enterprise (802.1X)"), ("wpa3-enterprise", "WPA3-Enterprise (802.1X)")]
EAP_OPTIONS = [("peap", "PEAP with MSCHAPv2 (user name and password)"), ("tls", "EAP-TLS (client certificate)")]
REFUSED = f"Open and WEP networks are refused ({DOC})."
# A scanned network's security (installer.box.wifi.SECURITIES) -> the plan's; open and WEP have none.
FROM_SCAN = {"wpa2": "wpa2-psk", "wpa3": "wpa3-sae", "wpa2-wpa3": "wpa2-wpa3",
             "wpa2-enterprise": "wpa2-enterprise", "wpa3-enterprise": "wpa3-enterprise"}
SCAN_WORDS = {"wpa2": "WPA2", "wpa3": "WPA3", "wpa2-wpa3": "WPA2/WPA3", "wpa2-enterprise": "WPA2-Ent",
              "wpa3-enterprise": "WPA3-Ent", "open": "OPEN-refused", "wep": "WEP-refused"}
HIDDEN_ROW = "hidden"
SSID_CELLS = 24  # the name's column in the scan list: the row fits 80 columns


def signal_bars(n: int, plain: bool) -> str:
    """0-4 bars as four cells: ASCII '#' in plain mode (a VT100 has no block glyphs)."""
    on, off = ("#", ".") if plain else ("\u2582\u2584\u2586\u2588"[:n], "\u00b7")
    return (on * n if plain else on) + off * (4 - n)


def scan_row(net, bars: int, plain: bool) -> str:
    """One scanned network as a row: name, dBm and bars, security, band and channel. The name
    came from the air: shown only through installer.text.ascii_safe, byte for byte as `wifi scan` shows it."""
    name = set_cell_size(ascii_safe(net.ssid, 64, backslash=True), SSID_CELLS)
    return (f"{name} {net.signal_dbm:4.0f} dBm {signal_bars(bars, plain)} "
            f"{SCAN_WORDS.get(net.security, net.security):<12} {net.band} ch {net.channel}")


def _default_scanner():
    from installer.box.wifi import scan

    return scan


class WirelessScreen(StepScreen):
    STEP = "wireless"
    TITLE = "WiFi"
    SECTIONS = ("wifi",)
    AUTO_FOCUS = "#body Input"
    BINDINGS = [Binding("ctrl+r", "rescan", "Scan again")]
    # 80x24 holds the scan list and the fields only without the blank line above each label.
    CSS = """
    WirelessScreen #body Label { margin-top: 0; }
    WirelessScreen #networks { height: auto; max-height: 6; }
    WirelessScreen #wifi-toggles { height: 1; }
    WirelessScreen #enterprise { height: auto; }
    WirelessScreen #wifi-toggles Toggle { margin-right: 2; }
    """

    def compose_body(self) -> ComposeResult:
        wifi = self.plan.wifi or Wifi()
        port = (self.plan.uplink or Uplink()).interface or "the WiFi interface"
        self._networks: list = []
        yield Static(f"Scanning for networks on {port}...", classes="hint", id="scan-status", markup=False)
        yield OptionList(markup=False, compact=True, id="networks")
        yield FieldInput(f"Network name (SSID) that {port} joins", field="wifi.ssid", value=wifi.ssid,
                         placeholder="e.g. Plant-Floor", check=_check_ssid, id="ssid")
        yield Choice("Security", SECURITY_OPTIONS, field="wifi.security", value=wifi.security, id="security")
        refused = REFUSED
        if wifi.security not in WIFI_SECURITY:
            refused += f" The plan's {wifi.security!r} is not accepted: choose one above."
        yield Static(refused, classes="hint", id="refused", markup=False)
        yield FieldInput("Passphrase (8-63 characters; hidden unless shown)", field="wifi.passphrase",
                         value=wifi.passphrase, password=True, check=self._check_passphrase, id="passphrase")
        with Horizontal(id="wifi-toggles"):
            yield Toggle("Hidden network (SSID not broadcast)", field="wifi.hidden", value=wifi.hidden, id="hidden")
            yield Toggle("Show passwords", field="", value=False, id="show-secrets")
        with Vertical(id="enterprise"):
            yield Choice("802.1X method", EAP_OPTIONS, field="wifi.eap_method", value=wifi.eap_method or "peap",
                         id="eap-method")
            yield FieldInput("Identity (user name the RADIUS server knows)", field="wifi.identity",
                             value=wifi.identity, placeholder="e.g. edge-01@plant.example", id="identity")
            yield FieldInput("Anonymous outer identity (optional)", field="wifi.anonymous_identity",
                             value=wifi.anonymous_identity, placeholder="(none)", id="anonymous-identity")
            yield FieldInput("EAP password (hidden unless shown)", field="wifi.eap_password", value=wifi.eap_password,
                             password=True, id="eap-password")
            yield FieldInput("CA certificate of the RADIUS server (PEM file on this box)", field="wifi.ca_certificate",
                             value=wifi.ca_certificate, placeholder="e.g. /etc/ssl/plant/radius-ca.pem",
                             id="ca-certificate")
            yield FieldInput("Client certificate (PEM file)", field="wifi.client_certificate",
                             value=wifi.client_certificate, placeholder="e.g. /etc/ssl/plant/edge-01.pem",
                             id="client-certificate")
            yield FieldInput("Client private key (PEM file)", field="wifi.private_key", value=wifi.private_key,
                             placeholder="e.g. /etc/ssl/plant/edge-01.key", id="private-key")
            yield FieldInput("Private key's password (optional; hidden unless shown)",
                             field="wifi.private_key_password", value=wifi.private_key_password,
                             placeholder="(none)", password=True, id="private-key-password")
        yield FieldInput("Country the box is in (regulatory domain, e.g. DE; optional)", field="wifi.country",
                         value=wifi.country, placeholder="e.g. DE", check=_check_country, id="country")

    def on_mount(self) -> None:
        self.query_one("#networks").display = False
        self._show_security(self.query_one("#security", Choice).value)
        self.action_rescan()

    # --- the scan list -------------------------------------------------------------------
    def action_rescan(self) -> None:
        """Ask the radio (in a worker: a scan takes seconds; the UI says so meanwhile)."""
        port = (self.plan.uplink or Uplink()).interface
        self._status(f"Scanning for networks on {port or 'the WiFi interface'}...")
        self._scan(port)

    @work(thread=True, exclusive=True, group="wifi-scan")
    def _scan(self, port: str | None) -> None:
        scanner = self.context.extras.get("wifi_scanner")
        try:
            found = (scanner or _default_scanner())(port)
            result, problem = list(found), None
        except ImportError:
            result, problem = [], "this build has no WiFi scanner"
        except Exception as e:  # ScanError (one line), PermissionError, no iw: never into the UI
            result, problem = [], words(e)
        self.app.call_from_thread(self._scanned, result, problem)

    def _scanned(self, found: list, problem: str | None) -> None:
        listing = self.query_one("#networks", OptionList)
        if problem is not None:
            listing.display = False
            line = " ".join(ascii_safe(problem, 160).split())
            self._status(f"No scan: {line}. Type the network's name below (Ctrl+R: scan again).")
            return
        strongest: dict = {}
        for net in found:
            if net.ssid and not getattr(net, "hidden", False):
                key = (net.ssid, net.security)
                if key not in strongest or net.signal_dbm > strongest[key].signal_dbm:
                    strongest[key] = net
        self._networks = sorted(strongest.values(), key=lambda n: n.signal_dbm, reverse=True)
        from installer.box.wifi import bars
        plain = is_plain(self)
        listing.clear_options()
        listing.add_options([Option(scan_row(n, bars(n.signal_dbm), plain), id=str(i))
                             for i, n in enumerate(self._networks)]
                            + [Option("Hidden network: type its name", id=HIDDEN_ROW)])
        listing.display = True
        listing.highlighted = 0
        port = (self.plan.uplink or Uplink()).interface or "the radio"
        self._status(f"{len(self._networks)} network{'s' if len(self._networks) != 1 else ''} heard by {port}, "
                     "strongest first: Enter chooses, Ctrl+R scans again.")
        ssid = self.query_one("#ssid", FieldInput)
        if self.focused is ssid.input and not ssid.input.value:
            listing.focus()  # nothing typed yet: choosing from the list is the quicker way

    def _status(self, text: str) -> None:
        self.query_one("#scan-status", Static).update(text)

    @on(OptionList.OptionSelected, "#networks")
    def _chosen(self, event: OptionList.OptionSelected) -> None:
        ssid = self.query_one("#ssid", FieldInput)
        if event.option.id == HIDDEN_ROW:
            self.query_one("#hidden", Toggle).value = True
            ssid.input.focus()
            self._status("Hidden network: type its exact name; the box probes for it by name.")
            return
        assert event.option.id is not None  # every row of #networks has an id
        net = self._networks[int(event.option.id)]
        shown = ascii_safe(net.ssid, 64, backslash=True)
        if net.security not in FROM_SCAN:
            self._status(f"{shown} is {'open' if net.security == 'open' else 'WEP'}: refused, {DOC} requires a "
                         "WPA2/WPA3 encrypted network.")
            return
        if has_control(net.ssid) or not _utf8(net.ssid):
            self._status(f"{shown}: this name holds bytes that are not text; it cannot be joined by name here.")
            return
        ssid.input.value = net.ssid
        ssid.set_error(None)
        self._set_security(FROM_SCAN[net.security])
        self.query_one("#hidden", Toggle).value = False
        self._status(f"Chosen: {shown} ({SCAN_WORDS[net.security]}, {net.signal_dbm:.0f} dBm). "
                     + ("Give the 802.1X login below." if FROM_SCAN[net.security] in WIFI_ENTERPRISE
                        else "Type the passphrase below."))
        target = "#identity" if FROM_SCAN[net.security] in WIFI_ENTERPRISE else "#passphrase"
        self.call_after_refresh(self.query_one(target, FieldInput).input.focus)

    def _set_security(self, value: str) -> None:
        choice = self.query_one("#security", Choice)
        index = [v for v, _ in SECURITY_OPTIONS].index(value)
        choice.radio_set.query(RadioButton)[index].value = True
        choice.radio_set._selected = index
        self._show_security(value)

    # --- fields that follow the security -------------------------------------------------
    def _show_security(self, security: str) -> None:
        enterprise = security in WIFI_ENTERPRISE
        self.query_one("#passphrase").display = not enterprise
        self.query_one("#enterprise").display = enterprise
        self._show_method(self.query_one("#eap-method", Choice).value)

    def _show_method(self, method: str) -> None:
        self.query_one("#eap-password").display = method == "peap"
        for fid in ("#client-certificate", "#private-key", "#private-key-password"):
            self.query_one(fid).display = method == "tls"

    @on(Choice.Chosen, "#eap-method")
    def _method_chosen(self, event: Choice.Chosen) -> None:
        self._show_method(event.value)

    @on(Toggle.Changed, "#show-secrets")
    def _show_secrets(self, event: Toggle.Changed) -> None:
        for fid in ("#passphrase", "#eap-password", "#private-key-password"):
            self.query_one(fid, FieldInput).input.password = not event.value

    def _check_passphrase(self, value: str) -> str | None:
        return check_passphrase(value, self.query_one("#security", Choice).value)

    @on(Choice.Chosen, "#security")
    def _security_chosen(self, event: Choice.Chosen) -> None:
        self._show_security(event.value)
        # WPA3 refuses a raw 64-hex key that WPA2 takes: judge a typed passphrase again.
        field = self.query_one("#passphrase", FieldInput)
        if field.input.value and event.value not in WIFI_ENTERPRISE:
            field.set_error(self._check_passphrase(field.input.value))

    def read(self) -> Plan:
        security = self.query_one("#security", Choice).value

        def text(fid: str) -> str | None:
            return self.query_one(f"#{fid}", FieldInput).value or None

        def secret(fid: str) -> str | None:
            return self.query_one(f"#{fid}", FieldInput).input.value or None  # as typed

        country = text("country")
        wifi = Wifi(ssid=text("ssid"), security=security, hidden=self.query_one("#hidden", Toggle).value,
                    country=country.upper() if country else None)
        if security in WIFI_ENTERPRISE:
            method = self.query_one("#eap-method", Choice).value
            wifi = dataclasses.replace(wifi, eap_method=method, identity=text("identity"),
                                       anonymous_identity=text("anonymous-identity"),
                                       ca_certificate=text("ca-certificate"))
            if method == "peap":
                wifi = dataclasses.replace(wifi, eap_password=secret("eap-password"))
            else:
                wifi = dataclasses.replace(wifi, client_certificate=text("client-certificate"),
                                           private_key=text("private-key"),
                                           private_key_password=secret("private-key-password"))
        else:
            wifi = dataclasses.replace(wifi, passphrase=secret("passphrase"))
        return dataclasses.replace(self.plan, wifi=wifi)


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
        return True
    except UnicodeEncodeError:  # surrogate-escaped bytes from the air
        return False


class CellularScreen(StepScreen):
    STEP = "cellular"
    TITLE = "Cellular"
    SECTIONS = ("cellular.apn", "cellular.username", "cellular.password", "cellular.data_cap_mb")
    AUTO_FOCUS = "#body Input"

    def compose_body(self) -> ComposeResult:
        c = self.plan.cellular or Cellular()
        modem = (self.plan.uplink or Uplink()).interface or "the modem"
        yield Static(f"Modem: {modem} (Interfaces step). Cellular is at your own risk ({DOC}).",
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
        assert plan.cellular is not None  # this step's read() always gives the cellular section
        plan = dataclasses.replace(plan, cellular=dataclasses.replace(plan.cellular, data_cap_mb=cap))
        return estimate(plan, self.context.catalogue() or load_catalog())

    def _check_cap(self, value: str) -> str | None:
        if not value.strip():
            return None
        cap, problem = parse_data_cap(value)
        if problem:
            return problem
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
    """A typed data cap in MB ("5000", "5,000", "2 GB", "500 MB": installer.planning.fields.parse_data_cap),
    or None when it is not one."""
    return parse_data_cap(text)[0]


def volume_words(e: dict, cap_unreadable: bool = False) -> tuple[bool, str]:
    """(over the cap?, the expected monthly volume against the cap, in words)."""
    if e["machines"]:
        counted = e["machines"] - len(e["unknown"])
        head = (f"Expected upload: about {e['monthly_upload_mb']:,.0f} MB per {e['days']} days for "
                f"{counted} machine{'s' if counted != 1 else ''} ({DOC} figures, an estimate).")
    else:
        head = (f"Expected upload: no machines listed yet (Cloud step). {DOC}: about "
                f"{monthly_mb(1):,.0f} MB a month per standard machine, {monthly_mb(5):,.0f} MB per FANUC FOCAS.")
    cap = e["data_cap_mb"]
    if cap_unreadable:
        return False, head + " Give the cap as a whole number of MB to compare."
    if cap is None:
        return False, head + " No cap given: compare with the SIM's data plan."
    if e["over_cap"]:
        return True, (head + f" WARNING: more than the {cap:,} MB cap: expect overage charges or a cut-off "
                             f"({DOC}: potential data caps and overage charges).")
    return False, head + f" Within the {cap:,} MB cap; updates and remote support come on top."


def _check_ssid(value: str) -> str | None:
    return check_ssid(value.strip())


def _check_apn(value: str) -> str | None:
    return check_apn(value.strip())


def _check_country(value: str) -> str | None:
    # Typed in lower case is fine: the plan gets it in capitals (read()).
    return check_country(value.strip().upper() or None)

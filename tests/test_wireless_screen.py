"""The wizard's WiFi step (issue 12, part 1) by keyboard at 80x24: the scan list (strongest
first, dBm and bars, security, band and channel, a hidden-network row, Ctrl+R to scan again),
choosing a row, open/WEP refused, no scan possible, the passphrase shown on request, the
802.1X fields and the country. The scanner is injected (extras["wifi_scanner"]): this is a UI
test; the real scan is proven on simulated radios (installer.box.wifi's tests)."""

from __future__ import annotations

import dataclasses

from textual.widgets import OptionList

from installer.box.wifi import Network, ScanError
from installer.planning.plan import Cellular, MachineNetwork, Plan, Uplink, Wifi
from screens.wireless import signal_bars
from tests.wizard_helpers import (
    error_at,
    field,
    focus,
    frame_text,
    keys,
    new_wizard,
    replace_text,
    screen_text,
    set_choice,
    set_field,
    set_toggle,
    type_text,
    until,
)

WIFI = Plan(topology="wifi", machine_network=MachineNetwork(("eno1",), "192.168.50.2/24"), uplink=Uplink("wlan0"),
            profiles=("machinemetrics",))
PASSPHRASE = "Zq7-w1f1-Sekr3t"
EAP_SECRET = "Rad1us-Pa55"
AIR = [
    Network("Office", "aa:00:00:00:00:01", -71.0, "wpa2", "2.4 GHz", 6, 2437, False),
    Network("Plant-Secure", "aa:00:00:00:00:02", -48.0, "wpa2-enterprise", "5 GHz", 36, 5180, False),
    Network("Plant-Floor", "aa:00:00:00:00:03", -60.0, "wpa2-wpa3", "5 GHz", 44, 5220, False),
    Network("Plant-Floor", "aa:00:00:00:00:04", -80.0, "wpa2-wpa3", "2.4 GHz", 1, 2412, False),  # weaker twin
    Network("Guest", "aa:00:00:00:00:05", -55.0, "open", "2.4 GHz", 11, 2462, False),
    Network("Old-Printer", "aa:00:00:00:00:06", -88.0, "wep", "2.4 GHz", 11, 2462, False),
    Network("Evil\x1b[2J\x07", "aa:00:00:00:00:07", -90.0, "wpa2", "2.4 GHz", 1, 2412, False),
    Network("", "aa:00:00:00:00:08", -50.0, "wpa2", "5 GHz", 40, 5200, True),  # hidden: its own row
]


class Scanner:
    """A fixed radio: returns `found` (or raises `error`), counting the scans."""

    def __init__(self, found=(), error: Exception | None = None):
        self.found, self.error, self.calls = list(found), error, []

    def __call__(self, interface):
        self.calls.append(interface)
        if self.error is not None:
            raise self.error
        return list(self.found)


def wizard(tmp_path, scanner, plan: Plan = WIFI, plain: bool = False):
    return new_wizard(tmp_path, plan=plan, start_step="wireless", plain=plain, extras={"wifi_scanner": scanner})


def rows(app) -> list[str]:
    return [str(o.prompt) for o in app.screen.query_one("#networks", OptionList).options]


async def scanned(pilot) -> None:
    await until(pilot, lambda: "network" in str(pilot.app.screen.query_one("#scan-status").content)
                and "Scanning" not in str(pilot.app.screen.query_one("#scan-status").content))


def body_text(app) -> str:
    """What the step itself says (its body and the visible frame; the F1 help is the help's)."""
    from textual.widgets import Label, Static

    return "\n".join([str(w.content) for w in app.screen.query_one("#body").query(Static)]
                     + [str(w.render()) for w in app.screen.query_one("#body").query(Label)] + [frame_text(app)])


def assert_fits(app) -> None:
    assert app.size == (80, 24)
    body = app.screen.query_one("#body")
    assert body.max_scroll_y == 0, f"needs {body.virtual_size.height} rows, has {body.size.height}"


async def test_scan_list_strongest_first_with_signal_security_band(tmp_path):
    scanner = Scanner(AIR)
    app = wizard(tmp_path, scanner)
    async with app.run_test(size=(80, 24)) as pilot:
        await scanned(pilot)
        assert scanner.calls == ["wlan0"]
        listed = rows(app)
        names = [r.split()[0] for r in listed[:-1]]
        assert names == ["Plant-Secure", "Guest", "Plant-Floor", "Office", "Old-Printer", "Evil\\x1b[2J\\x07"]
        assert listed[-1] == "Hidden network: type its name"
        assert "-48 dBm" in listed[0] and "WPA2-Ent" in listed[0] and "5 GHz ch 36" in listed[0]
        assert "-60 dBm" in listed[2] and "WPA2/WPA3" in listed[2] and "ch 44" in listed[2]  # the stronger twin
        assert "OPEN-refused" in listed[1] and "WEP-refused" in listed[4]
        assert all(len(r) <= 76 for r in listed)
        # Bars as phones show them (installer.box.wifi.bars): -48 dBm four, -71 two, -88 none.
        assert signal_bars(4, False) in listed[0] and signal_bars(2, False) in listed[3]
        assert signal_bars(0, False) in listed[4]
        text = screen_text(app)
        assert "\x1b" not in text and "\x07" not in text  # the hostile name is shown escaped
        # Nothing typed yet: the list has the cursor, and the step fits the screen.
        assert app.focused is app.screen.query_one("#networks")
        assert_fits(app)


async def test_choosing_a_row_fills_name_and_security(tmp_path):
    app = wizard(tmp_path, Scanner(AIR))
    async with app.run_test(size=(80, 24)) as pilot:
        await scanned(pilot)
        await keys(pilot, "down", "down", "enter")  # the first row has the cursor: Plant-Floor is third
        assert field(app, "ssid").value == "Plant-Floor"
        assert app.screen.query_one("#security").value == "wpa2-wpa3"
        await until(pilot, lambda: app.focused is field(app, "passphrase").input)
        await type_text(pilot, PASSPHRASE)
        await pilot.press("ctrl+n")
        assert app.step_id != "wireless"
    assert app.plan.wifi == Wifi(ssid="Plant-Floor", security="wpa2-wpa3", passphrase=PASSPHRASE)


async def test_open_and_wep_rows_are_refused_by_the_documents_title(tmp_path):
    app = wizard(tmp_path, Scanner(AIR))
    async with app.run_test(size=(80, 24)) as pilot:
        await scanned(pilot)
        await keys(pilot, "down", "enter")  # Guest, open
        status = str(app.screen.query_one("#scan-status").content)
        assert "Guest is open: refused" in status and "MachineMetrics, Network Requirements" in status
        assert field(app, "ssid").value == ""
        await keys(pilot, "down", "down", "down", "enter")  # Old-Printer, WEP
        assert "WEP: refused" in str(app.screen.query_one("#scan-status").content)
        assert field(app, "ssid").value == ""
        assert "seed" not in body_text(app).lower()


async def test_hidden_row_ticks_hidden_and_goes_to_the_name(tmp_path):
    app = wizard(tmp_path, Scanner(AIR))
    async with app.run_test(size=(80, 24)) as pilot:
        await scanned(pilot)
        await keys(pilot, "end", "enter")
        assert app.screen.query_one("#hidden").value is True
        assert app.focused is field(app, "ssid").input
        await type_text(pilot, "Secret-AP")
        await set_field(pilot, "passphrase", PASSPHRASE)
        await pilot.press("ctrl+n")
    assert app.plan.wifi == Wifi(ssid="Secret-AP", security="wpa2-psk", passphrase=PASSPHRASE, hidden=True)


async def test_no_scan_possible_says_so_in_one_line_and_keeps_the_typed_name(tmp_path):
    scanner = Scanner(error=ScanError("wlan0 is not a WiFi interface of this box (wireless: none)"))
    app = wizard(tmp_path, scanner)
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "No scan" in str(app.screen.query_one("#scan-status").content))
        status = str(app.screen.query_one("#scan-status").content)
        assert status == ("No scan: wlan0 is not a WiFi interface of this box (wireless: none). "
                          "Type the network's name below (Ctrl+R: scan again).")
        assert not app.screen.query_one("#networks").display
        assert app.focused is field(app, "ssid").input
        await type_text(pilot, "Plant-Floor")
        # Ctrl+R asks again; a radio that answers now fills the list, the typed name stays.
        scanner.error, scanner.found = None, AIR[:2]
        await keys(pilot, "ctrl+r")
        await scanned(pilot)
        assert len(scanner.calls) == 2 and len(rows(app)) == 3
        assert field(app, "ssid").value == "Plant-Floor" and app.focused is field(app, "ssid").input
        assert_fits(app)


async def test_a_scanner_that_breaks_never_reaches_the_ui_as_a_traceback(tmp_path):
    app = wizard(tmp_path, Scanner(error=PermissionError(1, "Operation not permitted")))
    async with app.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: "No scan" in str(app.screen.query_one("#scan-status").content))
        assert "Operation not permitted" in str(app.screen.query_one("#scan-status").content)


async def test_show_passwords_on_request_only(tmp_path):
    app = wizard(tmp_path, Scanner())
    async with app.run_test(size=(80, 24)) as pilot:
        await set_field(pilot, "ssid", "Plant-Floor")
        await set_field(pilot, "passphrase", PASSPHRASE)
        assert PASSPHRASE not in frame_text(app)
        await set_toggle(pilot, "show-secrets", True)
        assert PASSPHRASE in frame_text(app)
        await set_toggle(pilot, "show-secrets", False)
        assert PASSPHRASE not in frame_text(app)


async def test_enterprise_peap_fields_and_the_ca_requirement(tmp_path):
    app = wizard(tmp_path, Scanner(AIR))
    async with app.run_test(size=(80, 24)) as pilot:
        await scanned(pilot)
        assert not app.screen.query_one("#enterprise").display
        await keys(pilot, "enter")  # Plant-Secure, WPA2-Enterprise
        assert app.screen.query_one("#security").value == "wpa2-enterprise"
        assert app.screen.query_one("#enterprise").display and not app.screen.query_one("#passphrase").display
        assert not app.screen.query_one("#client-certificate").display  # PEAP: no certificate fields
        await until(pilot, lambda: app.focused is field(app, "identity").input)
        await type_text(pilot, "edge-01@plant.example")
        await set_field(pilot, "eap-password", EAP_SECRET)
        await pilot.press("ctrl+n")
        assert app.step_id == "wireless"
        assert "any access point" in error_at(app, "ca-certificate")
        assert EAP_SECRET not in frame_text(app)
        await set_field(pilot, "ca-certificate", "/etc/ssl/plant/radius-ca.pem")
        await set_field(pilot, "country", "de")
        await pilot.press("ctrl+n")
        assert app.step_id != "wireless"
    assert app.plan.wifi == Wifi(ssid="Plant-Secure", security="wpa2-enterprise", country="DE", eap_method="peap",
                                 identity="edge-01@plant.example", eap_password=EAP_SECRET,
                                 ca_certificate="/etc/ssl/plant/radius-ca.pem")


async def test_enterprise_tls_fields(tmp_path):
    app = wizard(tmp_path, Scanner())
    async with app.run_test(size=(80, 24)) as pilot:
        await set_field(pilot, "ssid", "Plant-Secure")
        await set_choice(pilot, "security", "wpa3-enterprise")
        await set_choice(pilot, "eap-method", "tls")
        assert not app.screen.query_one("#eap-password").display
        await set_field(pilot, "identity", "edge-01")
        await set_field(pilot, "ca-certificate", "/etc/ssl/plant/ca.pem")
        await set_field(pilot, "client-certificate", "etc/ssl/edge.pem")  # relative: refused at the field
        await set_field(pilot, "private-key", "/etc/ssl/plant/edge.key")
        await set_field(pilot, "private-key-password", "K3y-pa55")
        await pilot.press("ctrl+n")
        assert app.step_id == "wireless" and "absolute" in error_at(app, "client-certificate")
        await set_field(pilot, "client-certificate", "/etc/ssl/plant/edge.pem")
        await pilot.press("ctrl+n")
        assert app.step_id != "wireless"
    w = app.plan.wifi
    assert (w.security, w.eap_method, w.client_certificate, w.private_key_password, w.eap_password, w.passphrase) == (
        "wpa3-enterprise", "tls", "/etc/ssl/plant/edge.pem", "K3y-pa55", None, None)


async def test_country_message_at_its_field(tmp_path):
    app = wizard(tmp_path, Scanner())
    async with app.run_test(size=(80, 24)) as pilot:
        await set_field(pilot, "country", "xx")
        await pilot.press("tab")
        assert "wireless-regdb" in error_at(app, "country")
        await focus(pilot, field(app, "country"))
        await replace_text(pilot, "Germany")
        await pilot.press("tab")
        assert "two-letter" in error_at(app, "country")


async def test_plain_mode_is_ascii_and_fits(tmp_path):
    app = wizard(tmp_path, Scanner(AIR[:3]), plain=True)
    async with app.run_test(size=(80, 24)) as pilot:
        await scanned(pilot)
        assert signal_bars(4, True) == "####" and "####" in rows(app)[0]
        assert all(r.isascii() for r in rows(app))
        assert frame_text(app).isascii()
        assert_fits(app)


async def test_enterprise_step_scrolls_but_every_field_is_reachable(tmp_path):
    plan = dataclasses.replace(WIFI, wifi=Wifi(ssid="Plant-Secure", security="wpa2-enterprise", eap_method="tls"))
    app = wizard(tmp_path, Scanner(AIR), plan=plan)
    async with app.run_test(size=(80, 24)) as pilot:
        await scanned(pilot)
        for fid in ("identity", "ca-certificate", "client-certificate", "private-key", "private-key-password",
                    "country"):
            await focus(pilot, field(app, fid))
            await pilot.pause()
            region = app.screen.query_one("#body").region
            assert region.contains_region(field(app, fid).input.region), fid


async def test_cellular_step_names_the_document_not_the_seed(tmp_path):
    plan = dataclasses.replace(WIFI, topology="cellular", uplink=Uplink("wwan0"),
                               cellular=Cellular(acknowledge_unsupported=True))
    app = new_wizard(tmp_path, plan=plan, start_step="cellular")
    async with app.run_test(size=(80, 24)):
        text = body_text(app)
        assert "MachineMetrics, Network Requirements" in text and "seed" not in text.lower()

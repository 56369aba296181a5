"""The network steps (interfaces, addressing, wireless, cellular, services) driven by keyboard
only, at 80x24, through the real WizardApp. Assertions are on the Plan, and on the core's
messages at the fields; secrets are searched for in the rendered screen."""

from __future__ import annotations

import dataclasses

import screens.app as appmod
from installer.box.discover import Inventory
from installer.planning.fields import check_interface_address, check_passphrase, check_proxy_url
from installer.planning.plan import Cellular, Dns, Machine, MachineNetwork, Plan, Uplink, Wifi
from installer.planning.validate import default_context
from installer.vendors.profiles import load_catalog
from screens.base import Choice, Toggle, WizardContext
from screens.interfaces import default_roles
from screens.wireless import parse_mb
from tests.wizard_helpers import INVENTORY, error_at, field, replace_text, type_text
from tests.wizard_helpers import frame_text as screen_text

# The steps before the one under test already done (the addressing tests start without addresses).
ISOLATED = Plan(topology="isolated", machine_network=MachineNetwork(("eno1",), "192.168.50.2/24"),
                uplink=Uplink("enp2s0"), profiles=("machinemetrics",))
NO_ADDRESS = dataclasses.replace(ISOLATED, machine_network=MachineNetwork(("eno1",)))
WIFI = dataclasses.replace(ISOLATED, topology="wifi", uplink=Uplink("wlan0"))
CELLULAR = dataclasses.replace(ISOLATED, topology="cellular", uplink=Uplink("wwan0"),
                               cellular=Cellular(acknowledge_unsupported=True))

def wizard(tmp_path, plan: Plan, step: str, inventory: Inventory | None = INVENTORY) -> appmod.WizardApp:
    kinds = {i.name: i.kind for i in inventory.interfaces} if inventory else None
    context = WizardContext(root=tmp_path, inventory=inventory, validation=default_context(kinds),
                            catalog=load_catalog())
    return appmod.WizardApp(plan, context, start_step=step)


def left(app, step: str) -> bool:
    """Next went through (to the next step, or out of the wizard while later steps are missing)."""
    return app.finished or app.step_id != step


def assert_fits(app) -> None:
    body = app.screen.query_one("#body")
    assert body.max_scroll_y == 0, f"{app.step_id} needs {body.virtual_size.height} rows, has {body.size.height}"


# --------------------------------------------------------------------------- interfaces

def test_default_roles_follow_the_seed_then_the_kinds():
    assert default_roles("isolated", INVENTORY) == (("eno1",), "enp2s0")
    assert default_roles("single", INVENTORY)[1] == "enp2s0"
    assert default_roles("wifi", INVENTORY) == (("eno1",), "wlan0")
    assert default_roles("wireless-bridge", INVENTORY) == (("eno1", "enp2s0"), "wlan0")
    assert default_roles("cellular", INVENTORY) == (("eno1",), "wwan0")
    # Another box's plan (nothing detected): the seed's names; the modem's control port.
    assert default_roles("isolated", None) == (("eno1",), "enp2s0")
    assert default_roles("cellular", None) == (("eno1",), "cdc-wdm0")
    # Other names: the port holding the default route is the uplink.
    other = dataclasses.replace(INVENTORY, interfaces=tuple(
        dataclasses.replace(i, name={"eno1": "eth0", "enp2s0": "eth1"}.get(i.name, i.name))
        for i in INVENTORY.interfaces if i.kind == "wired"), default_gateways=(("10.0.0.1", "eth0"),))
    assert default_roles("isolated", other) == (("eth1",), "eth0")


async def test_interfaces_defaults_and_detected_list(tmp_path):
    app = wizard(tmp_path, Plan(topology="isolated"), "interfaces")
    async with app.run_test(size=(80, 24)) as pilot:
        text = screen_text(app)
        rows = "\n".join(r.text for r in app.screen.query("#detected PortRow"))
        assert "eno1" in rows and "00:30:18:aa:00:02" in rows and "docker0" not in rows
        assert "(not listed: lo, docker0)" in text
        assert field(app, "machine").value == "eno1" and field(app, "uplink").value == "enp2s0"
        assert_fits(app)
        # The machine network's address belongs to the next step: it does not block this one.
        await pilot.press("ctrl+n")
        assert app.step_id == "addressing"
    assert app.plan.machine_network.interfaces == ("eno1",)
    assert app.plan.uplink.interface == "enp2s0"


async def test_interfaces_lists_a_virtual_link_the_plan_names(tmp_path):
    """A VLAN, a bond or a lab's veth the plan already uses is listed as there; other virtual
    links (docker0) stay out of the list."""
    box = Inventory(interfaces=tuple(
        dataclasses.replace(i, kind="virtual") if i.name in ("eno1", "enp2s0") else i
        for i in INVENTORY.interfaces), default_gateways=INVENTORY.default_gateways, stack=INVENTORY.stack)
    app = wizard(tmp_path, ISOLATED, "interfaces", inventory=box)
    async with app.run_test(size=(80, 24)):
        detected = "\n".join(r.text for r in app.screen.query("#detected PortRow"))
        assert "eno1" in detected and "enp2s0" in detected and "virtual" in detected
        assert "docker0" not in detected and "wlan0" in detected
        assert "(not listed: lo, docker0)" in screen_text(app)  # named: the count cannot disagree
        assert_fits(app)
    # A new plan: the seed's default names, there as virtual links, are listed too.
    app = wizard(tmp_path, Plan(topology="isolated"), "interfaces", inventory=box)
    async with app.run_test(size=(80, 24)):
        detected = "\n".join(r.text for r in app.screen.query("#detected PortRow"))
        assert "eno1" in detected and "enp2s0" in detected
        assert field(app, "machine").value == "eno1" and field(app, "uplink").value == "enp2s0"


async def test_interfaces_takes_a_name_discovery_did_not_see(tmp_path):
    app = wizard(tmp_path, Plan(topology="cellular", cellular=Cellular(acknowledge_unsupported=True)),
                 "interfaces", inventory=None)
    async with app.run_test(size=(80, 24)) as pilot:
        assert field(app, "uplink").value == "cdc-wdm0"
        await replace_text(pilot, "eth7")      # the machine port, focused first
        await pilot.press("tab")
        await replace_text(pilot, "cdc-wdm1")  # the modem's control port
        await pilot.press("ctrl+n")
        assert app.step_id == "addressing"
    assert app.plan.machine_network.interfaces == ("eth7",)
    assert app.plan.uplink.interface == "cdc-wdm1"


async def test_interfaces_one_role_per_interface_is_shown_at_the_field(tmp_path):
    app = wizard(tmp_path, Plan(topology="isolated"), "interfaces")
    async with app.run_test(size=(80, 24)) as pilot:
        await replace_text(pilot, "enp2s0")
        await pilot.press("ctrl+n")
        assert app.step_id == "interfaces"
        assert "already the machine network's port" in error_at(app, "uplink")
        # A bad name is judged when the field is left, with the core's words.
        await pilot.press("shift+tab")
        await replace_text(pilot, "eno 1")
        await pilot.press("tab")
        assert "is not an interface name" in error_at(app, "machine")


async def test_interfaces_wireless_bridge_ticks_wired_ports(tmp_path):
    app = wizard(tmp_path, Plan(topology="wireless-bridge"), "interfaces")
    async with app.run_test(size=(80, 24)) as pilot:
        assert [t.value for t in app.screen.query(Toggle)] == [True, True]
        assert_fits(app)
        await pilot.press("tab", "space", "tab")    # untick enp2s0, go to "other ports"
        await type_text(pilot, "eth5")
        # A port this box does not have is refused at its field, with the names it has.
        await pilot.press("ctrl+n")
        assert app.step_id == "interfaces"
        assert error_at(app, "machine") == ("eth5: this box has no interface by that name; "
                                            "it has eno1, enp2s0, wlan0, wwan0, docker0")
        await replace_text(pilot, "")
        await pilot.press("ctrl+n")
        assert app.step_id == "addressing"
    assert app.plan.machine_network.interfaces == ("eno1",)
    assert app.plan.uplink.interface == "wlan0"


async def test_interfaces_wifi_uplink_must_be_wireless(tmp_path):
    # The topology changed from isolated to wifi: the wired uplink does not carry over.
    app = wizard(tmp_path, dataclasses.replace(ISOLATED, topology="wifi"), "interfaces")
    async with app.run_test(size=(80, 24)) as pilot:
        assert field(app, "uplink").value == "wlan0"
        await pilot.press("tab")
        await replace_text(pilot, "enp2s0")
        await pilot.press("ctrl+n")
        assert app.step_id == "interfaces"
        assert "needs a WiFi interface" in error_at(app, "uplink")


# --------------------------------------------------------------------------- addressing

async def test_addressing_static_uplink(tmp_path):
    app = wizard(tmp_path, NO_ADDRESS, "addressing")
    async with app.run_test(size=(80, 24)) as pilot:
        assert "no gateway" in screen_text(app)
        assert not app.screen.query_one("#static").display
        await type_text(pilot, "192.168.50.2/24")
        await pilot.press("tab", "down", "space")  # uplink: DHCP -> Static
        assert app.screen.query_one("#static").display
        assert_fits(app)
        await pilot.press("tab")
        await type_text(pilot, "10.20.0.15/24")
        await pilot.press("enter")                 # Enter moves on, as Tab does
        await type_text(pilot, "10.20.0.1")
        await pilot.press("ctrl+n")
        assert app.step_id == "services"
    mn, up = app.plan.machine_network, app.plan.uplink
    assert mn.address == "192.168.50.2/24" and mn.interfaces == ("eno1",)
    assert (up.interface, up.ipv4, up.address, up.gateway) == ("enp2s0", "static", "10.20.0.15/24", "10.20.0.1")


async def test_addressing_errors_block_next_with_the_cores_words(tmp_path):
    app = wizard(tmp_path, NO_ADDRESS, "addressing")
    async with app.run_test(size=(80, 24)) as pilot:
        await type_text(pilot, "192.168.50.2")
        await pilot.press("tab")                   # left: judged at once
        assert error_at(app, "machine-address") == check_interface_address("192.168.50.2")
        await pilot.press("shift+tab")
        await replace_text(pilot, "192.168.50.0/24")
        await pilot.press("tab", "down", "space", "tab")
        await type_text(pilot, "192.168.50.7/24")  # overlaps the machine network
        await pilot.press("tab")
        await type_text(pilot, "10.9.9.9")         # outside the uplink's subnet
        await pilot.press("tab")
        assert "outside 192.168.50.0/24" in error_at(app, "gateway")
        await pilot.press("ctrl+n")
        assert app.step_id == "addressing"
        assert error_at(app, "machine-address") == check_interface_address("192.168.50.0/24")
        assert "is outside" in error_at(app, "gateway")
        assert "problems to fix before Next" in str(app.screen.query_one("#step-errors").render())


async def test_addressing_cellular_is_dhcp_only(tmp_path):
    plan = dataclasses.replace(CELLULAR, uplink=Uplink("wwan0", ipv4="static", address="10.1.1.2/24"))
    app = wizard(tmp_path, plan, "addressing")
    async with app.run_test(size=(80, 24)) as pilot:
        assert not app.screen.query(Choice)
        assert "DHCP only" in screen_text(app)
        await pilot.press("ctrl+n")
        assert app.step_id == "cellular"
    assert (app.plan.uplink.ipv4, app.plan.uplink.address) == ("dhcp", None)


async def test_addressing_back_and_forth_keeps_what_was_typed(tmp_path):
    app = wizard(tmp_path, NO_ADDRESS, "addressing")
    async with app.run_test(size=(80, 24)) as pilot:
        await type_text(pilot, "192.168.50.2/24")
        await pilot.press("tab", "down", "space", "tab")
        await type_text(pilot, "10.20.0.15/24")
        await pilot.press("tab")
        await type_text(pilot, "10.20.0.1")
        await pilot.press("escape")
        assert app.step_id == "interfaces"
        assert app.plan.uplink.address == "10.20.0.15/24"
        await pilot.press("ctrl+n")
        assert app.step_id == "addressing"
        assert field(app, "machine-address").value == "192.168.50.2/24"
        assert app.screen.query_one("#ipv4", Choice).value == "static"
        assert app.screen.query_one("#static").display
        assert (field(app, "uplink-address").value, field(app, "gateway").value) == ("10.20.0.15/24", "10.20.0.1")
    assert app.plan.uplink.gateway == "10.20.0.1"


# --------------------------------------------------------------------------- wireless

PASSPHRASE = "Zq7-w1f1-Sekr3t"


async def test_wireless_step_and_the_passphrase_is_never_shown(tmp_path):
    app = wizard(tmp_path, WIFI, "wireless")
    async with app.run_test(size=(80, 24)) as pilot:
        assert "Open and WEP networks are refused" in screen_text(app)
        assert_fits(app)
        await type_text(pilot, "Plant-Floor")
        await pilot.press("tab", "down", "space", "tab")  # WPA3-SAE
        await type_text(pilot, PASSPHRASE)
        await pilot.press("tab", "space")                 # hidden network
        await pilot.pause()
        assert PASSPHRASE not in screen_text(app)
        assert PASSPHRASE not in app.export_screenshot()
        await pilot.press("ctrl+n")
        assert left(app, "wireless")
    assert app.plan.wifi == Wifi(ssid="Plant-Floor", security="wpa3-sae", passphrase=PASSPHRASE, hidden=True)


async def test_wireless_bad_passphrase_blocks_next(tmp_path):
    app = wizard(tmp_path, WIFI, "wireless")
    async with app.run_test(size=(80, 24)) as pilot:
        await type_text(pilot, "Plant-Floor")
        await pilot.press("tab", "tab")
        await type_text(pilot, "short")
        await pilot.press("enter")
        assert error_at(app, "passphrase") == check_passphrase("short", "wpa2-psk")
        await pilot.press("ctrl+n")
        assert app.step_id == "wireless"
        assert "short" not in screen_text(app)


async def test_wireless_back_and_forth_keeps_ssid_and_passphrase(tmp_path):
    app = wizard(tmp_path, WIFI, "wireless")
    async with app.run_test(size=(80, 24)) as pilot:
        await type_text(pilot, "Plant-Floor")
        await pilot.press("tab", "tab")
        await type_text(pilot, PASSPHRASE)
        await pilot.press("escape")
        assert app.step_id == "addressing"
        await pilot.press("ctrl+n")
        assert app.step_id == "wireless"
        assert field(app, "ssid").value == "Plant-Floor"
        assert field(app, "passphrase").input.value == PASSPHRASE
        assert PASSPHRASE not in screen_text(app)
    assert app.plan.wifi.passphrase == PASSPHRASE


# --------------------------------------------------------------------------- cellular

async def test_cellular_step_and_the_volume_against_the_cap(tmp_path):
    focas = tuple(Machine(f"Lathe {i}", f"192.168.50.{20 + i}", "fanuc-focas") for i in range(4))
    app = wizard(tmp_path, dataclasses.replace(CELLULAR, machines=focas), "cellular")
    async with app.run_test(size=(80, 24)) as pilot:
        volume = app.screen.query_one("#volume")
        assert "6,480 MB" in str(volume.render()) and "No cap given" in str(volume.render())
        assert_fits(app)
        await type_text(pilot, "internet")
        await pilot.press("tab")
        await type_text(pilot, "edge")
        await pilot.press("tab")
        await type_text(pilot, "apn-pa55")
        await pilot.press("tab")
        await type_text(pilot, "5000")          # 4 x FANUC FOCAS ~ 6,480 MB a month
        assert "WARNING: more than the 5,000 MB cap" in str(volume.render())
        assert "overage charges" in str(volume.render())
        await type_text(pilot, "0")             # 50,000 MB
        assert "Within the 50,000 MB cap" in str(volume.render())
        assert "apn-pa55" not in screen_text(app) and "apn-pa55" not in app.export_screenshot()
        await pilot.press("ctrl+n")
        assert left(app, "cellular")
    c = app.plan.cellular
    assert (c.apn, c.username, c.password, c.data_cap_mb) == ("internet", "edge", "apn-pa55", 50000)
    assert c.acknowledge_unsupported is True


async def test_cellular_cap_must_be_a_number_and_password_needs_a_user(tmp_path):
    app = wizard(tmp_path, CELLULAR, "cellular")
    async with app.run_test(size=(80, 24)) as pilot:
        await type_text(pilot, "internet")
        await pilot.press("tab", "tab")
        await type_text(pilot, "apn-pa55")
        await pilot.press("tab")
        await type_text(pilot, "lots")
        await pilot.press("ctrl+n")
        assert app.step_id == "cellular"
        assert "'lots' is not a data cap" in error_at(app, "cap") and "2 GB" in error_at(app, "cap")
        assert error_at(app, "username") == "a password needs its user name; give both or neither"
        assert app.focused is field(app, "username").input  # the first problem gets the cursor
        await type_text(pilot, "edge")
        await pilot.press("tab", "tab")
        await replace_text(pilot, "-5")
        await pilot.press("tab")
        assert "positive number" in error_at(app, "cap")


def test_parse_mb():
    assert [parse_mb(t) for t in ("5000", "5,000", "5 000", "", "5 GB", "2GB", "500 MB", "1e3", "lots")] == [
        5000, 5000, 5000, None, 5000, 2000, 500, None, None]


# --------------------------------------------------------------------------- services

async def test_services_defaults_are_the_seeds(tmp_path):
    app = wizard(tmp_path, ISOLATED, "services")
    async with app.run_test(size=(80, 24)) as pilot:
        for fid in ("dns-servers", "ntp-servers"):
            assert not field(app, fid).display
        assert not app.screen.query_one("#proxy").display
        await pilot.press("ctrl+n")
        assert left(app, "services")
    assert app.plan.dns == Dns() and app.plan.dns.mode == "google"
    assert app.plan.ntp.mode == "pool" and app.plan.proxy is None


async def test_services_custom_servers_and_proxy(tmp_path):
    app = wizard(tmp_path, ISOLATED, "services")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("down", "down", "space", "tab")   # DNS: custom, then its servers
        await type_text(pilot, "10.20.0.53, 10.20.0.54")
        await pilot.press("tab", "down", "down", "space", "tab")
        await type_text(pilot, "ntp.plant.local")
        await pilot.press("tab", "space", "tab")             # the plant requires a proxy
        assert_fits(app)
        await type_text(pilot, "http://proxy.plant.local:3128")
        await pilot.press("tab")
        await type_text(pilot, "edge")
        await pilot.press("tab")
        await type_text(pilot, "pr0xy-pa55")
        await pilot.press("tab")
        await type_text(pilot, ".plant.local 10.0.0.0/8")
        assert "pr0xy-pa55" not in screen_text(app) and "pr0xy-pa55" not in app.export_screenshot()
        await pilot.press("ctrl+n")
        assert left(app, "services")
    p = app.plan
    assert (p.dns.mode, p.dns.servers) == ("custom", ("10.20.0.53", "10.20.0.54"))
    assert (p.ntp.mode, p.ntp.servers) == ("custom", ("ntp.plant.local",))
    assert (p.proxy.url, p.proxy.username, p.proxy.password) == ("http://proxy.plant.local:3128", "edge", "pr0xy-pa55")
    assert p.proxy.no_proxy == (".plant.local", "10.0.0.0/8")


async def test_services_errors_at_their_fields(tmp_path):
    static = dataclasses.replace(ISOLATED, uplink=Uplink("enp2s0", "static", "10.20.0.15/24", "10.20.0.1"))
    app = wizard(tmp_path, static, "services")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("down", "space")                   # DNS from DHCP, on a static uplink
        await pilot.press("tab", "tab", "space", "tab")      # past NTP; proxy on
        await type_text(pilot, "proxy.plant.local")
        await pilot.press("tab")
        assert error_at(app, "proxy-url") == check_proxy_url("proxy.plant.local")
        await pilot.press("ctrl+n")
        assert app.step_id == "services"
        assert "this uplink is static" in str(app.screen.query_one("#dns", Choice).query_one(".field-error").render())
        assert error_at(app, "proxy-url") == check_proxy_url("proxy.plant.local")
        dns = app.screen.query_one("#dns", Choice)
        assert app.focused is dns.radio_set            # Next blocked: the cursor goes to the first problem
        await pilot.press("down", "space", "tab")      # DNS: custom, then its servers
        assert dns.value == "custom" and app.focused is field(app, "dns-servers").input
        await type_text(pilot, "dns.plant.local")
        await pilot.press("tab")
        assert "is not an IP address" in error_at(app, "dns-servers")


async def test_services_back_and_forth_keeps_what_was_typed(tmp_path):
    app = wizard(tmp_path, ISOLATED, "services")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("tab", "down", "down", "space", "tab")
        await type_text(pilot, "ntp1.plant.local ntp2.plant.local")
        await pilot.press("escape")
        assert app.step_id == "addressing"
        assert app.plan.ntp.servers == ("ntp1.plant.local", "ntp2.plant.local")
        await pilot.press("ctrl+n")
        assert app.step_id == "services"
        assert app.screen.query_one("#ntp", Choice).value == "custom"
        assert field(app, "ntp-servers").display
        assert field(app, "ntp-servers").value == "ntp1.plant.local ntp2.plant.local"

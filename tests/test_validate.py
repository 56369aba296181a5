"""Invalid plans are refused with the field they concern and no traceback; valid ones pass."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from installer.planning import plan as planmod
from installer.planning.validate import Context, validate, validate_document

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((REPO / "examples").glob("*.yaml"))

BASE = """\
version: 1
hostname: edge-01
topology: isolated
renderer: netplan
machine_network:
  interfaces: [eno1]
  address: 192.168.50.2/24
uplink:
  interface: enp2s0
  ipv4: static
  address: 10.20.0.15/24
  gateway: 10.20.0.1
dns: {mode: google}
ntp: {mode: pool}
profiles: [machinemetrics]
machines:
  - {name: Lathe 3, address: 192.168.50.21, controller: fanuc-focas}
"""

WIFI = """\
version: 1
topology: wifi
machine_network: {interfaces: [eno1], address: 192.168.50.2/24}
uplink: {interface: wlan0, ipv4: dhcp}
wifi: {ssid: Plant-Floor, security: wpa2-psk, passphrase: correct horse, hidden: false}
"""

CELL = """\
version: 1
topology: cellular
machine_network: {interfaces: [eno1], address: 192.168.50.2/24}
uplink: {interface: cdc-wdm0, ipv4: dhcp}
cellular: {apn: internet, acknowledge_unsupported: true}
"""


def edit(text: str, **changes) -> str:
    """Apply dotted-path changes to a YAML plan; a value of ... deletes the key."""
    data = yaml.safe_load(text)
    for dotted, value in changes.items():
        keys = dotted.split("__")
        node = data
        for k in keys[:-1]:
            node = node[int(k)] if isinstance(node, list) else node.setdefault(k, {})
        if value is ...:
            node.pop(keys[-1], None)
        elif isinstance(node, list):
            node[int(keys[-1])] = value
        else:
            node[keys[-1]] = value
    return yaml.safe_dump(data, sort_keys=False)


def errors_of(text: str | bytes) -> list[str]:
    """Field paths of every error: parse errors and validation errors alike."""
    try:
        p = planmod.loads(text, "plan.yaml")
    except planmod.PlanError as e:
        return [err.field for err in e.errors]
    return [err.field for err in validate(p)]


INVALID = [
    ("gateway outside the subnet", edit(BASE, uplink__gateway="10.30.0.1"), "uplink.gateway"),
    ("gateway is the uplink's own address", edit(BASE, uplink__gateway="10.20.0.15"), "uplink.gateway"),
    ("static uplink without gateway", edit(BASE, uplink__gateway=...), "uplink.gateway"),
    ("overlapping subnets", edit(BASE, machine_network__address="10.20.0.200/16"), "machine_network.address"),
    ("gateway on the machine network", edit(BASE, machine_network__gateway="192.168.50.1"),
     "machine_network.gateway"),
    ("open WiFi", edit(WIFI, wifi__security="open"), "wifi.security"),
    ("WEP WiFi", edit(WIFI, wifi__security="wep"), "wifi.security"),
    ("7-character passphrase", edit(WIFI, wifi__passphrase="1234567"), "wifi.passphrase"),
    ("64-character non-hex passphrase", edit(WIFI, wifi__passphrase="x" * 64), "wifi.passphrase"),
    ("non-ASCII passphrase", edit(WIFI, wifi__passphrase="pässwörter"), "wifi.passphrase"),
    ("raw hex key with WPA3", edit(WIFI, wifi__security="wpa3-sae", wifi__passphrase="ab" * 32), "wifi.passphrase"),
    ("33-byte SSID", edit(WIFI, wifi__ssid="S" * 33), "wifi.ssid"),
    ("31 characters but 34 bytes SSID", edit(WIFI, wifi__ssid="ü" * 17), "wifi.ssid"),
    ("cellular without acknowledgement", edit(CELL, cellular__acknowledge_unsupported=False),
     "cellular.acknowledge_unsupported"),
    ("cellular acknowledgement missing", edit(CELL, cellular__acknowledge_unsupported=...),
     "cellular.acknowledge_unsupported"),
    ("one interface in two roles", edit(BASE, uplink__interface="eno1"), "uplink.interface"),
    ("misspelt key", BASE.replace("gateway: 10.20.0.1", "gatway: 10.20.0.1"), "uplink.gatway"),
    ("misspelt top-level key", BASE + "profils: [machinemetrics]\n", "profils"),
    ("network address as host address", edit(BASE, machine_network__address="192.168.50.0/24"),
     "machine_network.address"),
    ("broadcast address as host address", edit(BASE, uplink__address="10.20.0.255/24"), "uplink.address"),
    ("address without prefix", edit(BASE, machine_network__address="192.168.50.2"), "machine_network.address"),
    ("loopback address", edit(BASE, machine_network__address="127.0.0.2/8"), "machine_network.address"),
    ("multicast address", edit(BASE, machine_network__address="224.0.0.5/24"), "machine_network.address"),
    ("machine outside the machine subnet", edit(BASE, machines__0__address="192.168.51.21"), "machines[0].address"),
    ("machine at the box's own address", edit(BASE, machines__0__address="192.168.50.2"), "machines[0].address"),
    ("unknown controller", edit(BASE, machines__0__controller="fanuc"), "machines[0].controller"),
    ("garbage bytes", b"\x00\xff\xfe garbage \x81", ""),
    ("not YAML", "version: 1\ntopology: [isolated\n", ""),
    ("a YAML list, not a mapping", "- version: 1\n", ""),
    ("newer version", edit(BASE, version=2), "version"),
    ("missing version", edit(BASE, version=...), "version"),
    ("version as text", edit(BASE, version="1"), "version"),
    ("wrong type", edit(BASE, uplink__address=1234), "uplink.address"),
    ("single with a machine network", edit(BASE, topology="single"), "machine_network"),
    ("isolated with a wireless uplink", edit(BASE, uplink__interface="wlan0"), "uplink.interface"),
    ("wifi topology without wifi section", edit(WIFI, wifi=...), "wifi"),
    ("wifi topology with a wired uplink", edit(WIFI, uplink__interface="enp2s0"), "uplink.interface"),
    ("wireless machine port", edit(WIFI, machine_network__interfaces=["wlan1"]), "machine_network.interfaces[0]"),
    ("isolated with two machine ports", edit(BASE, machine_network__interfaces=["eno1", "eno2"]),
     "machine_network.interfaces"),
    ("cellular with a wired uplink", edit(CELL, uplink__interface="enp2s0"), "uplink.interface"),
    ("cellular with static addressing", edit(CELL, uplink__ipv4="static", uplink__address="10.0.0.2/24",
                                             uplink__gateway="10.0.0.1"), "uplink.ipv4"),
    ("unknown topology", edit(BASE, topology="mesh"), "topology"),
    ("custom DNS without servers", edit(BASE, dns={"mode": "custom"}), "dns.servers"),
    ("DNS server that is a name", edit(BASE, dns={"mode": "custom", "servers": ["dns.plant"]}), "dns.servers[0]"),
    ("DHCP DNS on a static uplink", edit(BASE, dns={"mode": "dhcp"}), "dns.mode"),
    ("DHCP NTP on a static uplink", edit(BASE, ntp={"mode": "dhcp"}), "ntp.mode"),
    ("proxy without port", edit(BASE, proxy={"url": "http://proxy.plant.local"}), "proxy.url"),
    ("proxy without scheme", edit(BASE, proxy={"url": "proxy.plant.local:3128"}), "proxy.url"),
    ("proxy with credentials in the URL", edit(BASE, proxy={"url": "http://u:p@proxy:3128"}), "proxy.url"),
    ("proxy password without user", edit(BASE, proxy={"url": "http://proxy:3128", "password": "x"}),
     "proxy.username"),
    ("unknown profile", edit(BASE, profiles=["machinemetric"]), "profiles[0]"),
    ("siemens without its IEM host", edit(BASE, profiles=["siemens-industrial-edge"]),
     "profile_params.siemens-industrial-edge.iem_host"),
    ("bad hostname", edit(BASE, hostname="edge_01!"), "hostname"),
    ("bad interface name", edit(BASE, uplink__interface="enp2s0 extra"), "uplink.interface"),
    ("duplicate key", BASE + "topology: single\n", ""),
    ("relative CA file", edit(BASE, tls={"extra_ca_file": "plant-ca.pem"}), "tls.extra_ca_file"),
    ("negative data cap", edit(CELL, cellular__data_cap_mb=-5), "cellular.data_cap_mb"),
    ("a single string where a list belongs", edit(BASE, machine_network__interfaces="eno1"),
     "machine_network.interfaces"),
]


@pytest.mark.parametrize("text, field", [(t, f) for _, t, f in INVALID], ids=[n for n, _, _ in INVALID])
def test_invalid_plan_is_refused_at_its_field(text, field):
    fields = errors_of(text)
    assert field in fields, f"expected an error at {field!r}, got {fields}"


def test_the_table_is_big_enough():
    assert len(INVALID) >= 25


@pytest.mark.parametrize("text", [BASE, WIFI, CELL], ids=["isolated", "wifi", "cellular"])
def test_base_plans_are_valid(text):
    assert errors_of(text) == []


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_examples_are_valid(path):
    assert validate(planmod.load(path)) == []


def test_messages_say_what_would_be_valid():
    p = planmod.loads(edit(BASE, uplink__gateway="10.30.0.1"))
    (err,) = [e for e in validate(p) if e.field == "uplink.gateway"]
    assert "10.20.0.0/24" in err.message
    p = planmod.loads(edit(WIFI, wifi__security="wep"))
    (err,) = [e for e in validate(p) if e.field == "wifi.security"]
    assert "wpa2-psk" in err.message and "WPA2/WPA3" in err.message
    with pytest.raises(planmod.PlanError) as e:
        planmod.loads(BASE.replace("gateway:", "gatway:"), "x.yaml")
    assert "did you mean 'gateway'" in str(e.value) and str(e.value).startswith("x.yaml: uplink.gatway")


def test_discovered_kinds_override_names():
    """A box whose WiFi is called eth1 (a USB dongle) is judged by what discovery saw."""
    p = planmod.loads(edit(WIFI, uplink__interface="eth1"))
    ctx = Context(interface_kinds={"eth1": "wireless", "eno1": "wired"}, profiles={}, controllers=frozenset())
    assert validate(p, ctx) == []
    assert "uplink.interface" in [e.field for e in validate(p)]


def test_box_without_networkmanager_refuses_cellular():
    from installer.render import Target

    p = planmod.loads(CELL)
    ctx = Context(profiles={}, controllers=frozenset(), target=Target(networkmanager_installed=False))
    found = [e for e in validate(p, ctx) if e.field == "topology"]
    assert found and "network-manager" in found[0].message


@pytest.mark.parametrize("passphrase", ["12345678", "x" * 63, "ab" * 32, "p@ss:w#rd![ with spaces"])
def test_passphrase_boundaries_accepted(passphrase):
    assert errors_of(edit(WIFI, wifi__passphrase=passphrase)) == []


def test_ssid_of_32_bytes_accepted():
    assert errors_of(edit(WIFI, wifi__ssid="S" * 32)) == []


def test_round_trip_is_stable():
    for path in EXAMPLES:
        p = planmod.load(path)
        text = planmod.dumps(p)
        assert planmod.loads(text) == p
        assert planmod.dumps(planmod.loads(text)) == text


def test_validate_document_never_raises_on_odd_shapes():
    for data in [None, 1, "x", [], {"version": 1, "uplink": []}, {"version": 1, "machines": [None]},
                 {"version": 1, "profile_params": {"x": 3}}, {"version": 1, 3: 4}]:
        plan, errors = validate_document(data)
        assert errors, data


def test_redacted_hides_every_secret():
    p = planmod.loads(edit(CELL, cellular__username="u", cellular__password="cell-secret"))
    text = planmod.dumps(p.redacted())
    assert "cell-secret" not in text and planmod.REDACTED in text
    assert p.secrets() == ["cell-secret"]


def test_cli_validate_exit_codes(tmp_path):
    good = tmp_path / "good.yaml"
    good.write_text(BASE)
    bad = tmp_path / "bad.yaml"
    bad.write_text(edit(BASE, uplink__gateway="10.30.0.1", machines__0__address="192.168.51.21"))

    def run(*a: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "installer", *a], capture_output=True, text=True, cwd=REPO)

    r = run("validate", str(good))
    assert r.returncode == 0, r.stderr
    r = run("validate", str(bad))
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith(f"{bad}: ") for line in lines)
    assert "Traceback" not in r.stderr
    for args in (["validate", str(tmp_path / "missing.yaml")], ["validate", str(tmp_path)], ["validate"],
                 ["frobnicate"]):
        r = run(*args)
        assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.strip(), args


def test_a_vlan_or_veth_may_take_a_wired_role_but_not_a_wireless_one():
    ctx = Context(interface_kinds={"eno1.100": "virtual", "veth0": "virtual", "wlan0": "wireless"},
                  profiles={}, controllers=frozenset())
    plan = planmod.loads(edit(BASE, machine_network__interfaces=["eno1.100"], uplink__interface="veth0",
                              machines=[], profiles=[]))
    assert validate(plan, ctx) == []
    plan = planmod.loads(edit(WIFI, uplink__interface="veth0"))
    assert "uplink.interface" in [e.field for e in validate(plan, ctx)]

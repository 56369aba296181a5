"""`--set KEY=VALUE`: each key of the validation's paths, errors that name the key and what
would be valid, and (generated) a set changes exactly the named field.

EDGE_INSTALLER_SET_EXAMPLES sets max_examples per property (default 500); the counts are printed.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from installer.planning import plan as P
from installer.planning.setfield import SetError, apply_sets, check_key, settable_keys
from installer.planning.validate import validate
from tests.strategies import valid_plans

REPO = Path(__file__).resolve().parent.parent
EXAMPLES = int(os.environ.get("EDGE_INSTALLER_SET_EXAMPLES", "500"))


def flat(value: Any, path: str = "") -> dict[str, Any]:
    """A plan's data by field path, as validation names fields (lists of text kept whole)."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(flat(v, f"{path}.{k}" if path else k))
        return out or {path: {}}
    if isinstance(value, list) and any(isinstance(v, dict) for v in value):
        out = {path: len(value)}
        for i, v in enumerate(value):
            out.update(flat(v, f"{path}[{i}]"))
        return out
    return {path: value}


def changed(a: P.Plan, b: P.Plan) -> set[str]:
    fa, fb = flat(a.to_dict()), flat(b.to_dict())
    return {k for k in fa.keys() | fb.keys() if fa.get(k, "<absent>") != fb.get(k, "<absent>")}


def errors_of(plan: P.Plan, *sets: str) -> list[str]:
    with pytest.raises(SetError) as e:
        apply_sets(plan, list(sets))
    return [str(err) for err in e.value.errors]


@pytest.fixture
def isolated() -> P.Plan:
    return P.load(REPO / "examples/isolated-proxy.yaml")


@pytest.fixture
def wifi() -> P.Plan:
    return P.load(REPO / "examples/wifi.yaml")


@pytest.mark.parametrize("item,path,expected", [
    ("hostname=edge-07", "hostname", "edge-07"),
    ("machine_network.address=192.168.50.3/24", "machine_network.address", "192.168.50.3/24"),
    ("uplink.address=10.20.0.17/24", "uplink.address", "10.20.0.17/24"),
    ("uplink.gateway=10.20.0.254", "uplink.gateway", "10.20.0.254"),
    ("dns.servers=10.20.0.60, 10.20.0.61", "dns.servers", ["10.20.0.60", "10.20.0.61"]),
    ("dns.servers[1]=10.20.0.99", "dns.servers", ["10.20.0.53", "10.20.0.99"]),
    ("machines[0].address=192.168.50.40", "machines[0].address", "192.168.50.40"),
    ("machines[0].name=Press 2", "machines[0].name", "Press 2"),
    ("profile_params.siemens-industrial-edge.iem_host=iem2.plant.local",
     "profile_params.siemens-industrial-edge.iem_host", "iem2.plant.local"),
    ("proxy.password= new:p@ss #1", "proxy.password", " new:p@ss #1"),
    ("proxy.no_proxy=.plant.local,historian", "proxy.no_proxy", [".plant.local", "historian"]),
    ("ntp.servers=ntp1.plant.local", "ntp.servers", ["ntp1.plant.local"]),
    ("tls.extra_ca_file=", "tls.extra_ca_file", None),
])
def test_set_changes_exactly_the_named_field(isolated, item, path, expected):
    new = apply_sets(isolated, [item])
    assert flat(new.to_dict())[path] == expected
    assert changed(isolated, new) == {path}
    assert validate(new) == []


def test_set_on_the_wifi_fields(wifi):
    new = apply_sets(wifi, ["wifi.passphrase=another passphrase", "wifi.hidden=yes", "hostname=edge-04"])
    assert changed(wifi, new) == {"wifi.passphrase", "wifi.hidden", "hostname"}
    assert new.wifi.passphrase == "another passphrase" and new.wifi.hidden is True


def test_several_sets_for_the_next_box(isolated):
    new = apply_sets(isolated, ["hostname=edge-03", "uplink.address=10.30.0.16/24", "uplink.gateway=10.30.0.1"])
    assert changed(isolated, new) == {"hostname", "uplink.address", "uplink.gateway"}


@pytest.mark.parametrize("item,expected", [
    ("uplink.gatway=10.20.0.1", "uplink.gatway: unknown key; did you mean 'uplink.gateway'? (settable here: "
                                "uplink.interface, uplink.ipv4, uplink.address, uplink.gateway)"),
    ("hostnme=x", "hostnme: unknown key; did you mean 'hostname'?"),
    ("machines[5].address=192.168.50.9", "machines[5].address: index 5 is out of range; the plan has 1 machine(s): "
                                         "machines[0] to machines[0]"),
    ("machines[x].address=1.2.3.4", "machines[x].address: [x] is not an index; use a whole number from 0"),
    ("machines[-1].address=1.2.3.4", "[-1] is not an index"),
    ("machines.address=1.2.3.4", "name one machine by its index, e.g. machines[0].address"),
    ("machines[0].ip=1.2.3.4", "machines[0].ip: unknown key; did you mean 'machines[0].name'?"),
    ("dns.servers[4]=10.0.0.1", "dns.servers[4]: index 4 is out of range; the plan has 2 item(s): dns.servers[0] to "
                                "dns.servers[1]"),
    ("uplink=static", "uplink: is a section; set one of its fields: uplink.interface"),
    ("uplink.address.x=1", "uplink.address has no fields below it"),
    ("hostname[0]=x", "hostname is not a list"),
    ("version=2", "version: the plan's format version is not a field to set"),
    ("profile_params.x=1", "give profile_params.PROFILE.PARAMETER"),
    ("machine_network.address=192.168.50.300/24",
     "machine_network.address: '192.168.50.300/24' is not an IPv4 address with prefix length, e.g. 192.168.50.2/24"),
    ("machine_network.address=192.168.50.2", "machine_network.address: add the prefix length, e.g. 192.168.50.2/24"),
    ("uplink.gateway=10.99.0.1", "uplink.gateway: 10.99.0.1 is outside 10.20.0.0/24; use an address inside it"),
    ("hostname=edge_01", "hostname: 'edge_01' is not a valid host name"),
    ("dns.servers=10.0.0.1,,10.0.0.2", "dns.servers: has an empty item"),
    ("dns.servers=resolver.plant", "dns.servers[0]: 'resolver.plant' is not an IP address"),
    ("machines[0].controller=lathe", "machines[0].controller: 'lathe' is not a known controller; use one of"),
    ("uplink.ipv4=auto", "uplink.ipv4: 'auto' is not a mode; use dhcp or static"),
    ("profile_params.siemens-industrial-edge.iem_port=1",
     "profile siemens-industrial-edge has no parameter 'iem_port'"),
    ("nonsense", "nonsense: give KEY=VALUE"),
    ("=x", "give KEY=VALUE"),
])
def test_bad_sets_name_the_key_and_what_would_be_valid(isolated, item, expected):
    assert any(expected in e for e in errors_of(isolated, item)), errors_of(isolated, item)


def test_bool_and_number_fields(wifi):
    assert errors_of(wifi, "wifi.hidden=maybe") == ["wifi.hidden: must be true or false, got 'maybe'"]
    cell = P.load(REPO / "examples/cellular.yaml")
    assert apply_sets(cell, ["cellular.data_cap_mb=7000"]).cellular.data_cap_mb == 7000
    assert errors_of(cell, "cellular.data_cap_mb=lots") == ["cellular.data_cap_mb: 'lots' is not a data cap; give a "
                                                            "monthly volume in MB or GB, e.g. 5000, 5000 MB or 2 GB "
                                                            "(1 GB = 1000 MB)"]
    assert any("positive number" in e for e in errors_of(cell, "cellular.data_cap_mb=-5"))


def test_a_set_that_breaks_another_field_says_so(isolated):
    # The gateway is no longer inside the new uplink subnet: the error names uplink.gateway.
    assert errors_of(isolated, "uplink.address=10.30.0.16/24") == [
        "uplink.gateway: 10.20.0.1 is outside 10.30.0.0/24; use an address inside it"]


def test_empty_value_clears_to_the_default(isolated):
    assert apply_sets(isolated, ["hostname="]).hostname is None
    assert any("dns.servers: mode custom needs at least one server" in e for e in errors_of(isolated, "dns.servers="))
    assert apply_sets(isolated, ["uplink.ipv4=", "uplink.address=", "uplink.gateway=", "dns.mode=google",
                                 "dns.servers=", "ntp.mode=pool", "ntp.servers="]).uplink == P.Uplink("enp2s0")


def test_problems_the_plan_already_had_are_not_the_sets_fault(wifi):
    bare = dataclasses.replace(wifi, wifi=dataclasses.replace(wifi.wifi, passphrase=None))
    assert [e.field for e in validate(bare)] == ["wifi.passphrase"]
    assert apply_sets(bare, ["hostname=edge-09"]).hostname == "edge-09"
    assert apply_sets(bare, ["wifi.passphrase=now it is set"]).wifi.passphrase == "now it is set"
    assert errors_of(bare, "wifi.passphrase=short") == [
        "wifi.passphrase: is 5 characters; a WPA passphrase has 8-63 characters"]


def test_setting_a_field_of_an_absent_section_creates_it(isolated):
    plan = dataclasses.replace(isolated, proxy=None)
    new = apply_sets(plan, ["proxy.url=http://proxy.plant.local:8080"])
    assert new.proxy == P.Proxy(url="http://proxy.plant.local:8080")


def test_the_same_key_twice_is_refused(isolated):
    assert errors_of(isolated, "hostname=a", "hostname=b") == ["hostname: is set twice; give each key once"]


def test_check_key_judges_the_key_alone(isolated):
    assert check_key(isolated, "uplink.gateway") is None
    assert check_key(isolated, "wifi.hidden") is None  # a value problem ("x"), not a key problem
    assert "unknown key" in check_key(isolated, "uplink.gw")
    assert "out of range" in check_key(isolated, "machines[3].address")
    assert "machines[N].address" in settable_keys() and "wifi.passphrase" in settable_keys()


# ---------------------------------------------------------------------------------------
# Generated: a set changes exactly its field; any KEY=VALUE text fails only as SetError.

COUNTS: dict[str, int] = {}
_settings = settings(max_examples=EXAMPLES, deadline=None, database=None,
                     suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


@st.composite
def plan_and_set(draw):
    plan = draw(valid_plans())
    choices = ["hostname"]
    if plan.dns.mode == "custom":
        choices.append("dns.servers")
    if plan.machines:
        choices.append("machines.name")
    if plan.wifi:
        choices += ["wifi.hidden", "wifi.ssid"]
    if plan.proxy:
        choices.append("proxy.no_proxy")
    if plan.cellular:
        choices.append("cellular.data_cap_mb")
    which = draw(st.sampled_from(choices))
    if which == "hostname":
        value = draw(st.from_regex(r"\A[a-z][a-z0-9-]{0,20}[a-z0-9]\Z").filter(lambda h: h != plan.hostname))
        return plan, "hostname", value
    if which == "dns.servers":
        return plan, "dns.servers", draw(st.sampled_from(["10.9.9.9", "10.9.9.9,2001:db8::53"]))
    if which == "machines.name":
        i = draw(st.integers(0, len(plan.machines) - 1))
        return plan, f"machines[{i}].name", f"Renamed {i}"
    if which == "wifi.hidden":
        return plan, "wifi.hidden", str(not plan.wifi.hidden).lower()
    if which == "wifi.ssid":
        return plan, "wifi.ssid", draw(st.sampled_from(["Plant-2", "Hall 7 AP", "Ünicode"]).filter(
            lambda s: s != plan.wifi.ssid))
    if which == "proxy.no_proxy":
        return plan, "proxy.no_proxy", ".other.local,10.9.0.0/16"
    return plan, "cellular.data_cap_mb", str((plan.cellular.data_cap_mb or 0) + 1)


def test_generated_set_changes_exactly_the_named_field(capsys):
    @_settings
    @given(plan_and_set())
    def check(case):
        plan, key, value = case
        COUNTS["set"] = COUNTS.get("set", 0) + 1
        new = apply_sets(plan, [f"{key}={value}"])
        assert changed(plan, new) == {key}
        assert validate(new) == []

    check()
    with capsys.disabled():
        print(f"\n[hypothesis] --set exactly one field: {COUNTS['set']} generated cases")
    assert COUNTS["set"] >= min(EXAMPLES, 50)


def test_arbitrary_set_items_fail_only_as_set_errors(isolated, capsys):
    keys = st.sampled_from(settable_keys() + ["machines[0].address", "dns.servers[0]", "profiles[0]",
                                              "profile_params.a.b", "x[", "a..b", "machines[99999999].name"])

    @_settings
    @given(st.one_of(st.text(max_size=60), st.builds(lambda k, v: f"{k}={v}", keys, st.text(max_size=40))))
    def check(item):
        COUNTS["any"] = COUNTS.get("any", 0) + 1
        try:
            apply_sets(isolated, [item])
        except SetError as e:
            assert e.errors and all(err.message for err in e.errors)

    check()
    with capsys.disabled():
        print(f"\n[hypothesis] arbitrary --set items: {COUNTS['any']} generated cases")

"""The netplan file written the fast way (libyaml's emitter for tame data, installer.render.
yamltext) is byte for byte what PyYAML's own emitter writes: for every quoting hazard in the
values a technician types (SSID, passphrase, APN, identity) and for generated plans. The golden
trees (tests/test_golden.py) pin the bytes of the examples."""

from __future__ import annotations

import pytest
import yaml
from hypothesis import HealthCheck, given, settings

from installer.planning.setfield import apply_sets
from installer.render import Target, yamltext
from installer.render import netplan as netplan_renderer
from tests.strategies import valid_plans
from tests.test_fleet import HAZARDS, SEED_EXAMPLES

TARGETS = (Target(), Target(netplan_version=(1, 1), networkmanager=True))


def both_ways(plan, target, monkeypatch):
    """(the file as rendered, the file with PyYAML's emitter only)."""
    fast = netplan_renderer.render(plan, target)[0].content
    with monkeypatch.context() as m:
        m.setattr(netplan_renderer, "_FastDumper", None)
        slow = netplan_renderer.render(plan, target)[0].content
    return fast, slow


@pytest.fixture(autouse=True)
def libyaml():
    if not yamltext.WITH_LIBYAML:
        pytest.skip("PyYAML without libyaml here: netplan files are written by its pure-Python emitter only")


def wifi_plan(ssid: str, passphrase: str):
    from tests.hostile_bundles import base_plan

    return apply_sets(base_plan(), [f"wifi.ssid={ssid}", f"wifi.passphrase={passphrase}"])


def test_every_quoting_hazard_in_ssid_and_passphrase(monkeypatch):
    tried = fast_way = 0
    for text in HAZARDS:
        ssid = text.strip().replace("\n", " ")[:32] or "x"
        passphrase = (text.replace("\n", "x") + "12345678")[:63]
        try:
            plan = wifi_plan(ssid, passphrase)
        except Exception:  # a value the plan refuses (validation says why): nothing to render
            continue
        for target in TARGETS:
            fast, slow = both_ways(plan, target, monkeypatch)
            assert fast == slow, (ssid, passphrase, target)
            tried += 1
            fast_way += yamltext.tame(yaml.safe_load(fast))
    assert tried > len(HAZARDS) and fast_way == tried  # typed values are printable ASCII: all went fast


def test_generated_plans(monkeypatch):
    @settings(max_examples=SEED_EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])
    @given(valid_plans())
    def check(plan):
        if plan.renderer != "netplan":
            return
        for target in TARGETS:
            fast, slow = both_ways(plan, target, monkeypatch)
            assert fast == slow

    check()


def test_text_libyaml_writes_otherwise_goes_the_slow_way(monkeypatch):
    # An astral character: libyaml would escape it; PyYAML writes it as it is. Not tame, so slow.
    plan = wifi_plan("caf\u00e9 \U0001F600", "passphrase-1")
    fast, slow = both_ways(plan, Target(), monkeypatch)
    assert fast == slow and "\U0001F600".encode() in fast
    assert not yamltext.tame(yaml.safe_load(fast))

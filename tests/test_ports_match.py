"""Ports that follow the hardware (issue 12, part 4): a plan binds a role to a MAC, a driver or a
udev path, the renderers make the backends find that port (judged by netplan, libnm and udev's
own .link parser), and the checks find it on a box that names it otherwise.

The resolver and the link check run on real kernel interfaces: veth and bridge links in a network
namespace this module creates and deletes (no address outside 198.51.100.0/24, nothing sent).
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from installer.fleet.build import read_devices
from installer.fleet.bundle import per_box_fields
from installer.planning import plan as planmod
from installer.planning.plan import Port
from installer.planning.setfield import SetError, apply_sets
from installer.planning.validate import validate
from installer.render import NETPLAN_FILE, Target, render
from tests.judges import judge_trees, nm_verify, require_tools

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "ports-by-mac.yaml"
MAC_A = "52:54:00:12:34:56"
MAC_B = "52:54:00:65:43:21"

needs_root = pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("ip"),
                                reason="NEEDS ROOT and iproute2: the test makes its own network namespace")


# ---------------------------------------------------------------------------------------
# The plan: format, validation, --set, bundles and fleets.

def test_the_example_is_valid_and_round_trips():
    plan = planmod.load(EXAMPLE)
    assert validate(plan) == []
    assert plan.port("eno1") == Port("eno1", mac=MAC_A) and plan.port("enp2s0") == Port("enp2s0", driver="igb")
    assert planmod.loads(planmod.dumps(plan)) == plan
    assert "ports:\n  eno1:\n    mac: '52:54:00:12:34:56'\n  enp2s0:\n    driver: igb\n" in planmod.dumps(plan)
    # A plan without bindings dumps no `ports` key: older files and dumps stay as they were.
    assert "ports" not in planmod.dumps(dataclasses.replace(plan, ports=()))


def _errors(plan, **ports) -> dict[str, str]:
    bound = dataclasses.replace(plan, ports=tuple(Port(name, **spec) for name, spec in ports.items()))
    return {e.field: e.message for e in validate(bound) if e.field.startswith("ports")}


@pytest.mark.parametrize("ports,field,words", [
    ({"eno1": {"mac": "52:54:00:12:34"}}, "ports.eno1.mac", "six hex bytes"),
    ({"eno1": {"mac": "01:00:5e:00:00:01"}}, "ports.eno1.mac", "multicast"),
    ({"eno1": {"mac": "00:00:00:00:00:00"}}, "ports.eno1.mac", "no port's address"),
    ({"eno1": {"driver": "ig*"}}, "ports.eno1.driver", "no wildcards"),
    ({"eno1": {"path": "0000:02:00.0"}}, "ports.eno1.path", "ID_PATH"),
    ({"eno1": {"mac": MAC_A, "driver": "igb"}}, "ports.eno1", "exactly one"),
    ({"eno1": {}}, "ports.eno1", "one of mac, driver or path"),
    ({"eno9": {"mac": MAC_A}}, "ports.eno9", "did you mean 'eno1'"),
    ({"eno1.100": {"mac": MAC_A}}, "ports.eno1.100", "bind that port instead"),
    ({"eno1": {"mac": MAC_A}, "enp2s0": {"mac": MAC_A.upper()}}, "ports.enp2s0.mac", "same mac"),
    ({"eno1": {"driver": "igb"}, "enp2s0": {"driver": "igb"}}, "ports.enp2s0.driver", "cannot be told apart"),
])
def test_bindings_are_validated(ports, field, words):
    found = _errors(planmod.load(EXAMPLE), **ports)
    assert field in found and words in found[field], found


def test_a_wireless_port_may_be_bound_by_mac_and_a_modem_not_at_all():
    wifi = planmod.load(ROOT / "examples" / "wifi.yaml")
    assert _errors(wifi, **{wifi.uplink.interface: {"mac": MAC_B}}) == {}
    cell = planmod.load(ROOT / "examples" / "cellular.yaml")
    assert "ModemManager" in _errors(cell, **{cell.uplink.interface: {"mac": MAC_B}})[f"ports.{cell.uplink.interface}"]


def test_a_mac_without_quotes_is_named_with_them():
    text = EXAMPLE.read_text().replace('{mac: "52:54:00:12:34:56"}', "{mac: 52:54:00:12:34:56}")
    with pytest.raises(planmod.PlanError) as e:
        planmod.loads(text, "p.yaml")
    assert "p.yaml: ports.eno1.mac: put the MAC address in quotes, mac: '52:54:00:12:34:56'" in str(e.value)


def test_set_and_fleet_carry_the_per_box_mac(tmp_path):
    plan = planmod.load(EXAMPLE)
    assert per_box_fields(plan) == ["hostname", "machine_network.address", "ports.eno1.mac"]
    nxt = apply_sets(plan, [f"ports.eno1.mac={MAC_B}"])
    assert nxt.port("eno1") == Port("eno1", mac=MAC_B) and nxt.port("enp2s0") == plan.port("enp2s0")
    assert apply_sets(plan, ["ports.eno1.path=pci-0000:03:00.0"]).port("eno1") == Port("eno1", path="pci-0000:03:00.0")
    assert apply_sets(plan, ["ports.eno1.mac="]).port("eno1") is None
    with pytest.raises(SetError) as e:
        apply_sets(plan, ["ports.eno1.mca=x"])
    assert "did you mean 'ports.eno1.mac'" in str(e.value)
    with pytest.raises(SetError) as e:
        apply_sets(plan, ["ports.eno1.mac=52-54-00"])
    assert "ports.eno1.mac" in str(e.value) and "six hex bytes" in str(e.value)
    devices = read_devices(f"hostname,machine_network.address,ports.eno1.mac\n"
                           f"edge-02,192.168.50.3/24,{MAC_B}\nedge-03,192.168.50.4/24,52:54:00:00:00:03\n", plan)
    assert [d.plan.port("eno1").mac for d in devices] == [MAC_B, "52:54:00:00:00:03"]
    netplan = next(f for f in render(devices[0].plan, Target()) if f.path == NETPLAN_FILE).text
    eno1 = yaml.safe_load(netplan)["network"]["ethernets"]["eno1"]
    assert eno1["match"] == {"macaddress": MAC_B} and eno1["set-name"] == "eno1"


# ---------------------------------------------------------------------------------------
# The renderers, judged by the real tools.

def _write(files, root: Path) -> None:
    for f in files:
        p = root / f.path.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(f.content)
        p.chmod(f.mode)


def test_netplan_matches_and_renames_on_both_backends(tmp_path):
    require_tools()
    plan = dataclasses.replace(planmod.load(EXAMPLE), ports=(Port("eno1", mac=MAC_A.upper()),
                                                            Port("enp2s0", driver="igb")))
    for backend, target in (("networkd", Target()), ("nm", Target(networkmanager=True))):
        root = tmp_path / backend
        _write(render(plan, target), root)
        assert judge_trees([root]) == []
        links = {p.name: p.read_text() for p in (root / "run/systemd/network").glob("*.link")}
        # netplan hands udev a rename rule per bound port: the plan's name on any box.
        assert "PermanentMACAddress=52:54:00:12:34:56" in links["10-netplan-eno1.link"]
        assert "Name=eno1" in links["10-netplan-eno1.link"]
        assert "Driver=igb" in links["10-netplan-enp2s0.link"] and "Name=enp2s0" in links["10-netplan-enp2s0.link"]


def test_keyfiles_bind_by_networkmanagers_own_matching(tmp_path):
    require_tools()
    plan = dataclasses.replace(planmod.load(EXAMPLE), renderer="networkmanager",
                               ports=(Port("eno1", mac=MAC_A), Port("enp2s0", path="pci-0000:02:00.0")))
    _write(render(plan, Target()), tmp_path)
    conns = tmp_path / "etc/NetworkManager/system-connections"
    results = nm_verify(sorted(conns.glob("*.nmconnection")))
    assert all(r.ok for r in results.values()), results
    machines = results[conns / "edge-machines.nmconnection"].settings
    uplink = results[conns / "edge-uplink.nmconnection"].settings
    assert machines["ethernet.mac-address"].lower() == MAC_A and machines["connection.interface-name"] is None
    assert uplink["match.path"] == ["pci-0000:02:00.0"] and uplink["connection.interface-name"] is None
    driver = dataclasses.replace(plan, ports=(Port("enp2s0", driver="igb"),))
    _write(render(driver, Target()), tmp_path / "d")
    path = tmp_path / "d/etc/NetworkManager/system-connections/edge-uplink.nmconnection"
    result = nm_verify([path])[path]
    assert result.ok and result.settings["match.driver"] == ["igb"], result


def _udevadm() -> str | None:
    return os.environ.get("EDGE_INSTALLER_UDEVADM") or shutil.which("udevadm", path="/usr/bin:/bin:/usr/sbin:/sbin")


def test_a_path_binding_is_a_link_file_udev_parses(tmp_path):
    """netplan cannot match ID_PATH: a systemd .link file names the port. Judged by udev's own
    parser (udevadm test-builtin net_setup_link loads every .link file, saying what it cannot
    read), in a private mount namespace whose /usr/lib/systemd/network is our directory."""
    udevadm = _udevadm()
    if udevadm is None or os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root, unshare and udevadm (Debian package udev; or EDGE_INSTALLER_UDEVADM)")
    plan = dataclasses.replace(planmod.load(EXAMPLE), ports=(Port("enp2s0", path="pci-0000:02:00.0"),))
    files = [f for f in render(plan, Target()) if f.path.endswith(".link")]
    assert [f.path for f in files] == ["/etc/systemd/network/10-edge-installer-enp2s0.link"]
    assert files[0].mode == 0o644 and "[Match]\nPath=pci-0000:02:00.0\n\n[Link]\nName=enp2s0\n" in files[0].text
    netplan = render(plan, Target())
    assert "match" not in next(f for f in netplan if f.path.endswith("90-edge-installer.yaml")).text
    assert not [f for f in render(dataclasses.replace(plan, renderer="networkmanager"), Target())
                if f.path.endswith(".link")]  # NetworkManager matches the path itself

    def parse(text: str) -> str:
        d = tmp_path / "links"
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir()
        (d / "10-edge-installer-enp2s0.link").write_text(text)
        script = (f"mount --bind {d} /usr/lib/systemd/network && "
                  f"SYSTEMD_LOG_LEVEL=debug {udevadm} test-builtin net_setup_link /sys/class/net/lo")
        proc = subprocess.run(["unshare", "-m", "sh", "-c", script], capture_output=True, text=True, timeout=30)
        return proc.stdout + proc.stderr

    out = parse(files[0].text)
    assert "Parsed configuration file" in out and "10-edge-installer-enp2s0.link" in out, out
    assert "Unknown" not in out and "ignoring file" not in out, out
    # The judge can fail: a misspelt key is reported by the same parser.
    bad = parse(files[0].text.replace("Path=", "Pth="))
    assert "Unknown key 'Pth'" in bad, bad


# ---------------------------------------------------------------------------------------
# The resolver and the link check, on real interfaces in a namespace of this test's own.

NS = f"eiports{os.getpid()}"


@pytest.fixture(scope="module")
def netns():
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("NEEDS ROOT and iproute2: the test makes its own network namespace")

    def ip(*argv: str) -> None:
        subprocess.run(["ip", "-n", NS, *argv], check=True, capture_output=True, timeout=10)

    subprocess.run(["ip", "netns", "add", NS], check=True, capture_output=True, timeout=10)
    try:
        # Kernel names unlike the plan's: the next box model calls its ports otherwise.
        ip("link", "add", "enx1", "type", "veth", "peer", "name", "enx2")
        # This kernel has no dummy module (modprobe is not ours to run): a bridge is the
        # one link of its driver here, as dummy would be.
        ip("link", "add", "bx0", "type", "bridge")
        ip("link", "set", "enx1", "address", MAC_A)
        ip("link", "set", "enx2", "address", MAC_B)
        ip("address", "add", "198.51.100.2/24", "dev", "enx1")
        for name in ("enx1", "enx2", "bx0"):
            ip("link", "set", name, "up")
        yield NS
    finally:
        subprocess.run(["ip", "netns", "del", NS], capture_output=True, timeout=10)


def in_ns(code: str) -> object:
    """Run Python in the namespace (`ip netns exec` mounts the namespace's own /sys): its JSON."""
    proc = subprocess.run(["ip", "netns", "exec", NS, sys.executable, "-c", textwrap.dedent(code)],
                          capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


RESOLVE = """
import json, dataclasses
from pathlib import Path
from installer.planning.plan import Port
from installer.box.ports import resolve, inventory
NO_UDEV = Path("/nonexistent-udev-db")  # the host's udev database numbers the host's links
ports = [Port("eno1", mac="{a}"), Port("eno1", mac="{a_upper}"), Port("eno1", driver="bridge"),
         Port("eno1", driver="veth"), Port("eno1", path="pci-0000:02:00.0"), Port("eno1", mac="52:54:00:00:00:99")]
print(json.dumps({{"found": [dataclasses.asdict(resolve(p, udev_data=NO_UDEV)) for p in ports],
                  "facts": [dataclasses.asdict(f) for f in inventory(udev_data=NO_UDEV)]}}))
"""


@needs_root
def test_the_resolver_finds_ports_by_mac_driver_and_path(netns):
    out = in_ns(RESOLVE.format(a=MAC_A, a_upper=MAC_A.upper()))
    facts = {f["name"]: f for f in out["facts"]}
    assert facts["enx1"] == {"name": "enx1", "mac": MAC_A, "driver": "veth", "path": None}
    assert facts["bx0"]["driver"] == "bridge" and facts["bx0"]["path"] is None  # virtual: no ID_PATH
    by_mac, by_upper, bridge, veth, path, absent = out["found"]
    assert by_mac["interface"] == "enx1" and "enx1 on this box" in by_mac["evidence"]
    assert by_upper["interface"] == "enx1"  # MACs compare without regard to case
    assert bridge["interface"] == "bx0"
    assert veth["interface"] is None and veth["problem"] == "ambiguous"
    assert "enx1, enx2" in veth["evidence"] and "bind it by path" in veth["evidence"]
    assert path["problem"] == "missing" and "a virtual link has no path" in path["evidence"]
    assert absent["problem"] == "missing" and f"enx1 {MAC_A}" in absent["evidence"]


LINK_CHECK = """
import asyncio, json
from installer.checks import link
from installer.checks.base import Context
from installer.planning.plan import Port
from installer.vendors.profiles import load_catalog
from installer.planning import plan as planmod
ctx = Context(plan=planmod.Plan(), catalog=load_catalog())
async def main():
    out = {{}}
    for label, port in (("mac", Port("eno1", mac="{a}")), ("ambiguous", Port("eno1", driver="veth")),
                        ("none", None)):
        o = await link.link_state(ctx, {{}}, interface="eno1", role="machine network",
                                  address="198.51.100.2/24", port=port)
        out[label] = [o.status, o.diagnosis, o.evidence]
    return out
print(json.dumps(asyncio.run(main())))
"""


@needs_root
def test_the_link_check_reports_the_bound_port_on_a_box_that_names_it_otherwise(netns):
    out = in_ns(LINK_CHECK.format(a=MAC_A))
    status, diagnosis, evidence = out["mac"]
    assert (status, diagnosis) == ("pass", "ok"), evidence
    assert "eno1 (the port with MAC 52:54:00:12:34:56, enx1 on this box)" in evidence and "198.51.100.2/24" in evidence
    status, diagnosis, evidence = out["ambiguous"]
    assert (status, diagnosis) == ("fail", "port-ambiguous") and "enx1, enx2" in evidence
    # Without the binding the same plan name is simply missing on this box.
    assert out["none"][:2] == ["fail", "link-missing"]


def test_the_planner_passes_each_binding_to_its_link_check():
    from installer.checks.base import Context
    from installer.checks.planner import plan_checks
    from installer.vendors.profiles import load_catalog

    plan = planmod.load(EXAMPLE)
    checks = {c.key: c for c in plan_checks(plan, Context(plan=plan, catalog=load_catalog()))}
    assert checks["link-state:eno1"].run.keywords["port"] == Port("eno1", mac=MAC_A)
    assert checks["link-state:enp2s0"].run.keywords["port"] == Port("enp2s0", driver="igb")
    assert checks["link-isolation:machine network"].run.keywords["ports"] == plan.ports


def test_the_review_says_which_hardware_each_port_is():
    from installer.planning.describe import describe
    from installer.vendors.profiles import load_catalog

    words = describe(planmod.load(EXAMPLE), load_catalog())
    assert ("Ports found by their hardware, whatever this box calls them: eno1 is the port with MAC "
            "52:54:00:12:34:56; enp2s0 is the port with driver igb.") in words


@needs_root
def test_address_probes_go_out_of_the_port_the_binding_finds(netns):
    """The ARP probes before apply and in the checks (installer.checks.neighbours) use the
    bound port's kernel name on this box, not the plan's name, which does not exist here yet."""
    out = in_ns(f"""
import json
from installer.planning.plan import MachineNetwork, Plan, Port, Uplink
from installer.checks import neighbours as N
plan = Plan(topology="single", machine_network=MachineNetwork(("eno1",), "198.51.100.2/24"),
            uplink=Uplink("enp2s0", "static", "203.0.113.2/24", "203.0.113.1"),
            ports=(Port("eno1", mac="{MAC_A}"), Port("enp2s0", mac="{MAC_B}")))
print(json.dumps({{"addresses": [list(p.interfaces) for p in N.static_addresses(plan)],
                  "gateway": N.static_gateway(plan)}}))
""")
    assert out["addresses"] == [["enx1"], ["enx2"]]
    assert out["gateway"] == ["203.0.113.1", "enx2"]

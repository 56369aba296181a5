"""Addresses nobody else holds, the static gateway on the wire, each machine's presence
(installer/checks/neighbours.py, machines.py): ARP probes as RFC 5227 describes them, sent by
the real `arping -D`, proven in network namespaces only.

Three layers: the port reader on a sysfs tree of our own and the interlock that keeps arping
off this machine's own network (no packet); the grouping of the new diagnoses into findings
(plain data); and the real thing in the lab: `edge-installer check --json` in the edge
namespace with a host that already holds the box's address (the plant namespace on the machine
segment, the cloud namespace on the uplink segment), a gateway that answers and one that does
not, machines present with their port filtered (nftables drop) or closed, and absent; apply's
refusal before anything is written; and a switched segment (tests/lab/neighbours.Segment) where
the box's own second port answers and must not count as a conflict.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from installer.checks import findings, neighbours
from installer.checks.base import Result
from installer.planning import plan as planmod
from tests.lab import topology as T
from tests.lab.checkrun import check, one, results
from tests.lab.fixtures import healthy_lab, lab  # noqa: F401
from tests.lab.neighbours import Segment, holding, mac_of

REPO = Path(__file__).resolve().parents[1]
ENV = {"PYTHONPATH": str(REPO)}


@pytest.fixture(autouse=True)
def time_limit():
    """No test here may hang: each is stopped after 90 s."""
    def expired(signum, frame):
        raise TimeoutError("test took longer than 90 s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(90)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


# ============================================================ no packet: ports, interlock


def _port(root: Path, name: str, *, flags: str = "0x1003", carrier: str | None = "1",
          mac: str = "02:00:00:00:00:01") -> None:
    d = root / name
    d.mkdir(parents=True)
    (d / "flags").write_text(flags + "\n")
    (d / "address").write_text(mac + "\n")
    if carrier is not None:
        (d / "carrier").write_text(carrier + "\n")


def test_a_port_that_is_down_without_carrier_or_missing_cannot_be_probed(tmp_path):
    _port(tmp_path, "eno1")
    _port(tmp_path, "eno2", carrier="0")
    _port(tmp_path, "eno3", flags="0x1002", carrier=None)  # admin down: the kernel gives no carrier
    _port(tmp_path, "wwan0", flags="0x1091")               # NOARP, point-to-point
    sysfs = str(tmp_path)
    assert neighbours.port_problem("eno1", sysfs) is None
    assert "no carrier" in neighbours.port_problem("eno2", sysfs)
    assert "is down" in neighbours.port_problem("eno3", sysfs)
    assert "does not use ARP" in neighbours.port_problem("wwan0", sysfs)
    assert "does not exist" in neighbours.port_problem("eth9", sysfs)
    assert neighbours.box_macs(sysfs) == {"02:00:00:00:00:01"}


def test_no_carrier_is_unchecked_never_free(tmp_path):
    _port(tmp_path, "eno1", carrier="0")
    probe = asyncio.run(neighbours.arp_probe("198.51.100.2", "eno1", sys_class_net=str(tmp_path)))
    assert probe.state == "unchecked" and "no carrier" in probe.problem and not probe.other


def test_arping_is_refused_on_this_machines_own_network():
    # The suite's interlock (conftest sets EDGE_INSTALLER_NET_GUARD): from pytest's own
    # namespace no ARP probe goes out, whatever interface is named (eth0 is the host's).
    assert os.environ.get("EDGE_INSTALLER_NET_GUARD")
    probe = asyncio.run(neighbours.arp_probe("192.0.2.1", "eth0"))
    assert probe.state == "unchecked" and "network guard" in probe.problem


def test_the_plan_names_every_static_address_and_the_gateway():
    plan = planmod.from_dict({
        "version": 1, "topology": "isolated", "renderer": "netplan",
        "machine_network": {"interfaces": ["eno1", "eno2"], "address": "198.51.100.2/24"},
        "uplink": {"interface": "enp2s0", "ipv4": "static", "address": "203.0.113.2/24", "gateway": "203.0.113.1"}})
    got = [(p.field, p.address, p.interfaces) for p in neighbours.static_addresses(plan, "/nonexistent")]
    # No bridge yet (before apply): each port of the machine network is probed.
    assert got == [("machine_network.address", "198.51.100.2", ("eno1", "eno2")),
                   ("uplink.address", "203.0.113.2", ("enp2s0",))]
    assert neighbours.static_gateway(plan) == ("203.0.113.1", "enp2s0")
    dhcp = planmod.from_dict({"version": 1, "topology": "isolated", "renderer": "netplan",
                              "machine_network": {"interfaces": ["eno1"], "address": "198.51.100.2/24"},
                              "uplink": {"interface": "enp2s0", "ipv4": "dhcp"}})
    assert [p.field for p in neighbours.static_addresses(dhcp, "/nonexistent")] == ["machine_network.address"]
    assert neighbours.static_gateway(dhcp) is None


# ============================================================ findings (plain data)


def R(id, target, status, diagnosis, kind, evidence="seen", **facts):
    return Result(id, kind, target, status, diagnosis, evidence, "do this.", 0.1, None, f"{id}:{target}", facts)


def test_each_neighbour_problem_is_its_own_finding():
    rs = [R("address-free", "198.51.100.2 on eno1", "fail", "address-conflict", "address",
            host="198.51.100.2", port=None, macs=["aa:bb:cc:dd:ee:ff"]),
          R("gateway-present", "203.0.113.250 on enp2s0", "fail", "gateway-absent", "address",
            evidence="nothing answers for 203.0.113.250 on enp2s0: wrong gateway, wrong VLAN or cable",
            host="203.0.113.250", port=None),
          R("machine-port", "Saw (198.51.100.26:8193)", "fail", "machine-absent", "machine"),
          R("machine-port", "Drill (198.51.100.27:502)", "fail", "machine-absent", "machine"),
          R("machine-port", "Lathe (198.51.100.21:8193)", "fail", "machine-port-filtered", "machine"),
          R("machine-port", "Mill (198.51.100.22:5000)", "fail", "tcp-refused", "machine")]
    found, of = findings.group(rs)
    by = {f.cause: f for f in found}
    assert sorted(by) == ["address-conflict", "gateway-absent", "machine-absent", "machine-unreachable"]
    assert found[0].cause == "address-conflict" and "aa:bb:cc:dd:ee:ff" in found[0].title
    assert "198.51.100.2" in found[0].title
    assert by["gateway-absent"].title.startswith("Nothing answers for 203.0.113.250 on enp2s0")
    absent = by["machine-absent"]
    assert len(absent.checks) == 2 and "2 machines absent" in absent.title
    assert "Saw (198.51.100.26)" in absent.title and "Drill (198.51.100.27)" in absent.title
    unreachable = [f for f in found if f.cause == "machine-unreachable"]
    assert len(unreachable) == 2  # filtered and closed are two causes
    assert any("filtered" in f.title for f in unreachable) and any("closed" in f.title for f in unreachable)


# ============================================================ the lab


def test_lab_healthy_addresses_are_free_and_the_gateway_answers(healthy_lab, tmp_path):
    rc, doc, wall = check(healthy_lab, tmp_path, "--timeout", "1", profiles=[])
    m = one(doc, "address-free", f"{T.EDGE_MACHINE} on {T.MACHINE_IF}")
    u = one(doc, "address-free", f"{T.EDGE_UPLINK} on {T.UPLINK_IF}")
    for r in (m, u):
        # The box holds both itself: its own port never counts as another device.
        assert (r["status"], r["diagnosis"]) == ("pass", "ok"), r["evidence"]
        assert "this box holds it itself" in r["evidence"]
    g = one(doc, "gateway-present", f"{T.GATEWAY} on {T.UPLINK_IF}")
    cloud_mac = _mac(healthy_lab, "cloud", T.CLOUD_IF)
    assert (g["status"], g["diagnosis"]) == ("pass", "ok") and cloud_mac in g["evidence"]
    # A machine whose port opens is present: no probe.
    assert all(c["status"] == "pass" for c in results(doc, "machine-port"))
    assert wall < 20


def _mac(lab, role, interface):
    from tests.lab.neighbours import mac_of
    return mac_of(lab.ns[role], interface)


@pytest.mark.parametrize("segment, address, field, interface", [
    ("machine", T.EDGE_MACHINE, "machine_network.address", T.MACHINE_IF),
    ("uplink", T.EDGE_UPLINK, "uplink.address", T.UPLINK_IF),
])
def test_lab_a_host_that_already_holds_the_address_is_a_conflict(healthy_lab, tmp_path, segment, address, field,
                                                                  interface):
    with holding(healthy_lab, segment, address) as mac:
        rc, doc, _ = check(healthy_lab, tmp_path, "--timeout", "1", profiles=[])
    r = one(doc, "address-free", f"{address} on {interface}")
    assert (r["status"], r["diagnosis"]) == ("fail", "address-conflict"), r["evidence"]
    assert mac in r["evidence"] and field in r["evidence"] and interface in r["evidence"]
    assert "MAC address table" in r["remediation"] and "MachineMetrics, Network Requirements" in r["remediation"]
    f = next(f for f in doc["findings"] if f["cause"] == "address-conflict")
    assert mac in f["title"] and address in f["title"] and rc == 2
    # The other address stays free: one conflict does not taint the other probe.
    other = T.EDGE_UPLINK if segment == "machine" else T.EDGE_MACHINE
    assert next(c for c in doc["checks"]
                if c["id"] == "address-free" and c["target"].startswith(other))["status"] == "pass"


def test_lab_a_gateway_that_does_not_answer(healthy_lab, tmp_path):
    uplink = {"interface": T.UPLINK_IF, "ipv4": "static", "address": f"{T.EDGE_UPLINK}/{T.PREFIX}",
              "gateway": "203.0.113.250"}
    t0 = time.monotonic()
    rc, doc, _ = check(healthy_lab, tmp_path, "--timeout", "1", profiles=[], uplink=uplink)
    g = one(doc, "gateway-present", f"203.0.113.250 on {T.UPLINK_IF}")
    assert (g["status"], g["diagnosis"]) == ("fail", "gateway-absent")
    assert g["evidence"] == "nothing answers for 203.0.113.250 on enp2s0: wrong gateway, wrong VLAN or cable"
    assert "uplink.gateway" in g["remediation"] and "Edge Device Not Connecting" in g["remediation"]
    assert g["duration_s"] < 4 and time.monotonic() - t0 < 30  # bounded: 1 s of probes, and load


def test_lab_machines_absent_filtered_and_closed_are_told_apart(healthy_lab, tmp_path):
    lathe, mill = T.MACHINES[0], T.MACHINES[1]
    healthy_lab.block(lathe.port, proto="tcp", action="drop", address=lathe.address)  # nftables drop
    healthy_lab.stop(f"machines:{mill.port}")                                            # nothing listens
    machines = [{"name": lathe.name, "address": lathe.address, "controller": lathe.controller},
                {"name": mill.name, "address": mill.address, "controller": mill.controller},
                {"name": "Saw 9", "address": "198.51.100.26", "controller": "fanuc-focas"}]
    rc, doc, _ = check(healthy_lab, tmp_path, "--timeout", "1", profiles=[], machines=machines)
    plant_mac = _mac(healthy_lab, "plant", T.PLANT_IF)

    filtered = one(doc, "machine-port", f"{lathe.name} ({lathe.address}:{lathe.port})")
    assert filtered["diagnosis"] == "machine-port-filtered", filtered["evidence"]
    assert "present" in filtered["evidence"] and plant_mac in filtered["evidence"]
    assert "firewall drops" in filtered["remediation"] and "Machine Protocol Ports" in filtered["remediation"]

    closed = one(doc, "machine-port", f"{mill.name} ({mill.address}:{mill.port})")
    # A reset keeps the SPEC's stable code; the evidence says the machine is there.
    assert closed["diagnosis"] == "tcp-refused", closed["evidence"]
    assert "present" in closed["evidence"] and "port 5000 closed" in closed["evidence"]
    assert "enable the controller" in closed["remediation"]

    absent = one(doc, "machine-port", "Saw 9 (198.51.100.26:8193)")
    assert absent["diagnosis"] == "machine-absent", absent["evidence"]
    assert "no device answers ARP for 198.51.100.26 on eno1" in absent["evidence"]
    assert "Machines Not Reporting Data" in absent["remediation"] and "VLAN" in absent["remediation"]
    # Bounded: the TCP timeout (1 s), then 1 s of ARP probes; the margin is a loaded machine's.
    assert absent["duration_s"] < 4

    causes = sorted(f["cause"] for f in doc["findings"])
    assert causes.count("machine-unreachable") == 2 and causes.count("machine-absent") == 1, causes


def test_lab_without_carrier_the_address_is_not_claimed_free(healthy_lab, tmp_path):
    healthy_lab.unplug(T.MACHINE_IF)
    rc, doc, _ = check(healthy_lab, tmp_path, "--timeout", "1", profiles=[])
    r = one(doc, "address-free", f"{T.EDGE_MACHINE} on {T.MACHINE_IF}")
    assert (r["status"], r["diagnosis"]) == ("warn", "address-unchecked"), r["evidence"]
    assert "no carrier" in r["evidence"] and "not known to be free" in r["evidence"]
    m = T.MACHINES[0]
    port = one(doc, "machine-port", f"{m.name} ({m.address}:{m.port})")
    assert port["status"] == "fail" and "presence not probed" in port["evidence"] and "no carrier" in port["evidence"]
    assert port["diagnosis"] not in ("machine-absent", "machine-port-filtered")


def _apply_in_edge(lab, tmp_path, force=False, **plan_changes) -> dict:
    plan = lab.write_plan(tmp_path / "plan.yaml", **plan_changes)
    root = tmp_path / "root"
    root.mkdir(exist_ok=True)
    spec = {"do": "apply", "plan": str(plan), "root": str(root), "force": force}
    proc = lab.edge([sys.executable, "-m", "tests.lab.arprun", json.dumps(spec)], timeout=60, env=ENV)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_lab_apply_refuses_an_address_another_host_holds_before_writing(healthy_lab, tmp_path):
    with holding(healthy_lab, "machine", T.EDGE_MACHINE) as mac:
        out = _apply_in_edge(healthy_lab, tmp_path, profiles=[])
    assert out["refused"] == (
        f"{T.EDGE_MACHINE} (machine_network.address) is already held by another device: MAC {mac} answers ARP "
        f"for it on {T.MACHINE_IF}; choose another address (--set machine_network.address=ADDRESS/PREFIX), or "
        "free it on that device, or apply anyway with --force-address")
    assert not [p for p in out["written"] if p.startswith("etc/")], out["written"]
    assert out["commands"] == [] and "nothing was written" in out["messages"]


def test_lab_apply_goes_on_when_the_addresses_are_free_or_forced(healthy_lab, tmp_path):
    out = _apply_in_edge(healthy_lab, tmp_path, profiles=[])
    assert out["refused"] is None
    assert any(p.startswith("etc/netplan/") for p in out["written"])
    assert any("no other device answers for it on eno1" in line for line in out["progress"])
    assert any(line.startswith(f"gateway {T.GATEWAY} answers on {T.UPLINK_IF}") for line in out["progress"])
    with holding(healthy_lab, "uplink", T.EDGE_UPLINK) as mac:
        forced = _apply_in_edge(healthy_lab, tmp_path / "forced", force=True, profiles=[])
    assert forced["refused"] is None and any(p.startswith("etc/netplan/") for p in forced["written"])
    warning = next(m for m in forced["messages"] if m.startswith("WARNING (--force-address)"))
    assert T.EDGE_UPLINK in warning and mac in warning and T.UPLINK_IF in warning


def test_lab_apply_without_carrier_says_the_address_was_not_checked(healthy_lab, tmp_path):
    healthy_lab.unplug(T.MACHINE_IF)
    out = _apply_in_edge(healthy_lab, tmp_path, profiles=[])
    assert out["refused"] is None
    line = next(x for x in out["progress"] if x.startswith(f"address {T.EDGE_MACHINE}"))
    assert "not checked" in line and "no carrier" in line and "not known to be free" in line


def test_cli_apply_refusal_is_one_line_and_exit_1(tmp_path, monkeypatch, capsys):
    # The command's handling of a refusal (the refusal itself is proven in the lab above).
    import installer.writing.apply
    from installer.cli import main

    seen = {}

    def refusing(plan, system, target, **kwargs):
        seen.update(kwargs)
        line = "203.0.113.2 (uplink.address) is already held by another device: MAC aa:bb:cc:dd:ee:ff ..."
        return installer.writing.apply.ApplyResult(refused=line, messages=[f"refused: {line}", "nothing was written"])

    monkeypatch.setattr(installer.writing.apply, "apply_plan", refusing)
    rc = main(["apply", str(REPO / "examples/isolated.yaml"), "--root", str(tmp_path), "--no-cloud-init",
               "--force-address"])
    out = capsys.readouterr().out
    assert rc == 1 and "refused: 203.0.113.2 (uplink.address) is already held" in out
    assert seen["force_address"] is True


def test_cli_apply_under_root_probes_nothing_and_says_so(tmp_path):
    r = subprocess.run([sys.executable, "-m", "installer", "apply", str(REPO / "examples/isolated.yaml"),
                        "--root", str(tmp_path), "--no-cloud-init", "--force-address"],
                       capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stderr
    assert f"addresses not probed: staged under {tmp_path} (no live box to ask the wire)" in r.stdout


# ============================================================ a switched segment


def _sweep_stale_segments() -> None:
    """Segments of earlier sessions that were killed before they could remove their namespaces."""
    import re

    from tests.lab import netns

    for ns in netns.names("ein"):
        m = re.fullmatch(r"ein(\d+)-(box|sw|h)", ns)
        if m and int(m.group(1)) != os.getpid() % 100000 and not Path(f"/proc/{m.group(1)}").exists():
            netns.run(["ip", "netns", "del", ns])


@pytest.fixture
def segment():
    _sweep_stale_segments()
    seg = Segment(f"ein{os.getpid() % 100000}")
    seg.up()
    try:
        yield seg
    finally:
        seg.down()


def _probe(seg: Segment, address: str, interface: str, method: str = "auto", **more) -> dict:
    spec = {"do": "probe", "address": address, "interface": interface, "method": method, **more}
    proc = seg.box([sys.executable, "-m", "tests.lab.arprun", json.dumps(spec)], env={**os.environ, **ENV})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.mark.parametrize("method", ["raw", "arping"])
def test_segment_the_boxs_own_second_port_is_not_a_conflict_another_host_is(segment, method):
    # Two ports of the box on one switch, the second still holding the address: its answer
    # comes from the box's own MAC. A third host on the switch holding it is a conflict.
    # Both ways of probing (the packet socket, arping -D) see the same.
    segment.address("box", "p2", "198.51.100.2/24")
    own = _probe(segment, "198.51.100.2", "p1", method)
    assert own["state"] == "answered" and own["own"] is True
    assert own["mac"] == mac_of(segment.box_ns, "p2")
    segment.address("host", "h0", "198.51.100.9/24")
    other = _probe(segment, "198.51.100.9", "p1", method)
    assert other["state"] == "answered" and other["own"] is False and other["mac"] == mac_of(segment.host_ns, "h0")
    t0 = time.monotonic()
    assert _probe(segment, "198.51.100.77", "p1", method)["state"] == "silent"
    assert time.monotonic() - t0 < 10  # bounded by its window (and a loaded machine), never hangs


def test_segment_another_device_probing_for_the_address_at_the_same_time_is_a_conflict(segment):
    # Two boxes set up at once with one address: neither holds it yet, so neither answers; the
    # other's own RFC 5227 probe (sender IP 0.0.0.0) is what gives it away (section 2.1.1).
    # arping -D in the host namespace is that other box. A presence probe (no claim) ignores it,
    # and so does the conflict check when the prober is this box's own second port.
    def prober(ns: str, interface: str) -> subprocess.Popen:
        return subprocess.Popen(["ip", "netns", "exec", ns, "arping", "-D", "-q", "-I", interface, "-c", "6",
                                 "-w", "6", "198.51.100.50"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    other = prober(segment.host_ns, "h0")
    try:
        time.sleep(0.3)
        claimed = _probe(segment, "198.51.100.50", "p1", "raw", window=2.5, claim=True)
        assert claimed["state"] == "claimed" and claimed["own"] is False, claimed
        assert claimed["mac"] == mac_of(segment.host_ns, "h0")
        presence = _probe(segment, "198.51.100.50", "p1", "raw")  # window 1 s, no claim
        assert presence["state"] == "silent", presence
    finally:
        other.kill()
        other.wait()
    mine = prober(segment.box_ns, "p2")  # this box's own other port, probing for the same address
    try:
        time.sleep(0.3)
        assert _probe(segment, "198.51.100.50", "p1", "raw", window=2.5, claim=True)["state"] == "silent"
    finally:
        mine.kill()
        mine.wait()


def test_a_simultaneous_claim_is_worded_as_one():
    probe = neighbours.Probe("198.51.100.50", "eno1", "claimed", "02:00:00:00:00:09", window_s=2)
    assert probe.other
    planned = neighbours.Planned("machine_network.address", "machine network", "198.51.100.50", ("eno1",))
    line = neighbours.conflict_line(planned, probe)
    assert "being taken by another device at this moment: MAC 02:00:00:00:00:09" in line
    assert "--force-address" in line
    assert "02:00:00:00:00:09" in probe.words() and "simultaneous claim" in probe.words()


@pytest.mark.parametrize("method", ["raw", "arping"])
def test_segment_behind_the_machine_bridge_the_probe_goes_out_on_the_bridge(segment, method):
    # The plan's two machine ports bridged (as rendered): ARP answers reach the bridge, not
    # arping on an enslaved port; the probe must use the bridge.
    segment.bridge_box_ports()
    segment.address("box", "br-machines", "198.51.100.2/24")
    segment.address("host", "h0", "198.51.100.2/32")   # the intruder holds the box's address
    assert _probe(segment, "198.51.100.2", "p1", method)["state"] == "silent"  # why: the bridge takes it
    conflict = _probe(segment, "198.51.100.2", "br-machines", method)
    assert conflict["state"] == "answered" and conflict["own"] is False
    plan = {"version": 1, "topology": "isolated", "renderer": "netplan",
            "machine_network": {"interfaces": ["p1", "p2"], "address": "198.51.100.2/24"},
            "uplink": {"interface": "p9", "ipv4": "dhcp"}}
    code = ("import json, sys; from installer.planning import plan as P; from installer.checks import neighbours as N; "
            "print(json.dumps(N.machine_ports(P.from_dict(json.loads(sys.argv[1])))))")
    proc = segment.box([sys.executable, "-c", code, json.dumps(plan)], env={**os.environ, **ENV})
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == ["br-machines"]


# ============================================================ the wizard's write step


async def test_wizard_write_step_refuses_a_held_address_and_writes_nothing(tmp_path):
    # What the probe finds is proven in the lab above; here the write step's handling of it:
    # one line in the wizard's terms, nothing written, no command run.
    from installer.box.system import System
    from tests.test_screens_finish import SIZE, example, focus, make_app, text_of, until

    ran = []

    def recorder(argv, **kwargs):
        ran.append(list(argv))
        return subprocess.CompletedProcess(argv, 0, "", "")

    planned = neighbours.Planned("machine_network.address", "machine network", "192.168.50.2", ("eno1",))
    held = neighbours.Probe("192.168.50.2", "eno1", "answered", "aa:bb:cc:00:11:22", window_s=1)
    app = make_app(tmp_path, example("isolated"), "write")
    app.context.extras.update(system=System(tmp_path, runner=recorder, live_override=True),
                              rechecker=lambda plan, t: None, confirm_timeout=5,
                              address_prober=lambda plan, timeout: neighbours.Preflight([(planned, held)], []))
    async with app.run_test(size=SIZE) as pilot:
        await focus(pilot, "confirm")
        await pilot.press("space", "w")
        await until(pilot, lambda: "NOT written" in text_of(app, "#result"))
        shown = text_of(app, "#result")
        assert "192.168.50.2 (machine network address) is already held by another device" in shown
        assert "aa:bb:cc:00:11:22" in shown and "eno1" in shown and "Addressing step" in shown
        assert "Address in use" in text_of(app, "#step-errors")
        assert app.screen.result is None
    assert ran == [] and not (tmp_path / "etc/netplan").exists()


def test_segment_without_root_the_probe_falls_back_to_arping(segment):
    # A technician's unprivileged run: no packet socket for this process, so arping (which
    # carries its own CAP_NET_RAW) sends the probe; the socket alone says it could not.
    from tests.lab import netns

    segment.address("host", "h0", "198.51.100.9/24")
    got = {}
    for method in ("auto", "raw"):
        spec = json.dumps({"do": "probe", "address": "198.51.100.9", "interface": "p1", "method": method})
        argv = netns.exec_argv(segment.box_ns, ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                                "--inh-caps=-all", sys.executable, "-m", "tests.lab.arprun", spec])
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=30, cwd="/tmp",
                              env={**os.environ, **ENV})
        assert proc.returncode == 0, proc.stderr
        got[method] = json.loads(proc.stdout)
    assert got["auto"]["state"] == "answered" and got["auto"]["mac"] == mac_of(segment.host_ns, "h0")
    assert got["raw"]["state"] == "unchecked" and "needs root" in got["raw"]["problem"]

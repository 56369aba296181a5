"""The NTP, machine and bandwidth checks.

Three layers: the estimate and the DHCP lease readers on plain data; the checks against
small servers of our own on loopback (an NTP responder whose answers we choose, TCP and HTTP
listeners), which pins every diagnosis down exactly; and the checks inside the lab's edge
namespace against the lab's chrony and plant machines, with the lab's firewall faults.
No packet leaves loopback or the lab's namespaces.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import sys
import time
from pathlib import Path

import ntplib
import pytest

from installer.checks import bandwidth, machines, ntp
from installer.checks.base import Context, Result
from installer.planning import plan as planmod
from installer.planning.plan import Machine
from installer.vendors.profiles import load_catalog

REPO = Path(__file__).resolve().parents[1]
RUNNER = REPO / "tests" / "run_ntp_machines.py"
CATALOG = load_catalog()

try:  # the lab lands separately; everything but the lab tests runs without it
    from tests.lab.fixtures import healthy_lab, lab  # noqa: F401
    HAVE_LAB = True
except ImportError:
    HAVE_LAB = False

needs_lab = pytest.mark.skipif(not HAVE_LAB, reason="tests.lab is not available")

# The lab's plant (tests/lab): one machine per controller kind the lab serves.
LAB_MACHINES = [
    {"name": "Lathe 1", "address": "198.51.100.21", "controller": "fanuc-focas"},
    {"name": "Mill 2", "address": "198.51.100.22", "controller": "mtconnect-agent"},
    {"name": "Press 3", "address": "198.51.100.23", "controller": "siemens-opc-ua"},
    {"name": "Sensor 4", "address": "198.51.100.24", "controller": "modbus-tcp"},
    {"name": "Saw 5", "address": "198.51.100.25", "controller": "mtconnect-adapter"},
]


@pytest.fixture(autouse=True)
def time_limit():
    """No test here may hang: each is stopped after 60 s."""
    def expired(signum, frame):
        raise TimeoutError("test took longer than 60 s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(60)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


def make_plan(**changes) -> planmod.Plan:
    data = {"version": 1, "topology": "isolated", "renderer": "netplan",
            "machine_network": {"interfaces": ["eno1"], "address": "198.51.100.2/24"},
            "uplink": {"interface": "enp2s0", "ipv4": "dhcp"},
            "ntp": {"mode": "custom", "servers": ["127.0.0.1"]},
            "profiles": ["machinemetrics"], "machines": LAB_MACHINES}
    data.update(changes)
    return planmod.from_dict(data)


def context(plan: planmod.Plan | None = None, timeout: float = 1.0) -> Context:
    return Context(plan=plan or make_plan(), catalog=CATALOG, timeout=timeout)


# ============================================================ bandwidth: no network


def test_estimate_for_the_lab_plant_uses_the_seed_figures():
    e = bandwidth.estimate(make_plan(), CATALOG)
    # seed 000, "Bandwidth Requirements": FANUC FOCAS ~5 kbps, every other machine ~1 kbps.
    assert e["machines"] == 5
    assert e["upload_kbps"] == 9
    assert [(r["controller"], r["count"], r["kbps_each"], r["kbps"]) for r in e["by_controller"]] == [
        ("fanuc-focas", 1, 5, 5), ("modbus-tcp", 1, 1, 1), ("mtconnect-adapter", 1, 1, 1),
        ("mtconnect-agent", 1, 1, 1), ("siemens-opc-ua", 1, 1, 1)]
    # 9 kbps for 30 days: 9000 / 8 B/s * 2,592,000 s = 2,916,000,000 B.
    assert e["monthly_upload_mb"] == 2916
    assert e["days"] == 30
    # Download, cloud to browser: ~250 bps (dashboard) to ~2 kbps (workcenter view) per machine.
    assert e["download_kbps"] == {"dashboard": 1.25, "workcenter_view": 10}
    assert e["data_cap_mb"] is None and e["over_cap"] is None and e["unknown"] == []


def test_estimate_reproduces_the_seeds_fifty_machine_example():
    # "A facility with 50 machines needs approximately: Upload: 50-250 kbps, Download: 12.5-100 kbps"
    def fifty(controller):
        return make_plan(machine_network={"interfaces": ["eno1"], "address": "10.1.0.1/16"},
                         machines=[{"name": f"M{i}", "address": f"10.1.1.{i}", "controller": controller}
                                   for i in range(1, 51)])
    standard = bandwidth.estimate(fifty("haas-mtconnect"), CATALOG)
    focas = bandwidth.estimate(fifty("fanuc-focas"), CATALOG)
    assert (standard["upload_kbps"], focas["upload_kbps"]) == (50, 250)
    assert standard["download_kbps"] == {"dashboard": 12.5, "workcenter_view": 100}


def test_estimate_without_machines_and_with_an_unknown_controller():
    assert bandwidth.estimate(make_plan(machines=[]), CATALOG)["upload_kbps"] == 0
    e = bandwidth.estimate(make_plan(machines=LAB_MACHINES + [
        {"name": "Odd", "address": "198.51.100.30", "controller": "no-such-controller"}]), CATALOG)
    assert e["unknown"] == ["Odd"] and e["upload_kbps"] == 9 and e["machines"] == 6


def cellular_plan(cap):
    return make_plan(topology="cellular", uplink={"interface": "cdc-wdm0", "ipv4": "dhcp"},
                     cellular={"apn": "internet", "acknowledge_unsupported": True, "data_cap_mb": cap})


async def test_bandwidth_passes_with_the_figures_as_evidence():
    o = await bandwidth.bandwidth_estimate(context(), {})
    assert (o.status, o.diagnosis) == ("pass", "ok")
    assert "Estimate from the per-machine figures of MachineMetrics' Network Requirements" in o.evidence
    assert "not a measurement" in o.evidence
    assert "~9 kbps" in o.evidence and "2,916 MB per 30 days" in o.evidence
    assert "1 x FANUC FOCAS at ~5 kbps" in o.evidence


async def test_cellular_plan_over_its_cap_warns_citing_the_seeds_risk():
    o = await bandwidth.bandwidth_estimate(context(cellular_plan(2000)), {})
    assert (o.status, o.diagnosis) == ("warn", "data-cap-exceeded")
    assert "2,000 MB" in o.evidence and "2,916 MB" in o.evidence
    assert "Potential data caps and overage charges" in o.remediation


async def test_cellular_plan_within_its_cap_or_without_one_passes():
    within = await bandwidth.bandwidth_estimate(context(cellular_plan(5000)), {})
    assert (within.status, within.diagnosis) == ("pass", "ok") and "cap of 5,000 MB" in within.evidence
    nocap = await bandwidth.bandwidth_estimate(context(cellular_plan(None)), {})
    assert nocap.status == "pass" and "No data cap is given" in nocap.evidence


async def test_a_cap_on_a_non_cellular_plan_is_ignored():
    plan = make_plan(cellular={"apn": "x", "acknowledge_unsupported": True, "data_cap_mb": 1})
    assert (await bandwidth.bandwidth_estimate(context(plan), {})).status == "pass"


# ============================================================ DHCP-provided NTP servers


def write(path: Path, text: str, mtime: float | None = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


NETWORKD_LEASE = """# This is private data. Do not parse.
ADDRESS=10.20.0.15
NETMASK=255.255.255.0
ROUTER=10.20.0.1
SERVER_ADDRESS=10.20.0.1
DNS=10.20.0.53
NTP=10.20.0.123 10.20.0.124
DOMAINNAME=plant.local
CLIENTID=ff0a1b2c3d
"""

DHCLIENT_LEASE = """lease {
  interface "enp2s0";
  fixed-address 10.30.0.9;
  option ntp-servers 10.9.9.9;
}
lease {
  interface "enp2s0";
  fixed-address 10.30.0.9;
  option subnet-mask 255.255.255.0;
  option ntp-servers 10.30.0.123,10.20.0.123;
  option domain-name-servers 10.30.0.53;
}
"""


def test_dhcp_ntp_servers_from_networkd_and_networkmanager_leases(tmp_path):
    run, lib = tmp_path / "run", tmp_path / "lib"
    write(run / "systemd/netif/leases/3", NETWORKD_LEASE)
    write(run / "systemd/netif/leases/4", "# This is private data. Do not parse.\nADDRESS=10.40.0.2\n")
    write(run / "NetworkManager/devices/3", "[device]\nmanaged=true\nconnection-uuid=abc\n")
    # NetworkManager's older internal client kept systemd's lease format; its dhclient backend
    # appends lease blocks, the newest last.
    write(lib / "NetworkManager/internal-6f1c-enp3s0.lease", "ADDRESS=10.50.0.2\nNTP=10.50.0.123 not-an-ip\n")
    write(lib / "NetworkManager/dhclient-6f1c-enp2s0.lease", DHCLIENT_LEASE)
    assert ntp.dhcp_ntp_servers(run, lib_dir=lib, since=0) == [
        "10.20.0.123", "10.20.0.124", "10.30.0.123", "10.50.0.123"]


def test_dhcp_ntp_servers_ignores_leases_from_before_this_boot(tmp_path):
    run, lib = tmp_path / "run", tmp_path / "lib"
    write(lib / "NetworkManager/internal-1-enp2s0.lease", "NTP=192.0.2.123\n", mtime=time.time() - 86400)
    write(lib / "dhcp/dhclient.enp2s0.leases", DHCLIENT_LEASE)
    assert ntp.dhcp_ntp_servers(run, lib_dir=lib, since=time.time() - 3600) == ["10.30.0.123", "10.20.0.123"]


def test_dhcp_ntp_servers_none(tmp_path):
    assert ntp.dhcp_ntp_servers(tmp_path / "run", lib_dir=tmp_path / "lib", since=0) == []
    write(tmp_path / "run/systemd/netif/leases/2", "ADDRESS=10.0.0.2\nNTP=\n")
    assert ntp.dhcp_ntp_servers(tmp_path / "run", lib_dir=tmp_path / "lib", since=0) == []


# ============================================================ NTP against our own responder


class FakeNtp(asyncio.DatagramProtocol):
    """An NTP server on loopback whose answers the test chooses."""

    def __init__(self, offset=0.0, stratum=2, leap=0, ref_id=0x7F000001, mode=4, silent=False, raw=None):
        self.offset, self.stratum, self.leap, self.ref_id = offset, stratum, leap, ref_id
        self.mode, self.silent, self.raw = mode, silent, raw

    def connection_made(self, transport):
        self.transport = transport

    def datagram_received(self, data, addr):
        if self.silent:
            return
        if self.raw is not None:
            self.transport.sendto(self.raw, addr)
            return
        query = ntplib.NTPPacket()
        query.from_data(data)
        now = ntplib.system_to_ntp_time(time.time() + self.offset)
        reply = ntplib.NTPPacket(version=4, mode=self.mode, tx_timestamp=now)
        reply.leap, reply.stratum, reply.ref_id = self.leap, self.stratum, self.ref_id
        reply.orig_timestamp, reply.recv_timestamp, reply.ref_timestamp = query.tx_timestamp, now, now - 10
        self.transport.sendto(reply.to_data(), addr)


@pytest.fixture
async def ntp_servers(monkeypatch):
    """Start FakeNtp responders on 127.0.0.x:<one free port>; the check asks that port."""
    probe = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()
    monkeypatch.setattr(ntp, "NTP_PORT", port)
    transports = []

    async def start(address="127.0.0.1", **kwargs):
        transport, _ = await asyncio.get_running_loop().create_datagram_endpoint(
            lambda: FakeNtp(**kwargs), local_addr=(address, port))
        transports.append(transport)
        return address

    yield start
    for t in transports:
        t.close()


async def test_ntp_healthy_server_passes_with_stratum_offset_and_delay(ntp_servers):
    server = await ntp_servers()
    o = await ntp.ntp_server(context(), {}, server=server, resolve_key=None)
    assert (o.status, o.diagnosis) == ("pass", "ok"), o.evidence
    assert "stratum 2" in o.evidence and "offset" in o.evidence and "delay" in o.evidence
    assert o.facts["stratum"] == 2 and abs(o.facts["offset_s"]) < 0.5


@pytest.mark.parametrize("offset, status", [(5.0, "warn"), (-5.0, "warn"), (600.0, "warn"),
                                            (7200.0, "fail"), (-3600.0, "fail")])
async def test_ntp_clock_skew_warns_beyond_1s_and_fails_beyond_15min(ntp_servers, offset, status):
    server = await ntp_servers(offset=offset)
    o = await ntp.ntp_server(context(), {}, server=server, resolve_key=None)
    assert (o.status, o.diagnosis) == (status, "clock-skew"), o.evidence
    assert ("behind" if offset > 0 else "ahead of") in o.evidence
    assert o.remediation


async def test_ntp_server_that_does_not_answer_times_out_within_the_timeout(ntp_servers):
    server = await ntp_servers(silent=True)
    t0 = time.monotonic()
    o = await ntp.ntp_server(context(timeout=0.5), {}, server=server, resolve_key=None)
    assert (o.status, o.diagnosis) == ("fail", "ntp-timeout")
    assert time.monotonic() - t0 < 1.5
    assert "123" in o.remediation and "NTP Configuration" in o.remediation


@pytest.mark.parametrize("kwargs, diagnosis", [
    ({"stratum": 16, "leap": 3}, "ntp-unsynchronised"),
    ({"stratum": 0, "leap": 3, "ref_id": 0}, "ntp-unsynchronised"),
    ({"stratum": 3, "leap": 3}, "ntp-unsynchronised"),
    ({"stratum": 0, "ref_id": int.from_bytes(b"DENY", "big")}, "ntp-denied"),
    ({"mode": 3}, "ntp-bad-reply"),
    ({"raw": b"hello"}, "ntp-bad-reply"),
])
async def test_ntp_answers_that_give_no_usable_time(ntp_servers, kwargs, diagnosis):
    server = await ntp_servers(**kwargs)
    o = await ntp.ntp_server(context(), {}, server=server, resolve_key=None)
    assert (o.status, o.diagnosis) == ("fail", diagnosis), o.evidence
    assert o.remediation


def dns_result(key, addresses):
    return Result("dns-resolve", "dns", key, "pass", "ok", "", "", 0.0, None, key, {"addresses": addresses})


async def test_ntp_pool_name_uses_the_dns_checks_addresses_and_one_answer_is_enough(ntp_servers):
    await ntp_servers("127.0.0.2", silent=True)
    await ntp_servers("127.0.0.3", stratum=1)
    prereqs = {"dns-resolve:0.pool.ntp.org": dns_result("dns-resolve:0.pool.ntp.org", ["127.0.0.2", "127.0.0.3"])}
    t0 = time.monotonic()
    o = await ntp.ntp_server(context(timeout=0.5), prereqs, server="0.pool.ntp.org",
                             resolve_key="dns-resolve:0.pool.ntp.org")
    assert (o.status, o.diagnosis) == ("pass", "ok"), o.evidence
    assert "0.pool.ntp.org at 127.0.0.3" in o.evidence and "127.0.0.2: no answer" in o.evidence
    assert time.monotonic() - t0 < 1.5  # the addresses are asked at once


async def test_ntp_name_without_addresses_is_not_resolved_behind_the_plans_back():
    o = await ntp.ntp_server(context(), {}, server="ntp.plant.local", resolve_key=None)
    assert (o.status, o.diagnosis) == ("fail", "ntp-no-address") and o.remediation


# ============================================================ machines against loopback listeners


async def serve(handler=None):
    """A TCP server on 127.0.0.1:<free port>; returns (server, port)."""
    async def default(reader, writer):
        writer.close()

    server = await asyncio.start_server(handler or default, "127.0.0.1", 0)
    return server, server.sockets[0].getsockname()[1]


def controller(port: int, base: str = "fanuc-focas"):
    import dataclasses
    return dataclasses.replace(CATALOG.controllers[base], port=port)


LATHE = Machine("Lathe 1", "127.0.0.1", "fanuc-focas")
AGENT = Machine("Mill 2", "127.0.0.1", "mtconnect-agent")


async def test_machine_port_open_passes():
    server, port = await serve()
    async with server:
        o = await machines.machine_port(context(), {}, machine=LATHE, controller=controller(port))
    assert (o.status, o.diagnosis) == ("pass", "ok")
    assert f"port {port}/tcp open" in o.evidence and "Lathe 1" in o.evidence


async def test_machine_port_closed_is_refused_with_the_seeds_remediation():
    server, port = await serve()
    server.close()
    await server.wait_closed()
    o = await machines.machine_port(context(), {}, machine=LATHE, controller=controller(port))
    assert (o.status, o.diagnosis) == ("fail", "tcp-refused")
    assert "Machine Protocol Ports" in o.remediation and "Machines Not Reporting Data" in o.remediation
    assert f"outbound TCP {port}" in o.remediation


PROBE_13 = b"""<?xml version="1.0" encoding="UTF-8"?>
<MTConnectDevices xmlns="urn:mtconnect.org:MTConnectDevices:1.3" xmlns:m="urn:mtconnect.org:MTConnectDevices:1.3">
  <Header creationTime="2024-01-01T00:00:00Z" sender="agent" instanceId="1" version="1.3.0" bufferSize="131072"/>
  <Devices>
    <Device id="d1" name="Mill-2" uuid="mill-2"><Components><Axes id="a"/></Components></Device>
    <Device id="d2" name="Lathe-7" uuid="lathe-7"/>
  </Devices>
</MTConnectDevices>
"""
PROBE_20 = (b'<?xml version="1.0"?><MTConnectDevices xmlns="urn:mtconnect.org:MTConnectDevices:2.0">'
            b'<Header instanceId="1"/><Devices><Agent id="agent" name="Agent" uuid="a"/>'
            b'<Device id="x" name="VMC-1" uuid="v"/></Devices></MTConnectDevices>')
ERROR_DOC = (b'<?xml version="1.0"?><MTConnectError xmlns="urn:mtconnect.org:MTConnectError:1.3"><Header/>'
             b'<Errors><Error errorCode="NO_DEVICE">Could not find the device</Error></Errors></MTConnectError>')
NO_DEVICES = (b'<MTConnectDevices xmlns="urn:mtconnect.org:MTConnectDevices:1.5"><Header/><Devices/>'
              b'</MTConnectDevices>')


def http_server(body: bytes, status: str = "200 OK", chunked: bool = False):
    async def handler(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        if chunked:
            framed = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 100]), body[i:i + 100])
                              for i in range(0, len(body), 100)) + b"0\r\n\r\n"
            head = "Transfer-Encoding: chunked\r\n"
        else:
            framed, head = body, f"Content-Length: {len(body)}\r\n"
        writer.write(f"HTTP/1.1 {status}\r\nContent-Type: text/xml\r\n{head}\r\n".encode() + framed)
        await writer.drain()
        writer.close()
    return handler


@pytest.mark.parametrize("body, chunked, names, version", [
    (PROBE_13, False, ["Mill-2", "Lathe-7"], "1.3"),
    (PROBE_13, True, ["Mill-2", "Lathe-7"], "1.3"),
    (PROBE_20, False, ["VMC-1"], "2.0"),
])
async def test_mtconnect_probe_passes_on_an_agent_of_any_version(body, chunked, names, version):
    server, port = await serve(http_server(body, chunked=chunked))
    async with server:
        o = await machines.mtconnect_probe(context(), {}, machine=AGENT, controller=controller(port, "mtconnect-agent"))
    assert (o.status, o.diagnosis) == ("pass", "ok"), o.evidence
    assert o.facts["devices"] == names and o.facts["schema_version"] == version
    assert f"describes {len(names)} device" in o.evidence


@pytest.mark.parametrize("handler, diagnosis", [
    (http_server(b"<html><body>Not Found</body></html>", "404 Not Found"), "mtconnect-not-agent"),
    (http_server(b'{"status": "ok"}'), "mtconnect-not-agent"),
    (http_server(ERROR_DOC, "400 Bad Request"), "mtconnect-error"),
    (http_server(NO_DEVICES), "mtconnect-no-devices"),
    (http_server(b'<!DOCTYPE x [<!ENTITY a "aaaa">]><MTConnectDevices>&a;</MTConnectDevices>'),
     "mtconnect-not-agent"),
])
async def test_mtconnect_probe_warns_on_answers_that_are_not_an_agents_devices(handler, diagnosis):
    server, port = await serve(handler)
    async with server:
        o = await machines.mtconnect_probe(context(), {}, machine=AGENT, controller=controller(port, "mtconnect-agent"))
    assert (o.status, o.diagnosis) == ("warn", diagnosis), o.evidence
    assert o.remediation


async def test_mtconnect_probe_on_a_silent_port_warns_within_the_timeout():
    async def silent(reader, writer):  # an SHDR adapter, for instance, says nothing to a GET
        await asyncio.sleep(5)
        writer.close()

    server, port = await serve(silent)
    t0 = time.monotonic()
    async with server:
        o = await machines.mtconnect_probe(context(timeout=0.5), {}, machine=AGENT,
                                           controller=controller(port, "mtconnect-agent"))
        elapsed = time.monotonic() - t0
        server.close()
    assert (o.status, o.diagnosis) == ("warn", "mtconnect-not-agent")
    assert "within 0.5 s" in o.evidence and elapsed < 1.5


async def test_mtconnect_probe_cut_at_the_size_limit_still_names_the_devices(monkeypatch):
    monkeypatch.setattr(machines, "MAX_PROBE_BYTES", 4096)
    devices = b"".join(b'<Device id="d%d" name="M%d" uuid="u%d"/>' % (i, i, i) for i in range(500))
    body = (b'<MTConnectDevices xmlns="urn:mtconnect.org:MTConnectDevices:1.3"><Header/><Devices>'
            + devices + b"</Devices></MTConnectDevices>")
    server, port = await serve(http_server(body))
    async with server:
        o = await machines.mtconnect_probe(context(), {}, machine=AGENT, controller=controller(port, "mtconnect-agent"))
    assert (o.status, o.diagnosis) == ("pass", "ok")
    assert o.facts["devices"][:2] == ["M0", "M1"] and 50 < len(o.facts["devices"]) < 500
    assert "first part of a larger document" in o.evidence


# ============================================================ in the edge_lab's edge namespace


def run_in_edge(edge_lab, plan_path: Path, *args: str) -> dict:
    proc = edge_lab.edge([sys.executable, str(RUNNER), "--plan", str(plan_path), "--timeout", "2", *args], timeout=30)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture
def edge_plan(healthy_lab, tmp_path):
    return healthy_lab, healthy_lab.write_plan(tmp_path / "plan.yaml")


@needs_lab
@pytest.mark.lab
def test_lab_ntp_healthy_passes(edge_plan):
    edge_lab, plan = edge_plan
    out = run_in_edge(edge_lab, plan, "ntp", "--server", "203.0.113.123")
    assert (out["status"], out["diagnosis"]) == ("pass", "ok"), out["evidence"]


@needs_lab
@pytest.mark.lab
def test_lab_ntp_blocked_times_out(edge_plan):
    edge_lab, plan = edge_plan
    edge_lab.block(123, proto="udp", action="drop")
    out = run_in_edge(edge_lab, plan, "ntp", "--server", "203.0.113.123")
    assert (out["status"], out["diagnosis"]) == ("fail", "ntp-timeout")
    assert out["remediation"]


@needs_lab
@pytest.mark.lab
@pytest.mark.parametrize("fault", ["reject", "stop"])
def test_lab_ntp_rejected_or_stopped_is_still_no_answer(edge_plan, fault):
    # An ICMP port-unreachable never reaches an unconnected UDP socket: to the box, a REJECT
    # of 123/udp or a stopped server looks like a DROP.
    edge_lab, plan = edge_plan
    if fault == "reject":
        edge_lab.block(123, proto="udp", action="reject")
    else:
        edge_lab.stop("ntp")
    out = run_in_edge(edge_lab, plan, "ntp", "--server", "203.0.113.123")
    assert (out["status"], out["diagnosis"]) == ("fail", "ntp-timeout")


@needs_lab
@pytest.mark.lab
def test_lab_ntp_without_a_route_is_unreachable(edge_plan):
    edge_lab, plan = edge_plan
    edge_lab.no_route("203.0.113.123")
    out = run_in_edge(edge_lab, plan, "ntp", "--server", "203.0.113.123")
    assert (out["status"], out["diagnosis"]) == ("fail", "ntp-unreachable"), out["evidence"]
    assert out["remediation"]


@needs_lab
@pytest.mark.lab
@pytest.mark.parametrize("offset, status", [(7200, "fail"), (5, "warn")])
def test_lab_ntp_offset_is_clock_skew(edge_plan, offset, status):
    edge_lab, plan = edge_plan
    edge_lab.ntp_offset(offset)
    out = run_in_edge(edge_lab, plan, "ntp", "--server", "203.0.113.123")
    assert (out["status"], out["diagnosis"]) == (status, "clock-skew"), out["evidence"]
    assert out["remediation"]


@needs_lab
@pytest.mark.lab
@pytest.mark.parametrize("address", [m["address"] for m in LAB_MACHINES])
def test_lab_every_plant_machine_port_is_open(edge_plan, address):
    edge_lab, plan = edge_plan
    out = run_in_edge(edge_lab, plan, "machine-port", "--address", address)
    assert (out["status"], out["diagnosis"]) == ("pass", "ok"), out["evidence"]


@needs_lab
@pytest.mark.lab
def test_lab_stopped_machine_is_refused(edge_plan):
    edge_lab, plan = edge_plan
    edge_lab.stop("machines:8193")
    out = run_in_edge(edge_lab, plan, "machine-port", "--address", "198.51.100.21")
    assert (out["status"], out["diagnosis"]) == ("fail", "tcp-refused")
    assert "Machine Protocol Ports" in out["remediation"]


@needs_lab
@pytest.mark.lab
def test_lab_dropped_machine_port_times_out(edge_plan):
    edge_lab, plan = edge_plan
    edge_lab.block(8193, proto="tcp", action="drop", address="198.51.100.21")
    out = run_in_edge(edge_lab, plan, "machine-port", "--address", "198.51.100.21")
    assert (out["status"], out["diagnosis"]) == ("fail", "tcp-timeout")
    assert "Machines Not Reporting Data" in out["remediation"]


@needs_lab
@pytest.mark.lab
def test_lab_machine_without_a_route_is_unreachable(edge_plan):
    edge_lab, plan = edge_plan
    edge_lab.no_route("198.51.100.23")
    out = run_in_edge(edge_lab, plan, "machine-port", "--address", "198.51.100.23")
    assert (out["status"], out["diagnosis"]) == ("fail", "tcp-unreachable"), out["evidence"]
    assert "Machines Not Reporting Data" in out["remediation"]


@needs_lab
@pytest.mark.lab
def test_lab_mtconnect_probe_on_the_adapter_port_is_not_an_agent(edge_plan):
    # The adapter on 7878 speaks SHDR, not HTTP: open port, but no agent.
    edge_lab, plan = edge_plan
    out = run_in_edge(edge_lab, plan, "mtconnect-probe", "--address", "198.51.100.25")
    assert (out["status"], out["diagnosis"]) == ("warn", "mtconnect-not-agent"), out["evidence"]


@needs_lab
@pytest.mark.lab
def test_lab_mtconnect_agent_answers_its_probe(edge_plan):
    edge_lab, plan = edge_plan
    out = run_in_edge(edge_lab, plan, "mtconnect-probe", "--address", "198.51.100.22")
    assert (out["status"], out["diagnosis"]) == ("pass", "ok"), out["evidence"]
    assert out["facts"]["devices"]


@needs_lab
@pytest.mark.lab
def test_lab_plan_bandwidth_figures_and_cellular_cap(healthy_lab):
    data = healthy_lab.plan()
    plan = planmod.from_dict(data)
    assert sorted((m.address, m.controller) for m in plan.machines) == sorted(
        (m["address"], m["controller"]) for m in LAB_MACHINES)
    e = bandwidth.estimate(plan, CATALOG)
    assert (e["upload_kbps"], e["monthly_upload_mb"]) == (9, 2916)
    cellular = planmod.from_dict({**data, "topology": "cellular",
                                  "cellular": {"apn": "internet", "acknowledge_unsupported": True,
                                               "data_cap_mb": 1000}})
    o = asyncio.run(bandwidth.bandwidth_estimate(context(cellular), {}))
    assert (o.status, o.diagnosis) == ("warn", "data-cap-exceeded") and o.remediation

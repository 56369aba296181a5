"""Sessions, proxies, NAT and CloudLink's OpenVPN: the diagnoses that look past the first packet.

- `nats-info` completes a NATS session (INFO, TLS when required, CONNECT, PING, PONG): an IPS
  that lets INFO through and resets the session after CONNECT is `nats-session-cut`.
- every proxy refusal carries a remediation naming the CONNECT ports to allow.
- `nat-detect` compares the address the NATS server saw with the box's own, and attaches seed
  002's CoAP-over-TCP advice where a plan uses CoAP over UDP.
- `openvpn-handshake` sends OpenVPN's client hard reset to CloudLink on TCP 443 and tells a
  server's answer, a reset, silence and a non-OpenVPN answer apart.

The loopback half runs real nats-server processes and small servers on 127.0.0.1; the lab half
runs `edge-installer check --json` in the lab's edge namespace against real servers (nats-server
behind tests/lab/natscut.py, squid, Debian's openvpn with port-share to nginx, nftables).
"""

from __future__ import annotations

import asyncio
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from installer.checks.base import NOT_NEEDED, Context, Proxy, Result
from installer.checks.nat import nat_detect, nat_only
from installer.checks.nats import nats_info
from installer.checks.net import Dest
from installer.checks.openvpn import hard_reset_client, openvpn_handshake, parse_server_reset
from installer.checks.tcp import tcp_connect
from installer.planning.plan import Plan
from installer.planning.plan import from_dict as plan_from_dict
from installer.vendors.profiles import load_catalog
from tests import tls_servers as ts

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "installer"]
CATALOG = load_catalog()
MM = CATALOG.profiles["machinemetrics"]
NATS_EP = next(e for e in MM.endpoints if e.service == "nats")
CLOUDLINK = "cloudlink.balena-cloud.com"
CLOUDLINK_EP = next(e for e in MM.endpoints if e.host == CLOUDLINK)
INFO = b'INFO {"server_id":"NLAB","server_name":"lab","version":"2.9.10","proto":1,"max_payload":1048576}\r\n'
LIMIT_S = 10


def context(timeout: float = 1.0, extra_ca: Path | None = None, plan: Plan | None = None) -> Context:
    return Context(plan or Plan(), CATALOG, timeout=timeout, extra_ca_file=str(extra_ca) if extra_ca else None)


async def run_nats(port: int, timeout: float = 1.0, extra_ca: Path | None = None, host: str | None = None):
    dest = Dest(host, port, ("127.0.0.1",))
    return await asyncio.wait_for(nats_info(context(timeout, extra_ca), {}, dest=dest, endpoint=NATS_EP,
                                            profile=MM), LIMIT_S)


def _rst(writer) -> None:
    writer.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


def cut_after_connect(reset: bool = True):
    """INFO, then a reset (or silence) once CONNECT arrives: the inspecting box."""
    async def handle(reader, writer):
        writer.write(INFO)
        await writer.drain()
        data = await reader.read(1000)
        if b"CONNECT" in data and reset:
            _rst(writer)
            return
        while await reader.read(1000):
            pass
    return handle


# --- a real nats-server on loopback ----------------------------------------------------------

@pytest.fixture
def nats_server(tmp_path):
    """Start nats-server on 127.0.0.1 with extra arguments; yields a starter returning the port."""
    if shutil.which("nats-server", path="/usr/sbin:/usr/bin:/sbin:/bin") is None:
        pytest.skip("nats-server is not installed (Debian package nats-server)")
    procs = []

    def start(*args: str) -> int:
        port = ts.free_port()
        exe = shutil.which("nats-server", path="/usr/sbin:/usr/bin:/sbin:/bin")
        proc = subprocess.Popen([exe, "-a", "127.0.0.1", "-p", str(port), "-n", "loop", *args],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(proc)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            with socket.socket() as s:
                if s.connect_ex(("127.0.0.1", port)) == 0:
                    return port
            time.sleep(0.02)
        raise RuntimeError("nats-server did not start")

    yield start
    for proc in procs:
        proc.kill()
        proc.wait(timeout=5)


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return ts.Pki(tmp_path_factory.mktemp("pki"))


def tls_files(pki, issuer: str) -> tuple[Path, Path]:
    """A leaf for 127.0.0.1 and stream.machinemetrics-us-gov.com from `issuer`: (cert, key)."""
    names = ["127.0.0.1", "stream.machinemetrics-us-gov.com"]
    pki.server_context(issuer, names)
    stem = f"{issuer}-{names[0]}-False-False-False"
    return pki.root / f"{stem}.crt", pki.root / f"{stem}.key"


async def test_nats_session_completes_on_a_real_server(nats_server):
    out = await run_nats(nats_server())
    assert (out.status, out.diagnosis) == ("pass", "ok") and "session completed (CONNECT, PING, PONG)" in out.evidence
    assert out.facts["public_ip"] == out.facts["local_ip"] == "127.0.0.1"


async def test_nats_authorization_error_proves_the_session(nats_server):
    out = await run_nats(nats_server("--user", "edge", "--pass", "secret"))
    assert (out.status, out.diagnosis) == ("pass", "ok")
    assert "Authorization Violation" in out.evidence and "own credentials" in out.evidence


async def test_nats_tls_required_is_upgraded_and_verified(nats_server, pki):
    cert, key = tls_files(pki, "public")
    port = nats_server("--tls", "--tlscert", str(cert), "--tlskey", str(key))
    out = await run_nats(port, extra_ca=pki.ca_file)
    assert (out.status, out.diagnosis) == ("pass", "ok"), out
    assert "TLS required" in out.evidence and "verified" in out.evidence and "PONG" in out.evidence


async def test_nats_tls_by_an_appliance_ca_is_named(nats_server, pki):
    cert, key = tls_files(pki, "dpi")
    port = nats_server("--tls", "--tlscert", str(cert), "--tlskey", str(key))
    out = await run_nats(port, extra_ca=pki.ca_file)
    assert (out.status, out.diagnosis) == ("fail", "tls-intercepted") and ts.DPI_CA in out.evidence


@pytest.mark.parametrize("reset, words", [(True, "reset (RST) after CONNECT"), (False, "no answer to CONNECT")])
async def test_nats_cut_after_connect(reset, words):
    async with ts.serving(cut_after_connect(reset)) as port:
        out = await run_nats(port, timeout=0.5)
    assert (out.status, out.diagnosis) == ("fail", "nats-session-cut"), out
    assert "INFO arrived (server lab), then" in out.evidence and words in out.evidence
    assert "54.218.103.126" in out.remediation and "7422" in out.remediation


async def test_a_session_that_is_not_cut_passes_with_the_same_server_code():
    async with ts.serving(ts.nats(INFO)) as port:
        out = await run_nats(port)
    assert (out.status, out.diagnosis) == ("pass", "ok")


# --- proxy refusals ----------------------------------------------------------------------------

def refusing_proxy(allowed: tuple[int, ...]):
    """A proxy answering 403 to CONNECT to any port not in `allowed`, 502 to the others."""
    async def handle(reader, writer):
        head = (await reader.readuntil(b"\r\n\r\n")).decode().split("\r\n")[0]
        port = int(head.split(" ")[1].rsplit(":", 1)[1])
        status = "502 Bad Gateway" if port in allowed else "403 Forbidden"
        writer.write(f"HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n".encode())
        await writer.drain()
    return handle


@pytest.mark.parametrize("allowed, says", [((443,), "allows CONNECT to port 443 but refuses port 7422"),
                                           ((), "refuses CONNECT to 54.218.103.126 on port 443 as well")])
async def test_tcp_connect_proxy_denied_names_the_ports(allowed, says):
    async with ts.serving(refusing_proxy(allowed)) as port:
        proxy = Proxy("127.0.0.1", port, None, f"http://127.0.0.1:{port}")
        dest = Dest(None, 7422, ("54.218.103.126",), proxy=proxy)
        out = await asyncio.wait_for(tcp_connect(context(), {}, dest=dest, endpoint=NATS_EP, profile=MM), LIMIT_S)
    assert (out.status, out.diagnosis) == ("fail", "proxy-denied")
    assert says in out.remediation and "443 and 7422" in out.remediation and "no_proxy" in out.remediation
    assert out.facts["port"] == 7422 and out.facts["via_proxy"] is True
    assert out.facts["proxy_allows_443"] is bool(allowed)


@pytest.mark.parametrize("fn", [tcp_connect, nats_info, openvpn_handshake])
async def test_every_proxy_failure_has_a_remediation_with_ports(fn):
    proxy = Proxy("127.0.0.1", ts.free_port(), None, "http://127.0.0.1:1")
    ep = CLOUDLINK_EP if fn is openvpn_handshake else NATS_EP
    dest = Dest(CLOUDLINK if fn is openvpn_handshake else None, ep.port, ("127.0.0.1",), proxy=proxy)
    out = await asyncio.wait_for(fn(context(), {}, dest=dest, endpoint=ep, profile=MM), LIMIT_S)
    assert (out.status, out.diagnosis) == ("fail", "proxy-unreachable")
    assert "CONNECT to ports 443 and 7422" in out.remediation and out.facts["proxy"] == "http://127.0.0.1:1"


# --- OpenVPN -------------------------------------------------------------------------------------

def test_hard_reset_packet_layout():
    sid = bytes(range(8))
    packet = hard_reset_client(sid)
    assert packet == b"\x00\x0e" + b"\x38" + sid + b"\x00" + b"\x00\x00\x00\x00"
    server = bytes([8 << 3]) + b"S" * 8 + b"\x01" + b"\x00\x00\x00\x00" + sid + b"\x00\x00\x00\x00"
    assert parse_server_reset(server, sid) == (True, b"S" * 8)
    assert parse_server_reset(b"\x16\x03\x01" + b"x" * 20, sid) is None


@pytest.mark.parametrize("handler, diagnosis, status", [
    (ts.reset_after_hello, "openvpn-reset", "fail"),
    (ts.close_after_hello, "openvpn-reset", "fail"),
    (ts.silent, "openvpn-silent", "warn"),
    (ts.plain_http, "openvpn-not-openvpn", "fail"),
    (ts.say(b"\x15\x03\x03\x00\x02\x02\x46"), "openvpn-not-openvpn", "fail"),
])
async def test_openvpn_answers_told_apart(handler, diagnosis, status):
    async with ts.serving(handler) as port:
        dest = Dest(CLOUDLINK, port, ("127.0.0.1",))
        out = await asyncio.wait_for(openvpn_handshake(context(0.5), {}, dest=dest, endpoint=CLOUDLINK_EP,
                                                       profile=MM), LIMIT_S)
    assert (out.status, out.diagnosis) == (status, diagnosis), out
    assert CLOUDLINK in out.remediation and "corporate" in out.remediation


def test_cloudlink_endpoints_carry_the_openvpn_probe():
    hosts = {e.host for p in CATALOG.profiles.values() for e in p.endpoints if "openvpn" in e.checks}
    assert hosts == {CLOUDLINK, "cloudlink.balena.machinemetrics-us-gov.com"}
    assert all(e.port == 443 and "tcp" in e.checks for p in CATALOG.profiles.values() for e in p.endpoints
               if "openvpn" in e.checks)


async def test_openvpn_other_control_packet_is_still_openvpn():
    ack = bytes([5 << 3]) + b"S" * 8 + b"\x00" + b"\x00\x00\x00\x00"
    async with ts.serving(ts.say(struct.pack("!H", len(ack)) + ack)) as port:
        out = await asyncio.wait_for(openvpn_handshake(context(0.5), {}, dest=Dest(CLOUDLINK, port, ("127.0.0.1",)),
                                                       endpoint=CLOUDLINK_EP, profile=MM), LIMIT_S)
    assert (out.status, out.diagnosis) == ("pass", "ok") and "P_ACK_V1" in out.evidence


# --- NAT -----------------------------------------------------------------------------------------

def nats_result(local: str | None, public: str | None, via_proxy: bool = False) -> Result:
    facts = {"local_ip": local, "public_ip": public, "via_proxy": via_proxy}
    return Result("nats-info", "nats", "54.218.103.126:7422", "pass", "ok", "", "", 0.0, "machinemetrics",
                  "nats-info:54.218.103.126:7422", {k: v for k, v in facts.items() if v is not None})


@pytest.mark.parametrize("local, public, izuma, verdict", [
    ("203.0.113.2", "203.0.113.2", True, ("pass", "ok", "no NAT seen")),
    ("203.0.113.2", "198.51.100.77", False, ("pass", "ok", "behind NAT")),
    ("203.0.113.2", "198.51.100.77", True, ("warn", "behind-nat", "CoAP over UDP")),
    ("10.20.0.15", None, True, ("warn", "behind-nat", "private")),
    (None, None, True, ("pass", "ok", "could not tell")),
    (None, None, False, ("skip", NOT_NEEDED, "could not tell")),
])
async def test_nat_verdicts(local, public, izuma, verdict):
    plan = Plan()
    prereqs = {}
    if public:
        r = nats_result(local, public)
        prereqs[r.key] = r
    elif local:
        plan = plan_from_dict({"version": 1, "topology": "single", "renderer": "netplan",
                               "uplink": {"interface": "nosuch0", "ipv4": "static", "address": f"{local}/24",
                                          "gateway": "10.20.0.1"}})
    out = await nat_detect(context(plan=plan), prereqs, nats_keys=tuple(prereqs),
                           coap_udp_profiles=("izuma-device-management",) if izuma else ())
    assert (out.status, out.diagnosis) == verdict[:2] and verdict[2] in out.evidence, out
    if out.diagnosis == "behind-nat":
        assert "CoAP over TCP" in out.remediation and "dedicated tunnel" in out.remediation


def test_nat_only_ranges():
    assert [nat_only(a) for a in ("10.1.2.3", "172.20.0.1", "192.168.1.9", "100.64.0.1", "203.0.113.2",
                                  "8.8.8.8", "not an address")] == [True, True, True, True, False, False, False]


# --- the network lab ---------------------------------------------------------------------------

from tests.lab import topology as T  # noqa: E402
from tests.lab.checkrun import check, one, results  # noqa: E402
from tests.lab.fixtures import healthy_lab, lab  # noqa: E402,F401

NATS_IPS = ("54.218.103.126", "52.24.16.63", "52.34.161.223", "35.155.82.103")


@pytest.mark.lab
class TestLab:
    def test_healthy(self, healthy_lab, tmp_path):
        rc, doc, _ = check(healthy_lab, tmp_path, profiles=["machinemetrics", "izuma-device-management"])
        for ip in NATS_IPS:
            c = one(doc, "nats-info", f"{ip}:7422")
            assert c["status"] == "pass" and "session completed" in c["evidence"], c
        c = one(doc, "openvpn-handshake", f"{CLOUDLINK}:443")
        assert c["status"] == "pass" and "P_CONTROL_HARD_RESET_SERVER_V2" in c["evidence"], c
        # HTTPS on the same address and port still works (port-share to nginx).
        assert one(doc, "https-ping", f"https://{CLOUDLINK}/ping")["status"] == "pass"
        c = one(doc, "nat-detect", T.UPLINK_IF)
        assert (c["status"], c["diagnosis"]) == ("pass", "ok") and "no NAT seen" in c["evidence"], c

    def test_nats_cut_after_connect(self, healthy_lab, tmp_path):
        healthy_lab.nats_cut_after_connect()
        rc, doc, _ = check(healthy_lab, tmp_path)
        for ip in NATS_IPS:
            assert one(doc, "tcp-connect", f"{ip}:7422")["status"] == "pass"
            c = one(doc, "nats-info", f"{ip}:7422")
            assert (c["status"], c["diagnosis"]) == ("fail", "nats-session-cut"), c
            assert "INFO arrived (server edge-lab), then the connection was reset (RST) after CONNECT" in c["evidence"]
            assert "inspecting port 7422" in c["remediation"] and ip in c["remediation"]
        assert rc == 2

    def test_nats_cut_through_the_proxy_and_govcloud_by_name(self, healthy_lab, tmp_path):
        healthy_lab.nats_cut_after_connect()
        rc, doc, _ = check(healthy_lab, tmp_path, profiles=["machinemetrics-govcloud"],
                        proxy=healthy_lab.proxy_settings())
        c = one(doc, "nats-info", "stream.machinemetrics-us-gov.com:7422")
        assert (c["status"], c["diagnosis"]) == ("fail", "nats-session-cut") and "through the proxy" in c["evidence"]

    def test_proxy_tunnels_only_to_443(self, healthy_lab, tmp_path):
        healthy_lab.proxy_connect_ports((443,))
        rc, doc, _ = check(healthy_lab, tmp_path, proxy=healthy_lab.proxy_settings())
        assert one(doc, "tcp-connect", "api.machinemetrics.com:443")["status"] == "pass"
        for ip in NATS_IPS:
            c = one(doc, "tcp-connect", f"{ip}:7422")
            assert (c["status"], c["diagnosis"]) == ("fail", "proxy-denied"), c
            assert "allows CONNECT to port 443 but refuses port 7422" in c["remediation"], c["remediation"]
            assert "54.218.103.126, 52.24.16.63" in c["remediation"] and "no_proxy" in c["remediation"]
            assert one(doc, "nats-info", f"{ip}:7422")["status"] == "skip"

    def test_proxy_auth_names_the_ports(self, healthy_lab, tmp_path):
        rc, doc, _ = check(healthy_lab, tmp_path, proxy=healthy_lab.proxy_settings(credentials=False))
        c = one(doc, "tcp-connect", "54.218.103.126:7422")
        assert (c["status"], c["diagnosis"]) == ("fail", "proxy-auth-required")
        assert "CONNECT to ports 443 and 7422" in c["remediation"]

    def test_openvpn_blocked_while_https_works(self, healthy_lab, tmp_path):
        healthy_lab.block_openvpn()
        rc, doc, _ = check(healthy_lab, tmp_path)
        assert one(doc, "tls-verify", f"{CLOUDLINK}:443")["status"] == "pass"
        assert one(doc, "https-ping", f"https://{CLOUDLINK}/ping")["status"] == "pass"
        c = one(doc, "openvpn-handshake", f"{CLOUDLINK}:443")
        assert (c["status"], c["diagnosis"]) == ("fail", "openvpn-reset"), c
        assert "while HTTPS to the same host works" in c["evidence"] and "reset (RST)" in c["evidence"]
        assert "VPN-blocking" in c["remediation"] and "corporate" in c["remediation"]
        assert rc == 2

    def test_openvpn_blocked_behind_the_proxy(self, healthy_lab, tmp_path):
        healthy_lab.block_openvpn()
        rc, doc, _ = check(healthy_lab, tmp_path, proxy=healthy_lab.proxy_settings())
        assert one(doc, "https-ping", f"https://{CLOUDLINK}/ping")["status"] == "pass"
        c = one(doc, "openvpn-handshake", f"{CLOUDLINK}:443")
        assert (c["status"], c["diagnosis"]) == ("fail", "openvpn-reset") and "through the proxy" in c["evidence"], c

    def test_openvpn_answered_by_a_tls_server(self, healthy_lab, tmp_path):
        healthy_lab.serve_from(CLOUDLINK, "cloud")  # nginx alone: TLS, no OpenVPN
        rc, doc, _ = check(healthy_lab, tmp_path)
        assert one(doc, "tls-verify", f"{CLOUDLINK}:443")["status"] == "pass"
        c = one(doc, "openvpn-handshake", f"{CLOUDLINK}:443")
        assert (c["status"], c["diagnosis"]) == ("fail", "openvpn-not-openvpn") and "HTTP answer" in c["evidence"], c

    def test_openvpn_silently_dropped(self, healthy_lab, tmp_path):
        healthy_lab.block_openvpn("drop")
        rc, doc, _ = check(healthy_lab, tmp_path)
        assert one(doc, "https-ping", f"https://{CLOUDLINK}/ping")["status"] == "pass"
        c = one(doc, "openvpn-handshake", f"{CLOUDLINK}:443")
        assert (c["status"], c["diagnosis"]) == ("warn", "openvpn-silent"), c
        assert "tls-auth" in c["evidence"] and "tls-verify passed" in c["evidence"]

    def test_govcloud_cloudlink_speaks_openvpn(self, healthy_lab, tmp_path):
        rc, doc, _ = check(healthy_lab, tmp_path, profiles=["machinemetrics-govcloud"])
        c = one(doc, "openvpn-handshake", "cloudlink.balena.machinemetrics-us-gov.com:443")
        assert c["status"] == "pass", c

    @pytest.mark.parametrize("profiles, verdict", [(["machinemetrics"], ("pass", "ok")),
                                                   (["machinemetrics", "izuma-device-management"],
                                                    ("warn", "behind-nat"))])
    def test_behind_nat(self, healthy_lab, tmp_path, profiles, verdict):
        healthy_lab.nat("203.0.113.200")
        rc, doc, _ = check(healthy_lab, tmp_path, profiles=profiles)
        c = one(doc, "nat-detect", T.UPLINK_IF)
        assert (c["status"], c["diagnosis"]) == verdict, c
        assert "203.0.113.200" in c["evidence"] and T.EDGE_UPLINK in c["evidence"]
        if verdict[1] == "behind-nat":
            assert "CoAP over TCP" in c["remediation"] and "dedicated tunnel" in c["remediation"]
        # Everything else still works behind the NAT.
        assert all(x["status"] == "pass" for x in results(doc, "nats-info"))


@pytest.mark.lab
def test_lab_faults_refuse_bad_arguments(healthy_lab):
    from tests.lab import LabError

    for call in (lambda: healthy_lab.nat("8.8.8.8"), lambda: healthy_lab.nat(T.CLOUD),
                 lambda: healthy_lab.proxy_connect_ports(()), lambda: healthy_lab.proxy_connect_ports((0,)),
                 lambda: healthy_lab.block_openvpn("maybe")):
        with pytest.raises(LabError):
            call()

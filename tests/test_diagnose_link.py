"""CoAP over UDP (DTLS on 5684, seed 002), the uplink's quality, and the ping-8.8.8.8 reference
(seed 000's diagnostic step 4): `edge-installer check --json` in the lab's edge namespace,
each fault beside its healthy case, against real servers (openssl s_server -dtls) and real
kernel behaviour (nftables drop/reject, ICMP, an NFQUEUE delayer).

Unit tests first (no lab): the ICMP packet, the thresholds, the gateway table, the profile
rules for "dtls", and the interlock refusing raw ICMP to the internet from this machine.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from installer.checks import icmp
from installer.checks.base import Context, Result
from installer.checks.runner import default_deadline
from installer.vendors.profileread import build_profile
from installer.vendors.profiles import ProfileError
from tests.lab.checkrun import check, one, results
from tests.lab.fixtures import healthy_lab, lab  # noqa: F401

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "installer"]
IZUMA = "izuma-device-management"
BOOTSTRAP_UDP = "bootstrap.us-east-1.mbedcloud.com:5684/udp"
UDP_HOSTS = {BOOTSTRAP_UDP, "lwm2m.us-east-1.mbedcloud.com:5684/udp", "udp-lwm2m.us-east-1.mbedcloud.com:5684/udp"}


def test_echo_request_has_a_valid_checksum_and_replies_are_matched():
    packet = icmp.echo_request(0x1234, 7)
    assert packet[0] == icmp.ECHO_REQUEST and icmp._checksum(packet) == 0  # a valid checksum sums to 0
    reply = bytes([icmp.ECHO_REPLY]) + packet[1:]
    ip_header = bytes([0x45]) + bytes(19)
    assert icmp.parse_reply(ip_header + reply, 0x1234, raw=True) == 7
    assert icmp.parse_reply(ip_header + reply, 0x9999, raw=True) is None       # someone else's ping
    assert icmp.parse_reply(reply, None, raw=False) == 7                       # datagram socket
    assert icmp.parse_reply(ip_header + packet, 0x1234, raw=True) is None      # a request, not a reply
    assert icmp.parse_reply(b"\x45\x00", 1, raw=True) is None                  # garbage never raises


def _series(sent: int, rtts_ms: list[float]) -> icmp.Series:
    return icmp.Series("203.0.113.1", "ICMP echo", sent, [r / 1000 for r in rtts_ms])


@pytest.mark.parametrize("sent, rtts, status", [
    (20, [1.0] * 20, "pass"),
    (40, [1.0] * 39, "pass"),            # one lost packet in 40 is not a poor link
    (40, [1.0] * 38, "warn"),            # 5 %
    (40, [1.0] * 36, "fail"),            # 10 %
    (20, [350.0] * 20, "warn"),          # median above 300 ms
    (20, [1200.0] * 20, "fail"),         # median above 1000 ms
    (20, [1.0] * 15 + [900.0] * 5, "pass"),  # a few slow answers: the median decides
])
def test_link_thresholds(sent, rtts, status):
    assert icmp.judge_link(_series(sent, rtts))[0] == status


def test_a_second_probe_confirms_loss_before_the_link_is_blamed():
    lossy_ping = icmp.Series("203.0.113.1", "ICMP echo", 20, [0.001] * 10)
    clean_dns = icmp.Series("203.0.113.53", "DNS query", 20, [0.002] * 20)
    lossy_dns = icmp.Series("203.0.113.53", "DNS query", 20, [0.002] * 12)
    # The gateway drops half the pings but no DNS query is lost: it limits ICMP, the link is fine.
    series, label, note = icmp._combine(lossy_ping, clean_dns, "the uplink's gateway")
    assert icmp.judge_link(series)[0] == "pass" and "limits ICMP" in note and "203.0.113.53" in label
    # Both lose: the link is poor, judged on all 40 probes.
    series, label, note = icmp._combine(lossy_ping, lossy_dns, "the uplink's gateway")
    assert (series.sent, series.received) == (40, 22) and icmp.judge_link(series)[0] == "fail"
    assert "203.0.113.1" in label and "203.0.113.53" in label
    # No answer to ping at all: the DNS queries are the measure.
    silent = icmp.Series("203.0.113.1", "ICMP echo", 20, [])
    series, label, note = icmp._combine(silent, clean_dns, "the uplink's gateway")
    assert series is clean_dns and "does not answer ping" in note
    assert icmp._combine(silent, icmp.Series("203.0.113.53", "DNS query", 20, []), "x")[0] is None


def test_default_gateway_from_the_route_table(tmp_path):
    route = tmp_path / "route"
    route.write_text("Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
                     "enp2s0\t0071CB00\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
                     "enp2s0\t00000000\t017100CB\t0003\t0\t0\t0\t00000000\t0\t0\t0\n")
    assert icmp.default_gateway(route) == "203.0.113.1"
    route.write_text("Iface\tDestination\tGateway\n")
    assert icmp.default_gateway(route) is None
    assert icmp.default_gateway(tmp_path / "missing") is None


def test_reference_probe_is_not_needed_without_a_failure():
    ok = Result("tcp-connect", "tcp", "api.machinemetrics.com:443", "pass", "ok", "", "", 0.0, "machinemetrics",
                "tcp-connect:api.machinemetrics.com:443")
    ctx = Context(plan=None, catalog=None)  # type: ignore[arg-type]  (nothing of them is read)
    outcome = asyncio.run(icmp.icmp_reference(ctx, {ok.key: ok}, watched=(ok.key,)))
    assert (outcome.status, outcome.diagnosis) == ("skip", "not-needed")


# --- unit: the profile rules for "dtls" ----------------------------------------------------

_SEED = "002_5d48260093aa547d.txt#Domains"


def _profile(endpoint: dict) -> object:
    data = {"id": "p", "title": "P", "seed": _SEED, "tls_trust": "public", "remediation": {},
            "endpoints": [{"port": 5684, "service": "coap", "purpose": "CoAP", "seed": _SEED,
                           "host": "coap.example.com", **endpoint}]}
    return build_profile(data, "p.yaml", "p")


def test_profile_rules_for_dtls():
    p = _profile({"protocol": "udp", "checks": ["dns", "dtls"], "expected_issuer": "ARM Bootstrap CA"})
    assert p.endpoints[0].checks == ("dns", "dtls") and p.endpoints[0].expected_issuer == "ARM Bootstrap CA"
    with pytest.raises(ProfileError, match="UDP"):
        _profile({"protocol": "udp", "checks": ["dns", "tcp"]})
    with pytest.raises(ProfileError, match="'dtls' is for a UDP endpoint"):
        _profile({"protocol": "tcp", "checks": ["dns", "tcp", "dtls"]})
    with pytest.raises(ProfileError, match="needs 'dns'"):
        _profile({"protocol": "udp", "checks": ["dtls"]})


# --- unit: the interlock covers raw ICMP ---------------------------------------------------

PROBE = textwrap.dedent("""
    import asyncio, socket, sys, time
    import installer.checks.netguard as guard
    guard._own_namespace = lambda: True     # as if this empty namespace were the machine's own
    guard.install(sys.argv[1])
    from installer.checks import icmp
    s = asyncio.run(icmp.echo("8.8.8.8", count=1, interval=0.01, wait=0.1, end=time.monotonic() + 1))
    print("echo", s.sent, s.error)
    raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
    try:
        raw.sendto(icmp.echo_request(1, 1), ("8.8.8.8", 0))
        print("sendto allowed")
    except PermissionError:
        print("sendto refused")
""")


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("unshare"),
                    reason="NEEDS ROOT: unshare --net makes the empty namespace the guard is tried in")
def test_the_interlock_refuses_icmp_to_the_internet(tmp_path):
    log = tmp_path / "refused.log"
    r = subprocess.run(["unshare", "--net", sys.executable, "-c", PROBE, str(log)], capture_output=True,
                       text=True, cwd=REPO, env={**os.environ, "EDGE_INSTALLER_NET_GUARD": ""}, timeout=30)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("echo 0 ") and "EDGE_INSTALLER_NET_GUARD" in lines[0], lines
    assert lines[1] == "sendto refused", lines
    assert "8.8.8.8" in log.read_text()


# --- lab: DTLS on UDP 5684 ------------------------------------------------------------------

def test_dtls_healthy_passes_with_the_bootstrap_issuer(healthy_lab, tmp_path):
    rc, doc, _ = check(healthy_lab, tmp_path, profiles=[IZUMA])
    dtls = {c["target"]: c for c in results(doc, "dtls-issuer")}
    assert set(dtls) == UDP_HOSTS
    assert all((c["status"], c["diagnosis"], c["kind"]) == ("pass", "ok", "dtls") for c in dtls.values()), dtls
    assert "ARM Bootstrap CA" in dtls[BOOTSTRAP_UDP]["evidence"] and "DTLS" in dtls[BOOTSTRAP_UDP]["evidence"]
    # Each UDP-only host is resolved first (udp-lwm2m has no TCP endpoint).
    assert one(doc, "dns-resolve", "udp-lwm2m.us-east-1.mbedcloud.com")["status"] == "pass"
    assert rc == 0 and doc["duration_s"] < 3.0  # no check waited for its 3 s timeout (speed: bench/checks.py)


@pytest.mark.parametrize("action, diagnosis", [("drop", "dtls-timeout"), ("reject", "dtls-unreachable")])
def test_dtls_udp_blocked(healthy_lab, tmp_path, action, diagnosis):
    healthy_lab.block(5684, proto="udp", action=action)
    rc, doc, _ = check(healthy_lab, tmp_path, "--timeout", "1", profiles=[IZUMA])
    for c in results(doc, "dtls-issuer"):
        assert (c["status"], c["diagnosis"]) == ("fail", diagnosis), c
        assert "UDP 5684" in c["remediation"] and "CoAP over TCP" in c["remediation"], c
    # CoAP over TCP still works: the report tells the two transports apart.
    assert one(doc, "coap-tls-issuer", "bootstrap.us-east-1.mbedcloud.com:5684")["status"] == "pass"
    assert rc == 2


def test_dtls_intercepted_names_the_issuer(healthy_lab, tmp_path):
    healthy_lab.intercept_tls()
    rc, doc, _ = check(healthy_lab, tmp_path, profiles=[IZUMA])
    c = one(doc, "dtls-issuer", BOOTSTRAP_UDP)
    assert (c["status"], c["diagnosis"]) == ("fail", "tls-intercepted"), c
    assert healthy_lab.dpi_ca_name in c["evidence"] and "ARM Bootstrap CA" in c["evidence"]
    assert "bootstrap.us-east-1.mbedcloud.com" in c["remediation"]


def test_dtls_answered_by_something_else(healthy_lab, tmp_path):
    healthy_lab.serve_from("bootstrap.us-east-1.mbedcloud.com", "wrong-name")  # a CoAP server without DTLS
    rc, doc, _ = check(healthy_lab, tmp_path, profiles=[IZUMA])
    c = one(doc, "dtls-issuer", BOOTSTRAP_UDP)
    assert (c["status"], c["diagnosis"]) == ("fail", "dtls-handshake-failed"), c
    assert "not DTLS" in c["evidence"] and "0x70000000" in c["evidence"] and c["remediation"].strip()
    assert one(doc, "dtls-issuer", "lwm2m.us-east-1.mbedcloud.com:5684/udp")["status"] == "pass"


# --- lab: link quality ----------------------------------------------------------------------

def test_link_quality_healthy_is_brief_and_passes(healthy_lab, tmp_path):
    rc, doc, _ = check(healthy_lab, tmp_path)
    c = one(doc, "link-quality")
    assert (c["kind"], c["status"], c["diagnosis"]) == ("link", "pass", "ok"), c
    assert "203.0.113.1" in c["evidence"] and "20/20 answered" in c["evidence"]
    assert c["duration_s"] < 1.5, c  # ~0.2 s: one series, no waiting (a loaded machine adds some)
    assert rc == 0


def test_poor_link_is_named_with_its_figures_and_the_run_ends_in_time(healthy_lab, tmp_path):
    healthy_lab.poor_link(delay_ms=150, loss_pct=30)
    rc, doc, wall = check(healthy_lab, tmp_path, "--timeout", "2")
    c = one(doc, "link-quality")
    assert (c["status"], c["diagnosis"]) == ("fail", "poor-link"), c
    assert "lost" in c["evidence"] and "RTT" in c["evidence"] and "ms" in c["evidence"]
    assert "cable" in c["remediation"] and "congestion" in c["remediation"]
    assert doc["duration_s"] <= default_deadline(2.0) + 0.5 and wall < default_deadline(2.0) + 10
    assert rc == 2


def test_a_slow_link_warns(healthy_lab, tmp_path):
    healthy_lab.poor_link(delay_ms=400, jitter_ms=20)
    rc, doc, _ = check(healthy_lab, tmp_path, "--timeout", "3")
    c = one(doc, "link-quality")
    assert (c["status"], c["diagnosis"]) == ("warn", "poor-link"), c
    assert "median round trip" in c["evidence"]
    healthy_lab.reset()  # undoes the link: the delayer and its queue rule are gone
    rc, doc, _ = check(healthy_lab, tmp_path)
    assert one(doc, "link-quality")["status"] == "pass" and rc == 0


def test_link_quality_measures_with_dns_where_ping_is_filtered(healthy_lab, tmp_path):
    healthy_lab.block_ping()
    rc, doc, _ = check(healthy_lab, tmp_path)
    c = one(doc, "link-quality")
    assert (c["status"], c["diagnosis"]) == ("pass", "ok"), c
    assert "DNS" in c["evidence"] and "203.0.113.53" in c["evidence"]


# --- lab: ping 8.8.8.8 beside failing hosts --------------------------------------------------

def test_reference_ping_only_when_a_cloud_host_fails(healthy_lab, tmp_path):
    rc, doc, _ = check(healthy_lab, tmp_path)
    assert results(doc, "icmp-reference") == [] and rc == 0


def test_reference_ping_answers_while_hosts_are_blocked(healthy_lab, tmp_path):
    healthy_lab.block(443, action="reject")
    rc, doc, _ = check(healthy_lab, tmp_path)
    c = one(doc, "icmp-reference", "8.8.8.8")
    assert (c["kind"], c["status"], c["diagnosis"]) == ("icmp", "pass", "ok"), c
    assert c["evidence"].startswith("8.8.8.8 answers ping") and "cloudlink.balena-cloud.com:443" in c["evidence"]
    assert "specifically" in c["evidence"]


def test_reference_ping_unanswered_too(healthy_lab, tmp_path):
    healthy_lab.block(443, action="reject")
    healthy_lab.block_ping()
    rc, doc, _ = check(healthy_lab, tmp_path)
    c = one(doc, "icmp-reference", "8.8.8.8")
    assert (c["status"], c["diagnosis"]) == ("warn", "icmp-blocked"), c
    assert "no answer" in c["evidence"] and c["remediation"].strip()

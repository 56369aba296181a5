"""DNS diagnoses beyond the rcode (issue 10), proven in the namespace lab against real dnsmasq
resolvers and an authoritative server, each fault beside a healthy run:

- a DNS filter's sinkhole (0.0.0.0, loopback, "::") and a private block-page address for a
  public vendor name (and not for the plan's own hosts);
- an answer larger than one UDP packet: truncated, asked again over TCP 53; TCP 53 blocked;
- a lost query re-sent, never blamed on a firewall;
- a resolver that keeps records past their TTL (seed 002), judged against the zone's own
  name server, and nothing judged when that cannot be reached;
- advice that names the resolvers the plan uses.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import pytest

from installer.checks import dns as D
from tests.lab import topology as T
from tests.lab.checkrun import check, one, problems
from tests.lab.fixtures import healthy_lab, lab  # noqa: F401

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "installer"]
API = "api.machinemetrics.com"
APP = "app.machinemetrics.com"
BOOT = "bootstrap.us-east-1.mbedcloud.com"
IZUMA = ["machinemetrics", "izuma-device-management"]


def ascii_only(c):
    for key in ("evidence", "remediation"):
        c[key].encode("ascii")


# --- address classes (no network) -------------------------------------------------------------

@pytest.mark.parametrize("address,kind", [
    ("0.0.0.0", "sinkhole"), ("0.1.2.3", "sinkhole"), ("127.0.0.1", "sinkhole"), ("127.9.9.9", "sinkhole"),
    ("169.254.1.1", "sinkhole"), ("224.0.0.1", "sinkhole"), ("240.0.0.1", "sinkhole"),
    ("255.255.255.255", "sinkhole"), ("::", "sinkhole"), ("::1", "sinkhole"), ("fe80::1", "sinkhole"),
    ("::ffff:0.0.0.0", "sinkhole"), ("ff02::1", "sinkhole"),
    ("10.1.2.3", "private"), ("172.16.0.1", "private"), ("172.31.255.1", "private"), ("192.168.1.1", "private"),
    ("100.64.0.1", "private"), ("fd00::1", "private"),
    # Documentation ranges are what the labs use as public addresses: never flagged.
    ("198.51.100.7", None), ("203.0.113.9", None), ("192.0.2.1", None),
    ("172.32.0.1", None), ("100.128.0.1", None), ("8.8.8.8", None), ("2001:db8::1", None), ("not-an-ip", None),
])
def test_address_classes(address, kind):
    got = D.address_class(address)
    assert (got[0] if got else None) == kind


# --- healthy ----------------------------------------------------------------------------------

def test_healthy_izuma_run_judges_the_ttl(healthy_lab, tmp_path):
    # Its speed is bench/checks.py's figure (healthy: well under 0.5 s), not a timed assertion.
    rc, doc, _ = check(healthy_lab, tmp_path, profiles=IZUMA)
    assert problems(doc) == [] and rc == 0
    ttl = one(doc, "dns-ttl", BOOT)
    assert "TTL 30 s" in ttl["evidence"] or "within the 30 s" in ttl["evidence"], ttl
    assert T.DNS_AUTH in ttl["evidence"]
    # No TTL probe without a profile whose vendor asks for it.
    rc, doc, _ = check(healthy_lab, tmp_path)
    assert not [c for c in doc["checks"] if c["id"] == "dns-ttl"]


# --- sinkhole and filtering -------------------------------------------------------------------

@pytest.mark.parametrize("answer,shown", [("0.0.0.0", "0.0.0.0"), ("127.0.0.1", "127.0.0.1"),
                                          ("#", "0.0.0.0"), ("::", "::"), ("240.1.2.3", "240.1.2.3")])
def test_dns_sinkhole(healthy_lab, tmp_path, answer, shown):
    healthy_lab.dns_filter(API, answer)
    rc, doc, _ = check(healthy_lab, tmp_path)
    c = one(doc, "dns-resolve", API)
    assert (c["status"], c["diagnosis"]) == ("fail", "dns-sinkhole"), c
    assert T.DNS in c["evidence"] and shown in c["evidence"]
    assert T.DNS in c["remediation"] and "machinemetrics.com" in c["remediation"]
    assert "filter" in c["remediation"].lower() and "plan's DNS server" in c["remediation"]
    ascii_only(c)
    # Nothing connects to a sinkhole; the other names are unaffected.
    assert one(doc, "tcp-connect", f"{API}:443")["status"] == "skip"
    assert one(doc, "dns-resolve", APP)["status"] == "pass"
    assert rc == 2


def test_private_answer_for_a_vendor_name_is_filtered(healthy_lab, tmp_path):
    healthy_lab.dns_filter(API, "10.20.30.40")
    rc, doc, _ = check(healthy_lab, tmp_path, "--timeout", "1")
    c = one(doc, "dns-resolve", API)
    assert (c["status"], c["diagnosis"]) == ("warn", "dns-filtered"), c
    assert "10.20.30.40" in c["evidence"] and T.DNS in c["evidence"]
    assert T.DNS in c["remediation"] and "machinemetrics.com" in c["remediation"]
    ascii_only(c)
    # A warning: the connection checks still run against that address, and say what they find.
    tcp = one(doc, "tcp-connect", f"{API}:443")
    assert tcp["status"] == "fail" and "10.20.30.40" in tcp["evidence"]


def test_private_answer_for_the_plans_own_hosts_is_fine(healthy_lab, tmp_path):
    # The Siemens IEM (a plan parameter) and a custom NTP server name live on the plant's network.
    healthy_lab.dns_filter(T.IEM_HOST, "192.168.10.5")
    healthy_lab.dns_filter(T.NTP_HOST, "172.16.0.123")
    rc, doc, _ = check(healthy_lab, tmp_path, "--timeout", "1", profiles=["siemens-industrial-edge"],
                       ntp={"mode": "custom", "servers": [T.NTP_HOST]})
    for host, address in ((T.IEM_HOST, "192.168.10.5"), (T.NTP_HOST, "172.16.0.123")):
        c = one(doc, "dns-resolve", host)
        assert (c["status"], c["diagnosis"]) == ("pass", "ok") and address in c["evidence"], c


def test_a_block_page_on_an_ordinary_address_resolves_and_keeps_its_address(healthy_lab, tmp_path):
    healthy_lab.dns_filter(API, "203.0.113.78")
    rc, doc, _ = check(healthy_lab, tmp_path, "--timeout", "1")
    c = one(doc, "dns-resolve", API)
    assert c["status"] == "pass" and "203.0.113.78" in c["evidence"]


# --- truncated answers ------------------------------------------------------------------------

def test_large_answer_comes_whole_over_tcp(healthy_lab, tmp_path):
    healthy_lab.dns_large_answer(API, 90)
    rc, doc, _ = check(healthy_lab, tmp_path)
    c = one(doc, "dns-resolve", API)
    assert c["status"] == "pass", c
    assert "TCP" in c["evidence"] and "and 82 more" in c["evidence"]  # 8 shown + 82: all 90
    assert problems(doc) == [] and rc == 0


@pytest.mark.parametrize("action", ["drop", "reject"])
def test_truncated_answer_with_tcp_53_blocked(healthy_lab, tmp_path, action):
    healthy_lab.dns_large_answer(API, 90)
    healthy_lab.block(53, proto="tcp", action=action)
    # 2 s: the dropped TCP query waits that long; 1 s once timed out the resolver's UDP query
    # itself on a machine loaded by VMs.
    rc, doc, _ = check(healthy_lab, tmp_path, "--timeout", "2")
    c = one(doc, "dns-resolve", API)
    assert (c["status"], c["diagnosis"]) == ("fail", "dns-truncated-tcp-blocked"), c
    assert "truncated" in c["evidence"] and T.DNS in c["evidence"]
    assert "TCP port 53" in c["remediation"] and T.DNS in c["remediation"]
    ascii_only(c)
    # Small answers still fit in UDP: the resolver and the other names pass.
    assert one(doc, "dns-resolver", T.DNS)["status"] == "pass"
    assert one(doc, "dns-resolve", APP)["status"] == "pass"
    assert rc == 2


# --- lost packets -----------------------------------------------------------------------------

def test_one_lost_query_is_resent(healthy_lab, tmp_path):
    healthy_lab.dns_drop(first=1)  # the run's first DNS packet: the resolver check's
    rc, doc, _ = check(healthy_lab, tmp_path)
    assert problems(doc) == [] and rc == 0
    c = one(doc, "dns-resolver", T.DNS)
    assert "after 2 tries" in c["evidence"] and "1 UDP query unanswered" in c["evidence"], c


def test_lost_queries_for_one_name_are_resent(healthy_lab, tmp_path):
    healthy_lab.dns_drop(first=2, name=APP)
    rc, doc, _ = check(healthy_lab, tmp_path)
    assert problems(doc) == [] and rc == 0
    c = one(doc, "dns-resolve", APP)
    assert "after 3 tries" in c["evidence"], c
    assert "tries" not in one(doc, "dns-resolve", API)["evidence"]


def test_dns_on_a_slow_link(healthy_lab, tmp_path):
    healthy_lab.poor_link(delay_ms=400)
    rc, doc, _ = check(healthy_lab, tmp_path, profiles=IZUMA)
    dns_checks = [c for c in doc["checks"] if c["kind"] == "dns"]
    assert dns_checks and all(c["status"] == "pass" for c in dns_checks), [
        (c["id"], c["target"], c["evidence"]) for c in dns_checks if c["status"] != "pass"]
    c = one(doc, "dns-resolve", API)
    ms = int(c["evidence"].rsplit(", ", 1)[1].split(" ms")[0])
    assert ms >= 400, c


def test_a_dropped_port_is_still_a_timeout(healthy_lab, tmp_path):
    healthy_lab.block(53, proto="udp", action="drop")
    rc, doc, _ = check(healthy_lab, tmp_path, "--timeout", "1")
    c = one(doc, "dns-resolver", T.DNS)
    assert (c["status"], c["diagnosis"]) == ("fail", "dns-timeout")
    assert "4 tries" in c["evidence"]  # 0, 0.3, 0.6 and 0.9 s into its 1 s
    # The advice names the resolver, what it is to the plan, and what to open.
    assert f"{T.DNS} (the plan's DNS server)" in c["remediation"] and "UDP and TCP port 53" in c["remediation"]


# --- TTL --------------------------------------------------------------------------------------

def test_resolver_extending_ttls(healthy_lab, tmp_path):
    healthy_lab.dns_extend_ttl(3600)
    rc, doc, _ = check(healthy_lab, tmp_path, profiles=IZUMA)
    c = one(doc, "dns-ttl", BOOT)
    assert (c["status"], c["diagnosis"]) == ("warn", "dns-ttl-extended"), c
    assert "TTL 30 s" in c["evidence"] and T.DNS in c["evidence"]
    assert T.DNS in c["remediation"] and "TTL" in c["remediation"]
    ascii_only(c)
    assert [p for p in problems(doc) if p[0] != "dns-ttl"] == []
    assert rc == 1


def test_ttl_not_judged_without_the_authoritative_server(healthy_lab, tmp_path):
    healthy_lab.dns_extend_ttl(3600)
    healthy_lab.block(53, proto="udp", action="drop", address=T.DNS_AUTH)
    t0 = time.monotonic()
    rc, doc, _ = check(healthy_lab, tmp_path, profiles=IZUMA)
    c = one(doc, "dns-ttl", BOOT)
    assert (c["status"], c["diagnosis"]) == ("pass", "ok"), c
    assert "not judged" in c["evidence"] and T.DNS_AUTH in c["evidence"]
    assert doc["duration_s"] < D.TTL_PROBE_BUDGET_S + 2 and time.monotonic() - t0 < 15


# --- naming the plan's resolvers --------------------------------------------------------------

def test_google_blocked_names_google_and_the_fallback(healthy_lab, tmp_path):
    for google in T.GOOGLE_DNS:
        healthy_lab.block(53, proto="udp", action="drop", address=google)
    rc, doc, _ = check(healthy_lab, tmp_path, "--timeout", "1", dns={"mode": "google", "servers": []})
    g = one(doc, "dns-resolver", "8.8.8.8")
    assert (g["status"], g["diagnosis"]) == ("warn", "dns-timeout")
    assert "8.8.8.8 (Google DNS, the plan's default)" in g["remediation"]
    fallback = one(doc, "dns-resolver", T.DNS)
    assert fallback["status"] == "pass"
    healthy_lab.dns_nxdomain(API)
    rc, doc, _ = check(healthy_lab, tmp_path, "--timeout", "1", dns={"mode": "google", "servers": []})
    c = one(doc, "dns-resolve", API)
    assert c["diagnosis"] == "dns-nxdomain"
    assert f"{T.DNS} (the box's DHCP-provided resolver, the fallback)" in c["remediation"]


def test_the_zone_resolves_beside_other_faults(healthy_lab, tmp_path):
    # The resolver's DNSSEC (for a SERVFAIL name) and a filter elsewhere leave the forwarded zone alone.
    healthy_lab.dns_servfail(APP)
    healthy_lab.dns_filter(API, "0.0.0.0")
    rc, doc, _ = check(healthy_lab, tmp_path, profiles=IZUMA)
    assert one(doc, "dns-resolve", APP)["diagnosis"] == "dns-servfail"
    zone = [c for c in doc["checks"] if c["id"] == "dns-resolve" and c["target"].endswith(".mbedcloud.com")]
    assert zone and all(c["status"] == "pass" for c in zone), zone
    assert one(doc, "dns-ttl", BOOT)["status"] == "pass"


def test_a_zone_name_moved_is_never_served_stale(healthy_lab, tmp_path):
    # The resolver caches the zone (TTL 30 s); a lab fault that moves a name restarts it.
    rc, doc, _ = check(healthy_lab, tmp_path, profiles=IZUMA)
    assert T.CLOUD in one(doc, "dns-resolve", BOOT)["evidence"]
    healthy_lab.serve_from(BOOT, "dpi")
    rc, doc, _ = check(healthy_lab, tmp_path, "--timeout", "1", profiles=IZUMA)
    assert T.SERVERS["dpi"] in one(doc, "dns-resolve", BOOT)["evidence"]


@pytest.mark.parametrize("host,server", [("a..b", "127.0.0.1"), ("x" * 70 + ".example.com", "127.0.0.1"),
                                         ("example.com", "not-an-address")])
def test_bad_input_is_a_diagnosis_not_a_traceback(host, server):
    # Nothing is sent: each fails before a packet leaves.
    import asyncio

    async def run():
        with pytest.raises(D.DnsFailure) as failure:
            await D.exchange(host, server, 0.2)
        assert failure.value.diagnosis == "dns-error"
    asyncio.run(run())


def test_no_ttl_verdict_for_a_name_that_did_not_resolve(healthy_lab, tmp_path):
    healthy_lab.dns_nxdomain(BOOT)
    rc, doc, _ = check(healthy_lab, tmp_path, profiles=IZUMA)
    assert one(doc, "dns-resolve", BOOT)["diagnosis"] == "dns-nxdomain"
    assert not [c for c in doc["checks"] if c["id"] == "dns-ttl"]  # not needed: left out

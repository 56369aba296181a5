"""The fault matrix: `edge-installer check --json` run inside the lab's edge namespace against
real servers, one fault at a time, each giving its exact diagnosis and a remediation.

The lab (tests/lab) is Debian's real servers in network namespaces: dnsmasq, chrony, nginx,
nats-server, a proxy, machines on their controller ports, and nftables between them.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from tests.lab.checkrun import check, results
from tests.lab.fixtures import healthy_lab, lab  # noqa: F401

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "installer"]


def only_problems(doc):
    return [(c["id"], c["target"], c["diagnosis"]) for c in doc["checks"] if c["status"] != "pass"]


def assert_diagnosis(doc, check_id, target, diagnosis, status="fail"):
    found = results(doc, check_id, target)
    assert found, f"no {check_id} {target} in {[(c['id'], c['target']) for c in doc['checks']]}"
    for c in found:
        assert (c["status"], c["diagnosis"]) == (status, diagnosis), c
        assert c["remediation"].strip(), f"{check_id} {target}: {diagnosis} without remediation"


def test_json_schema_is_the_specs(healthy_lab, tmp_path):
    rc, doc, _ = check(healthy_lab, tmp_path)
    # The SPEC's keys, plus the findings (one per cause), each check's finding and the box.
    assert set(doc) == {"version", "duration_s", "summary", "checks", "findings", "box"} and doc["version"] == 1
    assert set(doc["summary"]) == {"pass", "warn", "fail", "skip"}
    keys = {"id", "kind", "target", "status", "diagnosis", "evidence", "remediation", "duration_s", "profile",
            "finding"}
    assert all(set(c) == keys for c in doc["checks"])
    assert doc["findings"] == [] and all(c["finding"] is None for c in doc["checks"])
    assert set(doc["box"]) == {"hostname", "planned_hostname", "uplink", "address", "mac", "version", "date"}
    assert doc["box"]["uplink"] == "enp2s0" and doc["box"]["address"] == "203.0.113.2/24"
    # Evidence does not repeat the target every line already shows.
    assert not [c for c in doc["checks"] if c["evidence"].startswith(c["target"] + ":")]


@pytest.mark.parametrize("profiles", [["machinemetrics"], ["machinemetrics", "izuma-device-management",
                                                           "siemens-industrial-edge"],
                                      ["machinemetrics-govcloud"]])
def test_healthy_baseline_all_pass(healthy_lab, tmp_path, profiles):
    rc, doc, wall = check(healthy_lab, tmp_path, profiles=profiles)
    assert only_problems(doc) == [] and rc == 0
    ids = {c["id"] for c in doc["checks"]}
    assert {"link-state", "link-isolation", "dns-resolver", "dns-resolve", "ntp-server", "tcp-connect",
            "tls-verify", "machine-port", "mtconnect-probe", "bandwidth-estimate"} <= ids
    if "machinemetrics" in profiles:
        assert {"https-ping", "nats-info"} <= ids
    if "izuma-device-management" in profiles:
        assert "coap-tls-issuer" in ids


def test_dns_port_blocked(healthy_lab, tmp_path):
    healthy_lab.block(53, proto="udp", action="drop")
    rc, doc, _ = check(healthy_lab, tmp_path)
    assert_diagnosis(doc, "dns-resolver", "203.0.113.53", "dns-timeout")
    # No domain verdicts without a resolver: the names are skipped with that cause.
    assert {c["status"] for c in results(doc, "dns-resolve")} == {"skip"}
    assert all("dns-timeout" in c["evidence"] for c in results(doc, "dns-resolve"))
    assert rc == 2


def test_nxdomain_for_one_domain(healthy_lab, tmp_path):
    healthy_lab.dns_nxdomain("notify.bugsnag.com")
    rc, doc, _ = check(healthy_lab, tmp_path)
    assert_diagnosis(doc, "dns-resolve", "notify.bugsnag.com", "dns-nxdomain")
    assert results(doc, "dns-resolve", "api.machinemetrics.com")[0]["status"] == "pass"
    assert results(doc, "tcp-connect", "notify.bugsnag.com:443")[0]["status"] == "skip"


def test_servfail(healthy_lab, tmp_path):
    healthy_lab.dns_servfail("notify.bugsnag.com")
    rc, doc, _ = check(healthy_lab, tmp_path)
    assert_diagnosis(doc, "dns-resolve", "notify.bugsnag.com", "dns-servfail")


def test_resolver_refuses(healthy_lab, tmp_path):
    healthy_lab.dns_refused()
    rc, doc, _ = check(healthy_lab, tmp_path)
    assert_diagnosis(doc, "dns-resolver", "203.0.113.53", "dns-refused")


def test_nats_port_dropped(healthy_lab, tmp_path):
    healthy_lab.block(7422, action="drop")
    rc, doc, wall = check(healthy_lab, tmp_path, "--timeout", "1")
    for c in results(doc, "tcp-connect"):
        if c["target"].endswith(":7422"):
            assert (c["status"], c["diagnosis"]) == ("fail", "tcp-timeout") and c["remediation"]
    assert {c["status"] for c in results(doc, "nats-info")} == {"skip"}
    assert results(doc, "https-ping")[0]["status"] == "pass"


def test_https_port_rejected(healthy_lab, tmp_path):
    healthy_lab.block(443, action="reject")
    rc, doc, _ = check(healthy_lab, tmp_path)
    assert_diagnosis(doc, "tcp-connect", "cloudlink.balena-cloud.com:443", "tcp-refused")
    cloudlink = results(doc, "tcp-connect", "cloudlink.balena-cloud.com:443")[0]
    # The seed's CloudLink procedure: both firewalls, VPN-blocking and DPI exemptions.
    assert "corporate" in cloudlink["remediation"].lower() and "dpi" in cloudlink["remediation"].lower()


def test_no_route(healthy_lab, tmp_path):
    healthy_lab.no_route("203.0.113.10")
    rc, doc, _ = check(healthy_lab, tmp_path)
    assert_diagnosis(doc, "tcp-connect", "api.machinemetrics.com:443", "tcp-unreachable")


def test_tls_interception_names_the_dpi_ca(healthy_lab, tmp_path):
    healthy_lab.intercept_tls()
    rc, doc, _ = check(healthy_lab, tmp_path, profiles=["machinemetrics", "izuma-device-management"])
    assert_diagnosis(doc, "tls-verify", "api.machinemetrics.com:443", "tls-intercepted")
    c = results(doc, "tls-verify", "api.machinemetrics.com:443")[0]
    assert healthy_lab.dpi_ca_name in c["evidence"] and healthy_lab.dpi_ca_name in c["remediation"]
    assert_diagnosis(doc, "coap-tls-issuer", "bootstrap.us-east-1.mbedcloud.com:5684", "tls-intercepted")
    assert results(doc, "https-ping")[0]["status"] == "skip"


def test_hostname_mismatch(healthy_lab, tmp_path):
    healthy_lab.serve_from("app.machinemetrics.com", "wrong-name")
    rc, doc, _ = check(healthy_lab, tmp_path)
    assert_diagnosis(doc, "tls-verify", "app.machinemetrics.com:443", "tls-hostname-mismatch")


def test_expired_certificate(healthy_lab, tmp_path):
    healthy_lab.serve_from("app.machinemetrics.com", "expired")
    rc, doc, _ = check(healthy_lab, tmp_path)
    assert_diagnosis(doc, "tls-verify", "app.machinemetrics.com:443", "tls-expired")


def test_proxy_in_the_plan_makes_a_blocked_direct_443_harmless(healthy_lab, tmp_path):
    healthy_lab.block(443, action="drop", address="203.0.113.10")
    healthy_lab.block(7422, action="drop", address="203.0.113.10")
    rc, doc, _ = check(healthy_lab, tmp_path, proxy=healthy_lab.proxy_settings())
    assert only_problems(doc) == [], [(c["target"], c["evidence"]) for c in doc["checks"] if c["status"] != "pass"]
    assert "through the proxy" in results(doc, "tcp-connect", "api.machinemetrics.com:443")[0]["evidence"]
    assert results(doc, "nats-info")[0]["status"] == "pass"


def test_proxy_407(healthy_lab, tmp_path):
    wrong = dict(healthy_lab.proxy_settings(), password="not-the-password")
    rc, doc, _ = check(healthy_lab, tmp_path, proxy=wrong)
    assert_diagnosis(doc, "tcp-connect", "api.machinemetrics.com:443", "proxy-auth-required")
    rc, doc, _ = check(healthy_lab, tmp_path, proxy=healthy_lab.proxy_settings(credentials=False))
    assert_diagnosis(doc, "tcp-connect", "api.machinemetrics.com:443", "proxy-auth-required")


def test_proxy_down(healthy_lab, tmp_path):
    healthy_lab.stop("proxy")
    rc, doc, _ = check(healthy_lab, tmp_path, proxy=healthy_lab.proxy_settings())
    assert_diagnosis(doc, "tcp-connect", "api.machinemetrics.com:443", "proxy-unreachable")
    # DNS and NTP are still judged directly.
    assert results(doc, "ntp-server")[0]["status"] == "pass"
    assert results(doc, "dns-resolve", "api.machinemetrics.com")[0]["status"] == "pass"


def test_ntp_blocked(healthy_lab, tmp_path):
    healthy_lab.block(123, proto="udp", action="drop")
    rc, doc, _ = check(healthy_lab, tmp_path)
    assert_diagnosis(doc, "ntp-server", "203.0.113.123", "ntp-timeout")


def test_ntp_offset_beyond_the_limit(healthy_lab, tmp_path):
    healthy_lab.ntp_offset(7200)
    rc, doc, _ = check(healthy_lab, tmp_path)
    assert_diagnosis(doc, "ntp-server", "203.0.113.123", "clock-skew")


def test_7422_open_but_not_nats(healthy_lab, tmp_path):
    healthy_lab.serve_from("54.218.103.126", "not-nats")
    rc, doc, _ = check(healthy_lab, tmp_path)
    assert_diagnosis(doc, "nats-info", "54.218.103.126:7422", "nats-not-nats", status="warn")
    assert results(doc, "nats-info", "52.24.16.63:7422")[0]["status"] == "pass"


def test_a_machine_port_closed(healthy_lab, tmp_path):
    healthy_lab.stop("machines:8193")
    rc, doc, _ = check(healthy_lab, tmp_path)
    (c,) = [c for c in results(doc, "machine-port") if c["target"].endswith(":8193)")]
    assert (c["status"], c["diagnosis"]) == ("fail", "tcp-refused") and c["remediation"]


def test_a_check_raising_inside_never_crashes_the_run(healthy_lab, tmp_path):
    plan = healthy_lab.write_plan(tmp_path / "plan.yaml")
    code = ("import sys, installer.checks.tls as t\n"
            "async def broken(*a, **k):\n    raise ZeroDivisionError('injected')\n"
            "t.tls_verify = broken\n"
            "from installer.cli import main\n"
            f"sys.exit(main(['check', '--plan', {str(plan)!r}, '--json']))\n")
    proc = healthy_lab.edge([sys.executable, "-c", code], timeout=60, env={"PYTHONPATH": str(REPO)})
    doc = json.loads(proc.stdout)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert {c["diagnosis"] for c in results(doc, "tls-verify")} == {"check-error"}
    assert results(doc, "dns-resolve", "api.machinemetrics.com")[0]["status"] == "pass"


def test_wall_time_stays_within_the_deadline_whatever_the_faults(healthy_lab, tmp_path):
    for port, proto in ((443, "tcp"), (7422, "tcp"), (123, "udp"), (8193, "tcp"), (5000, "tcp")):
        healthy_lab.block(port, proto=proto, action="drop")
    healthy_lab.block(53, proto="udp", action="drop", address="203.0.113.53")
    timeout, deadline = 1.0, 2.5
    rc, doc, wall = check(healthy_lab, tmp_path, "--timeout", str(timeout), "--deadline", str(deadline),
                          profiles=["machinemetrics", "izuma-device-management", "siemens-industrial-edge"])
    assert doc["duration_s"] <= deadline + 0.2, doc["duration_s"]
    assert wall < deadline + 3.0  # plus the interpreter's start-up in the namespace
    assert rc == 2

"""The TLS-side diagnoses of issue 10, each proven in the network lab against real servers and
real kernel behaviour, healthy beside faulty:

- `path-mtu-blackhole`: packets from the cloud larger than 1280 bytes vanish (nftables on the
  cloud's egress, one TCP segment per packet); the stalled handshake is retried with MSS 536.
  A name filter that drops the ClientHello stays `tls-timeout`.
- `tls-wrong-server`: a DNS filter's block page (untrusted certificate for another name).
- `captive-portal`: the lab's captive portal (one self-signed certificate on every host, plain
  HTTP redirected to a login page on an address literal).
- the Siemens IEM's certificate pin (`profile_params.siemens-industrial-edge.iem_fingerprint`).

Plus the pure parts (name matching, fingerprints, the pin's validation, redirect reading)
without the lab.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from installer.checks.portal import has_login_form, redirect_sign
from installer.checks.tls import covers, fingerprint
from installer.vendors.profiles import load_catalog, normalize_fingerprint
from tests.lab import portal as lab_portal
from tests.lab import topology as T
from tests.lab.checkrun import check
from tests.lab.fixtures import healthy_lab, lab  # noqa: F401

REPO = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "installer"]
SIEMENS = "siemens-industrial-edge"

# Runs the planned checks in the edge and prints every result with the facts these tests read.
_RUN_WITH_FACTS = """
import json, sys
from installer.commands import load_valid_plan
from installer.checks.planner import build_context, plan_checks
from installer.checks.runner import run_checks_sync
plan = load_valid_plan(sys.argv[1])
ctx = build_context(plan, timeout=float(sys.argv[2]))
report = run_checks_sync(plan_checks(plan, ctx), ctx)
keep = ("fingerprint", "names", "address", "host", "port", "hosts", "redirect", "status", "mss", "pinned")
print(json.dumps([{"id": r.id, "target": r.target, "status": r.status, "diagnosis": r.diagnosis,
                   "evidence": r.evidence, "remediation": r.remediation, "duration_s": r.duration_s,
                   "facts": {k: r.facts.get(k) for k in keep if k in (r.facts or {})}}
                  for r in report.results]))
"""


def with_facts(lab, tmp_path, timeout: float = 3.0, **plan_changes) -> list[dict]:
    """The run's results with the facts grouping reads (facts are never in the JSON)."""
    plan = lab.write_plan(tmp_path / "plan-facts.yaml", **plan_changes)
    proc = lab.edge([sys.executable, "-c", _RUN_WITH_FACTS, str(plan), str(timeout)], timeout=60,
                    env={"PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def one(doc_checks, check_id, target) -> dict:
    found = [c for c in doc_checks if c["id"] == check_id and c["target"] == target]
    assert len(found) == 1, (check_id, target, [(c["id"], c["target"]) for c in doc_checks])
    return found[0]


def problems(doc_checks) -> list[tuple[str, str, str]]:
    return [(c["id"], c["target"], c["diagnosis"]) for c in doc_checks if c["status"] != "pass"]


def lab_certificate(lab, name: str) -> x509.Certificate:
    """The leaf the lab's cloud server presents for `name` (the first certificate of its file)."""
    path = lab._pki_files().servers["cloud"]["https"].directory / f"{name}.crt"
    return x509.load_pem_x509_certificate(path.read_bytes())


def der_fingerprint(cert: x509.Certificate) -> str:
    return fingerprint(cert.public_bytes(serialization.Encoding.DER))


# --- without the lab ---------------------------------------------------------------------------

@pytest.mark.parametrize("names, host, ok", [
    (["api.machinemetrics.com"], "API.machinemetrics.com.", True),
    (["*.machinemetrics.com"], "api.machinemetrics.com", True),
    (["*.machinemetrics.com"], "machinemetrics.com", False),
    (["*.machinemetrics.com"], "a.b.machinemetrics.com", False),
    (["*.com"], "machinemetrics.com", False),
    (["portal.login.example"], "api.machinemetrics.com", False),
    (["203.0.113.10"], "203.0.113.10", True),
    (["203.0.113.10"], "203.0.113.11", False),
    (["iem.plant.local"], "203.0.113.10", False),
    ([], "api.machinemetrics.com", False),
])
def test_covers_matches_names_as_a_tls_client_does(names, host, ok):
    assert covers(names, host) is ok


def test_fingerprint_is_openssls_format():
    fp = fingerprint(b"edge")
    assert len(fp) == 95 and fp == fp.upper() and fp.count(":") == 31
    assert normalize_fingerprint(fp.replace(":", "").lower()) == fp
    assert normalize_fingerprint(fp.lower()) == fp
    assert normalize_fingerprint("sha256 Fingerprint=" + fp) == fp
    for bad in ("", "AB:CD", fp + ":00", fp.replace("A", "G"), "x" * 64):
        assert normalize_fingerprint(bad) is None


def _validate(params: dict) -> list:
    from installer.planning import planread, validate

    plan = planread.from_data({"version": 1, "profiles": [SIEMENS], "profile_params": {SIEMENS: params}})
    return [e for e in validate.validate(plan) if e.field.startswith("profile_params")]


def test_the_pin_field_is_validated_with_a_clear_error():
    fp = fingerprint(b"iem")
    assert _validate({"iem_host": "203.0.113.10", "iem_fingerprint": fp}) == []
    assert _validate({"iem_host": "203.0.113.10", "iem_fingerprint": fp.replace(":", "").lower()}) == []
    errors = _validate({"iem_host": "203.0.113.10", "iem_fingerprint": "AB:CD:not-hex"})
    assert [e.field for e in errors] == [f"profile_params.{SIEMENS}.iem_fingerprint"]
    assert "SHA-256" in errors[0].message and "64 hex digits" in errors[0].message
    spec = load_catalog().profiles[SIEMENS].params["iem_fingerprint"]
    assert spec.validate("") is None and spec.validate(fp) is None and spec.validate("zz")


def test_redirect_and_login_page_reading():
    assert redirect_sign("http://203.0.113.77/login?x=1", "api.machinemetrics.com") == \
        "203.0.113.77, an address literal"
    assert redirect_sign("http://login.guest.example/", "api.machinemetrics.com") == \
        "login.guest.example, another host"
    assert redirect_sign("https://api.machinemetrics.com/", "api.machinemetrics.com") is None
    assert redirect_sign("/ping", "api.machinemetrics.com") is None
    assert redirect_sign("https://www.machinemetrics.com/", "machinemetrics.com") is None
    assert has_login_form(lab_portal.LOGIN_PAGE)
    assert not has_login_form(lab_portal.BLOCK_PAGE)
    assert not has_login_form("<html><form action='/search'><input name=q></form></html>")


# --- path-MTU black hole -----------------------------------------------------------------------

def test_mtu_blackhole_is_told_from_a_name_filter(healthy_lab, tmp_path):
    # Healthy: the handshakes complete at full size; no follow-up probe is reported.
    rc, doc, _ = check(healthy_lab, tmp_path, "--timeout", "2")
    assert problems(doc["checks"]) == [] and rc == 0
    assert not [c for c in doc["checks"] if c["id"] == "captive-portal"]

    healthy_lab.mtu_blackhole(mtu=1280)
    rc, doc, wall = check(healthy_lab, tmp_path, "--timeout", "2", profiles=["machinemetrics", SIEMENS])
    api = one(doc["checks"], "tls-verify", "api.machinemetrics.com:443")
    assert (api["status"], api["diagnosis"]) == ("fail", "path-mtu-blackhole"), api
    assert "MSS 536" in api["evidence"] and "203.0.113.10:443" in api["evidence"]
    text = api["remediation"]
    assert "ICMP type 3 code 4" in text and "fragmentation needed" in text and "MSS" in text
    assert "not a rule about api.machinemetrics.com" in text
    # Small packets still pass: TCP, DNS, NTP, the NATS INFO line.
    assert one(doc["checks"], "tcp-connect", "api.machinemetrics.com:443")["status"] == "pass"
    assert one(doc["checks"], "ntp-server", T.NTP)["status"] == "pass"
    assert all(c["status"] == "pass" for c in doc["checks"] if c["id"] == "nats-info")
    iem = one(doc["checks"], "tls-verify", f"{T.IEM_HOST}:9443")
    assert iem["diagnosis"] == "path-mtu-blackhole"
    # Within the check's budget (2x the timeout), while the other TLS checks ran beside it.
    assert api["duration_s"] <= 2 * 2 + 0.5
    assert all(c["evidence"].isascii() and c["remediation"].isascii() for c in doc["checks"])


def test_mtu_blackhole_from_one_server_only(healthy_lab, tmp_path):
    # Only the IEM's address sends too-large packets into the void (a tunnel to that site, with
    # a small MTU: that server sends no chain, its ~1 kB flight still exceeds 600 bytes).
    healthy_lab.serve_from(T.IEM_HOST, "dpi")  # the IEM at another address, 203.0.113.11
    healthy_lab.mtu_blackhole(mtu=600, address=T.SERVERS["dpi"])
    rc, doc, _ = check(healthy_lab, tmp_path, "--timeout", "2", profiles=["machinemetrics", SIEMENS])
    assert one(doc["checks"], "tls-verify", f"{T.IEM_HOST}:443")["diagnosis"] == "path-mtu-blackhole"
    assert one(doc["checks"], "tls-verify", "api.machinemetrics.com:443")["status"] == "pass"


def test_a_name_filter_stays_tls_timeout(healthy_lab, tmp_path):
    healthy_lab.sni_filter(T.CLOUD, 443)
    rc, doc, _ = check(healthy_lab, tmp_path, "--timeout", "2", profiles=["machinemetrics", SIEMENS])
    api = one(doc["checks"], "tls-verify", "api.machinemetrics.com:443")
    assert (api["status"], api["diagnosis"]) == ("fail", "tls-timeout"), api
    assert "not a path-MTU problem" in api["evidence"] and api["duration_s"] <= 2 * 2 + 0.5
    # The same server on another port is untouched.
    assert one(doc["checks"], "tls-verify", f"{T.IEM_HOST}:9443")["status"] == "pass"


def test_mtu_probe_is_not_used_through_a_proxy(healthy_lab, tmp_path):
    # Through the proxy the black hole is the proxy's problem, not the box's path.
    healthy_lab.mtu_blackhole(mtu=1280, address=T.PROXY)
    rc, doc, _ = check(healthy_lab, tmp_path, "--timeout", "2", proxy=healthy_lab.proxy_settings())
    api = one(doc["checks"], "tls-verify", "api.machinemetrics.com:443")
    assert api["diagnosis"] != "path-mtu-blackhole" and api["status"] == "fail", api


# --- another server answered -------------------------------------------------------------------

def test_block_page_is_another_server_not_inspection(healthy_lab, tmp_path):
    healthy_lab.block_page("app.machinemetrics.com", "notify.bugsnag.com")
    results = with_facts(healthy_lab, tmp_path)
    app = one(results, "tls-verify", "app.machinemetrics.com:443")
    assert (app["status"], app["diagnosis"]) == ("fail", "tls-wrong-server"), app
    assert lab_portal.BLOCK_NAME in app["evidence"] and lab_portal.FILTER_CA_NAME in app["evidence"]
    assert "another server answered" in app["evidence"] and "not TLS inspection" in app["remediation"]
    assert app["facts"]["address"] == T.BLOCK_PAGE and app["facts"]["names"] == [lab_portal.BLOCK_NAME]
    bugsnag = one(results, "tls-verify", "notify.bugsnag.com:443")
    assert bugsnag["facts"]["fingerprint"] == app["facts"]["fingerprint"]
    # Healthy beside it: the right certificate, with its facts.
    api = one(results, "tls-verify", "api.machinemetrics.com:443")
    assert api["status"] == "pass" and api["facts"]["address"] == T.CLOUD
    assert api["facts"]["names"] == ["api.machinemetrics.com"]
    assert api["facts"]["fingerprint"] == der_fingerprint(lab_certificate(healthy_lab, "api.machinemetrics.com"))
    # A block page is not a captive portal: HTTP answers 403 without a login form or redirect.
    portal = one(results, "captive-portal", "guest network login")
    assert (portal["status"], portal["diagnosis"]) == ("pass", "ok") and "not a captive portal" in portal["evidence"]


def test_block_page_through_the_proxy(healthy_lab, tmp_path):
    # The proxy resolves the name and meets the block page; the portal probe asks the proxy
    # for http://<host>/ (an absolute-URI GET) and reads the filter's 403. (The lab restarts its
    # proxy whenever its DNS changes: squid would keep earlier tests' addresses.)
    healthy_lab.block_page("app.machinemetrics.com")
    rc, doc, _ = check(healthy_lab, tmp_path, proxy=healthy_lab.proxy_settings())
    app = one(doc["checks"], "tls-verify", "app.machinemetrics.com:443")
    assert app["diagnosis"] == "tls-wrong-server" and "through the proxy" in app["evidence"]
    portal = one(doc["checks"], "captive-portal", "guest network login")
    assert portal["status"] == "pass" and f"through the proxy at {T.PROXY}:{T.PROXY_PORT}" in portal["evidence"]
    assert "403" in portal["evidence"]
    assert one(doc["checks"], "tls-verify", "api.machinemetrics.com:443")["status"] == "pass"


def test_interception_keeps_its_diagnosis(healthy_lab, tmp_path):
    # Untrusted but for the right name: an appliance re-signing, not another server.
    healthy_lab.intercept_tls()
    rc, doc, _ = check(healthy_lab, tmp_path)
    api = one(doc["checks"], "tls-verify", "api.machinemetrics.com:443")
    assert api["diagnosis"] == "tls-intercepted"
    # Interception is no reason to look for a portal: the follow-up is not reported at all.
    assert not [c for c in doc["checks"] if c["id"] == "captive-portal"]


# --- captive portal ----------------------------------------------------------------------------

@pytest.mark.parametrize("by", ["nat", "dns"])
def test_captive_portal_is_one_finding_with_the_login_page(healthy_lab, tmp_path, by):
    healthy_lab.captive_portal(by=by)
    results = with_facts(healthy_lab, tmp_path, profiles=["machinemetrics", SIEMENS])
    tls = [r for r in results if r["id"] == "tls-verify"]
    assert tls and {r["diagnosis"] for r in tls} == {"tls-wrong-server"}
    assert len({r["facts"]["fingerprint"] for r in tls}) == 1
    assert {r["facts"]["names"][0] for r in tls} == {lab_portal.PORTAL_NAME}
    portal = one(results, "captive-portal", "guest network login")
    assert (portal["status"], portal["diagnosis"]) == ("fail", "captive-portal"), portal
    assert f"http://{T.PORTAL}/login" in portal["evidence"] and "address literal" in portal["evidence"]
    assert "login form" in portal["evidence"] and "api.machinemetrics.com" in portal["evidence"]
    assert "register the box" in portal["remediation"].lower() and "cannot click" in portal["remediation"]
    assert portal["facts"]["address"] == T.PORTAL and len(portal["facts"]["hosts"]) >= 5
    # The addresses the TLS checks connected to: the vendors' (NAT) or the portal's (DNS).
    addresses = {r["facts"]["address"] for r in tls}
    assert (T.CLOUD in addresses and T.PORTAL not in addresses) if by == "nat" else addresses == {T.PORTAL}
    assert T.IEM_HOST in portal["facts"]["hosts"]
    assert portal["duration_s"] <= 2 * 3


def test_captive_portal_that_answers_https_ports_in_plain_http(healthy_lab, tmp_path):
    # No certificate to compare: the hosts whose handshake met plain HTTP are the group.
    healthy_lab.captive_portal(tls=False)
    results = with_facts(healthy_lab, tmp_path)
    tls = [r for r in results if r["id"] == "tls-verify"]
    assert {r["diagnosis"] for r in tls} == {"tls-handshake-failed"}
    portal = one(results, "captive-portal", "guest network login")
    assert (portal["status"], portal["diagnosis"]) == ("fail", "captive-portal"), portal
    assert f"http://{T.PORTAL_PLAIN}/login" in portal["evidence"] and "not TLS" in portal["evidence"]
    assert portal["facts"]["address"] == T.PORTAL_PLAIN and len(portal["facts"]["hosts"]) >= 5


def test_captive_portal_in_the_cli_json(healthy_lab, tmp_path):
    healthy_lab.captive_portal()
    rc, doc, _ = check(healthy_lab, tmp_path)
    portal = one(doc["checks"], "captive-portal", "guest network login")
    assert (portal["status"], portal["diagnosis"]) == ("fail", "captive-portal") and rc == 2
    assert portal["remediation"].isascii() and portal["evidence"].isascii()


# --- the Siemens IEM's pinned certificate ------------------------------------------------------

def _iem_plan(lab, pin: str | None):
    params = {"iem_host": T.IEM_HOST}
    if pin is not None:
        params["iem_fingerprint"] = pin
    # No extra CA: the IEM's certificate is untrusted, as an IP-based IEM's self-generated one is.
    return {"profiles": [SIEMENS], "profile_params": {SIEMENS: params}, "tls": {"extra_ca_file": None}}


def test_iem_fingerprint_shown_then_pinned(healthy_lab, tmp_path):
    fp = der_fingerprint(lab_certificate(healthy_lab, T.IEM_HOST))
    rc, doc, _ = check(healthy_lab, tmp_path, **_iem_plan(healthy_lab, None))
    untrusted = one(doc["checks"], "tls-verify", f"{T.IEM_HOST}:443")
    assert (untrusted["status"], untrusted["diagnosis"]) == ("fail", "tls-untrusted")
    assert f"SHA-256 fingerprint {fp}" in untrusted["evidence"]
    assert "iem_fingerprint" in untrusted["remediation"] and fp in untrusted["remediation"]

    # The pin as a technician types it: lower case, no colons.
    rc, doc, _ = check(healthy_lab, tmp_path, **_iem_plan(healthy_lab, fp.replace(":", "").lower()))
    for port in (443, 9443, 9444):
        c = one(doc["checks"], "tls-verify", f"{T.IEM_HOST}:{port}")
        assert (c["status"], c["diagnosis"]) == ("pass", "ok"), c
        assert "pinned certificate matches" in c["evidence"] and fp in c["evidence"]


def test_iem_wrong_pin_fails_definitively(healthy_lab, tmp_path):
    wrong = fingerprint(b"not the IEM")
    rc, doc, _ = check(healthy_lab, tmp_path, **_iem_plan(healthy_lab, wrong))
    c = one(doc["checks"], "tls-verify", f"{T.IEM_HOST}:443")
    assert (c["status"], c["diagnosis"]) == ("fail", "tls-pin-mismatch"), c
    assert wrong in c["evidence"] and "regenerated" in c["remediation"]
    # Even a certificate the box trusts is refused when it is not the pinned one.
    plan = _iem_plan(healthy_lab, wrong)
    plan.pop("tls")
    rc, doc, _ = check(healthy_lab, tmp_path, **plan)
    assert one(doc["checks"], "tls-verify", f"{T.IEM_HOST}:443")["diagnosis"] == "tls-pin-mismatch"

"""The TLS, HTTPS, NATS and CoAP checks, on loopback servers and in the network lab.

The loopback half (no root) covers every diagnosis, including the ones the lab has no switch
for; the lab half runs the same checks inside the lab's edge namespace against the lab's
cloud, DPI appliance and proxy. Every test is bounded in time.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import sys
from pathlib import Path

import pytest

from installer.checks.base import Context, Proxy
from installer.checks.coap import coap_tls_issuer
from installer.checks.https import https_ping
from installer.checks.nats import nats_info
from installer.checks.net import Dest
from installer.checks.tls import same_dn, tls_verify
from installer.planning.plan import Plan
from installer.vendors.profiles import load_catalog
from tests import tls_servers as ts

REPO = Path(__file__).resolve().parent.parent
LIMIT_S = 10  # no loopback test may take longer
CATALOG = load_catalog()
API, CLOUDLINK, BOOTSTRAP = "api.machinemetrics.com", "cloudlink.balena-cloud.com", "bootstrap.us-east-1.mbedcloud.com"
NATS_INFO = (b'INFO {"server_id":"NDLAB","server_name":"lab-nats","version":"2.9.15","proto":1,'
             b'"tls_required":false,"max_payload":1048576}\r\n')
# A password with every character that breaks naive URL or header handling.
PASSWORD = "p@ss:w/rd%20#?&= \"x\""


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    return ts.Pki(tmp_path_factory.mktemp("pki"))


def endpoint_of(profile: str, port: int, host: str | None = None, param: str | None = None):
    for e in CATALOG.profiles[profile].endpoints:
        if e.port == port and e.protocol == "tcp" and e.host == host and e.param == param and e.checks:
            return e
    raise LookupError((profile, host, port))


def context(pki, timeout: float = 2.0, extra_ca: Path | None = None) -> Context:
    return Context(Plan(), CATALOG, timeout=timeout, extra_ca_file=str(extra_ca or pki.ca_file))


async def run(fn, ctx, port, host=API, *, profile="machinemetrics", ep_port=443, param=None, proxy=None,
              endpoint=None, **kw):
    """Run one check against 127.0.0.1:port, as the planner would call it, within LIMIT_S."""
    ep = endpoint or endpoint_of(profile, ep_port, None if param else host, param)
    dest = Dest(host, ep_port if proxy else port, ("127.0.0.1",), proxy=proxy)
    return await asyncio.wait_for(fn(ctx, {}, dest=dest, endpoint=ep, profile=CATALOG.profiles[profile], **kw),
                                  LIMIT_S)


def via(port: int, user: str | None = None, password: str | None = None) -> Proxy:
    auth = None if user is None else "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()
    return Proxy("127.0.0.1", port, auth, f"http://127.0.0.1:{port}")


# --- tls-verify ------------------------------------------------------------------------------

async def test_tls_healthy_passes_with_issuer_subject_expiry_and_version(pki):
    async with ts.serving(ts.silent, pki.server_context()) as port:
        out = await run(tls_verify, context(pki), port)
    assert (out.status, out.diagnosis) == ("pass", "ok")
    assert f'issued by "{ts.PUBLIC_CA}"' in out.evidence and API in out.evidence and "TLSv1." in out.evidence
    assert out.facts["issuer"] == ts.PUBLIC_CA and out.facts["not_after"].year >= 2000


async def test_tls_interception_names_the_dpi_ca_and_the_domains_to_exempt(pki):
    async with ts.serving(ts.silent, pki.server_context("dpi")) as port:
        out = await run(tls_verify, context(pki), port)
    assert (out.status, out.diagnosis) == ("fail", "tls-intercepted")
    assert f'issued by "{ts.DPI_CA}", not a public CA' in out.evidence
    assert ts.DPI_CA in out.remediation and f"Exempt {API}" in out.remediation
    assert "cloudlink.balena-cloud.com" in out.remediation  # the profile's list of domains follows
    assert out.facts["issuer"] == ts.DPI_CA


async def test_tls_unexpected_issuer_is_interception_even_when_trusted(pki):
    # IT may push the appliance's CA into the system store: the vendor's stated issuer still decides.
    ep = dataclasses.replace(endpoint_of("machinemetrics", 443, API), expected_issuer=ts.PUBLIC_CA)
    async with ts.serving(ts.silent, pki.server_context("dpi")) as port:
        out = await run(tls_verify, context(pki, extra_ca=pki.dpi_ca_file), port, endpoint=ep)
    assert out.diagnosis == "tls-intercepted" and f'expected "{ts.PUBLIC_CA}"' in out.evidence
    assert ts.DPI_CA in out.remediation


async def test_tls_private_ca_profile_says_untrusted_and_names_the_issuer(pki):
    async with ts.serving(ts.silent, pki.server_context("dpi", ["iem.plant.local"])) as port:
        out = await run(tls_verify, context(pki), port, "iem.plant.local", profile="siemens-industrial-edge",
                        param="iem_host")
    assert (out.status, out.diagnosis) == ("fail", "tls-untrusted")
    assert ts.DPI_CA in out.evidence and "tls.extra_ca_file" in out.evidence
    assert ts.DPI_CA in out.remediation and "extra_ca_file" in out.remediation


@pytest.mark.parametrize("names, diagnosis", [(["127.0.0.1"], "ok"), (["iem.plant.local"], "tls-hostname-mismatch")])
async def test_tls_iem_by_ip_address_checks_the_ip_san(pki, names, diagnosis):
    # An IP-based IEM (seed 001) is entered as an address: no SNI, and the IP must be in the SAN.
    async with ts.serving(ts.silent, pki.server_context(names=names)) as port:
        out = await run(tls_verify, context(pki), port, "127.0.0.1", profile="siemens-industrial-edge",
                        param="iem_host")
    assert out.diagnosis == diagnosis
    assert diagnosis == "ok" or "iem.plant.local, not 127.0.0.1" in out.evidence


@pytest.mark.parametrize("kind, diagnosis, words", [
    ("self_signed", "tls-untrusted", "self-signed"),
    ("expired", "tls-expired", "expired on"),
    ("future", "clock-skew", "clock is behind"),
])
async def test_tls_certificate_faults(pki, kind, diagnosis, words):
    async with ts.serving(ts.silent, pki.server_context(**{kind: True})) as port:
        out = await run(tls_verify, context(pki), port)
    assert (out.status, out.diagnosis) == ("fail", diagnosis)
    assert words in out.evidence
    assert out.remediation is None and CATALOG.profiles["machinemetrics"].remediation_for(diagnosis)


async def test_tls_hostname_mismatch_lists_the_names_covered(pki):
    async with ts.serving(ts.silent, pki.server_context(names=["portal.plant.local", "wifi.plant.local"])) as port:
        out = await run(tls_verify, context(pki), port)
    assert (out.status, out.diagnosis) == ("fail", "tls-hostname-mismatch")
    assert "portal.plant.local, wifi.plant.local" in out.evidence and f"not {API}" in out.evidence


@pytest.mark.parametrize("handler, how", [(ts.reset_after_hello, "reset"), (ts.close_after_hello, "closed")])
async def test_tls_reset_after_client_hello_gives_the_cloudlink_advice(pki, handler, how):
    async with ts.serving(handler) as port:
        out = await run(tls_verify, context(pki), port, CLOUDLINK)
    assert (out.status, out.diagnosis) == ("fail", "tls-reset")
    assert how in out.evidence
    assert "CloudLink" in out.remediation and "VPN-blocking" in out.remediation


async def test_tls_silent_handshake_times_out_within_the_timeout(pki):
    async with ts.serving(ts.silent) as port:
        t0 = asyncio.get_running_loop().time()
        out = await run(tls_verify, context(pki, timeout=0.5), port)
    assert out.diagnosis == "tls-timeout" and out.remediation
    assert asyncio.get_running_loop().time() - t0 < 1.5


async def test_tls_plain_http_answer_is_a_failed_handshake(pki):
    async with ts.serving(ts.plain_http) as port:
        out = await run(tls_verify, context(pki), port)
    assert out.diagnosis == "tls-handshake-failed" and "not TLS" in out.evidence and out.remediation


async def test_tls_through_the_proxy_sees_the_dpi_too(pki):
    async with ts.serving(ts.silent, pki.server_context("dpi")) as port, \
            ts.serving(ts.proxy({443: port})) as proxy_port:
        out = await run(tls_verify, context(pki), port, proxy=via(proxy_port))
    assert out.diagnosis == "tls-intercepted" and "through the proxy" in out.evidence


def test_same_dn_accepts_spacing_case_and_either_order():
    seed = "C=GB, ST=Cambridgeshire, L=Cambridge, O=ARM Ltd, CN=ARM Bootstrap CA"
    assert same_dn("c = GB,ST=cambridgeshire, L=Cambridge, O=ARM  Ltd, CN=ARM Bootstrap CA", seed)
    assert same_dn("CN=ARM Bootstrap CA,O=ARM Ltd,L=Cambridge,ST=Cambridgeshire,C=GB", seed)
    assert not same_dn("O=Plant IT, CN=ARM Bootstrap CA", seed)


# --- https-ping ------------------------------------------------------------------------------

async def test_https_ping_200_direct(pki):
    async with ts.serving(ts.http_answer(200), pki.server_context()) as port:
        out = await run(https_ping, context(pki), port, path="/ping")
    assert (out.status, out.diagnosis) == ("pass", "ok") and "GET /ping answered HTTP/1.1 200" in out.evidence


async def test_https_ping_other_status_is_a_warning_naming_the_code_and_server(pki):
    async with ts.serving(ts.http_answer(403, "Server: FortiGate\r\n"), pki.server_context()) as port:
        out = await run(https_ping, context(pki), port, CLOUDLINK, path="/ping")
    assert (out.status, out.diagnosis) == ("warn", "http-status")
    assert "HTTP 403" in out.evidence and "FortiGate" in out.evidence


async def test_https_ping_cut_after_the_request_is_no_response(pki):
    async with ts.serving(ts.silent, pki.server_context()) as port:
        out = await run(https_ping, context(pki, timeout=0.5), port, CLOUDLINK, path="/ping")
    assert (out.status, out.diagnosis) == ("fail", "http-no-response") and "CloudLink" in out.remediation


async def test_https_ping_through_the_proxy_with_a_special_character_password(pki):
    async with ts.serving(ts.http_answer(200), pki.server_context()) as port, \
            ts.serving(ts.proxy({443: port}, "edge", PASSWORD)) as proxy_port:
        out = await run(https_ping, context(pki), port, path="/ping", proxy=via(proxy_port, "edge", PASSWORD))
    assert (out.status, out.diagnosis) == ("pass", "ok") and "through the proxy" in out.evidence
    assert PASSWORD not in out.evidence


@pytest.mark.parametrize("password", ["wrong", None])
async def test_https_ping_proxy_407(pki, password):
    async with ts.serving(ts.http_answer(200), pki.server_context()) as port, \
            ts.serving(ts.proxy({443: port}, "edge", PASSWORD)) as proxy_port:
        proxy = via(proxy_port, "edge", password) if password else via(proxy_port)
        out = await run(https_ping, context(pki), port, path="/ping", proxy=proxy)
    assert (out.status, out.diagnosis) == ("fail", "proxy-auth-required")
    assert ("with the plan's credentials" if password else "without credentials") in out.evidence
    # The profile's 407 text, and the CONNECT ports the proxy must then allow.
    assert CATALOG.profiles["machinemetrics"].remediation_for("proxy-auth-required") in out.remediation
    assert "443 and 7422" in out.remediation


async def test_https_ping_proxy_down_is_unreachable(pki):
    out = await run(https_ping, context(pki), 443, path="/ping", proxy=via(ts.free_port()))
    assert (out.status, out.diagnosis) == ("fail", "proxy-unreachable")


async def test_https_ping_proxy_refusing_connect_says_what_to_allow(pki):
    async with ts.serving(ts.proxy({}, refuse=403)) as proxy_port:
        out = await run(https_ping, context(pki), 443, path="/ping", proxy=via(proxy_port))
    assert out.diagnosis == "proxy-denied" and f"CONNECT from this box to {API} port 443" in out.remediation


# --- nats-info -------------------------------------------------------------------------------

def nats_endpoint():
    return next(e for e in CATALOG.profiles["machinemetrics"].endpoints if e.service == "nats")


async def run_nats(pki, handler, timeout=2.0, proxy=None):
    async with ts.serving(handler) as port:
        if proxy is not None:
            async with ts.serving(ts.proxy({7422: port})) as proxy_port:
                return await run(nats_info, context(pki, timeout), port, "54.218.103.126", ep_port=7422,
                                 endpoint=nats_endpoint(), proxy=via(proxy_port))
        return await run(nats_info, context(pki, timeout), port, None, endpoint=nats_endpoint())


async def test_nats_info_passes_with_server_version_and_tls(pki):
    out = await run_nats(pki, ts.nats(NATS_INFO))
    assert (out.status, out.diagnosis) == ("pass", "ok")
    assert "lab-nats" in out.evidence and "2.9.15" in out.evidence and "TLS not required" in out.evidence


async def test_nats_info_through_the_proxy(pki):
    out = await run_nats(pki, ts.nats(NATS_INFO), proxy=True)
    assert out.status == "pass" and "through the proxy" in out.evidence


@pytest.mark.parametrize("handler, words", [
    (ts.say(b"HTTP/1.1 400 Bad Request\r\n\r\n"), "not a NATS INFO line"),
    (ts.say(b"SSH-2.0-OpenSSH_9.2\r\n"), "SSH-2.0"),
    (ts.say(b"\x16\x03\x01\x00\x05hello\n"), "TLS"),
    (ts.silent, "said nothing within 0.5 s"),
    (ts.say(b"", then_wait=False), "without a word"),
])
async def test_nats_open_port_that_is_not_nats_is_a_warning(pki, handler, words):
    out = await run_nats(pki, handler, timeout=0.5)
    assert (out.status, out.diagnosis) == ("warn", "nats-not-nats") and words in out.evidence
    assert CATALOG.profiles["machinemetrics"].remediation_for("nats-not-nats")


# --- coap-tls-issuer -------------------------------------------------------------------------

async def run_coap(pki, issuer):
    async with ts.serving(ts.silent, pki.server_context(issuer, [BOOTSTRAP])) as port:
        return await run(coap_tls_issuer, context(pki), port, BOOTSTRAP, profile="izuma-device-management",
                         ep_port=5684)


async def test_coap_issuer_arm_bootstrap_ca_passes_without_a_full_chain(pki):
    out = await run_coap(pki, "arm")  # the ARM CA is in no trust store: verification would fail
    assert (out.status, out.diagnosis) == ("pass", "ok")
    assert "C=GB, ST=Cambridgeshire, L=Cambridge, O=ARM Ltd, CN=ARM Bootstrap CA" in out.evidence


@pytest.mark.parametrize("issuer, shown", [("dpi", ts.DPI_CA), ("fake_arm", "O=Plant IT")])
async def test_coap_other_issuer_is_interception_named(pki, issuer, shown):
    out = await run_coap(pki, issuer)
    assert (out.status, out.diagnosis) == ("fail", "tls-intercepted") and shown in out.evidence
    assert "whitelist" in out.remediation and BOOTSTRAP in out.remediation


# --- the network lab -------------------------------------------------------------------------
# Run inside the lab's edge namespace through tests/run_one_check.py (the checks must see the
# lab's routes, DNS and firewall, not the host's).

try:  # the lab lands separately; without it (or without root) these tests skip
    from tests.lab.fixtures import healthy_lab, lab  # noqa: F401
    HAVE_LAB = True
except Exception:  # pragma: no cover - depends on the checkout
    HAVE_LAB = False

lab_only = [pytest.mark.lab, pytest.mark.skipif(not HAVE_LAB, reason="tests/lab is not available")]


def edge_check(lab, tmp_path, check: str, host: str | None, port: int, *, profile="machinemetrics",
               path: str | None = None, address: str | None = None, **plan_changes) -> dict:
    plan = lab.write_plan(tmp_path / "plan.yaml", **plan_changes)
    argv = [sys.executable, str(REPO / "tests" / "run_one_check.py"), "--plan", str(plan), "--check", check,
            "--port", str(port), "--profile", profile, "--timeout", "3"]
    argv += ["--host", host] if host else []
    argv += ["--path", path] if path else []
    argv += ["--address", address] if address else []
    done = lab.edge(argv, timeout=30)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


def lab_proxy(lab, password=None):
    proxy = lab.proxy_settings()
    return proxy if password is None else {**proxy, "password": password}


def cli_check(lab, tmp_path, **plan_changes) -> list[dict]:
    """`edge-installer check --json` in the edge: the entries of this module's check ids."""
    plan = lab.write_plan(tmp_path / "plan.yaml", **plan_changes)
    done = lab.edge([sys.executable, "-m", "installer", "check", "--plan", str(plan), "--json"], timeout=60,
                    env={"PYTHONPATH": str(REPO)})
    assert done.returncode in (0, 1, 2), done.stderr
    ours = ("tls-verify", "https-ping", "nats-info", "coap-tls-issuer")
    return [c for c in json.loads(done.stdout)["checks"] if c["id"] in ours]


ALL_PROFILES = ["machinemetrics", "izuma-device-management", "siemens-industrial-edge"]


@pytest.mark.usefixtures("healthy_lab")
class TestLabCli:
    pytestmark = lab_only

    def test_healthy_lab_every_tls_https_nats_coap_check_passes(self, lab, tmp_path):
        entries = cli_check(lab, tmp_path, profiles=ALL_PROFILES)
        assert {c["id"] for c in entries} == {"tls-verify", "https-ping", "nats-info", "coap-tls-issuer"}
        assert [c for c in entries if c["status"] != "pass"] == []

    def test_interception_fails_every_tls_check_naming_the_dpi_ca(self, lab, tmp_path):
        lab.intercept_tls()
        entries = {(c["id"], c["target"]): c for c in cli_check(lab, tmp_path, profiles=ALL_PROFILES)}
        for (check, target), c in entries.items():
            if check == "tls-verify":
                # Siemens trusts a private CA: an unknown issuer there is untrusted, not DPI.
                want = "tls-untrusted" if target.startswith("iem.") else "tls-intercepted"
                assert (c["status"], c["diagnosis"]) == ("fail", want), c
                assert lab.dpi_ca_name in c["evidence"] and lab.dpi_ca_name in c["remediation"]
            elif check == "https-ping":
                assert c["status"] == "skip"
        bootstrap = entries[("coap-tls-issuer", f"{BOOTSTRAP}:5684")]
        assert bootstrap["diagnosis"] == "tls-intercepted" and lab.dpi_ca_name in bootstrap["remediation"]


@pytest.mark.usefixtures("healthy_lab")
class TestLab:
    pytestmark = lab_only

    def test_healthy_tls_passes_with_issuer(self, lab, tmp_path):
        out = edge_check(lab, tmp_path, "tls-verify", API, 443)
        assert (out["status"], out["diagnosis"]) == ("pass", "ok") and "issued by" in out["evidence"]

    def test_interception_names_the_dpi_ca(self, lab, tmp_path):
        lab.intercept_tls()
        out = edge_check(lab, tmp_path, "tls-verify", API, 443)
        assert (out["status"], out["diagnosis"]) == ("fail", "tls-intercepted")
        assert lab.dpi_ca_name in out["evidence"] and lab.dpi_ca_name in out["remediation"]

    def test_dpi_served_host_names_the_dpi_ca(self, lab, tmp_path):
        lab.serve_from(CLOUDLINK, "dpi")
        out = edge_check(lab, tmp_path, "tls-verify", CLOUDLINK, 443)
        assert out["diagnosis"] == "tls-intercepted" and lab.dpi_ca_name in out["remediation"]
        assert "CloudLink" in out["remediation"]

    @pytest.mark.parametrize("where, diagnosis", [("wrong-name", "tls-hostname-mismatch"),
                                                  ("expired", "tls-expired")])
    def test_certificate_faults(self, lab, tmp_path, where, diagnosis):
        lab.serve_from(API, where)
        out = edge_check(lab, tmp_path, "tls-verify", API, 443)
        assert (out["status"], out["diagnosis"]) == ("fail", diagnosis) and out["remediation"]

    def test_https_ping_direct(self, lab, tmp_path):
        out = edge_check(lab, tmp_path, "https-ping", API, 443, path="/ping")
        assert (out["status"], out["diagnosis"]) == ("pass", "ok") and "200" in out["evidence"]

    def test_https_ping_through_the_proxy(self, lab, tmp_path):
        out = edge_check(lab, tmp_path, "https-ping", API, 443, path="/ping", proxy=lab_proxy(lab))
        assert (out["status"], out["diagnosis"]) == ("pass", "ok") and "through the proxy" in out["evidence"]
        assert lab.proxy_password not in json.dumps(out)

    @pytest.mark.parametrize("password", ["wrong-password", ""])
    def test_proxy_407(self, lab, tmp_path, password):
        proxy = lab_proxy(lab, password) if password else lab.proxy_settings(credentials=False)
        out = edge_check(lab, tmp_path, "https-ping", API, 443, path="/ping", proxy=proxy)
        assert (out["status"], out["diagnosis"]) == ("fail", "proxy-auth-required") and out["remediation"]

    def test_proxy_down_is_unreachable(self, lab, tmp_path):
        lab.stop("proxy")
        out = edge_check(lab, tmp_path, "https-ping", API, 443, path="/ping", proxy=lab_proxy(lab))
        assert (out["status"], out["diagnosis"]) == ("fail", "proxy-unreachable") and out["remediation"]

    def test_nats_info_passes(self, lab, tmp_path):
        out = edge_check(lab, tmp_path, "nats-info", None, 7422, address="203.0.113.10")
        assert (out["status"], out["diagnosis"]) == ("pass", "ok") and "version" in out["evidence"]

    def test_not_nats_warns(self, lab, tmp_path):
        out = edge_check(lab, tmp_path, "nats-info", None, 7422, address="203.0.113.21")
        assert (out["status"], out["diagnosis"]) == ("warn", "nats-not-nats") and out["remediation"]

    def test_coap_issuer_passes(self, lab, tmp_path):
        out = edge_check(lab, tmp_path, "coap-tls-issuer", BOOTSTRAP, 5684, profile="izuma-device-management",
                         profiles=["izuma-device-management"])
        assert (out["status"], out["diagnosis"]) == ("pass", "ok") and "ARM Bootstrap CA" in out["evidence"]

    def test_coap_intercepted_names_the_issuer(self, lab, tmp_path):
        lab.intercept_tls()
        out = edge_check(lab, tmp_path, "coap-tls-issuer", BOOTSTRAP, 5684, profile="izuma-device-management",
                         profiles=["izuma-device-management"])
        assert (out["status"], out["diagnosis"]) == ("fail", "tls-intercepted")
        assert lab.dpi_ca_name in out["evidence"] and lab.dpi_ca_name in out["remediation"]

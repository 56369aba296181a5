"""The vendor profiles and machine-protocol table: complete against the seeds, strictly loaded.

The seed documents are parsed here, independently of the YAML, so a domain, IP, port or
controller that the assets miss makes a test fail. The seeds live beside the repository
(../shared/seeds) or where EDGE_INSTALLER_SEEDS points; without them the tests that compare
with them skip loudly, and fail in CI (tests/vendor_docs.py).
"""

from __future__ import annotations

import copy
import ipaddress
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from installer.vendors.profiles import (
    CHECKS,
    DIAGNOSIS_CODES,
    Catalog,
    Endpoint,
    ParamSpec,
    Profile,
    ProfileError,
    load_catalog,
    load_profile,
)
from tests.vendor_docs import require_seeds, seed_text

REPO = Path(__file__).resolve().parents[1]
ASSETS = REPO / "assets"
MM, GOV = "machinemetrics", "machinemetrics-govcloud"
SIEMENS, IZUMA = "siemens-industrial-edge", "izuma-device-management"


# --- the seeds, read independently of the assets -------------------------------------------

def _section(text: str, start: str, end: str) -> list[str]:
    """The lines strictly between the heading line `start` and the next heading `end`."""
    lines = [line.strip() for line in text.splitlines()]
    i = lines.index(start)
    return lines[i + 1: lines.index(end, i + 1)]


def _table(lines: list[str], columns: int) -> list[list[str]]:
    """Body rows of a seed table written `| a | b |` (the seed drops the leading bar on some)."""
    rows: list[list[str]] = []
    for line in lines:
        if "|" not in line:
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if all(set(c) <= set("-") for c in cells):
            rows.pop()  # a separator: the row before it was the header
        elif len(cells) == columns:
            rows.append(cells)
    return rows


def _ips(text: str) -> list[str]:
    return re.findall(r"\b\d{1,3}(?:\.\d{1,3}){3}\b", text)


@pytest.fixture(scope="module")
def seed000() -> str:
    return seed_text("000")


@pytest.fixture(scope="module")
def catalog() -> Catalog:
    return load_catalog()


def _by_host(profile: Profile) -> dict[str, list[Endpoint]]:
    hosts: dict[str, list[Endpoint]] = {}
    for e in profile.endpoints:
        if e.host:
            hosts.setdefault(e.host, []).append(e)
    return hosts


# --- completeness against seed 000 ---------------------------------------------------------

def test_every_standard_cloud_domain_with_its_purpose(seed000: str, catalog: Catalog) -> None:
    rows = _table(_section(seed000, "Required Domains (Standard Cloud)",
                           "Required Domains (GovCloud)"), 2)
    assert len(rows) == 11
    hosts = _by_host(catalog.profiles[MM])
    for domain, purpose in rows:
        assert domain in hosts, f"{domain} missing from {MM}"
        (e,) = hosts[domain]
        assert (e.port, e.protocol, e.service, e.purpose) == (443, "tcp", "https", purpose)
    assert set(hosts) == {d for d, _ in rows}, "a host the seed does not list"


def test_every_govcloud_domain_with_its_static_ips(seed000: str, catalog: Catalog) -> None:
    rows = _table(_section(seed000, "Required Domains (GovCloud)", "NATS IP Addresses"), 3)
    assert len(rows) == 16
    hosts = _by_host(catalog.profiles[GOV])
    for domain, purpose, ips in rows:
        host, _, port = domain.partition(":")
        assert host in hosts, f"{host} missing from {GOV}"
        (e,) = hosts[host]
        assert e.port == int(port or 443) and e.protocol == "tcp"
        if purpose != "NATS":
            assert e.purpose == purpose
            assert set(e.addresses) == set(_ips(ips)), host
    assert set(hosts) == {d.partition(":")[0] for d, _, _ in rows}


def test_nats_ips_on_7422(seed000: str, catalog: Catalog) -> None:
    lines = _section(seed000, "NATS IP Addresses", "DNS Configuration")
    split = lines.index("GovCloud")
    standard, gov = _ips("\n".join(lines[:split])), _ips("\n".join(lines[split:]))
    assert len(standard) == 4 and len(gov) == 3

    nats = [e for e in catalog.profiles[MM].endpoints if e.service == "nats"]
    assert sorted(a for e in nats for a in e.addresses) == sorted(standard)
    for e in nats:
        assert (e.host, e.param, e.port, e.protocol) == (None, None, 7422, "tcp")
        assert e.checks == ("tcp", "nats") and e.target({}) is None

    (stream,) = [e for e in catalog.profiles[GOV].endpoints if e.service == "nats"]
    assert (stream.host, stream.port, stream.protocol) == ("stream.machinemetrics-us-gov.com",
                                                           7422, "tcp")
    assert set(stream.addresses) == set(gov) and "nats" in stream.checks


def test_general_ports_dns_and_ntp_defaults(seed000: str, catalog: Catalog) -> None:
    ports = _table(_section(seed000, "Required Outbound Ports", "Required Domains (Standard Cloud)"), 3)
    assert {(int(p), proto.lower()) for p, proto, _ in ports} == {
        (53, "udp"), (123, "udp"), (443, "tcp"), (7422, "tcp")}
    dns_ips = _ips("\n".join(_section(seed000, "DNS Configuration", "NTP Configuration")))
    assert "*.resinio.pool.ntp.org" in _section(seed000, "NTP Configuration", "Machine Protocol Ports")
    for pid in (MM, GOV):
        p = catalog.profiles[pid]
        assert p.dns_servers == tuple(dns_ips) == ("8.8.8.8", "8.8.4.4")
        assert p.ntp_servers == ("*.resinio.pool.ntp.org",)
        general = {(e.port, e.protocol, e.service) for e in p.endpoints if e.host is None
                   and not e.addresses}
        assert general == {(53, "udp", "dns"), (123, "udp", "ntp")}
        assert {(e.port, e.protocol) for e in p.endpoints} == {
            (int(port), proto.lower()) for port, proto, _ in ports}


def test_ping_endpoints_and_the_wildcard(catalog: Catalog) -> None:
    mm = catalog.profiles[MM]
    pinged = {e.host: e.https_path for e in mm.endpoints if "https" in e.checks}
    assert pinged == {"cloudlink.balena-cloud.com": "/ping", "api.machinemetrics.com": "/ping"}
    (wild,) = [e for e in mm.endpoints if e.wildcard]
    assert wild.host == "*.balena-cloud.com" and wild.checks == () and wild.port == 443


def test_cloudlink_gets_the_seed_procedure(catalog: Catalog) -> None:
    mm = catalog.profiles[MM]
    (cloudlink,) = _by_host(mm)["cloudlink.balena-cloud.com"]
    text = mm.remediation_for("tcp-timeout", cloudlink)
    for words in ("ALL firewalls", "OT/plant-floor", "corporate", "VPN-blocking", "DPI",
                  "restart the Edge", "heartbeat"):
        assert words in text
    (api,) = _by_host(mm)["api.machinemetrics.com"]
    assert mm.remediation_for("tcp-timeout", api) == mm.remediation["tcp-timeout"] != text
    # Codes the override does not cover fall back to the profile's text.
    assert mm.remediation_for("dns-timeout", cloudlink) == mm.remediation["dns-timeout"]
    assert mm.remediation_for("no-such-code", cloudlink) == ""


# --- seeds 001 and 002 ---------------------------------------------------------------------

def test_siemens_takes_the_iem_host_as_a_parameter(catalog: Catalog) -> None:
    p = catalog.profiles[SIEMENS]
    assert p.params == {"iem_host": ParamSpec("iem_host", p.params["iem_host"].description,
                                              True, "host"),
                        # The pin for an IEM's self-generated certificate (seed 001: IP-based).
                        "iem_fingerprint": ParamSpec("iem_fingerprint", p.params["iem_fingerprint"].description,
                                                     False, "sha256-fingerprint")}
    assert p.tls_trust == "private-ca"
    assert "tls.extra_ca_file" in p.remediation["tls-untrusted"]
    assert {(e.port, e.protocol, e.service) for e in p.endpoints} == {
        (443, "tcp", "https"), (9443, "tcp", "https"), (9444, "tcp", "https"),
        (32500, "tcp", "ssh"), (50051, "tcp", "grpc"), (53, "udp", "dns"), (123, "udp", "ntp")}
    for e in p.endpoints:
        if e.protocol == "tcp":
            assert e.host is None and e.param == "iem_host"
            assert e.target({"iem_host": "192.0.2.10"}) == "192.0.2.10"
            assert e.target({}) is None
    assert {e.port for e in p.endpoints if "tls" in e.checks} == {443, 9443, 9444}


def test_siemens_ports_are_the_documents_egress_ports(catalog: Catalog) -> None:
    egress = [line for line in seed_text("001").splitlines() if "Egress" in line]
    for e in catalog.profiles[SIEMENS].endpoints:
        assert any(re.search(rf"\b{e.port}\b", line) for line in egress), e.port


def test_izuma_hosts_ports_and_bootstrap_issuer(catalog: Catalog) -> None:
    p = catalog.profiles[IZUMA]
    hosts = _by_host(p)
    ports = {h: {(e.port, e.protocol) for e in es} for h, es in hosts.items()}
    assert ports["udp-lwm2m.us-east-1.mbedcloud.com"] == {(5684, "udp")}
    assert ports["tcp-lwm2m.us-east-1.mbedcloud.com"] == {(5684, "tcp")}
    assert ports["bootstrap.us-east-1.mbedcloud.com"] == {(5684, "tcp"), (5684, "udp")}
    assert ports["lwm2m.us-east-1.mbedcloud.com"] == {(5684, "tcp"), (5684, "udp")}
    assert ports["*.mbedcloud.com"] == {(5684, "tcp"), (5684, "udp"), (443, "tcp")}
    (boot,) = [e for e in hosts["bootstrap.us-east-1.mbedcloud.com"] if e.protocol == "tcp"]
    assert boot.expected_issuer == "ARM Bootstrap CA" == boot.expected_issuer_dn.rpartition("CN=")[2]
    assert "coap-tls" in boot.checks and "tls" not in boot.checks
    notes = " ".join(p.notes)
    assert "540" in notes and "TTL" in notes and "CoAP over TCP" in notes


def test_izuma_hosts_and_bootstrap_issuer_are_the_documents(catalog: Catalog) -> None:
    seed = seed_text("002")
    hosts = _by_host(catalog.profiles[IZUMA])
    for host in set(re.findall(r"[a-z0-9-]+\.us-east-1\.mbedcloud\.com", seed)):
        assert host in hosts, f"{host} missing from {IZUMA}"
    issuer = re.search(r"^issuer=(.+)$", seed, re.M).group(1)
    dn = re.sub(r"\s*=\s*", "=", issuer.strip())
    (boot,) = [e for e in hosts["bootstrap.us-east-1.mbedcloud.com"] if e.protocol == "tcp"]
    assert boot.expected_issuer_dn == dn


# --- the machine-protocol table ------------------------------------------------------------

def test_every_controller_with_its_probe_and_the_download_figures(catalog: Catalog) -> None:
    assert set(catalog.controllers) == {
        "fanuc-focas", "mtconnect-adapter", "mtconnect-agent", "allen-bradley-ethernet-ip",
        "haas-serial-moxa", "haas-mtconnect", "citizen-m700", "mitsubishi", "heidenhain",
        "siemens-opc-ua", "kepware-opc-ua", "bystronic-opc-ua", "fanuc-robot-opc-ua",
        "modbus-tcp"}
    for c in catalog.controllers.values():
        assert c.protocol == "tcp"
    assert catalog.controllers["mtconnect-agent"].probe == "mtconnect-probe"
    assert catalog.controllers["mtconnect-adapter"].probe == "tcp"
    assert catalog.download.workcenter_view_bps_per_machine == 2000
    # The seed's own example: 50 machines download 12.5-100 kbps.
    assert catalog.download.range_kbps(50) == (12.5, 100.0)


def test_every_controller_with_its_port_and_bandwidth(seed000: str, catalog: Catalog) -> None:
    rows = _table(_section(seed000, "Machine Protocol Ports", "Bandwidth Requirements"), 2)
    assert len(rows) == 14
    assert sorted((c.label, c.port) for c in catalog.controllers.values()) == sorted(
        (label, int(port)) for label, port in rows)
    bandwidth = "\n".join(_section(seed000, "Bandwidth Requirements", "Deep Packet Inspection (DPI)"))
    standard = float(re.search(r"Standard machine \| ~(\d+) kbps", bandwidth).group(1))
    high = float(re.search(r"High-data machine \(FANUC FOCAS\) \| ~(\d+) kbps", bandwidth).group(1))
    for c in catalog.controllers.values():
        assert c.upload_kbps == (high if c.id == "fanuc-focas" else standard)
    dashboard = float(re.search(r"Dashboard \| ~(\d+) bps", bandwidth).group(1))
    assert catalog.download.dashboard_bps_per_machine == dashboard


# --- every profile -------------------------------------------------------------------------

def _seeds_in(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [v for k, v in node.items() if k == "seed"] + [
            s for v in node.values() for s in _seeds_in(v)]
    if isinstance(node, list):
        return [s for v in node for s in _seeds_in(v)]
    return []


ASSET_FILES = sorted((ASSETS / "profiles").glob("*.yaml")) + [ASSETS / "machine-protocols.yaml"]


@pytest.mark.parametrize("path", ASSET_FILES, ids=lambda p: p.name)
def test_every_citation_names_a_seed_file_and_one_of_its_headings(path: Path) -> None:
    seeds = require_seeds()
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    citations = _seeds_in(data)
    assert citations
    for citation in set(citations):
        name, _, heading = citation.partition("#")
        assert (seeds / name).is_file(), citation
        lines = [line.strip() for line in (seeds / name).read_text(encoding="utf-8").splitlines()]
        assert heading in lines, f"{citation}: no such heading line in {name}"


@pytest.mark.parametrize("path", ASSET_FILES, ids=lambda p: p.name)
def test_assets_are_plain_ascii_for_the_serial_console(path: Path) -> None:
    path.read_bytes().decode("ascii")


def test_catalog_shape(catalog: Catalog) -> None:
    assert set(catalog.profiles) == {MM, GOV, SIEMENS, IZUMA}
    assert load_catalog() is catalog, "the default catalog is cached"
    assert load_catalog(ASSETS) == catalog
    for pid, p in catalog.profiles.items():
        assert p.id == pid and p.seed and p.tls_trust == ("private-ca" if pid == SIEMENS
                                                          else "public")
        checks = {c for e in p.endpoints for c in e.checks}
        dtls_codes = {"dtls-timeout", "dtls-unreachable", "dtls-handshake-failed"}
        needed = set(DIAGNOSIS_CODES) - {"nats-not-nats", "http-status"} - dtls_codes
        needed |= dtls_codes if "dtls" in checks else set()
        needed |= {"nats-not-nats"} if "nats" in checks else set()
        needed |= {"http-status"} if "https" in checks else set()
        assert needed <= set(p.remediation), f"{pid} lacks {needed - set(p.remediation)}"
        assert all(len(t) < 600 and "\n" not in t for t in p.remediation.values())
        for e in p.endpoints:
            assert e.seed and set(e.checks) <= set(CHECKS)
            if e.wildcard:
                assert e.checks == (), f"{pid}: {e.host}:{e.port}/{e.protocol}"
            if e.protocol == "udp":  # a DTLS handshake (CoAP over UDP) is the only live UDP check
                assert set(e.checks) <= {"dns", "dtls"}, f"{pid}: {e.host}:{e.port}/{e.protocol}"
            for a in e.addresses:
                ipaddress.ip_address(a)
    assert all(c.seed for c in catalog.controllers.values())


def test_param_validation() -> None:
    spec = ParamSpec("iem_host", "IEM", True, "host")
    for good in ("iem.plant.local", "192.0.2.10", "2001:db8::1", "IEM-01"):
        assert spec.validate(good) is None, good
    for bad in ("", "  ", "*.plant.local", "iem host", "http://iem"):
        assert "host name or an IP address" in spec.validate(bad), bad


def test_core_module_imports_no_ui_library() -> None:
    code = ("import sys, installer.vendors.profiles; "
            "bad = [m for m in ('textual', 'rich') if m in sys.modules]; "
            "sys.exit(str(bad) if bad else 0)")
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True)


# --- broken files --------------------------------------------------------------------------

def _valid() -> dict[str, Any]:
    seed = "000_d0122341ad91427d.txt#Required Domains (Standard Cloud)"
    return {
        "id": "p", "title": "P", "seed": seed, "tls_trust": "public",
        "params": {"iem_host": {"description": "d", "required": True, "kind": "host",
                                "seed": seed}},
        "dns_servers": [{"address": "8.8.8.8", "seed": seed}],
        "endpoints": [
            {"host": "api.example.com", "port": 443, "protocol": "tcp", "service": "https",
             "purpose": "x", "checks": ["dns", "tcp", "tls", "https"], "https_path": "/ping",
             "seed": seed},
            {"port": 53, "protocol": "udp", "service": "dns", "purpose": "DNS", "checks": [],
             "seed": seed},
        ],
        "remediation": {"tcp-timeout": {"text": "Open the port.", "seed": seed}},
    }


def _write(tmp_path: Path, data: dict[str, Any]) -> Path:
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(data: dict[str, Any]) -> None:
        *parents, last = re.findall(r"[^.\[\]]+", path)
        node: Any = data
        for key in parents:
            node = node[int(key)] if key.isdigit() else node[key]
        if value is _DELETE:
            del node[last]
        elif isinstance(node, list):
            node[int(last)] = value
        else:
            node[last] = value
    return mutate


_DELETE = object()
EP = "endpoints[0]"
BROKEN = [
    ("port-too-big", _set(f"{EP}.port", 70000), f"{EP}.port", "must be an integer 1-65535, got the number 70000"),
    ("port-string", _set(f"{EP}.port", "443"), f"{EP}.port", "1-65535, got the text '443'"),
    ("port-bool", _set(f"{EP}.port", True), f"{EP}.port", "1-65535, got true"),
    ("unknown-key", _set(f"{EP}.hots", "x"), f"{EP}.hots", "valid keys are"),
    ("missing-key", _set(f"{EP}.protocol", _DELETE), f"{EP}.protocol", "missing"),
    ("missing-top", _set("title", _DELETE), "title", "missing"),
    ("unknown-check", _set(f"{EP}.checks", ["dns", "ping"]), f"{EP}.checks[1]", "nats"),
    ("unknown-service", _set(f"{EP}.service", "http"), f"{EP}.service", "one of https"),
    ("bad-ip", _set(f"{EP}.addresses", ["10.0.0.300"]), f"{EP}.addresses[0]", "IP address"),
    ("ip-as-host", _set(f"{EP}.host", "10.0.0.1"), f"{EP}.host", "addresses"),
    ("undeclared-param", _set("endpoints[1]", {
        "param": "iem", "port": 443, "protocol": "tcp", "service": "https", "purpose": "x",
        "checks": ["tcp"], "seed": "000_d0122341ad91427d.txt#X"}), "endpoints[1].param",
     "declared: iem_host"),
    ("path-without-https", _set(f"{EP}.checks", ["dns", "tcp", "tls"]), f"{EP}.https_path",
     "'https' check"),
    ("https-without-path", _set(f"{EP}.https_path", _DELETE), f"{EP}.https_path", "/ping"),
    ("tls-without-tcp", _set(f"{EP}.checks", ["dns", "tls"]), f"{EP}.checks", "needs 'tcp'"),
    ("checks-on-udp", _set("endpoints[1].checks", ["tcp"]), "endpoints[1].checks", "UDP"),
    ("checks-on-wildcard", _set(f"{EP}.host", "*.example.com"), f"{EP}.checks", "wildcard"),
    ("duplicate-endpoint", lambda d: d["endpoints"].append(copy.deepcopy(d["endpoints"][1])),
     "endpoints[2]", "duplicate of endpoints[1]"),
    ("id-not-file-name", _set("id", "q"), "id", "file name 'p'"),
    ("unknown-code", _set("remediation.tcp-timout", {"text": "t", "seed": "000_d0122341ad91427d.txt#X"}),
     "remediation.tcp-timout", "dns-nxdomain"),
    ("remediation-as-string", _set("remediation.tcp-timeout", "Open it."),
     "remediation.tcp-timeout", "must be a mapping"),
    ("no-seed", _set(f"{EP}.seed", _DELETE), f"{EP}.seed", "missing"),
    ("bad-seed", _set(f"{EP}.seed", "vendor docs"), f"{EP}.seed", "NNN_<16 hex>.txt#"),
    ("bad-trust", _set("tls_trust", "none"), "tls_trust", "public, private-ca"),
    ("param-kind", _set("params.iem_host.kind", "url"), "params.iem_host.kind", "host"),
    ("param-required", _set("params.iem_host.required", "yes"), "params.iem_host.required",
     "true or false"),
    ("dns-server", _set("dns_servers[0].address", "dns.google"), "dns_servers[0].address",
     "IP address"),
    ("endpoints-not-list", _set("endpoints", {"host": "x"}), "endpoints", "must be a list"),
    ("no-endpoints", _set("endpoints", []), "endpoints", "at least one"),
]


@pytest.mark.parametrize("name,mutate,key,words", BROKEN, ids=[b[0] for b in BROKEN])
def test_broken_profile_names_file_and_key(tmp_path: Path, name: str, mutate: Callable,
                                           key: str, words: str) -> None:
    data = _valid()
    load_profile(_write(tmp_path, data))  # the starting point is valid
    mutate(data)
    path = _write(tmp_path, data)
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    assert str(err.value).startswith(f"p.yaml: {key}: "), str(err.value)
    assert words in str(err.value)
    assert err.value.file == "p.yaml" and err.value.key == key


def test_issuer_needs_a_tls_check(tmp_path: Path) -> None:
    data = _valid()
    data["endpoints"][0]["expected_issuer"] = "CA"
    load_profile(_write(tmp_path, data))
    data["endpoints"][0].update(checks=["dns", "tcp"])
    del data["endpoints"][0]["https_path"]
    path = _write(tmp_path, data)
    with pytest.raises(ProfileError, match=r"^p\.yaml: endpoints\[0\]\.expected_issuer: .*'tls'"):
        load_profile(path)


@pytest.mark.parametrize("text,message", [
    ("id: p\n  port: [\n", "not valid YAML: line 2, column 7"),
    ("- a\n- b\n", "must be a YAML mapping, got a list"),
    ("", "the file is empty"),
    ("id: p\nid: q\n", "line 2, column 1: duplicate key 'id'"),
    ("endpoints:\n  - port: 1\n    port: 2\n", "line 3, column 5: duplicate key 'port'"),
    ("!!python/object/apply:os.system [echo hi]\n", "not valid YAML"),
], ids=["syntax", "list", "empty", "dup-top", "dup-nested", "unsafe-tag"])
def test_unreadable_profile(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    assert str(err.value).startswith("p.yaml: ") and message in str(err.value)


def _assets_copy(tmp_path: Path) -> Path:
    root = tmp_path / "assets"
    shutil.copytree(ASSETS / "profiles", root / "profiles")
    shutil.copy(ASSETS / "machine-protocols.yaml", root)
    return root


@pytest.mark.parametrize("edit,message", [
    (lambda d: d["controllers"].append(dict(d["controllers"][7])),
     "machine-protocols.yaml: controllers[14].id: duplicate id 'mitsubishi' (first at controllers[7])"),
    (lambda d: d["controllers"][0].update(probe="http"),
     "machine-protocols.yaml: controllers[0].probe: must be one of tcp, mtconnect-probe"),
    (lambda d: d["controllers"][1].update(upload="huge"),
     "machine-protocols.yaml: controllers[1].upload: must be one of the upload_classes"),
    (lambda d: d["controllers"][2].update(port=0),
     "machine-protocols.yaml: controllers[2].port: must be an integer 1-65535, got the number 0"),
    (lambda d: d["download"].pop("dashboard_bps_per_machine"),
     "machine-protocols.yaml: download.dashboard_bps_per_machine: missing required key"),
    (lambda d: d["upload_classes"]["standard"].update(kbps=-1),
     "machine-protocols.yaml: upload_classes.standard.kbps: must be a number above 0"),
])
def test_broken_machine_table(tmp_path: Path, edit: Callable, message: str) -> None:
    root = _assets_copy(tmp_path)
    table = root / "machine-protocols.yaml"
    data = yaml.safe_load(table.read_text())
    edit(data)
    table.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ProfileError) as err:
        load_catalog(root)
    assert str(err.value).startswith(message), str(err.value)


def test_catalog_names_the_broken_profile_file(tmp_path: Path) -> None:
    root = _assets_copy(tmp_path)
    path = root / "profiles" / "izuma-device-management.yaml"
    path.write_text(path.read_text().replace("port: 5684", "port: 75684", 1))
    with pytest.raises(ProfileError, match=r"^izuma-device-management\.yaml: endpoints\[0\]\.port: "
                                           r"must be an integer 1-65535, got the number 75684$"):
        load_catalog(root)
    shutil.rmtree(root / "profiles")
    with pytest.raises(ProfileError, match="no such directory"):
        load_catalog(root)


# Any junk in place of any endpoint value is a ProfileError, never another exception.
_junk = st.recursive(
    st.none() | st.booleans() | st.integers(-2, 70000) | st.floats(allow_nan=False)
    | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                 max_size=3),
    max_leaves=6)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(key=st.sampled_from(["host", "param", "addresses", "port", "protocol", "service",
                            "purpose", "checks", "https_path", "expected_issuer",
                            "remediation", "seed"]),
       value=_junk, where=st.integers(0, 1))
def test_junk_is_a_profile_error_or_valid(tmp_path: Path, key: str, value: Any, where: int) -> None:
    data = _valid()
    data["endpoints"][where][key] = value
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(data))
    try:
        profile = load_profile(path)
    except ProfileError as err:
        assert str(err).startswith(f"p.yaml: endpoints[{where}]")
    else:
        assert isinstance(profile.endpoints[where], Endpoint)

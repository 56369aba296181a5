"""The network lab, proven piece by piece with plain primitives run inside the edge namespace.

Nothing here uses installer/checks: each assertion is a socket, ssl, dnspython or ntplib call
(tests/lab/probe.py) made from <lab>-edge, so a check that disagrees with the lab can be
judged against what the lab is shown to serve. Every probe has a timeout of its own.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml

from installer.planning.validate import validate_document
from installer.vendors.profiles import load_catalog
from tests.lab import Lab, LabError, dnsauth, fixtures, netns
from tests.lab import topology as T
from tests.lab.fixtures import healthy_lab, lab  # noqa: F401  (fixtures, used by name)

pytestmark = pytest.mark.lab

CLOUD = T.CLOUD
API = "api.machinemetrics.com"
NATS_IPS = T.nats_addresses(load_catalog())
QUICK = 0.5  # seconds a probe waits where silence is the expected answer


def tls_endpoints() -> list[tuple[str, int]]:
    """(host, port) of every HTTPS endpoint the profiles check, the IEM's included."""
    found = []
    for profile in load_catalog().profiles.values():
        for e in profile.endpoints:
            host = e.target({"iem_host": T.IEM_HOST})
            if "tls" in e.checks and host and (host, e.port) not in found:
                found.append((host, e.port))
    return found


def ping_endpoints() -> list[tuple[str, int, str]]:
    return [(e.host, e.port, e.https_path) for p in load_catalog().profiles.values()
            for e in p.endpoints if "https" in e.checks]


def coap_hosts() -> list[str]:
    return sorted({e.host for p in load_catalog().profiles.values() for e in p.endpoints
                   if "coap-tls" in e.checks})


def one(lab: Lab, kind: str, **args) -> dict:
    return lab.probe({"kind": kind, **args})[0]


# --- healthy -------------------------------------------------------------------------------

def test_healthy_baseline(healthy_lab: Lab) -> None:
    lab, ca = healthy_lab, str(healthy_lab.public_ca_file)
    records = T.dns_records(load_catalog())
    probes = [{"kind": "dns", "name": n} for n in records]
    probes += [{"kind": "dns", "name": API, "tcp": True},
               {"kind": "dns", "name": f"nothing-here.{API}"},
               {"kind": "dns", "name": API, "server": "8.8.8.8"},
               {"kind": "dns", "name": API, "server": "8.8.4.4", "tcp": True},
               {"kind": "resolve", "name": T.IEM_HOST}]
    probes += [{"kind": "tls", "host": h, "port": p, "cafile": ca} for h, p in tls_endpoints()]
    probes += [{"kind": "https", "host": h, "port": p, "path": path, "cafile": ca}
               for h, p, path in ping_endpoints()]
    probes += [{"kind": "banner", "host": a, "port": T.NATS_PORT}
               for a in (CLOUD, "stream.machinemetrics-us-gov.com", *NATS_IPS)]
    probes += [{"kind": "tls", "host": h, "port": T.COAP_PORT} for h in coap_hosts()]
    probes += [{"kind": "ntp"}, {"kind": "ntp", "server": T.NTP_HOST}]
    probes += [{"kind": "tcp", "host": m.address, "port": m.port} for m in T.MACHINES]
    probes += [{"kind": "http", "host": "198.51.100.22", "port": 5000, "path": "/probe"}]
    probes += [{"kind": "tcp", "host": T.IEM_HOST, "port": p} for p in T.IEM_PLAIN_PORTS]
    probes += [{"kind": "interfaces"}]
    results = iter(lab.probe(*probes))

    for name, address in records.items():
        r = next(results)
        assert (r.get("rcode"), r.get("addresses")) == ("NOERROR", [address]), (name, r)
        # TTL 0 from the resolver's own data; the Izuma zone comes from its authoritative server
        # (TTL 30 s, counting down in the resolver's cache).
        (ttl,) = r.get("ttls")
        assert (0 < ttl <= dnsauth.ZONE_TTL) if dnsauth.in_zone(name) else ttl == 0, (name, r)
    assert next(results)["addresses"] == [CLOUD]                       # over TCP
    assert next(results)["rcode"] == "NXDOMAIN"                        # unknown name in a lab domain
    assert next(results)["addresses"] == [CLOUD]                       # 8.8.8.8, translated
    assert next(results)["addresses"] == [CLOUD]                       # 8.8.4.4 over TCP
    assert next(results)["addresses"] == [CLOUD]                       # getaddrinfo: the lab's resolv.conf
    for host, port in tls_endpoints():
        r = next(results)
        assert r.get("verified") is True, (host, port, r)
        assert r["issuer_cn"] == lab.public_ca_name and r["subject_names"] == [host]  # by SNI
    for host, port, path in ping_endpoints():
        r = next(results)
        assert r.get("status") == 200, (host, port, path, r)
    for target in (CLOUD, "stream.machinemetrics-us-gov.com", *NATS_IPS):
        r = next(results)
        assert r.get("line", "").startswith("INFO {"), (target, r)
    for host in coap_hosts():
        r = next(results)
        assert r.get("issuer_cn") == "ARM Bootstrap CA", (host, r)
        assert r["issuer_dn"] == "C=GB, ST=Cambridgeshire, L=Cambridge, O=ARM Ltd, CN=ARM Bootstrap CA"
    for _ in range(2):
        r = next(results)
        assert r.get("stratum") == 8 and abs(r["offset"]) < 0.5, r
    for m in T.MACHINES:
        r = next(results)
        assert r["result"] == "connected", (m, r)
    r = next(results)
    assert r.get("status") == 200 and ET.fromstring(r["body"]).tag.endswith("MTConnectDevices"), r
    for port in T.IEM_PLAIN_PORTS:
        assert next(results)["result"] == "connected", port
    net = next(results)
    assert net["forwarding"] is False
    assert net["links"][T.UPLINK_IF]["addresses"] == [f"{T.EDGE_UPLINK}/24"]
    assert net["links"][T.MACHINE_IF]["addresses"] == [f"{T.EDGE_MACHINE}/24"]
    assert "LOWER_UP" in net["links"][T.MACHINE_IF]["flags"]
    defaults = [r for r in net["routes"] if r["dst"] == "default"]
    assert defaults == [{"dst": "default", "gateway": T.GATEWAY, "dev": T.UPLINK_IF, "flags": []}]


def test_proxy_needs_credentials_and_tunnels_with_them(healthy_lab: Lab) -> None:
    lab, ca = healthy_lab, str(healthy_lab.public_ca_file)
    via = {"kind": "proxy", "proxy": T.PROXY, "proxy_port": T.PROXY_PORT}
    creds = {"user": lab.proxy_user, "password": lab.proxy_password}
    anon, wrong, good, nats, coap, by_name, closed = lab.probe(
        {**via, "host": API, "port": 443},
        {**via, "host": API, "port": 443, "user": lab.proxy_user, "password": "p@ss:w#rd![x"},
        {**via, "host": API, "port": 443, **creds, "then": "https", "cafile": ca},
        {**via, "host": NATS_IPS[0], "port": T.NATS_PORT, **creds, "then": "banner"},
        {**via, "host": coap_hosts()[0], "port": T.COAP_PORT, **creds, "then": "tls"},
        {**via, "proxy": T.PROXY_HOST, "host": T.IEM_HOST, "port": 9443, **creds, "then": "https", "cafile": ca},
        {**via, "host": API, "port": 22, **creds})
    assert anon["status"] == 407 and wrong["status"] == 407
    assert good["status"] == 200 and good["tunnel"]["status"] == 200, good
    assert "tunnel" in nats and nats["tunnel"]["line"].startswith("INFO {"), nats
    assert coap["tunnel"]["issuer_cn"] == "ARM Bootstrap CA"
    assert by_name["tunnel"]["status"] == 200, by_name
    assert closed["status"] == 403  # CONNECT only to the vendors' ports
    assert set(lab.proxy_password) & set("@:#/?[]% ")  # needs percent-encoding in a URL


def test_plans_are_valid_for_every_profile(lab: Lab, tmp_path: Path) -> None:
    profiles = sorted(load_catalog().profiles)
    for chosen in [[p] for p in profiles] + [profiles]:
        plan = lab.plan(profiles=chosen)
        _, errors = validate_document(plan)
        assert errors == [], (chosen, errors)
        assert ("siemens-industrial-edge" in plan["profile_params"]) == ("siemens-industrial-edge" in chosen)
    with_proxy = lab.plan(proxy=lab.proxy_settings(), dns={"mode": "google", "servers": []})
    assert validate_document(with_proxy)[1] == []
    path = lab.write_plan(tmp_path / "plan.yaml", proxy=lab.proxy_settings())
    assert yaml.safe_load(path.read_text()) == lab.plan(proxy=lab.proxy_settings())
    assert Path(lab.plan()["tls"]["extra_ca_file"]) == lab.public_ca_file


# --- faults --------------------------------------------------------------------------------

def test_drop_means_silence_until_timeout(healthy_lab: Lab) -> None:
    lab = healthy_lab
    lab.block(443)
    lab.block(T.NATS_PORT, address=NATS_IPS[0])
    lab.block(53, "udp")
    https, other_port, nats_blocked, nats_other, dns_udp, dns_tcp = lab.probe(
        {"kind": "tcp", "host": CLOUD, "port": 443, "timeout": QUICK},
        {"kind": "tcp", "host": CLOUD, "port": 9443, "timeout": QUICK},
        {"kind": "tcp", "host": NATS_IPS[0], "port": T.NATS_PORT, "timeout": QUICK},
        {"kind": "tcp", "host": NATS_IPS[1], "port": T.NATS_PORT, "timeout": QUICK},
        {"kind": "dns", "name": API, "timeout": QUICK},
        {"kind": "dns", "name": API, "tcp": True, "timeout": QUICK})
    assert https["result"] == "timeout" and https["elapsed"] >= QUICK * 0.9, https
    assert other_port["result"] == "connected"
    assert nats_blocked["result"] == "timeout" and nats_other["result"] == "connected"
    assert dns_udp["result"] == "timeout" and dns_tcp.get("rcode") == "NOERROR"


def test_reject_means_connection_refused(healthy_lab: Lab) -> None:
    lab = healthy_lab
    lab.block(443, action="reject", address=CLOUD)
    lab.block(T.NATS_PORT, action="reject", address=NATS_IPS[1])
    lab.block(502, action="reject", address="198.51.100.24")
    lab.block(53, action="reject", address="8.8.8.8")
    https, nats_rejected, nats_other, modbus, fanuc, google, google2 = lab.probe(
        {"kind": "tcp", "host": API, "port": 443},
        {"kind": "tcp", "host": NATS_IPS[1], "port": T.NATS_PORT},
        {"kind": "tcp", "host": NATS_IPS[0], "port": T.NATS_PORT},
        {"kind": "tcp", "host": "198.51.100.24", "port": 502},
        {"kind": "tcp", "host": "198.51.100.21", "port": 8193},
        {"kind": "dns", "name": API, "server": "8.8.8.8", "tcp": True},
        {"kind": "dns", "name": API, "server": "8.8.4.4", "tcp": True})
    assert (https["result"], https["errno"]) == ("refused", "ECONNREFUSED") and https["elapsed"] < 0.2
    assert nats_rejected["result"] == "refused" and nats_other["result"] == "connected"
    assert modbus["result"] == "refused" and fanuc["result"] == "connected"
    assert google["result"] == "refused" and google2["rcode"] == "NOERROR"


def test_firewall_sits_between_edge_and_cloud_not_before_the_proxy(healthy_lab: Lab) -> None:
    lab = healthy_lab
    lab.block(443, action="reject")
    direct, proxied = lab.probe(
        {"kind": "tcp", "host": API, "port": 443},
        {"kind": "proxy", "proxy": T.PROXY, "proxy_port": T.PROXY_PORT, "host": API, "port": 443,
         "user": lab.proxy_user, "password": lab.proxy_password, "then": "https",
         "cafile": str(lab.public_ca_file)})
    assert direct["result"] == "refused"
    assert proxied["tunnel"]["status"] == 200


def test_no_route_is_unreachable_at_once(healthy_lab: Lab) -> None:
    lab = healthy_lab
    lab.no_route(CLOUD)
    lab.no_route(NATS_IPS[2])
    cloud, nats, dns = lab.probe(
        {"kind": "tcp", "host": API, "port": 443},
        {"kind": "tcp", "host": NATS_IPS[2], "port": T.NATS_PORT},
        {"kind": "dns", "name": API})
    for r in (cloud, nats):
        assert (r["result"], r["errno"]) == ("unreachable", "EHOSTUNREACH") and r["elapsed"] < 0.2, r
    assert dns["addresses"] == [CLOUD]


def test_dns_rcodes(healthy_lab: Lab) -> None:
    lab = healthy_lab
    lab.dns_nxdomain(API)
    lab.dns_servfail("app.machinemetrics.com")
    nx, sf, sf_tcp, fine = lab.probe(
        {"kind": "dns", "name": API},
        {"kind": "dns", "name": "app.machinemetrics.com"},
        {"kind": "dns", "name": "app.machinemetrics.com", "tcp": True},
        {"kind": "dns", "name": "cloudlink.balena-cloud.com"})
    assert nx["rcode"] == "NXDOMAIN"
    assert sf["rcode"] == "SERVFAIL" and sf_tcp["rcode"] == "SERVFAIL"
    assert fine["rcode"] == "NOERROR"
    lab.dns_refused()
    refused, google = lab.probe({"kind": "dns", "name": "cloudlink.balena-cloud.com"},
                                {"kind": "dns", "name": "cloudlink.balena-cloud.com", "server": "8.8.8.8"})
    assert refused["rcode"] == "REFUSED" and google["rcode"] == "REFUSED"


def test_intercepted_tls_is_issued_by_the_dpi_ca(healthy_lab: Lab) -> None:
    lab, ca = healthy_lab, str(healthy_lab.public_ca_file)
    lab.intercept_tls()
    https, iem, coap, proxied, nats = lab.probe(
        {"kind": "tls", "host": API, "port": 443, "cafile": ca},
        {"kind": "tls", "host": T.IEM_HOST, "port": 9444, "cafile": ca},
        {"kind": "tls", "host": coap_hosts()[0], "port": T.COAP_PORT},
        {"kind": "proxy", "proxy": T.PROXY, "proxy_port": T.PROXY_PORT, "host": API, "port": 443,
         "user": lab.proxy_user, "password": lab.proxy_password, "then": "tls"},
        {"kind": "banner", "host": API, "port": T.NATS_PORT})
    for r in (https, iem):
        assert r["issuer_cn"] == lab.dpi_ca_name and r["verified"] is False, r
        assert "unable to get local issuer certificate" in r["verify_error"]
        assert API in https["subject_names"]  # the DPI forges a certificate for the real name
    assert coap["issuer_cn"] == lab.dpi_ca_name
    assert proxied["tunnel"]["issuer_cn"] == lab.dpi_ca_name
    assert nats["line"].startswith("INFO {")  # only TLS ports are inspected


def test_expired_and_wrong_name_certificates(healthy_lab: Lab) -> None:
    lab, ca = healthy_lab, str(healthy_lab.public_ca_file)
    lab.serve_from(API, "expired")
    lab.serve_from("app.machinemetrics.com", "wrong-name")
    lab.serve_from("notify.bugsnag.com", "dpi")
    dns, expired, wrong, dpi, coap_expired = lab.probe(
        {"kind": "dns", "name": API},
        {"kind": "tls", "host": API, "port": 443, "cafile": ca},
        {"kind": "tls", "host": "app.machinemetrics.com", "port": 443, "cafile": ca},
        {"kind": "tls", "host": "notify.bugsnag.com", "port": 443, "cafile": ca},
        {"kind": "tls", "host": T.SERVERS["expired"], "port": T.COAP_PORT, "sni": coap_hosts()[0]})
    assert dns["addresses"] == [T.SERVERS["expired"]]
    assert expired["verified"] is False and "expired" in expired["verify_error"]
    assert expired["issuer_cn"] == lab.public_ca_name
    assert wrong["verified"] is False and "Hostname mismatch" in wrong["verify_error"], wrong
    assert wrong["issuer_cn"] == lab.public_ca_name
    assert dpi["issuer_cn"] == lab.dpi_ca_name
    assert coap_expired["issuer_cn"] == "ARM Bootstrap CA"


def test_not_nats(healthy_lab: Lab) -> None:
    lab = healthy_lab
    lab.serve_from("stream.machinemetrics-us-gov.com", "not-nats")
    lab.serve_from(NATS_IPS[0], "not-nats")
    by_name, by_ip, other_ip = lab.probe(
        *({"kind": "banner", "host": h, "port": T.NATS_PORT}
          for h in ("stream.machinemetrics-us-gov.com", NATS_IPS[0], NATS_IPS[1])))
    for r in (by_name, by_ip):
        assert r["result"] == "connected" and not r["line"].startswith("INFO"), r
    assert other_ip["line"].startswith("INFO {")


def test_ntp_offset(healthy_lab: Lab) -> None:
    lab = healthy_lab
    lab.ntp_offset(7200)
    (skewed,) = lab.probe({"kind": "ntp"})
    assert abs(skewed["offset"] - 7200) < 1, skewed
    lab.reset()
    (fine,) = lab.probe({"kind": "ntp"})
    assert abs(fine["offset"]) < 0.5, fine


def test_stopped_services(healthy_lab: Lab) -> None:
    lab = healthy_lab
    for service in ("proxy", "nats", "dns", "ntp", "machines:502"):
        lab.stop(service)
    proxy, nats, dns_udp, dns_tcp, ntp, modbus, https = lab.probe(
        {"kind": "tcp", "host": T.PROXY, "port": T.PROXY_PORT},
        {"kind": "tcp", "host": CLOUD, "port": T.NATS_PORT},
        {"kind": "dns", "name": API, "timeout": QUICK},
        {"kind": "dns", "name": API, "tcp": True, "timeout": QUICK},
        {"kind": "ntp", "timeout": QUICK},
        {"kind": "tcp", "host": "198.51.100.24", "port": 502},
        {"kind": "tcp", "host": CLOUD, "port": 443})
    assert proxy["result"] == nats["result"] == modbus["result"] == "refused"
    assert dns_udp["result"] == "timeout" and dns_tcp["result"] == "refused"
    assert ntp["result"] == "timeout"
    assert https["result"] == "connected"


def test_proxy_without_authentication(healthy_lab: Lab) -> None:
    lab = healthy_lab
    lab.proxy_auth(required=False)
    (anon,) = lab.probe({"kind": "proxy", "proxy": T.PROXY, "proxy_port": T.PROXY_PORT,
                         "host": API, "port": 443, "then": "tls"})
    assert anon["status"] == 200 and anon["tunnel"]["issuer_cn"] == lab.public_ca_name


def test_unplugged_interface_loses_carrier(healthy_lab: Lab) -> None:
    lab = healthy_lab
    lab.unplug(T.MACHINE_IF)
    (net,) = lab.probe({"kind": "interfaces"})
    assert "NO-CARRIER" in net["links"][T.MACHINE_IF]["flags"]
    assert "NO-CARRIER" not in net["links"][T.UPLINK_IF]["flags"]


def test_reset_restores_health(healthy_lab: Lab) -> None:
    """Every fault at once, then reset: all healthy again. The time it takes is printed (a
    figure, not a verdict: a loaded CI machine is no measure of speed)."""
    lab, ca = healthy_lab, str(healthy_lab.public_ca_file)
    lab.block(443)
    lab.block(9443, action="reject", address=CLOUD)
    lab.no_route(NATS_IPS[0])
    lab.dns_servfail(API)
    lab.serve_from(NATS_IPS[1], "not-nats")
    lab.intercept_tls()
    lab.ntp_offset(-3600)
    lab.proxy_auth(False)
    lab.unplug(T.MACHINE_IF)
    for service in ("nats", "machines:8193"):
        lab.stop(service)
    start = time.monotonic()
    lab.reset()
    elapsed = time.monotonic() - start
    print(f"reset after every fault: {elapsed:.3f} s; lab start-up: {lab.timings.get('up', 0):.3f} s")
    results = lab.probe(
        {"kind": "tls", "host": API, "port": 443, "cafile": ca},
        {"kind": "tcp", "host": CLOUD, "port": 9443},
        {"kind": "dns", "name": API},
        {"kind": "banner", "host": NATS_IPS[0], "port": T.NATS_PORT},
        {"kind": "banner", "host": NATS_IPS[1], "port": T.NATS_PORT},
        {"kind": "ntp"},
        {"kind": "proxy", "proxy": T.PROXY, "proxy_port": T.PROXY_PORT, "host": API, "port": 443},
        {"kind": "tcp", "host": "198.51.100.21", "port": 8193},
        {"kind": "interfaces"})
    tls, tcp, dns, nats0, nats1, ntp, proxy, fanuc, net = results
    assert tls["verified"] is True and tls["issuer_cn"] == lab.public_ca_name
    assert tcp["result"] == "connected" and dns["rcode"] == "NOERROR"
    assert nats0["line"].startswith("INFO {") and nats1["line"].startswith("INFO {")
    assert abs(ntp["offset"]) < 0.5 and proxy["status"] == 407
    assert fanuc["result"] == "connected"
    assert "NO-CARRIER" not in net["links"][T.MACHINE_IF]["flags"]
    start = time.monotonic()
    lab.reset()
    assert time.monotonic() - start < 0.1  # nothing to undo: nothing restarted


def test_fault_arguments_are_checked(lab: Lab) -> None:
    with pytest.raises(LabError, match="where must be one of"):
        lab.serve_from(API, "elsewhere")
    with pytest.raises(LabError, match="not a translated public address"):
        lab.serve_from("1.2.3.4", "dpi")
    with pytest.raises(LabError, match="proto must be"):
        lab.block(443, proto="icmp")
    with pytest.raises(LabError, match="not an address the lab serves"):
        lab.block(443, address="1.2.3.4")
    with pytest.raises(LabError, match="unknown service"):
        lab.stop("machines:9999")
    with pytest.raises(LabError, match="not an IPv4 address"):
        lab.no_route("api.machinemetrics.com")


def test_edge_commands_are_bounded_and_leave_the_host_proxy_behind(
        lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    start = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        lab.edge(["sh", "-c", "sleep 30 & sleep 30"], timeout=0.3)
    assert time.monotonic() - start < 2
    assert lab.edge(["cat"], input="hello").stdout == "hello"
    monkeypatch.setenv("https_proxy", "http://host-proxy.invalid:3128")
    env = lab.edge(["env"], env={"EXTRA": "1"}).stdout
    assert "EXTRA=1" in env and "host-proxy" not in env
    assert lab.edge(["cat", "/etc/resolv.conf"]).stdout.count("nameserver") == 1
    assert f"nameserver {T.DNS}" in lab.edge(["cat", "/etc/resolv.conf"]).stdout


# --- without root, and tearing down ----------------------------------------------------------

def test_without_root_the_lab_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(LabError, match="needs root"):
        Lab("eilnoroot").up()
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="NETWORK LAB NOT RUN"), \
            pytest.warns(pytest.PytestWarning, match="NETWORK LAB NOT RUN"):
        fixtures._unavailable("needs root")
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="NETWORK LAB NOT RUN"):
        fixtures._unavailable("needs root")


def test_missing_server_names_its_debian_package(monkeypatch: pytest.MonkeyPatch) -> None:
    real_which = shutil.which
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    monkeypatch.setattr(shutil, "which", lambda b, path=None: None if b == "squid" else real_which(b, path=path))
    with pytest.raises(LabError, match=r"squid \(Debian package squid\).*apt-get install"):
        Lab("eilmissing").up()


def _host_network() -> tuple[list[str], str]:
    links = sorted(line.split(":")[1].strip().split("@")[0] for line in
                   netns.run(["ip", "-o", "link"]).stdout.splitlines())
    return links, netns.run(["nft", "list", "tables"]).stdout


def test_up_replaces_a_leftover_and_down_leaves_nothing() -> None:
    if os.geteuid() != 0:
        fixtures._unavailable("it needs root (network namespaces, veth, nftables)")
    name = f"eid{os.getpid()}"
    host_before = _host_network()
    first = Lab(name, Path(f"/tmp/{name}-a"))
    second = Lab(name, Path(f"/tmp/{name}-b"))
    try:
        first.up()
        old = {pid for ns in first.ns.values() for pid in netns.pids(ns)}
        assert len(old) > 10
        second.up()  # as a new process finding the lab of a crashed one
        new = {pid for ns in second.ns.values() for pid in netns.pids(ns)}
        assert not old & new and not [p for p in old if _running(p)]
        assert second.probe({"kind": "tcp", "host": CLOUD, "port": 443})[0]["result"] == "connected"
    finally:
        second.down()
        first.down()
        for d in ("a", "b"):
            shutil.rmtree(f"/tmp/{name}-{d}", ignore_errors=True)
    assert second.down_problems == [] and first.down_problems == []
    assert name not in netns.run(["ip", "netns", "list"]).stdout
    assert not any(Path("/etc/netns", ns).exists() for ns in second.ns.values())
    assert not [p for p in old | new if _running(p)]
    assert not list(Path("/dev/shm").glob(f"{name}*"))
    assert _host_network() == host_before


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def test_the_proxy_reaches_nats_after_the_uplink_was_unplugged(healthy_lab: Lab) -> None:
    """Unplugging the uplink takes the cloud's end down, which drops the routes of the public
    addresses the proxy dials: plugging it back must route them again (it once left every
    later proxy-to-NATS test with 503)."""
    lab = healthy_lab
    lab.unplug(T.UPLINK_IF)
    lab.reset()
    via = {"kind": "proxy", "proxy": T.PROXY, "proxy_port": T.PROXY_PORT,
           "user": lab.proxy_user, "password": lab.proxy_password}
    results = lab.probe(*({**via, "host": ip, "port": T.NATS_PORT, "then": "banner"} for ip in NATS_IPS))
    assert [r["status"] for r in results] == [200] * len(NATS_IPS), results

"""One finding per cause: how a run's results are grouped for a plant's IT team (pure logic on
results as the checks produce them; the lab tests prove the checks' own diagnoses)."""

from __future__ import annotations

from installer.checks.base import Result
from installer.checks.findings import document, group, host_port
from installer.checks.runner import Report


def R(id, target, status, diagnosis, evidence="seen", remediation="", kind=None, **facts):
    kind = kind or id.split("-")[0]
    return Result(id, kind, target, status, diagnosis, evidence, remediation, 0.01, "machinemetrics",
                  f"{id}:{target}", facts)


def ok(id, target):
    return R(id, target, "pass", "ok")


HOSTS = [f"h{i}.example.com" for i in range(9)]


def test_one_dpi_appliance_is_one_finding_naming_every_host():
    results = [ok("dns-resolve", h) for h in HOSTS] + [
        R("tls-verify", f"{h}:443", "fail", "tls-intercepted",
          remediation=f'Traffic to {h} is inspected and re-signed by "Plant DPI". Exempt {h} (port 443) from '
                      "TLS inspection on that appliance. Exempt MachineMetrics and Balena domains from DPI.",
          issuer="Plant DPI", issuer_dn="O=Plant, CN=Plant DPI") for h in HOSTS]
    found, of = group(results)
    assert len(found) == 1
    f = found[0]
    assert f.cause == "tls-inspection" and f.status == "fail" and len(f.hosts) == 9 and f.ports == (443,)
    assert "Plant DPI" in f.title and "9 destinations" in f.title
    # One remediation: every host named once, the vendor's general advice once, no per-host paragraphs.
    assert f.remediation.count("Exempt MachineMetrics and Balena domains from DPI.") == 1
    assert all(f.remediation.count(h) == 1 for h in HOSTS)
    assert set(of) == {f"tls-verify:{h}:443" for h in HOSTS}


def test_two_appliances_are_two_findings():
    results = [R("tls-verify", "a.example.com:443", "fail", "tls-intercepted", issuer="A", issuer_dn="CN=A"),
               R("tls-verify", "b.example.com:443", "fail", "tls-intercepted", issuer="B", issuer_dn="CN=B")]
    assert [f.cause for f in group(results)[0]] == ["tls-inspection", "tls-inspection"]


def test_a_blocked_port_is_one_finding_and_its_skipped_checks_belong_to_it():
    results = [R("tcp-connect", f"n{i}:7422", "fail", "tcp-timeout") for i in range(4)]
    results += [R("nats-info", f"n{i}:7422", "skip", "prerequisite-failed",
                  f"not run: tcp-connect n{i}:7422: tcp-timeout") for i in range(4)]
    results += [R("tcp-connect", "api.example.com:443", "fail", "tcp-refused")]
    found, of = group(results)
    assert [(f.cause, f.ports) for f in found] == [("port-blocked", (7422,)), ("port-blocked", (443,))]
    assert "7422 is dropped" in found[0].title and "4 destinations" in found[0].title
    assert of["nats-info:n2:7422"] == found[0].id and of["tcp-connect:api.example.com:443"] == found[1].id


def test_a_poor_link_explains_the_timeouts_instead_of_a_firewall():
    link = R("link-quality", "203.0.113.1", "warn", "poor-link", "12 of 20 lost (40%), RTT median 310 ms",
             "The link loses packets: check the cable and the switch port.", kind="link", loss_pct=40.0)
    results = [link, R("tcp-connect", "a.example.com:443", "fail", "tcp-timeout", remediation="Open 443."),
               R("dns-resolve", "b.example.com", "fail", "dns-timeout"),
               R("tls-verify", "d.example.com:443", "fail", "path-mtu-blackhole"),
               R("tcp-connect", "c.example.com:443", "fail", "tcp-refused")]
    found, of = group(results)
    assert [f.cause for f in found] == ["poor-link", "port-blocked"]  # a REJECT is not the link's doing
    assert "40%" in found[0].title and "3 timeouts" in found[0].title
    assert found[0].remediation.startswith("The link loses packets")
    assert of["tcp-connect:a.example.com:443"] == of["dns-resolve:b.example.com"] == found[0].id


def test_a_captive_portal_is_one_finding_over_every_foreign_certificate():
    results = [R("tls-verify", f"{h}:443", "fail", "tls-wrong-server", fingerprint="AA:BB", names=("portal.example",),
                 issuer="portal.example") for h in HOSTS[:5]]
    results.append(R("openvpn-handshake", "h0.example.com:443", "fail", "openvpn-reset", kind="openvpn"))
    results.append(R("captive-portal", "guest network login", "fail", "captive-portal",
                     "plain HTTP is redirected to http://203.0.113.77/login", "Register the box on the portal.",
                     kind="https", redirect="http://203.0.113.77/login"))
    found, _ = group(results)
    assert len(found) == 1 and found[0].cause == "captive-portal" and len(found[0].checks) == 7
    assert "203.0.113.77/login" in found[0].title and "5 hosts" in found[0].title


def test_one_foreign_server_for_many_names_without_a_portal_is_one_finding():
    results = [R("tls-verify", f"{h}:443", "fail", "tls-wrong-server", fingerprint="CC:DD", names=("block.example",),
                 issuer="Filter CA") for h in HOSTS[:3]]
    results.append(R("tls-verify", "z.example.com:443", "fail", "tls-wrong-server", fingerprint="EE:FF",
                     names=("other.example",), issuer="X"))
    found, _ = group(results)
    assert [f.cause for f in found] == ["wrong-server", "tls-wrong-server"]
    assert "block.example" in found[0].title and "3 names" in found[0].title


def test_proxy_refusals_say_which_connect_ports_to_allow():
    results = [R("tcp-connect", f"n{i}:7422", "fail", "proxy-denied") for i in range(3)]
    results.append(R("tcp-connect", "x.example.com:5684", "fail", "proxy-denied"))
    found, _ = group(results)
    assert len(found) == 1 and found[0].cause == "proxy" and found[0].ports == (5684, 7422)
    assert "allow CONNECT from this box to ports 5684, 7422" in found[0].remediation


def test_the_internet_answering_ping_is_said_beside_a_specific_block():
    results = [R("https-ping", "https://cloudlink.example.com/ping", "fail", "tls-reset"),
               R("icmp-reference", "8.8.8.8", "pass", "ok", "8.8.8.8 answers ping in 12 ms: the internet is "
                                                          "reachable", kind="icmp")]
    found, _ = group(results)
    assert len(found) == 1 and "8.8.8.8 answers ping, so the internet is reachable" in found[0].title
    assert host_port(results[0]) == ("cloudlink.example.com", 443)


def test_machine_targets_and_json_document():
    results = [R("machine-port", "Lathe 3 (198.51.100.21:8193)", "fail", "tcp-timeout", kind="machine"),
               ok("dns-resolver", "203.0.113.53")]
    assert host_port(results[0]) == ("198.51.100.21", 8193)
    doc = document(Report(results, 0.1), box={"hostname": "edge-07"})
    assert [c["finding"] for c in doc["checks"]] == ["F1", None]
    assert doc["findings"][0]["cause"] == "machine-unreachable" and doc["box"] == {"hostname": "edge-07"}
    assert set(doc["findings"][0]) == {"id", "cause", "status", "title", "hosts", "ports", "checks", "remediation",
                                       "evidence"}


def test_healthy_run_has_no_findings():
    assert group([ok("dns-resolver", "203.0.113.53"), ok("tcp-connect", "a:443")]) == ([], {})


def test_the_appliance_that_re_signs_a_host_also_owns_its_broken_tunnel():
    results = [R("tls-verify", "cloudlink.example.com:443", "fail", "tls-intercepted",
                 issuer="DPI", issuer_dn="CN=DPI"),
               R("openvpn-handshake", "cloudlink.example.com:443", "fail", "openvpn-not-openvpn", kind="openvpn"),
               R("openvpn-handshake", "other.example.com:443", "fail", "openvpn-reset", kind="openvpn")]
    found, of = group(results)
    assert [f.cause for f in found] == ["tls-inspection", "vpn-blocking"]
    assert of["openvpn-handshake:cloudlink.example.com:443"] == found[0].id


def test_dns_resolver_problems_are_named_by_resolver_and_facts_give_the_destination():
    results = [R("dns-resolve", "a.example.com", "fail", "dns-truncated-tcp-blocked", resolver="203.0.113.53",
                 host="a.example.com"),
               R("dns-ttl", "b.example.com", "warn", "dns-ttl-extended", resolver="203.0.113.53", host="b.example.com"),
               R("dtls-issuer", "c.example.com:5684", "fail", "dtls-timeout", kind="coap", host="c.example.com",
                 port=5684)]
    found, _ = group(results)
    titles = [f.title for f in found]
    assert any(t.startswith("TCP port 53 to the resolver 203.0.113.53 is blocked") for t in titles)
    assert any(t.startswith("Outbound UDP port 5684 is dropped") for t in titles)
    assert any("keeps records longer than their TTL" in t for t in titles)

"""What the plant's IT team receives: the Markdown report of a run and the firewall request."""

from __future__ import annotations

import csv
import io
import re
import subprocess
import sys
from pathlib import Path

from installer.planning import plan as planmod
from installer.vendors import firewall
from installer.vendors.profiles import load_catalog
from tests.lab.fixtures import healthy_lab, lab  # noqa: F401
from tests.vendor_docs import seed_text

REPO = Path(__file__).resolve().parent.parent


def cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "installer", *args], capture_output=True, text=True, cwd=cwd)


def test_markdown_report_tells_it_what_to_change_without_secrets(healthy_lab, tmp_path):
    healthy_lab.intercept_tls()
    plan = healthy_lab.write_plan(tmp_path / "plan.yaml", proxy=healthy_lab.proxy_settings(), hostname="edge-07")
    report = tmp_path / "report.md"
    proc = healthy_lab.edge([sys.executable, "-m", "installer", "check", "--plan", str(plan), "--report",
                             str(report)], timeout=60, env={"PYTHONPATH": str(REPO)})
    assert proc.returncode == 2, proc.stderr
    text = report.read_text()
    assert text.startswith("# Network check for edge box edge-07")
    assert "Some checks FAILED" in text and "## Findings: 1 cause" in text
    # Which box: its uplink's address and MAC, the version and the date, for IT to find it.
    assert "- Uplink: enp2s0, address 203.0.113.2/24, MAC " in text and "- edge-installer 0.1.0, 20" in text
    # One DPI appliance is one finding naming every host it re-signs, not one paragraph per host.
    finding = next(ln for ln in text.splitlines() if ln.startswith("### F1. FAIL: A TLS-inspecting appliance"))
    assert healthy_lab.dpi_ca_name in finding and "api.machinemetrics.com:443" in finding
    assert text.count("**What to change:**") == 1 and "| F1 |" in text
    assert "000_" not in text and ".txt" not in text
    assert "tested through the proxy" in text
    assert healthy_lab.proxy_password not in text and healthy_lab.proxy_password not in proc.stdout
    assert all(ord(ch) < 128 for ch in text)
    # The terminal shows each result as it arrives, then the actions.
    assert re.search(r"^\[FAIL\] tls-verify ", proc.stdout, re.M) and "What must change (1 cause):" in proc.stdout
    assert re.search(r"^ F1\. \[FAIL\] A TLS-inspecting appliance", proc.stdout, re.M)


def _isolated_request_rows() -> list[dict[str, str]]:
    r = cli("firewall-request", "--plan", str(REPO / "examples/isolated.yaml"), "--format", "csv")
    assert r.returncode == 0, r.stderr
    return list(csv.DictReader(io.StringIO(r.stdout)))


def test_firewall_request_lists_every_domain_of_the_vendor_document():
    seed = seed_text("000")  # compared with the vendor document itself: skips loudly without it
    rules = {(row["destination"], row["port"], row["protocol"]) for row in _isolated_request_rows()}
    domains = re.findall(r"^([a-z0-9*][a-z0-9.*-]+\.(?:com|org))\s*\|", seed, re.M)
    standard = {d for d in domains if d in seed.split("Required Domains (GovCloud)")[0]}
    assert len(standard) == 11, standard
    for domain in standard:
        assert (domain, "443", "tcp") in rules, domain


def test_firewall_request_lists_every_profile_rule():
    plan = planmod.load(REPO / "examples/isolated.yaml")
    rows = _isolated_request_rows()
    assert list(rows[0]) == list(firewall.COLUMNS)
    rules = {(row["destination"], row["port"], row["protocol"]) for row in rows}
    # Every host of the profile, on its port (the vendor document's list: the test above).
    named = [e for e in load_catalog().profiles["machinemetrics"].endpoints if e.host]
    assert len({e.host for e in named}) == 11
    for e in named:
        assert (e.host, str(e.port), e.protocol) in rules, e.host
    for ip in ("54.218.103.126", "52.24.16.63", "52.34.161.223", "35.155.82.103"):
        assert (ip, "7422", "tcp") in rules
    assert ("8.8.8.8", "53", "udp") in rules and ("8.8.4.4", "53", "udp") in rules
    assert ("0.pool.ntp.org", "123", "udp") in rules
    for m in plan.machines:
        port = str(load_catalog().controllers[m.controller].port)
        assert (m.address, port, "tcp") in rules
    # Sources by the vendor document's title and section, never a file name.
    assert all(row["source"].startswith(("MachineMetrics, Network Requirements: \"", "plan")) for row in rows)
    assert not any(".txt" in row["source"] for row in rows)


def test_firewall_request_markdown_and_govcloud_static_ips(tmp_path):
    plan = tmp_path / "gov.yaml"
    plan.write_text((REPO / "examples/isolated.yaml").read_text().replace("[machinemetrics]",
                                                                          "[machinemetrics-govcloud]"))
    r = cli("firewall-request", "--plan", str(plan), "--format", "md")
    assert r.returncode == 0, r.stderr
    assert "| destination | IPs | port |" in r.stdout
    line = next(ln for ln in r.stdout.splitlines() if ln.startswith("| api.machinemetrics-us-gov.com |"))
    assert "18.252.129.108" in line and "182.30.131.220" in line
    assert "outbound" in r.stdout and "inbound" in r.stdout  # "nothing needs to be allowed inbound"


def test_firewall_request_resolve_in_the_lab(healthy_lab, tmp_path):
    plan = healthy_lab.write_plan(tmp_path / "plan.yaml")
    proc = healthy_lab.edge([sys.executable, "-m", "installer", "firewall-request", "--plan", str(plan),
                             "--format", "csv", "--resolve"], timeout=60, env={"PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    rows = {r["destination"]: r for r in csv.DictReader(io.StringIO(proc.stdout))}
    assert rows["api.machinemetrics.com"]["ips"] == "203.0.113.10"
    assert rows["api.machinemetrics.com"]["from"] == "the edge box"


def test_firewall_request_marks_names_that_do_not_resolve_and_knows_the_proxy(healthy_lab, tmp_path):
    healthy_lab.dns_nxdomain("notify.bugsnag.com")
    plan = healthy_lab.write_plan(tmp_path / "plan.yaml", proxy=healthy_lab.proxy_settings(), hostname="edge-07")
    proc = healthy_lab.edge([sys.executable, "-m", "installer", "firewall-request", "--plan", str(plan),
                             "--format", "md", "--resolve"], timeout=60, env={"PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    row = next(ln for ln in text.splitlines() if ln.startswith("| notify.bugsnag.com |"))
    assert "NOT RESOLVED (dns-nxdomain)" in row and "| the proxy 203.0.113.30 |" in row
    assert "203.0.113.10" in next(ln for ln in text.splitlines() if ln.startswith("| api.machinemetrics.com |"))
    # The proxy must allow CONNECT to the cloud's ports (443 and NATS 7422), and IT is told so.
    assert "The proxy must allow CONNECT to ports 443, 7422" in text
    assert "- Uplink: enp2s0, address 203.0.113.2/24, MAC " in text
    # DNS and NTP still leave from the box itself.
    assert "| the edge box |" in next(ln for ln in text.splitlines() if ln.startswith("| 203.0.113.53 |"))
    assert healthy_lab.proxy_password not in text


def test_firewall_request_bad_plan_is_one_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("version: 1\ntopology: isolated\n")
    r = cli("firewall-request", "--plan", str(bad))
    assert r.returncode == 2 and "Traceback" not in r.stderr and "machine_network" in r.stderr

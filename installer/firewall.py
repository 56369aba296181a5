"""The firewall request: every rule the plant's IT team must allow, for every selected profile.

One row per (destination, port, protocol): the destination's stated IPs (from the seed) or,
when asked, the addresses it resolves to now, the direction, the purpose and the seed the
rule comes from. General rules (DNS, NTP) name the plan's own servers. All of it is egress:
seed 000 "All communication is edge-initiated outbound. There are no inbound firewall
requirements."
"""

from __future__ import annotations

import csv
import dataclasses
import io
from dataclasses import dataclass
from typing import Mapping

from installer.fields import is_ip
from installer.plan import GOOGLE_DNS, POOL_NTP, Plan
from installer.profiles import Catalog

COLUMNS = ("destination", "ips", "port", "protocol", "direction", "purpose", "profile", "seed")


@dataclass(frozen=True)
class Rule:
    """One line of the request."""

    destination: str
    ips: tuple[str, ...]
    port: int
    protocol: str
    direction: str
    purpose: str
    profile: str
    seed: str


def rules(plan: Plan, catalog: Catalog, resolved: Mapping[str, tuple[str, ...]] | None = None) -> list[Rule]:
    """Every rule the plan's profiles need, de-duplicated, plus the machine-network ports."""
    resolved = resolved or {}
    out: list[Rule] = []
    seen: set[tuple[str, int, str]] = set()

    def add(rule: Rule) -> None:
        if not rule.ips and is_ip(rule.destination):
            rule = Rule(rule.destination, (rule.destination,), *dataclasses.astuple(rule)[2:])
        key = (rule.destination, rule.port, rule.protocol)
        if key not in seen:
            seen.add(key)
            out.append(rule)

    dns_servers = tuple(plan.dns.servers) if plan.dns.mode == "custom" else (
        GOOGLE_DNS if plan.dns.mode == "google" else ())
    ntp_servers = tuple(plan.ntp.servers) if plan.ntp.mode == "custom" else (
        POOL_NTP if plan.ntp.mode == "pool" else ())
    egress = "outbound from the edge box"
    if plan.proxy is not None and plan.proxy.url:
        from urllib.parse import urlsplit

        parts = urlsplit(plan.proxy.url)
        add(Rule(parts.hostname or "", (), parts.port or 0, "tcp", egress, "the plant's HTTP/HTTPS proxy; "
                 "the cloud rules below then apply to the proxy's outbound side", "plan", "plan: proxy.url"))
    for pid in plan.profiles:
        profile = catalog.profiles[pid]
        params = plan.profile_params.get(pid, {})
        for ep in profile.endpoints:
            host = ep.target(params)
            if host is None and not ep.addresses:
                if ep.service == "dns":
                    for server in dns_servers or ("the resolvers DHCP hands out",):
                        add(Rule(server, (), ep.port, ep.protocol, egress, ep.purpose, pid, ep.seed))
                    continue
                if ep.service == "ntp":
                    names = ntp_servers or ("the time servers DHCP hands out",)
                    for server in names:
                        add(Rule(server, (), ep.port, ep.protocol, egress, ep.purpose, pid, ep.seed))
                    continue
                add(Rule("any", (), ep.port, ep.protocol, egress, ep.purpose, pid, ep.seed))
                continue
            destination = host or ep.addresses[0]
            ips = tuple(ep.addresses) or resolved.get(destination, ())
            add(Rule(destination, ips, ep.port, ep.protocol, egress, ep.purpose, pid, ep.seed))
    for m in plan.machines:
        controller = catalog.controllers.get(m.controller or "")
        if controller is None or not m.address:
            continue
        add(Rule(m.address, (m.address,), controller.port, controller.protocol,
                 "edge box to machine (machine network)", f"{controller.label}: {m.name}", "machines",
                 controller.seed))
    return out



def to_csv(rows: list[Rule]) -> str:
    """The request as CSV with a header line (IPs separated by spaces)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow([r.destination, " ".join(r.ips), r.port, r.protocol, r.direction, r.purpose, r.profile, r.seed])
    return buf.getvalue()


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(rows: list[Rule], plan: Plan) -> str:
    """The request as a Markdown document an IT team can act on."""
    lines = [
        f"# Firewall request for edge box {plan.hostname or '(unnamed)'}",
        "",
        "All connections are started by the edge box; nothing needs to be allowed inbound "
        "(seed 000: \"All communication is edge-initiated outbound\"). Allow these on every firewall "
        "between the box and the internet, the OT/plant-floor firewall and the corporate one alike "
        "(seed 000, CloudLink: \"Both must allow the required domains\"). Exempt them from TLS/deep "
        "packet inspection and VPN-blocking rules (seed 000, Deep Packet Inspection; seed 002, "
        "Intrusive firewalls).",
        "",
        "| destination | IPs | port | protocol | direction | purpose | profile | source |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ips = ", ".join(r.ips) if r.ips else "by name (FQDN rule)"
        lines.append(f"| {_cell(r.destination)} | {_cell(ips)} | {r.port} | {r.protocol} | {_cell(r.direction)} | "
                     f"{_cell(r.purpose)} | {r.profile} | {_cell(r.seed)} |")
    lines += ["", "Where a rule is by name, the addresses behind it can change (seed 002: do not cache DNS "
                  "records longer than their TTL); allow the name, not a snapshot of its addresses."]
    return "\n".join(lines) + "\n"

"""The firewall request: every rule the plant's IT team must allow, for every selected profile.

One row per (destination, port, protocol): the destination's stated IPs (from the seed) or,
when asked, the addresses it resolves to now, the direction, the purpose and the seed the
rule comes from (by the vendor document's title). General rules (DNS, NTP) name the plan's own
servers. All of it is egress: seed 000 "All communication is edge-initiated outbound. There are
no inbound firewall requirements." With a proxy in the plan, the cloud connections leave from the
proxy (the box only reaches the proxy, which must allow CONNECT to their ports); the hosts the
plan exempts (no_proxy), DNS and NTP leave from the box itself.
"""

from __future__ import annotations

import csv
import dataclasses
import io
from collections.abc import Mapping
from dataclasses import dataclass

from installer.box.identity import Identity
from installer.planning.fields import is_ip
from installer.planning.plan import GOOGLE_DNS, POOL_NTP, Plan
from installer.vendors.profiles import Catalog
from installer.vendors.sources import TITLES, cite

TITLE_000 = TITLES["000"]

COLUMNS = ("destination", "ips", "port", "protocol", "direction", "from", "purpose", "profile", "source")
BOX = "the edge box"


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
    source: str = BOX  # where the connection leaves from: the box, or the plan's proxy
    unresolved: str | None = None  # --resolve: why the name gave no address

    @property
    def via_proxy(self) -> bool:
        """True when the proxy opens this connection (CONNECT) for the box."""
        return self.source != BOX


def rules(plan: Plan, catalog: Catalog, resolved: Mapping[str, tuple[str, ...] | str] | None = None) -> list[Rule]:
    """Every rule the plan's profiles need, de-duplicated, plus the machine-network ports.

    `resolved` (from --resolve) maps a name to its addresses now, or to the reason it did not
    resolve (a diagnosis such as dns-nxdomain), which the request then shows."""
    from installer.checks.net import bypasses_proxy

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
    egress = "outbound"
    proxy_source = BOX
    if plan.proxy is not None and plan.proxy.url:
        from urllib.parse import urlsplit

        parts = urlsplit(plan.proxy.url)
        proxy_source = f"the proxy {parts.hostname}"
        add(Rule(parts.hostname or "", (), parts.port or 0, "tcp", egress, "the plant's HTTP/HTTPS proxy; "
                 "the cloud rules marked 'from the proxy' apply to the proxy's outbound side", "plan",
                 "plan: proxy.url"))
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
            found = resolved.get(destination, ())
            ips = tuple(ep.addresses) or (found if isinstance(found, tuple) else ())
            source = BOX
            if ep.protocol == "tcp" and proxy_source != BOX and not bypasses_proxy(plan, destination):
                source = proxy_source
            add(Rule(destination, ips, ep.port, ep.protocol, egress, ep.purpose, pid, ep.seed, source,
                     found if isinstance(found, str) else None))
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
        writer.writerow([r.destination, _ips(r, " "), r.port, r.protocol, r.direction, r.source, r.purpose,
                         r.profile, cite(r.seed)])
    return buf.getvalue()


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _ips(rule: Rule, sep: str) -> str:
    if rule.ips:
        return sep.join(rule.ips)
    if rule.unresolved:
        return f"NOT RESOLVED ({rule.unresolved})"
    return ""


def proxy_ports(rows: list[Rule]) -> list[int]:
    """The ports the proxy must allow CONNECT to, for the rules that go through it."""
    return sorted({r.port for r in rows if r.via_proxy})


def to_markdown(rows: list[Rule], plan: Plan, box: Identity | None = None) -> str:
    """The request as a Markdown document an IT team can act on."""
    box_lines = [f"- {line}" for line in box.lines()] + [""] if box is not None else []
    lines = [
        f"# Firewall request for edge box {plan.hostname or (box.hostname if box else '(unnamed)')}",
        "",
        *box_lines,
        "All connections are started by the edge box; nothing needs to be allowed inbound "
        f"({TITLE_000}: \"All communication is edge-initiated outbound\"). Allow these on every firewall "
        "between the box and the internet, the OT/plant-floor firewall and the corporate one alike "
        f"({TITLE_000}, \"CloudLink Blocked\": \"Both must allow the required domains\"). Exempt them from "
        f"TLS/deep packet inspection and VPN-blocking rules ({TITLE_000}, \"Deep Packet Inspection\"; "
        f"{TITLES['002']}, \"Intrusive firewalls\").",
    ]
    ports = proxy_ports(rows)
    if ports:
        proxy = next(r for r in rows if r.profile == "plan" and r.seed == "plan: proxy.url")
        lines += ["", f"The box reaches the cloud through the proxy {proxy.destination} port {proxy.port}: only "
                      "that connection leaves the box itself (with DNS, NTP and the hosts exempted by no_proxy). "
                      f"The proxy must allow CONNECT to port{'s' if len(ports) > 1 else ''} "
                      f"{', '.join(map(str, ports))}, and the rules marked 'from the proxy' must be allowed "
                      "from the proxy's own address. Many proxies allow CONNECT to port 443 only."]
    lines += [
        "",
        "| destination | IPs | port | protocol | direction | from | purpose | profile | source |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        ips = _ips(r, ", ") or "by name (FQDN rule)"
        lines.append(f"| {_cell(r.destination)} | {_cell(ips)} | {r.port} | {r.protocol} | {_cell(r.direction)} | "
                     f"{_cell(r.source)} | {_cell(r.purpose)} | {r.profile} | {_cell(cite(r.seed))} |")
    if any(r.unresolved for r in rows):
        lines += ["", "Names marked NOT RESOLVED gave no address from the plan's resolvers when this request "
                      "was made: the DNS problem must be fixed as well (see the check report)."]
    lines += ["", f"Where a rule is by name, the addresses behind it can change ({TITLES['002']}: do not cache "
                  "DNS records longer than their TTL); allow the name, not a snapshot of its addresses."]
    return "\n".join(lines) + "\n"

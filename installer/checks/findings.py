"""One finding per cause: the checks' results grouped by what is wrong in the plant's network.

A plant's IT team reads a report as a list of causes, not of hosts: one TLS-inspecting
appliance is one finding that names the nine hosts it re-signs, one blocked port is one
finding that names every host behind it, one poor link explains every timeout it caused
instead of each being blamed on a firewall rule. `group` turns a run's results into such
findings, worst first; every problem result belongs to exactly one finding, and a check that
was skipped because of a problem belongs to that problem's finding.

The grouping reads only the results (diagnosis, target, and the facts the checks put there:
issuer, fingerprint, resolver, figures), so it applies to a report however it was produced.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from installer.checks.base import Result
from installer.checks.runner import Report

# Diagnoses that mean "no answer in time": on a poor link they are the link's doing, not a
# firewall's, until the link is fixed and they remain.
TIMEOUTS = frozenset({"tcp-timeout", "tls-timeout", "dns-timeout", "ntp-timeout", "http-no-response",
                      "http-timeout", "nats-not-nats", "openvpn-silent", "dtls-timeout", "deadline",
                      "proxy-timeout"})
# A server other than the vendor's answered: a captive portal, a block page, a DNS filter.
_FOREIGN_CERT = frozenset({"tls-wrong-server", "tls-untrusted", "tls-hostname-mismatch",
                           "tls-handshake-failed", "http-status"})
_CUT = frozenset({"tls-reset", "http-no-response"})
_PORT_BLOCKED = frozenset({"tcp-refused", "tcp-timeout", "tcp-unreachable", "dtls-timeout", "dtls-unreachable"})
_PROXY = frozenset({"proxy-denied", "proxy-auth-required", "proxy-unreachable", "proxy-timeout"})
# Results about the whole path rather than one destination (the portal probe, the link).
_NO_DEST = frozenset({"captive-portal", "link-quality", "nat-detect", "icmp-reference"})
# The WiFi uplink's signal (installer.checks.wifi): a weak one is what makes a wireless link poor.
_WIFI_SIGNAL = frozenset({"wifi-signal-weak", "wifi-signal-poor"})
_RANK = {"fail": 0, "warn": 1, "skip": 2, "pass": 3}
# Diagnoses of the ARP probes and their causes: one finding per held address, per absent
# gateway; every absent machine in one; every probe that could not go out in one.
_NEIGHBOURS = {"address-conflict": "address-conflict", "gateway-absent": "gateway-absent",
               "machine-absent": "machine-absent", "address-unchecked": "neighbours-unchecked",
               "gateway-unchecked": "neighbours-unchecked"}
_HOST_PORT = re.compile(r"^(?:https?://)?\[?([^\]/:\s]+)\]?(?::(\d+))?")
_MACHINE = re.compile(r"\(([\d.]+):(\d+)\)$|//([\d.]+):(\d+)/")


@dataclass(frozen=True)
class Finding:
    """One cause: what it is, every check it explains, and the one thing to do about it."""

    id: str                  # F1, F2, ... in report order
    cause: str               # a stable code: port-blocked, tls-inspection, poor-link, ...
    status: str              # the worst status among its checks
    title: str               # the cause in one line, naming what it touches
    hosts: tuple[str, ...]   # the destinations it covers (host or host:port)
    ports: tuple[int, ...]
    checks: tuple[str, ...]  # the keys of the checks it explains
    remediation: str
    evidence: tuple[str, ...] = field(default=())  # a few lines of what was seen

    def to_json(self) -> dict[str, Any]:
        """A finding in `check --json`'s `findings` list."""
        return {"id": self.id, "cause": self.cause, "status": self.status, "title": self.title,
                "hosts": list(self.hosts), "ports": list(self.ports), "checks": list(self.checks),
                "remediation": self.remediation, "evidence": list(self.evidence)}


def host_port(result: Result) -> tuple[str, int | None]:
    """The destination a result is about: (host or address or interface, port or None)."""
    host, port = _fact(result, "host"), _fact(result, "port")
    if isinstance(host, str) and host and (port is None or isinstance(port, int)):
        return host, port
    m = _MACHINE.search(result.target)
    if m:
        addr, port = (m.group(1), m.group(2)) if m.group(1) else (m.group(3), m.group(4))
        return addr, int(port)
    m = _HOST_PORT.match(result.target)
    if not m:
        return result.target, None
    port = int(m.group(2)) if m.group(2) else (443 if result.target.startswith("https://") else None)
    return m.group(1), port


def _fact(result: Result, key: str, default: Any = None) -> Any:
    # facts are what the checks parsed from the network: any JSON-like value
    value = result.facts.get(key, default) if result.facts else default
    return value if value is not None else default


@dataclass
class _World:
    """What the whole run says, that changes how one result is read."""

    poor_link: Result | None
    portal: Result | None
    shared_certs: set[str]      # fingerprints a foreign server showed for two or more names
    reference: Result | None    # icmp-reference: the internet answers ping while hosts fail
    inspected: dict[str, str]   # host -> the inspecting appliance's group key (tls-intercepted)


def _world(results: Sequence[Result]) -> _World:
    poor = next((r for r in results if r.diagnosis == "poor-link" and r.status in ("fail", "warn")), None)
    portal = next((r for r in results if r.diagnosis == "captive-portal" and r.status in ("fail", "warn")), None)
    seen: dict[str, set[str]] = {}
    for r in results:
        fp = _fact(r, "fingerprint")
        if fp and r.diagnosis in _FOREIGN_CERT:
            seen.setdefault(fp, set()).add(host_port(r)[0])
    shared = {fp for fp, hosts in seen.items() if len(hosts) >= 2}
    reference = next((r for r in results if r.id == "icmp-reference" and r.status == "pass"), None)
    inspected = {host_port(r)[0]: _appliance(r) for r in results if r.diagnosis == "tls-intercepted"}
    return _World(poor, portal, shared, reference, inspected)


def _appliance(r: Result) -> str:
    return str(_fact(r, "issuer_dn", "") or _fact(r, "issuer", "") or "?")


def classify(result: Result, world: _World) -> tuple[str, str]:
    """(cause, group key) of one problem result."""
    d = result.diagnosis
    host, port = host_port(result)
    if d in _NEIGHBOURS:  # ARP probes (installer.checks.neighbours): on the wire, not a firewall's
        return _NEIGHBOURS[d], host if d in ("address-conflict", "gateway-absent") else d
    if result.kind == "machine" and d == "machine-port-filtered":
        return "machine-unreachable", f"{d}:{port}"
    # A stalled handshake that a second try completed is a path-MTU black hole on a sound
    # link, and luck on a lossy one.
    silent = d in TIMEOUTS or d == "path-mtu-blackhole" or _fact(result, "session") == "silent"
    if d in _WIFI_SIGNAL:  # with a poor link, the signal is its cause: one finding
        return ("poor-link", "poor-link") if world.poor_link is not None else ("wifi-signal", "wifi-signal")
    if d == "wifi-not-associated":  # the same cause as the uplink's missing carrier
        return "link", f"link-down:{host}"
    if d == "poor-link" or (world.poor_link is not None and silent):
        return "poor-link", "poor-link"
    if d == "captive-portal" or (world.portal is not None and (d in _FOREIGN_CERT or d in _CUT
                                                               or d.startswith("openvpn-"))):
        return "captive-portal", "captive-portal"
    fp = _fact(result, "fingerprint")
    if fp and fp in world.shared_certs and d in _FOREIGN_CERT:
        return "wrong-server", fp
    if d in ("dns-sinkhole", "dns-filtered"):
        return "dns-filter", str(_fact(result, "resolver", ""))
    if d == "tls-intercepted":
        return "tls-inspection", _appliance(result)
    if (d.startswith("openvpn-") or d in _CUT or d == "tls-handshake-failed") and host in world.inspected:
        # The appliance that re-signs this host's TLS also breaks its tunnel: one cause.
        return "tls-inspection", world.inspected[host]
    if d == "path-mtu-blackhole":
        return "path-mtu", "path-mtu"
    if d.startswith("openvpn-"):
        return "vpn-blocking", d
    if d in _CUT:
        return "tls-cut", "cut"
    if d == "tls-timeout":
        return "sni-filter", str(port)
    if d in _PROXY:
        return "proxy", d
    if d in _PORT_BLOCKED:
        if result.kind == "machine":
            return "machine-unreachable", f"{d}:{port}"
        return "port-blocked", f"{d}:{port}"
    if d == "dns-truncated-tcp-blocked":
        return "dns-tcp-blocked", str(_fact(result, "resolver", ""))
    if d == "dns-ttl-extended":
        return "dns-ttl", str(_fact(result, "resolver", ""))
    if d.startswith("dns-"):
        if result.id == "dns-resolver":
            return "resolver", d
        return "dns-names", d
    if d == "clock-skew" or d.startswith("ntp-") or d == "tls-expired":
        return "time", "time" if d in ("clock-skew", "tls-expired") else d
    if result.kind == "link":
        return "link", f"{d}:{host}"
    return d, f"{result.id}:{d}"


def group(results: Iterable[Result]) -> tuple[list[Finding], dict[str, str]]:
    """The findings of a run, worst first, and each check key's finding id (problems and the
    checks they caused to be skipped; passing checks have none)."""
    results = list(results)
    world = _world(results)
    groups: OrderedDict[tuple[str, str], list[Result]] = OrderedDict()
    for r in results:
        if r.status in ("fail", "warn"):
            groups.setdefault(classify(r, world), []).append(r)
    findings = [_finding(cause, members, world) for (cause, _), members in groups.items()]
    findings.sort(key=lambda f: (_RANK[f.status], _ORDER.get(f.cause, 50)))
    numbered = []
    of: dict[str, str] = {}
    for n, f in enumerate(findings, 1):
        f = Finding(f"F{n}", f.cause, f.status, f.title, f.hosts, f.ports, f.checks, f.remediation, f.evidence)
        numbered.append(f)
        for key in f.checks:
            of[key] = f.id
    # A skipped check belongs to the finding that names its root cause's destination.
    for r in results:
        if r.status == "skip" and r.key not in of:
            cause_target = r.evidence.removeprefix("not run: ")
            for f in numbered:
                if any(cause_target.startswith(f"{k.split(':', 1)[0]} {k.split(':', 1)[1]}:") for k in f.checks):
                    of[r.key] = f.id
                    break
    return numbered, of


# The order causes are listed in, among findings of the same status: the ones that explain
# others first (a poor link, a portal), then the path, then names, then ports.
_ORDER = {"link": 0, "poor-link": 1, "captive-portal": 2, "path-mtu": 3, "proxy": 4, "resolver": 5,
          "dns-filter": 6, "dns-tcp-blocked": 6, "wrong-server": 7, "tls-inspection": 8, "vpn-blocking": 9,
          "tls-cut": 10, "sni-filter": 11, "nats-session-cut": 11, "port-blocked": 12, "dns-names": 13, "time": 14,
          "behind-nat": 20, "dns-ttl": 21, "address-conflict": 0, "gateway-absent": 1, "machine-absent": 12,
          "neighbours-unchecked": 15}
_ORDER["wifi-signal"] = 0  # a weak signal explains the link's other troubles


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _list(items: Sequence[str], limit: int = 3) -> str:
    shown = list(items[:limit])
    more = len(items) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more > 0 else "")


def _general(text: str, hosts: Iterable[str]) -> str:
    """A member's remediation without the sentences that name its own host (the finding's
    title and lead name every host once)."""
    names = [h for h in hosts if h]
    sentences = re.split(r"(?<=[.!?])\s+", text.strip())
    return " ".join(s for s in sentences if not any(n in s for n in names)).strip()


def _finding(cause: str, members: list[Result], world: _World) -> Finding:
    status = min((r.status for r in members), key=lambda s: _RANK[s])
    dests = list(OrderedDict.fromkeys(_dest(r) for r in members if r.id not in _NO_DEST))
    hosts = list(OrderedDict.fromkeys(host_port(r)[0] for r in members if r.id not in _NO_DEST))
    ports = sorted({p for r in members if r.id not in _NO_DEST for p in [host_port(r)[1]] if p is not None})
    first = members[0]
    n = len(dests)
    lead = ""
    if cause == "poor-link":
        link = world.poor_link
        title = "A poor link"
        if link is not None and _fact(link, "loss_pct") is not None:
            title += (f": {_fact(link, 'loss_pct'):g}% of {_fact(link, 'sent', '?')} probes lost, round trip "
                      f"median {_fact(link, 'rtt_median_ms', '?')} ms, max {_fact(link, 'rtt_max_ms', '?')} ms")
        elif link is not None:
            title += f": {link.evidence}"
        wifi = next((r for r in members if r.diagnosis in _WIFI_SIGNAL), None)
        if wifi is not None:
            title += (f"; the WiFi signal of {wifi.target} is {wifi.diagnosis.rsplit('-', 1)[1]} "
                      f"({_fact(wifi, 'signal_dbm', '?')} dBm)")
        others = [r for r in members if r is not link and r is not wifi]
        if others:
            title += f"; {_plural(len(others), 'timeout')} on it ({_list([_dest(r) for r in others], 5)}) are " \
                     "blamed on the link, not on a firewall"
        lead = link.remediation if link is not None and link.remediation else ""
    elif cause == "wifi-signal":
        word = "Poor" if first.diagnosis == "wifi-signal-poor" else "Weak"
        title = f"{word} WiFi signal on the uplink {first.target}: {first.evidence}"
    elif cause == "captive-portal":
        portal = world.portal
        redirect = str(_fact(portal, "redirect", "") or "") if portal is not None else ""
        where = f" (its login page: {redirect[:60]}{'...' if len(redirect) > 60 else ''})" if redirect else ""
        title = (f"A captive portal{where} catches the box's connections to {_plural(len(hosts), 'host')}: "
                 f"{_list(hosts)}")
        lead = portal.remediation if portal is not None and portal.remediation else (
            "The plant's network sends the box to a login page (a captive portal). A box cannot log in "
            "through a web page: ask IT to register the box (its MAC address) on that network, or to "
            "exempt it from the portal.")
    elif cause == "wrong-server":
        names = _fact(first, "names") or ()
        issuer = _fact(first, "issuer", "?")
        title = (f"One foreign server answers for {_plural(len(hosts), 'name')} ({_list(hosts)}): its "
                 f"certificate is for {_list(list(names), 3) or 'another name'}, issued by \"{issuer}\"")
        lead = ("These names lead to a server that is not the vendor's: a DNS filter's block page, a captive "
                "portal or a wrong DNS record. Ask IT which device answers at that address and to let the box "
                f"reach {_list(hosts)} unchanged.")
    elif cause == "dns-filter":
        resolver = _fact(first, "resolver", "the resolver")
        title = f"The resolver {resolver} filters {_plural(len(hosts), 'vendor name')} ({_list(hosts)})"
    elif cause == "tls-inspection":
        issuer = _fact(first, "issuer", "?")
        title = (f"A TLS-inspecting appliance (issuer \"{issuer}\") re-signs the traffic to "
                 f"{_plural(n, 'destination')}: {_list(dests)}")
        lead = (f"Exempt {_list(dests, 50)} from TLS inspection (DPI) on the appliance whose CA is "
                f"\"{issuer}\".")
    elif cause == "path-mtu":
        title = f"A path-MTU black hole on the way to {_list(dests)}: large packets vanish"
    elif cause == "vpn-blocking":
        title = f"The OpenVPN tunnel to {_list(dests)} is blocked ({first.diagnosis})"
    elif cause == "tls-cut":
        title = f"A firewall cuts the encrypted connections to {_plural(n, 'destination')}: {_list(dests)}"
    elif cause == "sni-filter":
        title = f"The TLS handshake to {_plural(n, 'destination')} is silently dropped: {_list(dests)}"
    elif cause == "proxy":
        words = {"proxy-denied": "refuses to open tunnels (CONNECT) to",
                 "proxy-auth-required": "demands credentials (407) for",
                 "proxy-unreachable": "cannot be reached for", "proxy-timeout": "does not answer for"}
        title = f"The proxy {words.get(first.diagnosis, 'fails')} {_list(dests)}"
        if first.diagnosis == "proxy-denied" and ports:
            lead = (f"Ask IT to allow CONNECT from this box to port{'s' if len(ports) > 1 else ''} "
                    f"{', '.join(map(str, ports))} on the proxy (many proxies allow CONNECT to port 443 only), "
                    f"for {_list(hosts, 50)}; or exempt these in the plan's proxy no_proxy list and open "
                    "them on the firewall instead.")
    elif cause == "port-blocked":
        how = {"tcp-refused": "rejected (a REJECT rule or nothing listening)",
               "tcp-timeout": "dropped (no answer: a DROP rule)",
               "tcp-unreachable": "unroutable (no route)",
               "dtls-timeout": "dropped (no answer: a DROP rule)",
               "dtls-unreachable": "rejected (ICMP port unreachable)"}[first.diagnosis]
        proto = "UDP" if first.diagnosis.startswith("dtls-") else "TCP"
        title = f"Outbound {proto} port {ports[0] if ports else '?'} is {how} for {_plural(n, 'destination')}: " \
                f"{_list(dests)}"
    elif cause == "dns-tcp-blocked":
        title = (f"TCP port 53 to the resolver {_fact(first, 'resolver', '?')} is blocked: large answers "
                 f"({_list(hosts)}) cannot be read")
    elif cause == "dns-ttl":
        title = (f"The resolver {_fact(first, 'resolver', '?')} keeps records longer than their TTL "
                 f"({_list(hosts)})")
    elif first.diagnosis == "nats-session-cut":
        title = f"A firewall cuts the NATS sessions once the client speaks: {_list(dests)}"
    elif first.diagnosis == "nats-not-nats":
        title = f"Something other than a NATS server answers: {_list(dests)}"
    elif first.diagnosis == "tls-pin-mismatch":
        title = f"The pinned certificate does not match: {_list(dests)}"
    elif first.diagnosis in ("behind-nat", "icmp-blocked"):
        title = first.evidence
    elif cause == "address-conflict":
        macs = _fact(first, "macs") or ["?"]
        title = (f"The address {hosts[0] if hosts else '?'} is already held by another device (MAC "
                 f"{', '.join(macs)})")
    elif cause == "gateway-absent":
        title = first.evidence[:1].upper() + first.evidence[1:]
    elif cause == "machine-absent":
        names = list(OrderedDict.fromkeys(r.target.split(" (")[0] for r in members))
        named = ([f"{nm} ({h})" for nm, h in zip(names, hosts, strict=True)] if len(names) == len(hosts)
                 else hosts)
        title = (f"{_plural(len(hosts), 'machine')} absent from the machine network (no ARP answer): "
                 f"{_list(named)}")
    elif cause == "neighbours-unchecked":
        title = (f"{len(members)} address{'es' if len(members) != 1 else ''} could not be checked on the wire: "
                 f"{first.evidence}")
    elif cause == "machine-unreachable" and first.diagnosis in ("machine-port-filtered", "tcp-refused"):
        how = ("filtered (it answers ARP; a firewall drops TCP)" if first.diagnosis == "machine-port-filtered"
               else "closed (TCP reset: nothing listens, or a firewall rejects it)")
        title = (f"{_plural(n, 'machine')} present but port {ports[0] if ports else '?'} {how}: "
                 f"{_list([r.target for r in members])}")
    elif cause == "machine-unreachable":
        title = f"{_plural(n, 'machine')} cannot be reached on port {ports[0] if ports else '?'} " \
                f"({first.diagnosis}): {_list([r.target for r in members])}"
    elif cause == "resolver":
        title = f"{_plural(n, 'resolver')} failing ({first.diagnosis}): {_list(dests)}"
    elif cause == "dns-names":
        title = f"{_plural(n, 'name')} do not resolve ({first.diagnosis}): {_list(dests)}"
    elif cause == "time":
        title = f"Time: {first.diagnosis} ({_list([r.target for r in members])})"
    elif cause == "link":
        title = f"Interface {first.target}: {first.evidence}"
    else:
        title = f"{first.id} {first.diagnosis}: {_list(dests)}"
    if world.reference is not None and cause in ("port-blocked", "tls-cut", "sni-filter", "vpn-blocking",
                                                 "tls-inspection", "path-mtu", "wrong-server"):
        title += (f"; {world.reference.target} answers ping, so the internet is reachable and these "
                  "destinations are blocked specifically")
    general = list(OrderedDict.fromkeys(t for t in (_general(r.remediation, hosts) if lead else r.remediation
                                                    for r in members if r.remediation) if t))
    remediation = " ".join([lead, *general[:3]]).strip()
    evidence = tuple(f"{r.id} {r.target}: {r.evidence}" for r in members[:4])
    if len(members) > 4:
        evidence += (f"... and {len(members) - 4} more checks",)
    return Finding("", cause, status, title, tuple(dests), tuple(ports), tuple(r.key for r in members),
                   remediation, evidence)


def _dest(r: Result) -> str:
    host, port = host_port(r)
    return f"{host}:{port}" if port is not None else host


def document(report: Report, box: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`check --json`'s document: the SPEC's (version, duration, summary, checks), each check
    pointing at its `finding` (None when it has none), the `findings` list, and the `box` the
    run is about when known."""
    findings, of = group(report.results)
    doc = report.to_json()
    for entry, r in zip(doc["checks"], report.results, strict=True):  # one entry per result
        entry["finding"] = of.get(r.key)
    doc["findings"] = [f.to_json() for f in findings]
    if box is not None:
        doc["box"] = dict(box)
    return doc

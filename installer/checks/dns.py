"""DNS checks (dnspython): does each resolver answer, does each profile host resolve, and to what.

NXDOMAIN (the name does not exist there), SERVFAIL (the resolver failed upstream), REFUSED
(it will not answer us), a timeout (port 53 dropped on the way) and an unreachable port
(rejected) are told apart: they are fixed by different people.

Queries are sent as a modern stub resolver sends them: EDNS0 with a 1232-byte payload, the
same query re-sent on the same socket when no answer came within a second (one lost packet
is not a blocked port), and a truncated answer (TC) asked again over TCP 53; a truncated
answer is never judged, because it holds only part of the addresses. What the answer says is
judged too: a vendor name that resolves to 0.0.0.0, loopback or another address no server
can have is a DNS filter's sinkhole; a public vendor name that resolves to a private address
is most likely a filter's block page (or a split-horizon zone). The advice always names the
resolvers the plan really uses, and which of them is the plan's and which the box's own.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

import dns.asyncbackend
import dns.asyncquery
import dns.exception
import dns.flags
import dns.inet
import dns.message
import dns.name
import dns.rcode
import dns.rdatatype
import dns.rrset

from installer.checks.base import NOT_NEEDED, USABLE, Context, Outcome, Result
from installer.planning.plan import GOOGLE_DNS, Plan
from installer.vendors.profiles import Profile

_RCODE_DIAGNOSIS = {dns.rcode.NXDOMAIN: "dns-nxdomain", dns.rcode.SERVFAIL: "dns-servfail",
                    dns.rcode.REFUSED: "dns-refused"}

# The EDNS0 payload systemd-resolved, BIND, Unbound and the DNS Flag Day 2020 use: an answer
# larger than this comes back truncated and the client must ask again over TCP.
EDNS_PAYLOAD = 1232
# A stub resolver re-sends an unanswered query (glibc after `timeout`, default 5 s; Windows
# after 1 s, then 1, 2, 4 s). A check cannot wait that long, and on a lossy link every copy
# counts: the same query goes again every sixth of the check's timeout, at least every
# RESEND_S and at most every RESEND_MIN_S (3 s: six tries, 0.5 s apart). A late answer to an
# earlier copy is still taken (same socket, same query id).
RESEND_S = 1.0
RESEND_MIN_S = 0.3

# Answers no server on the internet can have: a DNS filter's "sinkhole" (RFC 6890 special
# purpose ranges, without the documentation ranges, which the lab uses as public addresses).
_SINKHOLE = [(ipaddress.ip_network(n), what) for n, what in (
    ("0.0.0.0/8", "the unspecified address"), ("127.0.0.0/8", "a loopback address"),
    ("169.254.0.0/16", "a link-local address"), ("224.0.0.0/4", "a multicast address"),
    ("240.0.0.0/4", "a reserved address"), ("255.255.255.255/32", "the broadcast address"),
    ("::/128", "the unspecified address"), ("::1/128", "a loopback address"),
    ("fe80::/10", "a link-local address"), ("ff00::/8", "a multicast address"))]
# Private (RFC 1918), shared (RFC 6598, carrier-grade NAT) and unique local addresses: fine
# for the plant's own hosts, a sign of filtering for a vendor's public cloud name.
_PRIVATE = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16",
                                               "100.64.0.0/10", "fc00::/7")]

# Profiles whose vendor warns about resolvers that cache past the TTL: seed 002 (Izuma Device
# Management, "Notes"): "The IPs of the Device Management hosts can change. Therefore, you need
# to make sure your DNS server does not cache records for longer than their time to live".
# Besides these, any profile with a note about the TTL (see ttl_sensitive).
TTL_SENSITIVE_PROFILES = ("izuma-device-management",)
TTL_PROBE_BUDGET_S = 3.0  # the TTL is only warned about: a slow zone never holds the run long


def ttl_note(profile: Profile) -> str:
    """The profile's own note about DNS TTLs, or ""."""
    return next((n for n in profile.notes if "TTL" in n or "time to live" in n.lower()), "")


def ttl_sensitive(profile: Profile) -> bool:
    """Whether the plan should look at how the resolver keeps this profile's names."""
    return profile.id in TTL_SENSITIVE_PROFILES or bool(ttl_note(profile))


def system_resolvers(etc: Path = Path("/etc"), run: Path = Path("/run")) -> tuple[str, ...]:
    """The resolvers the box uses now (DHCP-provided ones included).

    systemd-resolved's stub (127.0.0.53) forwards to the upstream servers it lists in
    /run/systemd/resolve/resolv.conf: those are the ones to judge.
    """
    found: list[str] = []
    for path in (run / "systemd/resolve/resolv.conf", etc / "resolv.conf"):
        try:
            text = path.read_text(errors="replace")
        except OSError:
            continue
        for line in text.splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver" and parts[1] not in found:
                found.append(parts[1].split("%")[0])
        if found and not all(a.startswith("127.0.0.5") for a in found):
            break
    return tuple(found)


def resolvers_for(plan: Plan, system: tuple[str, ...]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(primary resolvers, fallback resolvers) the plan asks for.

    google: Google first, the box's DHCP-provided ones as the seed's fallback; custom: the
    plan's; dhcp: what the box has.
    """
    mode = plan.dns.mode
    if mode == "custom":
        return tuple(plan.dns.servers), ()
    if mode == "dhcp":
        return system, ()
    return GOOGLE_DNS, tuple(a for a in system if a not in GOOGLE_DNS and not a.startswith("127."))


# --- asking ---------------------------------------------------------------------------------

class DnsFailure(Exception):
    """No usable answer: the diagnosis code and the evidence in words."""

    def __init__(self, diagnosis: str, words: str):
        super().__init__(words)
        self.diagnosis = diagnosis
        self.words = words


@dataclass(frozen=True)
class Exchange:
    """One answered question: the answer and how it was obtained."""

    response: dns.message.Message
    server: str
    tries: int          # UDP packets sent before an answer came
    via_tcp: bool       # the UDP answer was truncated and TCP gave the full one
    ms: float
    resend_s: float = RESEND_S

    def how(self) -> str:
        """The retries and the transport, in words ("" for one UDP packet)."""
        parts = []
        if self.tries > 1:
            lost = self.tries - 1
            parts.append(f"answered after {self.tries} tries ({lost} UDP quer{'y' if lost == 1 else 'ies'} "
                         f"unanswered within {_secs(self.resend_s)} s: lost on the way, or a slow answer)")
        if self.via_tcp:
            parts.append("the UDP answer was truncated, the full answer came over TCP 53")
        return "; ".join(parts)


def make_query(name: str, rdtype: dns.rdatatype.RdataType = dns.rdatatype.A,
               recursion: bool = True) -> dns.message.Message:
    """A query as a modern stub sends it: EDNS0, 1232-byte payload."""
    q = dns.message.make_query(name, rdtype, use_edns=0, payload=EDNS_PAYLOAD)
    if not recursion:
        q.flags &= ~dns.flags.RD
    return q


async def _udp(q: dns.message.Message, server: str, deadline: float, resend_s: float
               ) -> tuple[dns.message.Message, int]:
    """Send q over UDP, re-sending the same packet every resend_s on the same socket (a late
    answer to an earlier copy still counts) until an answer or the deadline. Raises
    dns.message.Truncated for a truncated answer, dns.exception.Timeout, OSError."""
    backend = dns.asyncbackend.get_default_backend()
    # dnspython's backend API carries no annotations.
    sock = await backend.make_socket(dns.inet.af_for_address(server),  # type: ignore[no-untyped-call]
                                     socket.SOCK_DGRAM)
    wire = q.to_wire()
    tries = 0
    try:
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise dns.exception.Timeout(timeout=0)  # type: ignore[no-untyped-call]  # dnspython: unannotated
            await dns.asyncquery.send_udp(sock, wire, (server, 53))
            tries += 1
            wait = min(left, resend_s)
            try:
                response, _, _ = await dns.asyncquery.receive_udp(
                    sock, (server, 53), time.time() + wait, ignore_unexpected=True, ignore_errors=True,
                    raise_on_truncation=True, query=q)
                return response, tries
            except dns.exception.Timeout:
                continue
            except dns.message.Truncated:
                raise _Truncated(tries) from None
    finally:
        await sock.close()


class _Truncated(Exception):
    def __init__(self, tries: int):
        super().__init__("truncated")
        self.tries = tries


async def exchange(name: str, server: str, timeout: float, rdtype: dns.rdatatype.RdataType = dns.rdatatype.A, *,
                   tcp_fallback: bool = True, recursion: bool = True, resend: bool = True,
                   until: float | None = None) -> Exchange:
    """Ask `server` about `name`: UDP with re-sends within `timeout`, then TCP 53 for a
    truncated answer (within another `timeout`, and never past the monotonic time `until`).
    Raises DnsFailure."""
    try:
        q = make_query(name, rdtype, recursion)
    except (dns.exception.DNSException, ValueError) as e:
        raise DnsFailure("dns-error", f"{name!r} is not a name DNS can ask about: {e}") from None
    t0 = time.monotonic()
    resend_s = max(RESEND_MIN_S, min(RESEND_S, timeout / 6)) if resend else timeout
    try:
        response, tries = await _udp(q, server, t0 + timeout, resend_s)
        return Exchange(response, server, tries, False, (time.monotonic() - t0) * 1000, resend_s)
    except _Truncated as t:
        tries = t.tries
        if not tcp_fallback:
            # The header says enough: the resolver answered (what it said is not judged).
            raise DnsFailure("dns-truncated", f"{server} answered {name} with a truncated answer") from None
    except (TimeoutError, dns.exception.Timeout):
        raise DnsFailure("dns-timeout", f"{server}: no answer on 53/udp within {_secs(timeout)} s "
                                        f"({_tries(resend_s, timeout)}; port 53 blocked or dropped)") from None
    except OSError as e:
        raise DnsFailure("dns-unreachable", f"{server}: {e.strerror or e} (port 53 rejected, or no route)") from None
    except Exception as e:  # a malformed answer, an unexpected library error
        raise DnsFailure("dns-error", f"{server}: {type(e).__name__}: {e}") from None
    t1 = time.monotonic()
    tcp_timeout = timeout if until is None else max(0.05, min(timeout, until - t1))
    try:
        response = await dns.asyncquery.tcp(q, server, timeout=tcp_timeout)
    except (TimeoutError, dns.exception.Timeout):
        why = f"no answer on TCP 53 within {_secs(tcp_timeout)} s (dropped)"
    except OSError as e:
        why = f"TCP 53 {'refused (rejected)' if isinstance(e, ConnectionRefusedError) else e.strerror or e}"
    except EOFError:
        why = "the TCP 53 connection was closed without an answer"
    except Exception as e:
        why = f"TCP 53 failed: {type(e).__name__}: {e}"
    else:
        return Exchange(response, server, tries, True, (time.monotonic() - t0) * 1000, resend_s)
    raise DnsFailure("dns-truncated-tcp-blocked",
                     f"{server} answered {name} over UDP with a truncated answer (TC: larger than "
                     f"{EDNS_PAYLOAD} bytes, only part of the records), and {why} after "
                     f"{(time.monotonic() - t1) * 1000:.0f} ms: the full answer cannot be had")


def _secs(t: float) -> str:
    return f"{t:g}" if abs(t - round(t, 1)) < 1e-9 else f"{t:.2f}"


def _tries(resend_s: float, timeout: float) -> str:
    n = max(1, int(timeout / resend_s + 0.999)) if resend_s < timeout else 1
    return f"{n} tr{'y' if n == 1 else 'ies'}"


# --- judging addresses ------------------------------------------------------------------------

def address_class(address: str) -> tuple[str, str] | None:
    """("sinkhole", what) for an address no internet server can have, ("private", what) for a
    private one, None for an ordinary (public) address."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return None
    if ip.version == 6 and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for net, what in _SINKHOLE:
        if ip.version == net.version and ip in net:
            return "sinkhole", what
    for net in _PRIVATE:
        if ip.version == net.version and ip in net:
            return "private", "a private address"
    return None


def is_vendor_name(ctx: Context, host: str) -> bool:
    """True for a public vendor cloud name: a fixed host of one of the plan's profiles (not a
    host the plan itself gives, such as a Siemens IEM or a custom NTP server)."""
    host = host.lower().rstrip(".")
    for pid in ctx.plan.profiles:
        profile = ctx.catalog.profiles.get(pid)
        if profile is None:
            continue
        if any(ep.host is not None and not ep.wildcard and ep.host.lower() == host for ep in profile.endpoints):
            return True
    return False


def _allow(ctx: Context, host: str) -> str:
    """What to allow on a DNS filter for `host`: the vendor's domain where a profile of the plan
    opens the whole domain ("*.mbedcloud.com", seed 002), else the name itself (a shared cloud
    domain such as amazonaws.com is never opened whole)."""
    host = host.lower().rstrip(".")
    for pid in ctx.plan.profiles:
        profile = ctx.catalog.profiles.get(pid)
        for ep in profile.endpoints if profile is not None else ():
            if ep.wildcard and ep.host is not None:
                domain = ep.host[2:].lower()
                if host == domain or host.endswith("." + domain):
                    return f"{domain} and its subdomains"
    return host


# --- naming resolvers in advice ---------------------------------------------------------------

def resolver_role(ctx: Context, server: str) -> str:
    """What a resolver is to this plan, in words."""
    mode = ctx.plan.dns.mode
    if mode == "custom":
        return "the plan's DNS server"
    if mode == "dhcp":
        return "the box's DHCP-provided resolver"
    if server in GOOGLE_DNS:
        return "Google DNS, the plan's default"
    return "the box's DHCP-provided resolver, the fallback"


def _named(ctx: Context, server: str) -> str:
    return f"{server} ({resolver_role(ctx, server)})"


def _all_named(ctx: Context, servers: Iterable[str]) -> str:
    servers = list(dict.fromkeys(servers))
    if not servers:
        return "no resolver"
    by_role: dict[str, list[str]] = {}
    for s in servers:
        by_role.setdefault(resolver_role(ctx, s), []).append(s)
    return "; ".join(f"{', '.join(addrs)} ({role})" for role, addrs in by_role.items())


def _vendor_text(ctx: Context, code: str, host: str | None = None) -> str:
    """The profile's own remediation for `code` (the vendor document's words)."""
    pids = list(ctx.plan.profiles)
    if host is not None:
        for pid in ctx.plan.profiles:
            profile = ctx.catalog.profiles.get(pid)
            if profile and any(ep.target(ctx.plan.profile_params.get(pid, {})) == host for ep in profile.endpoints):
                pids.insert(0, pid)
                break
    for pid in pids:
        profile = ctx.catalog.profiles.get(pid)
        if profile is not None:
            text = profile.remediation_for(code)
            if text:
                return text
    return ""


def remediation(ctx: Context, code: str, *, servers: Iterable[str], host: str | None = None,
                answer: str = "") -> str:
    """The advice for a DNS diagnosis, naming the resolvers, then the vendor's own words."""
    who = _all_named(ctx, servers)
    addrs = ", ".join(dict.fromkeys(servers)) or "the resolver"
    other = ("or set DNS servers in the plan that answer" if ctx.plan.dns.mode != "custom"
             else "or put other DNS servers in the plan")
    domain = _allow(ctx, host) if host else "the vendor domains"
    texts = {
        "dns-timeout": f"No DNS answer came from {who}. Ask IT to allow outbound UDP and TCP port 53 from "
                       f"this box to {addrs}, {other}.",
        "dns-unreachable": f"DNS to {who} was rejected or has no route. Ask IT to allow outbound UDP and TCP "
                           f"port 53 from this box to {addrs} and to route to it, {other}.",
        "dns-refused": f"{who} refuses to answer this box. Ask IT to allow the box's address on that DNS "
                       f"server (its access list), {other}.",
        "dns-nxdomain": f"{who} says the name does not exist. It is a public name: ask IT whether that DNS "
                        f"server forwards public names to the internet (or filters {domain}), {other}.",
        "dns-servfail": f"{who} failed to get the answer from upstream (SERVFAIL). Ask IT to check its "
                        f"forwarding and DNSSEC validation for {domain}, {other}.",
        "dns-no-address": f"{who} has no IPv4 address (A record) for the name. Ask IT whether that DNS "
                          f"server overrides {domain}, {other}.",
        "dns-error": f"{who} gave an answer that could not be read. Ask IT to check that DNS server, {other}.",
        "dns-truncated-tcp-blocked": f"The answer is larger than one UDP packet, so DNS continues over TCP "
                                     f"port 53, and that is blocked to {who}. Ask IT to allow outbound TCP "
                                     f"port 53 (as well as UDP) from this box to {addrs}: the box's own "
                                     "resolver needs it for large answers.",
        "dns-sinkhole": f"IT request: the DNS server {who} is filtering a vendor name: it answers {answer}, "
                        f"an address no server can have (a DNS filter's sinkhole). Allow {domain} on that DNS "
                        f"filter, {other}.",
        "dns-filtered": f"IT request: the DNS server {who} answers a public vendor name with {answer}: a DNS "
                        f"filter (block page) or an internal zone overrides it. Unless IT meant it (an internal "
                        f"relay), allow {domain} on that DNS filter so that the vendor's public addresses come "
                        f"back, {other}.",
    }
    own = texts.get(code, "")
    vendor = _vendor_text(ctx, code, host)
    return " ".join(t for t in (own, vendor) if t)


# --- checks -----------------------------------------------------------------------------------

async def dns_resolver(ctx: Context, prereqs: Mapping[str, Result], *, server: str, probe: str,
                       fallback_exists: bool = False) -> Outcome:
    """Does this resolver answer on 53/udp? `probe` is a name to ask (a profile host).

    Any answer but REFUSED proves the resolver works for us (NXDOMAIN included: the domain
    check judges the names; a truncated answer too: the name's own check asks over TCP). A
    blocked Google resolver is a warning when the plan falls back to other resolvers (seed
    000: "If Google DNS is blocked, the Edge falls back").
    """
    try:
        ex = await exchange(probe, server, ctx.timeout, tcp_fallback=False)
    except DnsFailure as f:
        if f.diagnosis == "dns-truncated":
            return Outcome("pass", "ok", f"{server} answered (a truncated answer) for {probe}",
                           facts={"resolver": server})
        words = f.words
        status = "warn" if fallback_exists and f.diagnosis != "dns-error" else "fail"
        if status == "warn":
            words += "; the fallback resolvers are judged on their own"
        return Outcome(status, f.diagnosis, words, facts={"resolver": server},
                       remediation=remediation(ctx, f.diagnosis, servers=[server]))
    rcode = ex.response.rcode()
    how = f" ({ex.how()})" if ex.how() else ""
    if rcode == dns.rcode.REFUSED:
        return Outcome("fail", "dns-refused", f"{server} answered REFUSED for {probe} in {ex.ms:.0f} ms{how}: "
                                              "it does not resolve for this box", facts={"resolver": server},
                       remediation=remediation(ctx, "dns-refused", servers=[server]))
    return Outcome("pass", "ok", f"{server} answered {dns.rcode.to_text(rcode)} for {probe} in {ex.ms:.0f} ms{how}",
                   facts={"resolver": server, "tries": ex.tries})


def _addresses(response: dns.message.Message, rdtype: dns.rdatatype.RdataType) -> list[str]:
    return [item.address for rrset in response.answer if rrset.rdtype == rdtype for item in rrset]


async def _aaaa(host: str, server: str, timeout: float) -> list[str]:
    try:
        ex = await exchange(host, server, timeout, dns.rdatatype.AAAA)
    except DnsFailure:
        return []
    return _addresses(ex.response, dns.rdatatype.AAAA) if ex.response.rcode() == dns.rcode.NOERROR else []


async def dns_resolve(ctx: Context, prereqs: Mapping[str, Result], *, host: str) -> Outcome:
    """Resolve host's A records with the plan's resolvers, in order, as a stub resolver would.

    The first resolver that gives a definite answer decides; one that times out or is
    unreachable hands over to the next. facts["addresses"] feeds the connection checks.
    The AAAA answer is asked beside (a filter answers "::" there), never waited for long.
    """
    resolvers = list(ctx.resolvers)
    if not resolvers:
        return Outcome("fail", "dns-no-resolver", "no resolver is configured or known on this box",
                       remediation="Give the plan DNS servers (or let the uplink get them by DHCP).")
    # Ask the resolvers that answered first; the others only if they do not decide.
    answering = [k.split(":", 1)[1] for k, r in prereqs.items() if r.id == "dns-resolver" and r.status == "pass"]
    order = answering + [r for r in resolvers if r not in answering]
    # The runner gives a check twice its timeout: the resolvers share that, less a margin.
    end = time.monotonic() + ctx.timeout * 2 - 0.2
    failures: list[DnsFailure] = []
    asked: list[str] = []
    for server in order:
        left = min(ctx.timeout, end - time.monotonic())
        if left <= 0.05:
            break
        asked.append(server)
        aaaa = asyncio.ensure_future(_aaaa(host, server, left))
        try:
            ex = await exchange(host, server, left, until=end)
        except DnsFailure as f:
            aaaa.cancel()
            if f.diagnosis == "dns-truncated-tcp-blocked":
                return Outcome("fail", f.diagnosis, f.words, facts={"resolver": server, "host": host},
                               remediation=remediation(ctx, f.diagnosis, servers=[server], host=host))
            failures.append(f)
            continue
        try:
            return await _judge(ctx, host, ex, aaaa)
        finally:
            aaaa.cancel()
    if not failures:
        failures.append(DnsFailure("dns-timeout", f"no resolver answered within {ctx.timeout * 2:g} s"))
    code = failures[0].diagnosis if len({f.diagnosis for f in failures}) == 1 else "dns-timeout"
    words = "; ".join(f.words for f in failures)
    unasked = [r for r in order if r not in asked]
    if unasked:
        words += f"; not asked within the check's {_secs(ctx.timeout * 2)} s: {', '.join(unasked)}"
    return Outcome("fail", code, words, facts={"host": host, "resolvers": tuple(order)},
                   remediation=remediation(ctx, code, servers=order, host=host))


async def _sunk_v6(aaaa: asyncio.Future[list[str]]) -> list[str]:
    try:
        v6 = await asyncio.wait_for(asyncio.shield(aaaa), 0.5)
    except (TimeoutError, asyncio.CancelledError):
        return []
    return [a for a in v6 if (address_class(a) or ("",))[0] == "sinkhole"]


async def _judge(ctx: Context, host: str, ex: Exchange, aaaa: asyncio.Future[list[str]]) -> Outcome:
    server, response = ex.server, ex.response
    how = f"; {ex.how()}" if ex.how() else ""
    rcode = response.rcode()
    facts = {"resolver": server, "host": host, "tries": ex.tries, "tcp": ex.via_tcp}
    if rcode == dns.rcode.NXDOMAIN:
        # A filter that answers only AAAA queries ("::") may deny the A record outright.
        sunk = await _sunk_v6(aaaa)
        if sunk:
            answer = ", ".join(sunk)
            return Outcome("fail", "dns-sinkhole",
                           f"{server} answered {host} with {answer} (AAAA; NXDOMAIN for the IPv4 address): a DNS "
                           f"filter's sinkhole{how}", facts=dict(facts, addresses=(), addresses6=tuple(sunk)),
                           remediation=remediation(ctx, "dns-sinkhole", servers=[server], host=host, answer=answer))
    if rcode in _RCODE_DIAGNOSIS:
        code = _RCODE_DIAGNOSIS[rcode]
        return Outcome("fail", code, f"{server} answered {dns.rcode.to_text(rcode)} for {host} in {ex.ms:.0f} ms{how}",
                       facts=facts, remediation=remediation(ctx, code, servers=[server], host=host))
    if rcode != dns.rcode.NOERROR:
        return Outcome("fail", "dns-error", f"{server} answered {dns.rcode.to_text(rcode)} for {host}{how}",
                       facts=facts, remediation=remediation(ctx, "dns-error", servers=[server], host=host))
    addresses = _addresses(response, dns.rdatatype.A)
    # The AAAA answer normally arrives with the A answer; a short wait, never a long one.
    try:
        v6 = await asyncio.wait_for(asyncio.shield(aaaa), 0.3 if addresses else 1.0)
    except (TimeoutError, asyncio.CancelledError):
        v6 = []
    facts["addresses"] = tuple(addresses)
    if v6:
        facts["addresses6"] = tuple(v6)
    classes = {a: address_class(a) for a in addresses + v6}
    sink = {a: c[1] for a, c in classes.items() if c and c[0] == "sinkhole"}
    if sink:
        what = next(iter(sink.values()))
        answer = ", ".join(sink)
        return Outcome("fail", "dns-sinkhole",
                       f"{server} answered {host} with {answer} ({what}: a DNS filter's sinkhole, no server "
                       f"can be reached there){how}", facts=facts,
                       remediation=remediation(ctx, "dns-sinkhole", servers=[server], host=host, answer=answer))
    if not addresses:
        return Outcome("fail", "dns-no-address", f"{server} knows {host} but gave no IPv4 address (A record){how}",
                       facts=facts, remediation=remediation(ctx, "dns-no-address", servers=[server], host=host))
    private = [a for a in addresses if (classes[a] or ("",))[0] == "private"]
    if private and is_vendor_name(ctx, host):
        # A warning, not a failure: a filter's block page fails the connection checks that
        # follow (they still run and say how), and a deliberate internal relay passes them.
        answer = ", ".join(private)
        return Outcome("warn", "dns-filtered",
                       f"{server} answered the public vendor name {host} with {answer} (a private address: "
                       f"a DNS filter's block page or an internal zone, not the vendor's cloud){how}",
                       facts=facts,
                       remediation=remediation(ctx, "dns-filtered", servers=[server], host=host, answer=answer))
    shown = ", ".join(addresses[:8]) + (f" and {len(addresses) - 8} more" if len(addresses) > 8 else "")
    return Outcome("pass", "ok", f"{host} -> {shown} (from {server}, {ex.ms:.0f} ms{how})", facts=facts)


# --- TTL: does the resolver keep records longer than their owner says? ------------------------

async def _ask(name: dns.name.Name | str, server: str, rdtype: dns.rdatatype.RdataType, timeout: float,
               recursion: bool = True) -> dns.message.Message:
    ex = await exchange(str(name), server, timeout, rdtype, recursion=recursion)
    return ex.response


async def _zone_servers(name: dns.name.Name, resolver: str, deadline: float) -> tuple[dns.name.Name, list[str]]:
    """(zone, name server addresses) for the zone `name` is in, found through the resolver."""
    candidate = name
    for _ in range(10):
        left = deadline - time.monotonic()
        if left <= 0:
            raise DnsFailure("timeout", "no time left")
        r = await _ask(candidate, resolver, dns.rdatatype.NS, left)
        ns = next((s for s in r.answer if s.rdtype == dns.rdatatype.NS and s.name == candidate), None)
        if ns is not None:
            targets = [item.target for item in ns]
            glue = [item.address for s in r.additional if s.rdtype == dns.rdatatype.A and s.name in targets
                    for item in s]
            if not glue:
                for target in targets[:3]:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    try:
                        a = await _ask(target, resolver, dns.rdatatype.A, left)
                    except DnsFailure:
                        continue
                    glue += _addresses(a, dns.rdatatype.A)
                    if glue:
                        break
            return candidate, glue
        soa = next((s for s in r.authority if s.rdtype == dns.rdatatype.SOA), None)
        if soa is not None and soa.name != candidate and candidate.is_subdomain(soa.name):
            candidate = soa.name
            continue
        if len(candidate.labels) <= 3:  # never a top-level domain's servers (no answer for a name there)
            break
        candidate = candidate.parent()
    raise DnsFailure("no-zone", f"no name server found for {name}")


async def _authoritative_ttl(owner: dns.name.Name, rdtype: dns.rdatatype.RdataType, resolver: str, deadline: float
                             ) -> tuple[int | None, str]:
    """(TTL the zone's own name server gives for owner/rdtype, or None; words on how)."""
    try:
        zone, addresses = await _zone_servers(owner, resolver, deadline)
    except DnsFailure as f:
        return None, f"its zone's name servers were not found through {resolver} ({f.words})"
    if not addresses:
        return None, f"the name servers of {zone.to_text(True)} have no address"
    tried = []
    for address in addresses[:2]:
        left = deadline - time.monotonic()
        if left <= 0.05:
            break
        tried.append(address)
        try:
            r = await _ask(owner, address, rdtype, min(left, 1.0), recursion=False)
        except DnsFailure:
            continue
        if not r.flags & dns.flags.AA:
            continue
        rrset = next((s for s in r.answer if s.name == owner and s.rdtype == rdtype), None)
        if rrset is not None:
            return rrset.ttl, f"{address}, a name server of {zone.to_text(True)}"
    return None, (f"the name server{'s' if len(tried) > 1 else ''} of {zone.to_text(True)} "
                  f"({', '.join(tried) or ', '.join(addresses[:2])}) gave no authoritative answer directly "
                  "(the network may allow DNS only to its own resolvers)")


def _ttl_notes(ctx: Context) -> str:
    notes = [ttl_note(ctx.catalog.profiles[pid]) for pid in ctx.plan.profiles if pid in ctx.catalog.profiles]
    return " ".join(dict.fromkeys(n for n in notes if n))


async def dns_ttl(ctx: Context, prereqs: Mapping[str, Result], *, host: str, resolve_key: str) -> Outcome:
    """Does the resolver that answered `host` serve its records with a TTL longer than the
    zone's own name server gives? A cache that counts down from the real TTL never does; one
    that extends TTLs (a minimum cache TTL) does, and then keeps addresses that changed.

    The resolver is asked again (its answer now comes from its cache), the zone's name
    servers are found through it (NS, else the SOA of a negative answer), and one of them is
    asked directly without recursion. When none answers directly, nothing is judged.
    """
    before = prereqs.get(resolve_key)
    if before is None or before.status not in USABLE or not before.facts.get("resolver"):
        return Outcome("skip", NOT_NEEDED, f"{host} did not resolve: no TTL to look at")
    resolver = str(before.facts["resolver"])
    deadline = time.monotonic() + min(ctx.timeout, TTL_PROBE_BUDGET_S)
    try:
        ex = await exchange(host, resolver, max(0.1, deadline - time.monotonic()))
    except DnsFailure as f:
        return Outcome("pass", "ok", f"TTL not judged: {resolver} did not answer again ({f.words})",
                       facts={"resolver": resolver, "host": host})
    rrsets = [s for s in ex.response.answer if s.rdtype in (dns.rdatatype.A, dns.rdatatype.CNAME)][:4]
    if not rrsets:
        return Outcome("pass", "ok", f"TTL not judged: {resolver} gave no record for {host} this time",
                       facts={"resolver": resolver, "host": host})

    async def one(rrset: dns.rrset.RRset) -> tuple[dns.rrset.RRset, int | None, str]:
        try:
            ttl, how = await asyncio.wait_for(_authoritative_ttl(rrset.name, rrset.rdtype, resolver, deadline),
                                              max(0.05, deadline - time.monotonic()))
        except (TimeoutError, DnsFailure):
            ttl, how = None, f"the zone's name servers did not answer within {TTL_PROBE_BUDGET_S:g} s"
        return rrset, ttl, how

    judged = await asyncio.gather(*(one(s) for s in rrsets))
    for rrset, ttl, how in judged:
        if ttl is not None and rrset.ttl > ttl:
            owner = rrset.name.to_text(True)
            kind = dns.rdatatype.to_text(rrset.rdtype)
            return Outcome(
                "warn", "dns-ttl-extended",
                f"{resolver} serves {owner} {kind} with TTL {rrset.ttl} s, but the zone's own name server "
                f"({how}) gives TTL {ttl} s: the resolver keeps records longer than their TTL",
                facts={"resolver": resolver, "host": owner, "ttl_seen": rrset.ttl, "ttl_authoritative": ttl},
                remediation=(f"The DNS server {_named(ctx, resolver)} caches records longer than their time to "
                             f"live (it served TTL {rrset.ttl} s where the owner gives {ttl} s). The addresses of "
                             "these hosts can change: ask IT to make that DNS server respect the TTL (remove a "
                             "minimum cache TTL or TTL override for these names), or use a resolver that does. "
                             + _ttl_notes(ctx)).strip())
    known = [(r, t, h) for r, t, h in judged if t is not None]
    if not known:
        return Outcome("pass", "ok", f"TTL not judged for {host}: {judged[0][2]}",
                       facts={"resolver": resolver, "host": host})
    r, t, h = known[0]
    return Outcome("pass", "ok", f"{resolver} serves {r.name.to_text(True)} with TTL {r.ttl} s, within the "
                                 f"{t} s its name server ({h}) gives",
                   facts={"resolver": resolver, "host": host, "ttl_seen": r.ttl, "ttl_authoritative": t})

"""DNS checks (dnspython): does each resolver answer on 53/udp, does each profile host resolve.

NXDOMAIN (the name does not exist there), SERVFAIL (the resolver failed upstream), REFUSED
(it will not answer us), a timeout (port 53 dropped on the way) and an unreachable port
(rejected) are told apart: they are fixed by different people.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import dns.asyncquery
import dns.exception
import dns.message
import dns.rcode
import dns.rdatatype

from installer.checks.base import Context, Outcome
from installer.plan import GOOGLE_DNS, Plan

_RCODE_DIAGNOSIS = {dns.rcode.NXDOMAIN: "dns-nxdomain", dns.rcode.SERVFAIL: "dns-servfail",
                    dns.rcode.REFUSED: "dns-refused"}


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


async def _query(name: str, where: str, timeout: float, rdtype=dns.rdatatype.A) -> dns.message.Message:
    q = dns.message.make_query(name, rdtype)
    return await dns.asyncquery.udp(q, where, timeout=timeout)


def _failure(e: BaseException, where: str, timeout: float) -> tuple[str, str]:
    if isinstance(e, (dns.exception.Timeout, asyncio.TimeoutError)):
        return "dns-timeout", f"{where}: no answer on 53/udp within {timeout:g} s (port 53 blocked or dropped)"
    if isinstance(e, OSError):
        return "dns-unreachable", f"{where}: {e.strerror or e} (port 53 rejected, or no route)"
    return "dns-error", f"{where}: {type(e).__name__}: {e}"


async def dns_resolver(ctx: Context, prereqs, *, server: str, probe: str, fallback_exists: bool = False) -> Outcome:
    """Does this resolver answer on 53/udp? `probe` is a name to ask (a profile host).

    Any answer but REFUSED proves the resolver works for us (NXDOMAIN included: the domain
    check judges the names). A blocked Google resolver is a warning when the plan falls back
    to other resolvers (seed 000: "If Google DNS is blocked, the Edge falls back").
    """
    t0 = time.monotonic()
    try:
        response = await _query(probe, server, ctx.timeout)
    except Exception as e:  # dnspython raises several types; all are the resolver's failure
        diagnosis, words = _failure(e, server, ctx.timeout)
        status = "warn" if fallback_exists and diagnosis != "dns-error" else "fail"
        if status == "warn":
            words += "; the fallback resolvers are judged on their own"
        return Outcome(status, diagnosis, words)
    ms = (time.monotonic() - t0) * 1000
    rcode = response.rcode()
    if rcode == dns.rcode.REFUSED:
        return Outcome("fail", "dns-refused", f"{server} answered REFUSED for {probe} in {ms:.0f} ms: it does not "
                                              "resolve for this box")
    return Outcome("pass", "ok", f"{server} answered {dns.rcode.to_text(rcode)} for {probe} in {ms:.0f} ms")


async def dns_resolve(ctx: Context, prereqs, *, host: str) -> Outcome:
    """Resolve host's A records with the plan's resolvers, in order, as a stub resolver would.

    The first resolver that gives a definite answer decides; one that times out or is
    unreachable hands over to the next. facts["addresses"] feeds the connection checks.
    """
    resolvers = [r for r in ctx.resolvers]
    if not resolvers:
        return Outcome("fail", "dns-no-resolver", "no resolver is configured or known on this box")
    # Ask the resolvers that answered first; the others only if they do not decide.
    answering = [k.split(":", 1)[1] for k, r in prereqs.items() if r.id == "dns-resolver" and r.status == "pass"]
    order = answering + [r for r in resolvers if r not in answering]
    failures = []
    for server in order:
        t0 = time.monotonic()
        try:
            response = await _query(host, server, ctx.timeout)
        except Exception as e:
            failures.append(_failure(e, server, ctx.timeout))
            continue
        ms = (time.monotonic() - t0) * 1000
        rcode = response.rcode()
        if rcode in _RCODE_DIAGNOSIS:
            code = _RCODE_DIAGNOSIS[rcode]
            return Outcome("fail", code, f"{server} answered {dns.rcode.to_text(rcode)} for {host} in {ms:.0f} ms")
        if rcode != dns.rcode.NOERROR:
            return Outcome("fail", "dns-error", f"{server} answered {dns.rcode.to_text(rcode)} for {host}")
        addresses = [item.address for rrset in response.answer if rrset.rdtype == dns.rdatatype.A for item in rrset]
        if not addresses:
            return Outcome("fail", "dns-no-address", f"{server} knows {host} but gave no IPv4 address (A record)")
        return Outcome("pass", "ok", f"{host} -> {', '.join(addresses)} (from {server}, {ms:.0f} ms)",
                       facts={"addresses": tuple(addresses), "resolver": server})
    code = failures[0][0] if len({f[0] for f in failures}) == 1 else "dns-timeout"
    return Outcome("fail", code, "; ".join(words for _, words in failures))

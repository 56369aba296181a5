"""From a plan and its profiles to the list of checks to run, with their prerequisites.

Every profile endpoint with live checks becomes a chain: DNS (for a name) -> TCP -> TLS ->
HTTPS, or TCP -> NATS, or TCP -> CoAP/TLS issuer. A host or (host, port) that several
profiles share is checked once. With a proxy in the plan, the TCP, TLS, HTTPS and NATS
checks go through it (CONNECT); DNS and NTP are still judged directly, and the hosts the plan
exempts (no_proxy) are reached directly.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable

from installer.checks import bandwidth, coap, dns, https, link, machines, nats, ntp, tcp, tls
from installer.checks.base import DEFAULT_TIMEOUT_S, Check, Context, Outcome
from installer.checks.net import Dest, bypasses_proxy, proxy_from_plan
from installer.fields import is_ip
from installer.plan import POOL_NTP, Plan
from installer.profiles import Catalog, load_catalog
from installer.render import MACHINE_BRIDGE



def build_context(plan: Plan, catalog: Catalog | None = None, *, timeout: float = DEFAULT_TIMEOUT_S,
                  etc: Path = Path("/etc"), run: Path = Path("/run"),
                  sys_class_net: str = "/sys/class/net", proc_sys: str = "/proc/sys") -> Context:
    """The Context for a run: the plan's resolvers (with the box's as fallback), proxy, trust."""
    primary, fallback = dns.resolvers_for(plan, dns.system_resolvers(etc, run))
    return Context(plan=plan, catalog=catalog or load_catalog(), timeout=timeout, resolvers=primary + fallback,
                   proxy=proxy_from_plan(plan), extra_ca_file=plan.tls.extra_ca_file,
                   sys_class_net=sys_class_net, proc_sys=proc_sys)


def ntp_servers(plan: Plan, run: Path = Path("/run")) -> tuple[str, ...]:
    """The time servers the plan uses."""
    if plan.ntp.mode == "custom":
        return tuple(plan.ntp.servers)
    if plan.ntp.mode == "dhcp":
        return tuple(ntp.dhcp_ntp_servers(run))
    return POOL_NTP


class _Plan:
    """Accumulates checks, de-duplicating by key."""

    def __init__(self) -> None:
        self.checks: dict[str, Check] = {}

    def add(self, check: Check) -> str:
        self.checks.setdefault(check.key, check)
        return check.key


def plan_checks(plan: Plan, ctx: Context, *, expect_applied: bool = True, run: Path = Path("/run")) -> list[Check]:
    """Every check for the plan, in the order a report lists them."""
    out = _Plan()
    _links(plan, out, expect_applied)

    # DNS: the resolvers, then every name (profile hosts and NTP server names).
    hosts: list[tuple[str, str | None]] = []  # (host, profile)
    for pid in plan.profiles:
        profile = ctx.catalog.profiles[pid]
        for ep in profile.endpoints:
            host = ep.target(plan.profile_params.get(pid, {}))
            if host and ep.checks and not ep.wildcard and not is_ip(host):
                hosts.append((host, pid))
    servers = ntp_servers(plan, run)
    for s in servers:
        if not is_ip(s):
            hosts.append((s, None))
    probe = hosts[0][0] if hosts else "."
    resolver_keys = []
    primary, _ = dns.resolvers_for(plan, ())
    for server in ctx.resolvers:
        fallback = plan.dns.mode == "google" and server in primary and len(ctx.resolvers) > len(primary)
        resolver_keys.append(out.add(Check("dns-resolver", "dns", server, functools.partial(
            dns.dns_resolver, server=server, probe=probe, fallback_exists=fallback), timeout_diagnosis="dns-timeout")))
    resolve_key: dict[str, str] = {}
    for host, pid in hosts:
        if host not in resolve_key:
            resolve_key[host] = out.add(Check("dns-resolve", "dns", host, functools.partial(dns.dns_resolve, host=host),
                                              profile=pid, needs=(tuple(resolver_keys),),
                                              timeout_diagnosis="dns-timeout"))

    for s in servers:
        key = resolve_key.get(s)
        out.add(Check("ntp-server", "ntp", s, functools.partial(ntp.ntp_server, server=s, resolve_key=key),
                      needs=((key,),) if key else (), timeout_diagnosis="ntp-timeout"))

    for pid in plan.profiles:
        profile = ctx.catalog.profiles[pid]
        params = plan.profile_params.get(pid, {})
        for ep in profile.endpoints:
            if not ep.checks or ep.wildcard or ep.protocol != "tcp":
                continue
            host = ep.target(params)
            if host is None and not ep.addresses:
                continue
            proxied = ctx.proxy is not None and not bypasses_proxy(plan, host or ep.addresses[0])
            is_name = host is not None and not is_ip(host)
            dest = Dest(host=host, port=ep.port,
                        addresses=ep.addresses if host is None else ((host,) if not is_name else ep.addresses),
                        resolve_key=resolve_key.get(host) if is_name else None,
                        proxy=ctx.proxy if proxied else None)
            needs = ((dest.resolve_key,),) if dest.resolve_key and not proxied else ()
            common = dict(profile=pid, endpoint=ep)
            tcp_key = out.add(Check("tcp-connect", "tcp", dest.label, functools.partial(tcp.tcp_connect, dest=dest),
                                    needs=needs, timeout_diagnosis="tcp-timeout", **common))
            after_tcp = ((tcp_key,),)
            if "tls" in ep.checks:
                tls_key = out.add(Check("tls-verify", "tls", dest.label, functools.partial(
                    tls.tls_verify, dest=dest, endpoint=ep, profile=profile), needs=after_tcp,
                    timeout_diagnosis="tls-timeout", **common))
                if "https" in ep.checks and ep.https_path:
                    out.add(Check("https-ping", "https", f"https://{dest.label.removesuffix(':443')}{ep.https_path}",
                                  functools.partial(https.https_ping, dest=dest, path=ep.https_path, endpoint=ep,
                                                    profile=profile),
                                  needs=((tls_key,),), timeout_diagnosis="http-no-response", **common))
            if "nats" in ep.checks:
                out.add(Check("nats-info", "nats", dest.label, functools.partial(
                    nats.nats_info, dest=dest, endpoint=ep, profile=profile), needs=after_tcp,
                    timeout_diagnosis="nats-not-nats", **common))
            if "coap-tls" in ep.checks:
                out.add(Check("coap-tls-issuer", "coap", dest.label, functools.partial(
                    coap.coap_tls_issuer, dest=dest, endpoint=ep, profile=profile), needs=after_tcp,
                    timeout_diagnosis="tls-timeout", **common))

    for m in plan.machines:
        controller = ctx.catalog.controllers.get(m.controller or "")
        if controller is None or not m.address:
            continue
        target = f"{m.name} ({m.address}:{controller.port})"
        port_key = out.add(Check("machine-port", "machine", target, functools.partial(
            machines.machine_port, machine=m, controller=controller), timeout_diagnosis="tcp-timeout"))
        if controller.probe == "mtconnect-probe":
            out.add(Check("mtconnect-probe", "machine", f"{m.name} (http://{m.address}:{controller.port}/probe)",
                          functools.partial(machines.mtconnect_probe, machine=m, controller=controller),
                          needs=((port_key,),), timeout_diagnosis="http-timeout"))
    out.add(Check("bandwidth-estimate", "bandwidth", f"{len(plan.machines)} machine(s)", bandwidth.bandwidth_estimate))
    return list(out.checks.values())


def _links(plan: Plan, out: _Plan, expect_applied: bool) -> None:
    mn = plan.machine_network
    if mn is not None:
        if len(mn.interfaces) > 1:
            # Bridged ports carry no address of their own; the bridge does.
            for name in mn.interfaces:
                out.add(Check("link-state", "link", name, functools.partial(
                    _port_state, interface=name, expect_applied=expect_applied)))
            out.add(Check("link-state", "link", MACHINE_BRIDGE, functools.partial(
                link.link_state, interface=MACHINE_BRIDGE, role="machine network bridge", address=mn.address,
                expect_applied=expect_applied)))
        else:
            out.add(Check("link-state", "link", mn.interfaces[0], functools.partial(
                link.link_state, interface=mn.interfaces[0], role="machine network", address=mn.address,
                expect_applied=expect_applied)))
        out.add(Check("link-isolation", "link", "machine network", functools.partial(
            link.link_isolation, interfaces=tuple(mn.interfaces), expect_applied=expect_applied)))
    up = plan.uplink
    if up is not None and up.interface:
        out.add(Check("link-state", "link", up.interface, functools.partial(
            link.link_state, interface=up.interface, role="uplink",
            address=up.address if up.ipv4 == "static" else None, expect_applied=expect_applied)))


async def _port_state(ctx: Context, prereqs, *, interface: str, expect_applied: bool) -> Outcome:
    """A bridge port: it must exist and have carrier; its address lives on the bridge."""
    outcome = await link.link_state(ctx, prereqs, interface=interface, role="machine network port",
                                    address=None, expect_applied=expect_applied)
    if outcome.diagnosis == "address-missing":
        return Outcome("pass", "ok", outcome.evidence.split(" has ")[0] + ": carrier (a bridge port has no address)")
    return outcome


def remediation(plan: Plan, catalog: Catalog) -> Callable[[Check, Outcome], str]:
    """The runner's remediation lookup: the check's profile, else the plan's first profile."""
    def lookup(check: Check, outcome: Outcome) -> str:
        pid = check.profile or (plan.profiles[0] if plan.profiles else None)
        if pid is None or pid not in catalog.profiles:
            return ""
        return catalog.profiles[pid].remediation_for(outcome.diagnosis, check.endpoint)
    return lookup

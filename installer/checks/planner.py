"""From a plan and its profiles to the list of checks to run, with their prerequisites.

Every profile endpoint with live checks becomes a chain: DNS (for a name) -> TCP -> TLS ->
HTTPS, or TCP -> NATS, or TCP -> CoAP/TLS issuer. A host or (host, port) that several
profiles share is checked once. With a proxy in the plan, the TCP, TLS, HTTPS and NATS
checks go through it (CONNECT); DNS and NTP are still judged directly, and the hosts the plan
exempts (no_proxy) are reached directly.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TypedDict

from installer.checks import (
    bandwidth,
    coap,
    dns,
    dtls,
    https,
    icmp,
    link,
    machines,
    nat,
    nats,
    neighbours,
    ntp,
    openvpn,
    tcp,
    tls,
)
from installer.checks.base import DEFAULT_TIMEOUT_S, Check, Context, Outcome, Proxy, Result
from installer.checks.net import Dest, bypasses_proxy, proxy_from_plan
from installer.planning.fields import is_ip
from installer.planning.plan import POOL_NTP, Plan, Port
from installer.render import MACHINE_BRIDGE
from installer.vendors.profiles import Catalog, Endpoint, Profile, load_catalog


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


class _Common(TypedDict):
    """What every check of one endpoint carries."""

    profile: str
    endpoint: Endpoint


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
    neighbours.plan_checks(plan, out.add, sys_class_net=ctx.sys_class_net)  # ARP: addresses, gateway
    _plan_link_quality(plan, ctx, out)
    _plan_wifi_signal(plan, out, expect_applied)

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
    for host, owner in hosts:
        if host not in resolve_key:
            resolve_key[host] = out.add(Check("dns-resolve", "dns", host, functools.partial(dns.dns_resolve, host=host),
                                              profile=owner, needs=(tuple(resolver_keys),),
                                              timeout_diagnosis="dns-timeout"))
    _plan_dns_ttl(plan, ctx, out, resolve_key)

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
            dest = _dest(ep, host, resolve_key, ctx.proxy if proxied else None)
            needs = ((dest.resolve_key,),) if dest.resolve_key and not proxied else ()
            common: _Common = {"profile": pid, "endpoint": ep}
            tcp_key = out.add(Check("tcp-connect", "tcp", dest.label, functools.partial(
                tcp.tcp_connect, dest=dest, endpoint=ep, profile=profile),
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
            _plan_openvpn(out, dest, ep, profile, pid, tcp_key)

    _plan_nat(plan, ctx, out)
    _plan_dtls(plan, ctx, out, resolve_key)
    _plan_icmp_reference(plan, out)

    for m in plan.machines:
        controller = ctx.catalog.controllers.get(m.controller or "")
        if controller is None or not m.address:
            continue
        target = f"{m.name} ({m.address}:{controller.port})"
        # presence: a failed port is followed by an ARP probe (absent / filtered / closed).
        port_key = out.add(Check("machine-port", "machine", target, functools.partial(
            machines.machine_port, machine=m, controller=controller, presence=True),
            timeout_diagnosis="tcp-timeout"))
        if controller.probe == "mtconnect-probe":
            out.add(Check("mtconnect-probe", "machine", f"{m.name} (http://{m.address}:{controller.port}/probe)",
                          functools.partial(machines.mtconnect_probe, machine=m, controller=controller),
                          needs=((port_key,),), timeout_diagnosis="http-timeout"))
    out.add(Check("bandwidth-estimate", "bandwidth", f"{len(plan.machines)} machine(s)", bandwidth.bandwidth_estimate))
    _plan_portal(plan, out)
    return list(out.checks.values())


def _dest(ep: Endpoint, host: str | None, resolve_key: dict[str, str], proxy: Proxy | None) -> Dest:
    """Where an endpoint's checks go: a name (its addresses from its dns-resolve check), an
    address, or the addresses the vendor states for an address-only endpoint."""
    name = host if host is not None and not is_ip(host) else None
    return Dest(host=host, port=ep.port,
                addresses=ep.addresses if host is None else ((host,) if name is None else ep.addresses),
                resolve_key=resolve_key.get(name) if name is not None else None, proxy=proxy)


def _plan_dns_ttl(plan: Plan, ctx: Context, out: _Plan, resolve_key: dict[str, str]) -> None:
    """`dns-ttl` (seed 002: the DNS server must not cache records longer than their TTL): for
    the first name of each profile whose vendor says so, after that name resolved."""
    for pid in plan.profiles:
        profile = ctx.catalog.profiles[pid]
        if not dns.ttl_sensitive(profile):
            continue
        params = plan.profile_params.get(pid, {})
        host = next((h for ep in profile.endpoints for h in [ep.target(params)]
                     if h in resolve_key and ep.host is not None), None)
        if host is not None:
            out.add(Check("dns-ttl", "dns", host, functools.partial(
                dns.dns_ttl, host=host, resolve_key=resolve_key[host]), profile=pid,
                after=(resolve_key[host],), timeout_diagnosis="dns-timeout"))


def _plan_openvpn(out: _Plan, dest: Dest, ep: Endpoint, profile: Profile, pid: str, tcp_key: str) -> None:
    """CloudLink's OpenVPN probe, after the host's TCP check (needed) and its tls-verify (waited
    for, whatever its verdict: a reset while HTTPS works names a VPN-blocking rule)."""
    if "openvpn" not in ep.checks:
        return
    verify_key = f"tls-verify:{dest.label}"
    tls_key = verify_key if verify_key in out.checks else None
    out.add(Check("openvpn-handshake", "openvpn", dest.label, functools.partial(
        openvpn.openvpn_handshake, dest=dest, endpoint=ep, profile=profile, tls_key=tls_key),
        profile=pid, endpoint=ep, needs=((tcp_key,),), after=(tls_key,) if tls_key else (),
        timeout_diagnosis="openvpn-silent"))


def _plan_nat(plan: Plan, ctx: Context, out: _Plan) -> None:
    """`nat-detect`: after every nats-info check (their INFO's client_ip against the socket's
    address), whether the uplink is behind NAT, and the seed's advice where a profile in the
    plan uses CoAP over UDP."""
    nats_keys = tuple(k for k, c in out.checks.items() if c.id == "nats-info")
    hurt = tuple(pid for pid in plan.profiles if pid in ctx.catalog.profiles and any(
        e.service == "coap" and e.protocol == "udp" for e in ctx.catalog.profiles[pid].endpoints))
    if not nats_keys and not hurt:
        return  # nothing could tell, and nothing would change: no check at all
    target = plan.uplink.interface if plan.uplink is not None and plan.uplink.interface else "uplink"
    out.add(Check("nat-detect", "link", target, functools.partial(
        nat.nat_detect, nats_keys=nats_keys, coap_udp_profiles=hurt), profile=hurt[0] if hurt else None,
        after=nats_keys))


def _plan_dtls(plan: Plan, ctx: Context, out: _Plan, resolve_key: dict[str, str]) -> None:
    """CoAP over UDP (seed 002): a DTLS handshake to every UDP endpoint with the "dtls" check,
    after its name resolved. Always direct: UDP does not go through an HTTP proxy."""
    for pid in plan.profiles:
        profile = ctx.catalog.profiles[pid]
        for ep in profile.endpoints:
            if "dtls" not in ep.checks or ep.protocol != "udp" or ep.wildcard:
                continue
            host = ep.target(plan.profile_params.get(pid, {}))
            if host is None and not ep.addresses:
                continue
            dest = _dest(ep, host, resolve_key, None)
            out.add(Check("dtls-issuer", "dtls", f"{dest.label}/udp", functools.partial(
                dtls.dtls_issuer, dest=dest, endpoint=ep, profile=profile),
                needs=((dest.resolve_key,),) if dest.resolve_key else (), timeout_diagnosis="dtls-timeout",
                profile=pid, endpoint=ep))


def _plan_portal(plan: Plan, out: _Plan) -> None:
    """`captive-portal`, once, after every tls-verify: it looks into their failures."""
    from installer.checks import portal

    tls_keys = tuple(k for k, c in out.checks.items() if c.id == "tls-verify")
    if tls_keys:
        out.add(Check("captive-portal", "https", "guest network login", functools.partial(
            portal.captive_portal, tls_keys=tls_keys, plan=plan), after=tls_keys,
            timeout_diagnosis="http-no-response"))


def _plan_link_quality(plan: Plan, ctx: Context, out: _Plan) -> None:
    """Latency and loss of the uplink, measured beside everything else (installer.checks.icmp),
    when the plan has a vendor cloud to reach: it is what puts the cloud checks' failures in
    context (a plan without profiles checks the site's own DNS and NTP servers only)."""
    if not plan.profiles:
        return
    up = plan.uplink
    gateway = up.gateway if up is not None and up.ipv4 == "static" and up.gateway else None
    interface = up.interface if up is not None else None
    wireless = plan.topology in ("wifi", "wireless-bridge")
    out.add(Check("link-quality", "link", interface or "uplink", functools.partial(
        icmp.link_quality, gateway=gateway, interface=interface, wireless=wireless),
        timeout_diagnosis="poor-link"))


def _plan_wifi_signal(plan: Plan, out: _Plan, expect_applied: bool = True) -> None:
    """`wifi-signal` (installer.checks.wifi): the signal of the access point the uplink joined,
    when the uplink is WiFi (topologies wifi and wireless-bridge)."""
    from installer.checks import wifi

    up = plan.uplink
    if plan.topology not in ("wifi", "wireless-bridge") or up is None or not up.interface:
        return
    out.add(Check("wifi-signal", "link", up.interface, functools.partial(
        wifi.wifi_signal, interface=up.interface, ssid=plan.wifi.ssid if plan.wifi is not None else None,
        expect_applied=expect_applied)))


def _plan_icmp_reference(plan: Plan, out: _Plan) -> None:
    """MachineMetrics' diagnostic step 4 (ping 8.8.8.8 beside a failing host): after every
    connection, TLS and HTTPS check of a cloud host (not a host the technician names, such
    as a plant's IEM); it runs only when one of them failed."""
    if not {"machinemetrics", "machinemetrics-govcloud"} & set(plan.profiles):
        return
    watched = tuple(key for key, c in out.checks.items()
                    if c.id in ("tcp-connect", "tls-verify", "https-ping")
                    and c.endpoint is not None and c.endpoint.param is None)
    link_key = next((key for key, c in out.checks.items() if c.id == "link-quality"), None)
    if watched:
        out.add(Check("icmp-reference", "icmp", icmp.REFERENCE, functools.partial(
            icmp.icmp_reference, watched=watched, link_key=link_key),
            after=watched + ((link_key,) if link_key else ()), timeout_diagnosis="icmp-blocked"))


def _links(plan: Plan, out: _Plan, expect_applied: bool) -> None:
    mn = plan.machine_network
    if mn is not None:
        if len(mn.interfaces) > 1:
            # Bridged ports carry no address of their own; the bridge does.
            for name in mn.interfaces:
                out.add(Check("link-state", "link", name, functools.partial(
                    _port_state, interface=name, expect_applied=expect_applied, port=plan.port(name))))
            out.add(Check("link-state", "link", MACHINE_BRIDGE, functools.partial(
                link.link_state, interface=MACHINE_BRIDGE, role="machine network bridge", address=mn.address,
                expect_applied=expect_applied)))
        else:
            out.add(Check("link-state", "link", mn.interfaces[0], functools.partial(
                link.link_state, interface=mn.interfaces[0], role="machine network", address=mn.address,
                expect_applied=expect_applied, port=plan.port(mn.interfaces[0]))))
        out.add(Check("link-isolation", "link", "machine network", functools.partial(
            link.link_isolation, interfaces=tuple(mn.interfaces), expect_applied=expect_applied,
            ports=plan.ports)))
    up = plan.uplink
    if up is not None and up.interface:
        out.add(Check("link-state", "link", up.interface, functools.partial(
            link.link_state, interface=up.interface, role="uplink",
            address=up.address if up.ipv4 == "static" else None, expect_applied=expect_applied,
            port=plan.port(up.interface))))


async def _port_state(ctx: Context, prereqs: Mapping[str, Result], *, interface: str, expect_applied: bool,
                      port: Port | None = None) -> Outcome:
    """A bridge port: it must exist and have carrier; its address lives on the bridge."""
    outcome = await link.link_state(ctx, prereqs, interface=interface, role="machine network port",
                                    address=None, expect_applied=expect_applied, port=port)
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

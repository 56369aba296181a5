"""Validation: pure functions from a Plan to a list of field-addressed errors.

Each rule says what would be valid, in words a technician can act on. Every address rule is
built on the standard library's `ipaddress`. Nothing here touches the system: what the box
has (its interfaces, its network stack) comes in as arguments, so the same rules serve the
command line, the wizard's fields and the fleet's `--set`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from installer import plan as planmod
from installer.fields import (check_apn, has_control, check_apn_credential, check_host_address, check_host_or_ip,
                              check_hostname, check_ifname, check_interface_address, check_passphrase,
                              check_proxy_url, check_ssid)
from installer.plan import FieldError, Plan

IPv4Interface = ipaddress.IPv4Interface

# What each topology needs (seed 000, "Network Architecture Options").
NEEDS_MACHINE_NETWORK = {"isolated", "wifi", "wireless-bridge", "cellular"}
UPLINK_KIND = {"single": "wired", "isolated": "wired", "wifi": "wireless",
               "wireless-bridge": "wireless", "cellular": "cellular"}
NEEDS_WIFI = {"wifi", "wireless-bridge"}
# A wired role may also be taken by a virtual link on top of Ethernet: a VLAN (eno1.100, the
# seed's "switch/VLAN"), a bond, or a container's veth.
WIRED_KINDS = {"wired", "virtual"}
KIND_WORDS = {"wired": "a wired (Ethernet) port", "wireless": "a WiFi interface",
              "cellular": "a cellular modem", "virtual": "a virtual interface", "loopback": "the loopback"}


@dataclass(frozen=True)
class Context:
    """What validation may know beyond the plan: the box's interfaces and the catalogue.

    `interface_kinds` maps the box's interface names to their kinds (from discovery); an
    interface the box does not list is judged by its name. `profiles` maps profile ids to
    their declared parameters (name -> required); `controllers` lists the known controller
    ids. None means "use the packaged catalogue".
    """

    interface_kinds: Mapping[str, str] | None = None
    profiles: Mapping[str, Mapping[str, bool]] | None = None
    controllers: frozenset[str] | None = None
    # The box the plan is for (installer.render.Target): what it cannot run is refused,
    # naming the package to install. None: no box (a plan judged on its own).
    target: Any = None
    # Parameters that are not host names: profile id -> {name: kind} ("sha256-fingerprint").
    # None: the packaged catalogue's.
    param_kinds: Mapping[str, Mapping[str, str]] | None = None


def default_context(interface_kinds: Mapping[str, str] | None = None, target: Any = None) -> Context:
    """A Context built from the packaged profiles and machine-protocol table, for the box
    `target` describes (installer.render.Target; None: no box)."""
    from installer.profiles import load_catalog

    catalog = load_catalog()
    return Context(
        interface_kinds=interface_kinds,
        profiles={pid: {name: spec.required for name, spec in p.params.items()}
                  for pid, p in catalog.profiles.items()},
        controllers=frozenset(catalog.controllers),
        target=target,
        param_kinds={pid: {n: spec.kind for n, spec in p.params.items() if spec.kind != "host"}
                     for pid, p in catalog.profiles.items()},
    )


# ---------------------------------------------------------------------------------------
# The whole plan.

def interface_kind(name: str, ctx: Context) -> str:
    """The kind of an interface: from the box when it has it, else guessed from the name."""
    if ctx.interface_kinds and name in ctx.interface_kinds:
        return ctx.interface_kinds[name]
    from installer.discover import kind_from_name

    return kind_from_name(name)


def validate(plan: Plan, ctx: Context | None = None) -> list[FieldError]:
    """Every problem of a plan, each naming its field and what would be valid. Never raises."""
    ctx = ctx or default_context()
    errors: list[FieldError] = []

    def err(path: str, message: str | None) -> None:
        if message:
            errors.append(FieldError(path, message))

    topo = plan.topology
    if topo is None:
        err("topology", f"required: one of {', '.join(planmod.TOPOLOGIES)}")
    elif topo not in planmod.TOPOLOGIES:
        err("topology", f"{topo!r} is not a topology; use one of {', '.join(planmod.TOPOLOGIES)}")
        topo = None
    if plan.renderer not in planmod.RENDERERS:
        err("renderer", f"{plan.renderer!r} is not a renderer; use netplan or networkmanager")
    err("hostname", check_hostname(plan.hostname))

    machine_net = _machine_network(plan, topo, ctx, err)
    uplink_net = _uplink(plan, topo, ctx, err, machine_net)
    _wifi(plan, topo, err)
    _cellular(plan, topo, ctx, err)
    _dns_ntp(plan, err)
    _proxy(plan, err)
    if plan.tls.extra_ca_file is not None and not plan.tls.extra_ca_file.startswith("/"):
        err("tls.extra_ca_file", "give an absolute path to a PEM file of CA certificates, e.g. /etc/ssl/plant-ca.pem")
    _profiles(plan, ctx, err)
    _machines(plan, ctx, err, machine_net if machine_net is not None else (uplink_net if topo == "single" else None),
              own=_own_addresses(plan))
    if ctx.target is not None and topo is not None:
        from installer.render import unmet_needs

        for path, message in unmet_needs(plan, ctx.target):
            err(path, message)
    return errors


def _machine_network(plan: Plan, topo: str | None, ctx: Context, err: Callable[[str, str | None], None]):
    mn = plan.machine_network
    if topo == "single":
        if mn is not None:
            err("machine_network", "topology single has no separate machine network (machines share the "
                                   "company network); remove machine_network or choose topology isolated")
        return None
    if topo is None:
        return None
    if mn is None:
        err("machine_network", f"required for topology {topo}: the wired port(s) facing the machines and a "
                               "static address, e.g. {interfaces: [eno1], address: 192.168.50.2/24}")
        return None
    ifaces = mn.interfaces
    if not ifaces:
        err("machine_network.interfaces", "required: the wired port facing the machines, e.g. [eno1]")
    elif topo != "wireless-bridge" and len(ifaces) > 1:
        err("machine_network.interfaces", f"topology {topo} has one machine-network port; list one, e.g. "
                                          f"[{ifaces[0]}] (two or more are bridged only in wireless-bridge)")
    seen: set[str] = set()
    for i, name in enumerate(ifaces):
        path = f"machine_network.interfaces[{i}]"
        problem = check_ifname(name)
        if problem:
            err(path, problem)
            continue
        if name in seen:
            err(path, f"{name} is listed twice")
        seen.add(name)
        kind = interface_kind(name, ctx)
        if kind not in WIRED_KINDS:
            err(path, f"{name} is {KIND_WORDS.get(kind, kind)}; the machine network needs a wired (Ethernet) port")
    problem = check_interface_address(mn.address)
    err("machine_network.address", problem)
    return None if problem else IPv4Interface(mn.address).network


def _uplink(plan: Plan, topo: str | None, ctx: Context, err, machine_net):
    up = plan.uplink
    if up is None:
        if topo is not None:
            err("uplink", f"required: the interface that reaches the company network, e.g. "
                          f"{{interface: {'wlan0' if topo in NEEDS_WIFI else 'enp2s0'}, ipv4: dhcp}}")
        return None
    problem = check_ifname(up.interface)
    err("uplink.interface", problem)
    if not problem and topo is not None:
        want = UPLINK_KIND[topo]
        kind = interface_kind(up.interface, ctx)
        if kind != want and not (want == "wired" and kind in WIRED_KINDS):
            err("uplink.interface", f"{up.interface} is {KIND_WORDS.get(kind, kind)}; topology {topo} "
                                    f"needs {KIND_WORDS[want]} as its uplink")
        if plan.machine_network and up.interface in plan.machine_network.interfaces:
            err("uplink.interface", f"{up.interface} is already the machine network's port; an interface "
                                    "has one role: give the uplink a different interface")
    if up.ipv4 not in planmod.IPV4_MODES:
        err("uplink.ipv4", f"{up.ipv4!r} is not a mode; use dhcp or static")
        return None
    if up.ipv4 == "dhcp":
        if up.address is not None:
            err("uplink.address", "only for ipv4: static; remove it or set ipv4: static")
        if up.gateway is not None:
            err("uplink.gateway", "only for ipv4: static; remove it or set ipv4: static")
        return None
    if topo == "cellular":
        err("uplink.ipv4", "a modem gets its address from the cellular network; use dhcp")
        return None
    problem = check_interface_address(up.address)
    err("uplink.address", problem)
    if problem:
        if up.gateway is None:
            err("uplink.gateway", "required for a static uplink: the router that reaches the internet")
        return None
    iface = IPv4Interface(up.address)
    net = iface.network
    if machine_net is not None and net.overlaps(machine_net):
        err("machine_network.address", f"{machine_net} overlaps the uplink's {net}; the machine network must "
                                       "be a separate subnet, e.g. 192.168.50.0/24")
    if up.gateway is None:
        err("uplink.gateway", f"required for a static uplink: the router that reaches the internet, inside {net}")
    else:
        gw_problem = check_host_address(up.gateway, within=net, what="gateway")
        if gw_problem is None and ipaddress.IPv4Address(up.gateway) == iface.ip:
            gw_problem = f"{up.gateway} is the uplink's own address; the gateway is the router's address in {net}"
        err("uplink.gateway", gw_problem)
    return net


def _wifi(plan: Plan, topo: str | None, err) -> None:
    w = plan.wifi
    if topo is None:
        return
    if topo not in NEEDS_WIFI:
        if w is not None:
            err("wifi", f"only for topologies wifi and wireless-bridge; remove it for topology {topo}")
        return
    if w is None:
        err("wifi", "required: the WiFi network to join, e.g. {ssid: Plant-Floor, security: wpa2-psk, passphrase: ...}")
        return
    err("wifi.ssid", check_ssid(w.ssid))
    if w.security in ("none", "open", "wep", "wep-open", "wep-shared", "owe"):
        err("wifi.security", f"{w.security} networks are refused: the seed requires a WPA2/WPA3 encrypted "
                             "network (seed 000); use wpa2-psk, wpa3-sae or wpa2-wpa3")
        return
    if w.security not in planmod.WIFI_SECURITY:
        err("wifi.security", f"{w.security!r} is not supported; use wpa2-psk, wpa3-sae or wpa2-wpa3")
        return
    err("wifi.passphrase", check_passphrase(w.passphrase, w.security))


def _cellular(plan: Plan, topo: str | None, ctx: Context, err) -> None:
    c = plan.cellular
    if topo is None:
        return
    if topo != "cellular":
        if c is not None:
            err("cellular", f"only for topology cellular; remove it for topology {topo}")
        return
    if c is None:
        err("cellular", "required: {apn: ..., acknowledge_unsupported: true}")
        return
    if c.acknowledge_unsupported is not True:
        err("cellular.acknowledge_unsupported",
            "must be true: cellular is 'use at your own risk' and not supported by MachineMetrics "
            "(seed 000, Option 5); set it to true only once the plant accepts that")
    err("cellular.apn", check_apn(c.apn))
    err("cellular.username", check_apn_credential(c.username, "user name"))
    err("cellular.password", check_apn_credential(c.password, "password", secret=True))
    if c.password is not None and c.username is None:
        err("cellular.username", "a password needs its user name; give both or neither")
    if c.data_cap_mb is not None and c.data_cap_mb <= 0:
        err("cellular.data_cap_mb", "the monthly data cap in MB must be a positive number, e.g. 5000")


def _dns_ntp(plan: Plan, err) -> None:
    if plan.dns.mode not in planmod.DNS_MODES:
        err("dns.mode", f"{plan.dns.mode!r} is not a mode; use google, dhcp or custom")
    elif plan.dns.mode == "custom" and not plan.dns.servers:
        err("dns.servers", "mode custom needs at least one server address, e.g. [10.20.0.53]")
    elif plan.dns.mode != "custom" and plan.dns.servers:
        err("dns.servers", f"only for mode custom; remove them or set dns.mode: custom (mode {plan.dns.mode} "
                           "chooses its servers itself)")
    static = plan.uplink is not None and plan.uplink.ipv4 == "static"
    if plan.dns.mode == "dhcp" and static:
        err("dns.mode", "dhcp takes the resolvers from the plant's DHCP, and this uplink is static: "
                        "use google or custom (with the plant's resolvers)")
    if plan.ntp.mode == "dhcp" and static:
        err("ntp.mode", "dhcp takes the time servers from the plant's DHCP, and this uplink is static: "
                        "use pool or custom (with the plant's time servers)")
    for i, s in enumerate(plan.dns.servers):
        try:
            ipaddress.ip_address(s)
        except ValueError:
            err(f"dns.servers[{i}]", f"{s!r} is not an IP address; a resolver is given by address, e.g. 10.20.0.53")
    if plan.ntp.mode not in planmod.NTP_MODES:
        err("ntp.mode", f"{plan.ntp.mode!r} is not a mode; use pool, dhcp or custom")
    elif plan.ntp.mode == "custom" and not plan.ntp.servers:
        err("ntp.servers", "mode custom needs at least one server, e.g. [ntp.plant.local]")
    elif plan.ntp.mode != "custom" and plan.ntp.servers:
        err("ntp.servers", "only for mode custom; remove them or set ntp.mode: custom")
    for i, s in enumerate(plan.ntp.servers):
        err(f"ntp.servers[{i}]", check_host_or_ip(s, what="time server"))


def _proxy(plan: Plan, err) -> None:
    p = plan.proxy
    if p is None:
        return
    err("proxy.url", check_proxy_url(p.url))
    if p.password is not None and p.username is None:
        err("proxy.username", "a password needs its user name; give both or neither")
    if p.username is not None and (p.username == "" or has_control(p.username)):
        err("proxy.username", "must be one non-empty line of printable characters (no control or "
                              "text-direction character)")
    if p.password is not None and has_control(p.password):
        err("proxy.password", "must be one line without NUL or other control characters (never shown)")
    for i, entry in enumerate(p.no_proxy):
        if not _no_proxy_ok(entry):
            err(f"proxy.no_proxy[{i}]", f"{entry!r} is not a host, domain (.plant.local), IP or network "
                                        "(10.0.0.0/8); one entry per list item")


def _no_proxy_ok(entry: str) -> bool:
    if not entry or any(c in entry for c in " ,;\"'\\\t\n"):
        return False
    try:
        ipaddress.ip_network(entry, strict=False)
        return True
    except ValueError:
        pass
    host = entry.lstrip(".").removeprefix("*.")
    if ":" in host:  # host:port
        host, _, port = host.rpartition(":")
        if not port.isdigit():
            return False
    return check_host_or_ip(host) is None


def _profiles(plan: Plan, ctx: Context, err) -> None:
    known = ctx.profiles if ctx.profiles is not None else default_context().profiles
    from installer.profiles import param_error

    kinds = ctx.param_kinds if ctx.param_kinds is not None else default_context().param_kinds or {}
    seen: set[str] = set()
    for i, pid in enumerate(plan.profiles):
        if pid not in known:
            err(f"profiles[{i}]", f"{pid!r} is not a profile; use {', '.join(sorted(known))}")
            continue
        if pid in seen:
            err(f"profiles[{i}]", f"{pid} is listed twice")
        seen.add(pid)
        params = plan.profile_params.get(pid, {})
        for name, required in known[pid].items():
            if required and not params.get(name):
                err(f"profile_params.{pid}.{name}", f"required by profile {pid}: e.g. "
                                                    f"profile_params: {{{pid}: {{{name}: iem.plant.local}}}}")
    for pid, params in plan.profile_params.items():
        if pid not in seen:
            err(f"profile_params.{pid}", f"parameters for a profile the plan does not select; add {pid} to "
                                         "profiles or remove these parameters")
            continue
        for name, value in params.items():
            if name not in known[pid]:
                err(f"profile_params.{pid}.{name}", f"profile {pid} has no parameter {name!r}; it takes "
                                                    f"{', '.join(known[pid]) or 'none'}")
            elif kinds.get(pid, {}).get(name, "host") != "host":
                err(f"profile_params.{pid}.{name}", param_error(kinds[pid][name], value))
            else:
                err(f"profile_params.{pid}.{name}", check_host_or_ip(value, what="host"))


def _own_addresses(plan: Plan) -> set[ipaddress.IPv4Address]:
    own = set()
    for value in (plan.machine_network.address if plan.machine_network else None,
                  plan.uplink.address if plan.uplink and plan.uplink.ipv4 == "static" else None):
        try:
            own.add(IPv4Interface(value).ip)
        except (ValueError, TypeError):
            pass
    return own


def _machines(plan: Plan, ctx: Context, err, net, own) -> None:
    controllers = ctx.controllers if ctx.controllers is not None else default_context().controllers
    names: set[str] = set()
    pairs: set[tuple[str, str]] = set()
    for i, m in enumerate(plan.machines):
        path = f"machines[{i}]"
        if not m.name or not m.name.strip():
            err(f"{path}.name", "required: a name the report can use, e.g. Lathe 3")
        elif len(m.name) > 64 or any(ord(c) < 32 for c in m.name):
            err(f"{path}.name", "a machine name is one line of at most 64 characters")
        elif m.name in names:
            err(f"{path}.name", f"{m.name!r} is already used by another machine; names must differ")
        else:
            names.add(m.name)
        problem = check_host_address(m.address, within=net, what="machine address")
        if problem is None and ipaddress.IPv4Address(m.address) in own:
            problem = f"{m.address} is the edge box's own address; give the machine's address"
        err(f"{path}.address", problem)
        if not m.controller:
            err(f"{path}.controller", f"required: one of {', '.join(sorted(controllers))}")
        elif m.controller not in controllers:
            err(f"{path}.controller", f"{m.controller!r} is not a known controller; use one of "
                                      f"{', '.join(sorted(controllers))}")
        elif m.address and (m.address, m.controller) in pairs:
            err(path, f"{m.address} with {m.controller} is listed twice")
        if m.address and m.controller:
            pairs.add((m.address, m.controller))


def validate_document(data: Any, ctx: Context | None = None, source: str = "plan") -> tuple[Plan | None, list[FieldError]]:
    """Parse plain data (e.g. from YAML) and validate it: (plan, []) or (plan-or-None, errors)."""
    try:
        p = planmod.from_dict(data, source)
    except planmod.PlanError as e:
        return None, e.errors
    return p, validate(p, ctx)

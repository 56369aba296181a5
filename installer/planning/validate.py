"""Validation: pure functions from a Plan to a list of field-addressed errors.

Each rule says what would be valid, in words a technician can act on. Every address rule is
built on the standard library's `ipaddress`. Nothing here touches the system: what the box
has (its interfaces, its network stack) comes in as arguments, so the same rules serve the
command line, the wizard's fields and the fleet's `--set`.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from installer.planning import model as planmod
from installer.planning.fields import (
    check_apn,
    check_apn_credential,
    check_country,
    check_driver,
    check_eap_secret,
    check_eap_text,
    check_host_address,
    check_host_or_ip,
    check_hostname,
    check_ifname,
    check_interface_address,
    check_mac,
    check_passphrase,
    check_pem_path,
    check_port_path,
    check_proxy_url,
    check_ssid,
    has_control,
)
from installer.planning.model import FieldError, Plan, PlanError, Wifi
from installer.planning.planread import from_data

if TYPE_CHECKING:
    from installer.render.base import Target

IPv4Interface = ipaddress.IPv4Interface
# How each rule reports a problem: err(field, message); a None message is no problem.
Err = Callable[[str, str | None], None]

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
    target: Target | None = None
    # Parameters that are not host names: profile id -> {name: kind} ("sha256-fingerprint").
    # None: the packaged catalogue's.
    param_kinds: Mapping[str, Mapping[str, str]] | None = None


def default_context(interface_kinds: Mapping[str, str] | None = None, target: Target | None = None) -> Context:
    """A Context built from the packaged profiles and machine-protocol table, for the box
    `target` describes (installer.render.Target; None: no box)."""
    from installer.vendors.profiles import load_catalog

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
    from installer.box.discover import kind_from_name

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
        err("topology", f"{topo!r} is not a topology{suggest(topo, planmod.TOPOLOGIES)}; use one of "
                        f"{', '.join(planmod.TOPOLOGIES)}")
        topo = None
    if plan.renderer not in planmod.RENDERERS:
        err("renderer", f"{plan.renderer!r} is not a renderer{suggest(plan.renderer, planmod.RENDERERS)}; use netplan "
                        "or networkmanager")
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
    _ports(plan, topo, err)
    _machines(plan, ctx, err, machine_net if machine_net is not None else (uplink_net if topo == "single" else None),
              own=_own_addresses(plan))
    if ctx.target is not None and topo is not None:
        from installer.render import unmet_needs

        for path, message in unmet_needs(plan, ctx.target):
            err(path, message)
    return errors


def _machine_network(plan: Plan, topo: str | None, ctx: Context, err: Err) -> ipaddress.IPv4Network | None:
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


def _uplink(plan: Plan, topo: str | None, ctx: Context, err: Err,
            machine_net: ipaddress.IPv4Network | None) -> ipaddress.IPv4Network | None:
    up = plan.uplink
    if up is None:
        if topo is not None:
            err("uplink", f"required: the interface that reaches the company network, e.g. "
                          f"{{interface: {'wlan0' if topo in NEEDS_WIFI else 'enp2s0'}, ipv4: dhcp}}")
        return None
    problem = check_ifname(up.interface)
    err("uplink.interface", problem)
    if not problem and up.interface is not None and topo is not None:  # no problem: an interface is named
        want = UPLINK_KIND[topo]
        kind = interface_kind(up.interface, ctx)
        if kind != want and not (want == "wired" and kind in WIRED_KINDS):
            err("uplink.interface", f"{up.interface} is {KIND_WORDS.get(kind, kind)}; topology {topo} "
                                    f"needs {KIND_WORDS[want]} as its uplink")
        if plan.machine_network and up.interface in plan.machine_network.interfaces:
            err("uplink.interface", f"{up.interface} is already the machine network's port; an interface "
                                    "has one role: give the uplink a different interface")
    if up.ipv4 not in planmod.IPV4_MODES:
        err("uplink.ipv4", f"{up.ipv4!r} is not a mode{suggest(up.ipv4, planmod.IPV4_MODES)}; use dhcp or static")
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


def _wifi(plan: Plan, topo: str | None, err: Err) -> None:
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
    err("wifi.country", check_country(w.country))
    choices = ", ".join(planmod.WIFI_SECURITY)
    if w.security in ("none", "open", "wep", "wep-open", "wep-shared", "owe"):
        from installer.vendors.sources import TITLES

        err("wifi.security", f"{w.security} networks are refused: {TITLES['000']} requires a WPA2/WPA3 "
                             f"encrypted network; use one of {choices}")
        return
    if w.security not in planmod.WIFI_SECURITY:
        err("wifi.security", f"{w.security!r} is not supported; use one of {choices}")
        return
    if w.security in planmod.WIFI_ENTERPRISE:
        _wifi_enterprise(w, err)
        return
    err("wifi.passphrase", check_passphrase(w.passphrase, w.security))
    for key in _EAP_KEYS:
        if getattr(w, key) is not None:
            err(f"wifi.{key}", f"only for wpa2-enterprise or wpa3-enterprise (802.1X); {w.security} uses the "
                               "passphrase: remove it, or choose an enterprise security")


_EAP_KEYS = ("eap_method", "identity", "anonymous_identity", "eap_password", "ca_certificate",
             "client_certificate", "private_key", "private_key_password")
_PEAP_ONLY = ("eap_password",)
_TLS_ONLY = ("client_certificate", "private_key", "private_key_password")


def _wifi_enterprise(w: Wifi, err: Err) -> None:
    """WPA2/WPA3-Enterprise: PEAP (MSCHAPv2 inside) or EAP-TLS, always against the plant's CA."""
    if w.passphrase is not None:
        err("wifi.passphrase", f"{w.security} authenticates the box with 802.1X (an identity and a password or "
                               "certificate), not a shared passphrase: remove it, or choose wpa2-psk, wpa3-sae "
                               "or wpa2-wpa3")
    if w.eap_method is None:
        err("wifi.eap_method", "required for an enterprise network: peap (user name and password) or tls "
                               "(a client certificate)")
    elif w.eap_method not in planmod.EAP_METHODS:
        err("wifi.eap_method", f"{w.eap_method!r} is not supported; use peap (PEAP with MSCHAPv2) or tls (EAP-TLS)")
    err("wifi.identity", check_eap_text(w.identity, "identity (user name) the plant's RADIUS server knows the "
                                                    "box by", required=True))
    err("wifi.anonymous_identity", check_eap_text(w.anonymous_identity, "anonymous (outer) identity"))
    if w.ca_certificate is None:
        err("wifi.ca_certificate", "required: the plant's CA certificate (PEM) that signed the RADIUS server's "
                                   "certificate, e.g. /etc/ssl/plant/radius-ca.pem; without it the box would send "
                                   "its credentials to any access point that claims the network's name")
    else:
        err("wifi.ca_certificate", check_pem_path(w.ca_certificate, "CA certificate"))
    if w.eap_method == "peap":
        err("wifi.eap_password", check_eap_secret(w.eap_password, "EAP password", required=True))
        for key in _TLS_ONLY:
            if getattr(w, key) is not None:
                err(f"wifi.{key}", "only for eap_method tls (EAP-TLS); PEAP uses the identity and eap_password: "
                                   "remove it, or set eap_method: tls")
    elif w.eap_method == "tls":
        err("wifi.client_certificate", check_pem_path(w.client_certificate, "client certificate", required=True))
        err("wifi.private_key", check_pem_path(w.private_key, "client's private key", required=True))
        err("wifi.private_key_password", check_eap_secret(w.private_key_password, "private key's password"))
        for key in _PEAP_ONLY:
            if getattr(w, key) is not None:
                err(f"wifi.{key}", "only for eap_method peap; EAP-TLS proves the box by its certificate: remove "
                                   "it, or set eap_method: peap")


def _cellular(plan: Plan, topo: str | None, ctx: Context, err: Err) -> None:
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
            "(MachineMetrics, Network Requirements, Option 5); set it to true only once the plant accepts that")
    err("cellular.apn", check_apn(c.apn))
    err("cellular.username", check_apn_credential(c.username, "user name"))
    err("cellular.password", check_apn_credential(c.password, "password", secret=True))
    if c.password is not None and c.username is None:
        err("cellular.username", "a password needs its user name; give both or neither")
    if c.data_cap_mb is not None and c.data_cap_mb <= 0:
        err("cellular.data_cap_mb", "the monthly data cap must be positive: a number of MB, e.g. 5000, or text "
                                    "with its unit, e.g. '2 GB' (1 GB = 1000 MB)")


def _dns_ntp(plan: Plan, err: Err) -> None:
    if plan.dns.mode not in planmod.DNS_MODES:
        err("dns.mode", f"{plan.dns.mode!r} is not a mode{suggest(plan.dns.mode, planmod.DNS_MODES)}; use google, "
                        "dhcp or custom")
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
        err("ntp.mode", f"{plan.ntp.mode!r} is not a mode{suggest(plan.ntp.mode, planmod.NTP_MODES)}; use pool, "
                        "dhcp or custom")
    elif plan.ntp.mode == "custom" and not plan.ntp.servers:
        err("ntp.servers", "mode custom needs at least one server, e.g. [ntp.plant.local]")
    elif plan.ntp.mode != "custom" and plan.ntp.servers:
        err("ntp.servers", "only for mode custom; remove them or set ntp.mode: custom")
    for i, s in enumerate(plan.ntp.servers):
        err(f"ntp.servers[{i}]", check_host_or_ip(s, what="time server"))


def _proxy(plan: Plan, err: Err) -> None:
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


def _profiles(plan: Plan, ctx: Context, err: Err) -> None:
    from installer.vendors.profiles import param_error

    # What the context leaves open is the packaged catalogue's (whose context has both).
    packaged = ctx if ctx.profiles is not None and ctx.param_kinds is not None else default_context()
    known = ctx.profiles if ctx.profiles is not None else packaged.profiles or {}
    kinds = ctx.param_kinds if ctx.param_kinds is not None else packaged.param_kinds or {}
    seen: set[str] = set()
    for i, pid in enumerate(plan.profiles):
        if pid not in known:
            err(f"profiles[{i}]", f"{pid!r} is not a profile{suggest(pid, known)}; use {', '.join(sorted(known))}")
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
                err(f"profile_params.{pid}.{name}", f"profile {pid} has no parameter {name!r}"
                                                    f"{suggest(name, known[pid])}; it takes "
                                                    f"{', '.join(known[pid]) or 'none'}")
            elif kinds.get(pid, {}).get(name, "host") != "host":
                err(f"profile_params.{pid}.{name}", param_error(kinds[pid][name], value))
            else:
                err(f"profile_params.{pid}.{name}", check_host_or_ip(value, what="host"))


def suggest(value: Any, choices: Iterable[str]) -> str:
    """"; did you mean 'isolated'?" for a misspelt value close to one of `choices`, else ""."""
    import difflib

    if not isinstance(value, str) or not value:
        return ""
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.6)
    if not close:
        # A prefix typed short ("machinemetric") or long ("isolated-network") of one choice.
        close = [c for c in choices if len(value) >= 3 and (c.startswith(value) or value.startswith(c))][:1]
    return f" (did you mean {close[0]!r}?)" if close and close[0] != value else ""


def _ports(plan: Plan, topo: str | None, err: Err) -> None:
    """`ports`: each names a port the plan uses and binds it to exactly one of mac, driver or path;
    no two bind the same hardware, and none can be ambiguous by construction."""
    used = list(plan.machine_network.interfaces) if plan.machine_network else []
    if plan.uplink is not None and plan.uplink.interface:
        used.append(plan.uplink.interface)
    seen: dict[tuple[str, str], str] = {}
    for port in plan.ports:
        path = f"ports.{port.name}"
        problem = check_ifname(port.name)
        if problem:
            err(path, problem)
            continue
        if "." in port.name:
            err(path, f"{port.name} is a VLAN on a port: it follows its parent port; bind that port instead")
            continue
        if port.name not in used:
            err(path, f"the plan uses no port called {port.name}{suggest(port.name, used)}; a binding names a "
                      f"port of machine_network.interfaces or uplink.interface ({', '.join(used) or 'none yet'})")
            continue
        given = [k for k in planmod.PORT_BINDINGS if getattr(port, k) is not None]
        if not given:
            err(path, "give one of mac, driver or path, e.g. {mac: '52:54:00:12:34:56'}")
            continue
        if len(given) > 1:
            err(path, f"gives {' and '.join(given)}; give exactly one of mac, driver or path")
            continue
        kind = given[0]
        value = getattr(port, kind)
        problem = {"mac": check_mac, "driver": check_driver, "path": check_port_path}[kind](value)
        if problem:
            err(f"{path}.{kind}", problem)
            continue
        if topo == "cellular" and plan.uplink is not None and port.name == plan.uplink.interface:
            err(path, "a modem is found by ModemManager, not by a port binding; bind Ethernet and WiFi ports only")
            continue
        key = (kind, value.lower())
        if key in seen:
            if kind == "driver":
                err(f"{path}.driver", f"ports.{seen[key]} is bound to driver {value} too: a driver finds one port, "
                                      "so two ports of one driver cannot be told apart; bind them by path (the "
                                      "socket on this box model) or by MAC")
            else:
                err(f"{path}.{kind}", f"ports.{seen[key]} has the same {kind}; each port is different hardware")
            continue
        seen[key] = port.name


def _own_addresses(plan: Plan) -> set[ipaddress.IPv4Address]:
    own = set()
    for value in (plan.machine_network.address if plan.machine_network else None,
                  plan.uplink.address if plan.uplink and plan.uplink.ipv4 == "static" else None):
        try:
            own.add(IPv4Interface(value).ip)
        except (ValueError, TypeError):
            pass
    return own


def _machines(plan: Plan, ctx: Context, err: Err, net: ipaddress.IPv4Network | None,
              own: set[ipaddress.IPv4Address]) -> None:
    controllers = ctx.controllers if ctx.controllers is not None else default_context().controllers or frozenset()
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
            err(f"{path}.controller", f"{m.controller!r} is not a known controller"
                                      f"{suggest(m.controller, controllers)}; use one of "
                                      f"{', '.join(sorted(controllers))}")
        elif m.address and (m.address, m.controller) in pairs:
            err(path, f"{m.address} with {m.controller} is listed twice")
        if m.address and m.controller:
            pairs.add((m.address, m.controller))


def validate_document(data: Any, ctx: Context | None = None,
                      source: str = "plan") -> tuple[Plan | None, list[FieldError]]:
    """Parse plain data (e.g. from YAML) and validate it: (plan, []) or (plan-or-None, errors)."""
    try:
        p = from_data(data, source, judge=validate)
    except PlanError as e:
        return None, e.errors
    return p, validate(p, ctx)

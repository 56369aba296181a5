"""The netplan renderer: one YAML file under /etc/netplan, mode 0600.

netplan merges every file of /etc/netplan in name order, so ours is one complete
description; conflicting files are moved aside by the writer, not merged with.
"""

from __future__ import annotations

from typing import Any

from installer.planning.fields import canonical_mac
from installer.planning.model import GOOGLE_DNS, Plan
from installer.render.base import MACHINE_BRIDGE, NETPLAN_FILE, RenderedFile, Target, netplan_backend
from installer.render.yamltext import dump, dumpers

# yaml.safe_dump's dumper, and libyaml's for tame data (installer.render.yamltext).
_Dumper, _FastDumper = dumpers()


HEADER = (
    "# Written by edge-installer. Edit the plan and render again rather than this file:\n"
    "# the next run of edge-installer replaces it.\n"
)


def render(plan: Plan, target: Target) -> list[RenderedFile]:
    """The netplan file for the plan (networkd or NetworkManager backend, see netplan_backend)."""
    backend = netplan_backend(plan, target)
    network: dict[str, Any] = {"version": 2, "renderer": backend}
    ethernets: dict[str, Any] = {}
    bridges: dict[str, Any] = {}
    wifis: dict[str, Any] = {}
    modems: dict[str, Any] = {}

    mn = plan.machine_network
    if mn is not None:
        # No gateway, no routes, no DHCP: machines have no internet access (seed 000).
        # `optional` keeps boot from waiting on a machine switch that is switched off.
        static = {"dhcp4": False, "dhcp6": False, "link-local": [], "addresses": [mn.address]}
        if len(mn.interfaces) >= 2:
            for name in mn.interfaces:
                ethernets[name] = {"dhcp4": False, "dhcp6": False, "link-local": [], "optional": True}
            bridges[MACHINE_BRIDGE] = {"interfaces": list(mn.interfaces), **static, "optional": True,
                                       "parameters": {"stp": False, "forward-delay": 0}}
        else:
            ethernets[mn.interfaces[0]] = {**static, "optional": True}

    up = plan.uplink
    assert up is not None and up.interface is not None, "render needs a validated plan"
    link = _uplink_addressing(plan, backend)
    if plan.topology == "cellular":
        cell = plan.cellular
        assert cell is not None
        modem: dict[str, Any] = {"apn": cell.apn}
        if cell.username is not None:
            modem["username"] = cell.username
        if cell.password is not None:
            modem["password"] = cell.password
        modems[up.interface] = {**modem, **link}
    elif plan.wifi is not None and plan.topology in ("wifi", "wireless-bridge"):
        radio = dict(link)
        if plan.wifi.country and target.netplan_version >= REGDOM_NETPLAN:
            # netplan writes `iw reg set` (netplan-regdom.service, both backends) and, for networkd,
            # wpa_supplicant's country=; installer.render.dropins adds the boot-time setting.
            radio["regulatory-domain"] = plan.wifi.country
        wifis[up.interface] = {**radio, "access-points": {plan.wifi.ssid: _access_point(plan, target, backend)}}
    else:
        ethernets[up.interface] = link

    for section in (ethernets, wifis):
        for name in section:
            section[name] = {**_match(plan, name), **section[name]}
    for key, section in (("ethernets", ethernets), ("bridges", bridges), ("wifis", wifis), ("modems", modems)):
        if section:
            network[key] = section
    text = HEADER + dump({"network": network}, _Dumper, _FastDumper)
    secret = bool(plan.wifi and (plan.wifi.passphrase or plan.wifi.eap_password or plan.wifi.private_key_password)
                  and wifis) or bool(plan.cellular and plan.cellular.password and modems)
    return [RenderedFile(NETPLAN_FILE, text.encode("utf-8"), 0o600,
                         f"netplan configuration ({backend} backend)", secret=secret)]


def _match(plan: Plan, name: str) -> dict[str, Any]:
    """`match` and `set-name` for a port the plan binds to its MAC or driver (plan `ports`): udev
    then gives the port the plan's name on whatever box, and both backends configure it by
    that name. A port bound by path has no netplan match (netplan has none for ID_PATH): the
    systemd .link file of installer.render.dropins renames it, and netplan finds it by name."""
    port = plan.port(name)
    if port is None or port.path is not None:
        return {}
    if port.mac is not None:
        return {"match": {"macaddress": canonical_mac(port.mac)}, "set-name": name}
    # With two ports of this driver, udev renames the first one only (netplan(5), set-name);
    # `check` refuses the ambiguity on the box (installer.box.ports).
    return {"match": {"driver": port.driver}, "set-name": name}


def _uplink_addressing(plan: Plan, backend: str) -> dict[str, Any]:
    up = plan.uplink
    assert up is not None
    link: dict[str, Any] = {}
    overrides: dict[str, Any] = {}
    servers = GOOGLE_DNS if plan.dns.mode == "google" else plan.dns.servers if plan.dns.mode == "custom" else ()
    # An IPv6 resolver is only reachable with IPv6 configured; NetworkManager refuses IPv6
    # DNS on a link whose IPv6 is not automatic.
    ipv6_dns = any(":" in s for s in servers)
    if up.ipv4 == "static":
        link["dhcp4"] = False
        link["addresses"] = [up.address]
        link["routes"] = [{"to": "default", "via": up.gateway}]
    else:
        link["dhcp4"] = True
        if plan.dns.mode == "custom":
            overrides["use-dns"] = False  # custom resolvers replace the plant's, not join them
        if plan.ntp.mode != "dhcp":
            overrides["use-ntp"] = False
    if ipv6_dns:
        link["dhcp6"] = True
    if servers:
        # With DHCP the plant's resolvers stay configured beside Google's: the seed's fallback.
        link["nameservers"] = {"addresses": list(servers)}
    if overrides:
        link["dhcp4-overrides"] = overrides
        if ipv6_dns:
            link["dhcp6-overrides"] = dict(overrides)  # networkd needs both to agree
    if backend == "NetworkManager" and plan.dns.mode == "custom":
        # netplan 0.106 does not carry use-dns: false to NetworkManager; say it directly.
        passthrough = {"ipv4.ignore-auto-dns": "true"}
        if ipv6_dns:
            passthrough["ipv6.ignore-auto-dns"] = "true"
        link["networkmanager"] = {"passthrough": passthrough}
    return link


def _access_point(plan: Plan, target: Target, backend: str) -> dict[str, Any]:
    wifi = plan.wifi
    assert wifi is not None
    ap: dict[str, Any] = {}
    if wifi.security in ("wpa2-enterprise", "wpa3-enterprise"):
        ap["auth"] = _eap_auth(plan, backend)
        if wifi.security == "wpa3-enterprise":
            # WPA3-Enterprise: WPA-EAP with management-frame protection required (pmf=3); NetworkManager
            # then offers WPA-EAP-SHA256 too. netplan 0.106 has no key for it: passthrough, on the
            # NetworkManager backend that netplan_backend() chose for it.
            assert backend == "NetworkManager"
            ap["networkmanager"] = {"passthrough": {"wifi-security.pmf": "3"}}
    elif wifi.security == "wpa3-sae":
        if target.netplan_version >= (0, 107):
            ap["auth"] = {"key-management": "sae", "password": wifi.passphrase}
        else:
            # netplan 0.106 has no `sae`; NetworkManager (forced by netplan_backend) takes it
            # through passthrough (SPEC, "Facts checked on Debian 12").
            assert backend == "NetworkManager"
            ap["password"] = wifi.passphrase
            ap["networkmanager"] = {"passthrough": {"wifi-security.key-mgmt": "sae"}}
    else:
        # WPA2-PSK, and transition networks joined by their WPA2 side, which every
        # WPA2/WPA3 transition access point accepts.
        ap["auth"] = {"key-management": "psk", "password": wifi.passphrase}
    if wifi.hidden:
        ap["hidden"] = True
    return ap


# netplan learned `regulatory-domain` in 0.105 (canonical/netplan pull 281, 2022).
REGDOM_NETPLAN = (0, 105)


def _eap_auth(plan: Plan, backend: str) -> dict[str, Any]:
    """netplan's `auth` block for 802.1X: PEAP with MSCHAPv2 inside, or EAP-TLS."""
    wifi = plan.wifi
    assert wifi is not None
    auth: dict[str, Any] = {"key-management": "eap", "method": wifi.eap_method, "identity": wifi.identity}
    if wifi.anonymous_identity:
        auth["anonymous-identity"] = wifi.anonymous_identity
    auth["ca-certificate"] = wifi.ca_certificate
    if wifi.eap_method == "peap":
        auth["password"] = wifi.eap_password
        # netplan copies the value as it is: wpa_supplicant (networkd) knows the method only as
        # "MSCHAPV2" (it compares case-sensitively), NetworkManager's keyfile only as "mschapv2".
        auth["phase2-auth"] = "mschapv2" if backend == "NetworkManager" else "MSCHAPV2"
    else:
        auth["client-certificate"] = wifi.client_certificate
        auth["client-key"] = wifi.private_key
        if wifi.private_key_password:
            auth["client-key-password"] = wifi.private_key_password
    return auth

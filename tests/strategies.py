"""Hypothesis strategies for plans: valid ones (that the real tools must accept) and
plan-shaped garbage (that must never make loading or validation raise)."""

from __future__ import annotations

import dataclasses
import ipaddress
import string
from pathlib import Path

from hypothesis import strategies as st

from installer.planning import plan as P
from installer.planning.fields import has_control

WIRED = ["eno1", "eno2", "enp2s0", "enp3s0", "eth0", "eth1", "ens18"]
WIRELESS = ["wlan0", "wlp3s0", "wlx00c0ca123456"]
MODEMS = ["cdc-wdm0", "wwan0", "ttyUSB2"]
CONTROLLERS = ["fanuc-focas", "mtconnect-agent", "mtconnect-adapter", "siemens-opc-ua", "modbus-tcp",
               "allen-bradley-ethernet-ip", "heidenhain"]
PRINTABLE = "".join(c for c in string.printable if c not in "\t\n\r\x0b\x0c")

# Text that stresses every quoting layer: YAML, keyfile escapes, netplan's own parser.
tricky_text = st.text(alphabet=PRINTABLE, min_size=1)
ssids = st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=0x2FF, blacklist_categories=("Cs",)),
                min_size=1, max_size=32).filter(lambda s: 1 <= len(s.encode()) <= 32 and not has_control(s))
passphrases = st.text(alphabet=PRINTABLE, min_size=8, max_size=63)


@st.composite
def subnet(draw, *, avoid: ipaddress.IPv4Network | None = None):
    """A private /16-/29 subnet and a host address inside it (not network/broadcast)."""
    while True:
        prefix = draw(st.integers(16, 29))
        base = draw(st.sampled_from(["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]))
        parent = ipaddress.IPv4Network(base)
        if prefix < parent.prefixlen:
            continue
        index = draw(st.integers(0, 2 ** (prefix - parent.prefixlen) - 1))
        net = ipaddress.IPv4Network((int(parent.network_address) + index * 2 ** (32 - prefix), prefix))
        if avoid is None or not net.overlaps(avoid):
            break
    hosts = net.num_addresses - 2
    host = net.network_address + 1 + draw(st.integers(0, hosts - 1))
    return net, host


# Real PEM files (tests/pki): libnm's keyfile reader checks that the files a keyfile names exist.
PKI = Path(__file__).resolve().parent / "pki"


@st.composite
def enterprise(draw, wifi: P.Wifi):
    """An 802.1X login for an enterprise WiFi: PEAP or EAP-TLS, with the CA always given."""
    identities = tricky_text.filter(lambda s: s.strip() == s and len(s) <= 253)
    common = {"passphrase": None, "identity": draw(identities), "ca_certificate": str(PKI / "radius-ca.pem"),
              "anonymous_identity": draw(st.none() | identities),
              "country": draw(st.none() | st.sampled_from(["DE", "US", "GB", "00"]))}
    if draw(st.booleans()):
        return dataclasses.replace(wifi, eap_method="peap",
                                   eap_password=draw(tricky_text.filter(lambda s: len(s) <= 256)), **common)
    return dataclasses.replace(wifi, eap_method="tls", client_certificate=str(PKI / "edge.pem"),
                               private_key=str(PKI / "edge.key"),
                               private_key_password=draw(st.none() | tricky_text.filter(lambda s: len(s) <= 256)),
                               **common)


@st.composite
def valid_plans(draw):
    """A plan that validate() must accept and the renderers must turn into accepted files."""
    topology = draw(st.sampled_from(P.TOPOLOGIES))
    renderer = draw(st.sampled_from(P.RENDERERS))
    wired = draw(st.permutations(WIRED))
    machine_network = None
    mnet = None
    if topology != "single":
        count = draw(st.integers(1, 3)) if topology == "wireless-bridge" else 1
        mnet, mhost = draw(subnet())
        machine_network = P.MachineNetwork(tuple(wired[:count]), f"{mhost}/{mnet.prefixlen}")
    uplink_name = {"single": wired[-1], "isolated": wired[-1], "cellular": draw(st.sampled_from(MODEMS))}.get(
        topology) or draw(st.sampled_from(WIRELESS))
    uplink = P.Uplink(uplink_name, "dhcp")
    unet = None
    if topology != "cellular" and draw(st.booleans()):
        unet, uhost = draw(subnet(avoid=mnet))
        gateway = unet.network_address + 1 if uhost != unet.network_address + 1 else unet.network_address + 2
        uplink = P.Uplink(uplink_name, "static", f"{uhost}/{unet.prefixlen}", str(gateway))
    wifi = cellular = None
    if topology in ("wifi", "wireless-bridge"):
        security = draw(st.sampled_from(P.WIFI_SECURITY))
        pw = draw(passphrases)
        if security != "wpa3-sae" and draw(st.integers(0, 9)) == 0:
            pw = draw(st.text(alphabet="0123456789abcdefABCDEF", min_size=64, max_size=64))
        wifi = P.Wifi(draw(ssids), security, pw, draw(st.booleans()))
        if security in P.WIFI_ENTERPRISE:
            wifi = draw(enterprise(wifi))
    if topology == "cellular":
        user = draw(st.none() | tricky_text.filter(lambda s: s.strip() == s))
        cellular = P.Cellular(draw(st.sampled_from(["internet", "m2m.example.com", "broadband"])), user,
                              draw(st.none() | tricky_text) if user is not None else None, True,
                              draw(st.none() | st.integers(1, 10 ** 6)))
    static = uplink.ipv4 == "static"
    dns_mode = draw(st.sampled_from([m for m in P.DNS_MODES if not (static and m == "dhcp")]))
    dns = P.Dns(dns_mode, tuple(draw(st.lists(st.ip_addresses().map(str), min_size=1, max_size=3)))
                if dns_mode == "custom" else ())
    ntp_mode = draw(st.sampled_from([m for m in P.NTP_MODES if not (static and m == "dhcp")]))
    ntp = P.Ntp(ntp_mode, tuple(draw(st.lists(st.sampled_from(["ntp.plant.local", "10.1.1.1", "time.example"]),
                                              min_size=1, max_size=2, unique=True)))
                if ntp_mode == "custom" else ())
    proxy = None
    if draw(st.booleans()):
        user = draw(st.none() | tricky_text.filter(lambda s: s.strip() == s))
        proxy = P.Proxy(f"http://proxy.plant.local:{draw(st.integers(1, 65535))}", user,
                        draw(st.none() | tricky_text) if user is not None else None,
                        tuple(draw(st.lists(st.sampled_from([".plant.local", "10.0.0.0/8", "historian"]),
                                            unique=True))))
    machines = ()
    net = mnet if mnet is not None else unet
    if net is not None:
        own = {ipaddress.IPv4Interface(a).ip for a in (machine_network.address if machine_network else None,
                                                      uplink.address) if a}
        n = draw(st.integers(0, 3))
        addrs = [a for a in (net.network_address + 1 + i * 3 for i in range(n + 2))
                 if a in net and a != net.broadcast_address and a not in own][:n]
        machines = tuple(P.Machine(f"Machine {i}", str(a), draw(st.sampled_from(CONTROLLERS)))
                         for i, a in enumerate(addrs))
    hostname = draw(st.none() | st.from_regex(r"\A[a-z][a-z0-9-]{0,20}[a-z0-9]\Z"))
    return P.Plan(hostname=hostname, topology=topology, renderer=renderer, machine_network=machine_network,
                  uplink=uplink, wifi=wifi, cellular=cellular, dns=dns, ntp=ntp, proxy=proxy,
                  profiles=("machinemetrics",), machines=machines)


# Plan-shaped garbage: the right keys with any values, and random keys.
scalars = (st.none() | st.booleans() | st.integers(-2 ** 40, 2 ** 40) | st.floats(allow_nan=True)
           | st.text(max_size=40) | st.sampled_from(["192.168.1.1/24", "10.0.0.1", "0.0.0.0/0", "::1", "1.2.3.4/33",
                                                    "eno1", "wlan0", "cdc-wdm0", "http://p:3128", "wpa2-psk",
                                                    "custom", "static", "dhcp", "fanuc-focas"]))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.text(max_size=12) | st.sampled_from(["interfaces", "address", "ssid", "mode", "servers"]), inner, max_size=4),
    max_leaves=12)


def _section(keys: tuple[str, ...]):
    return st.dictionaries(st.sampled_from(keys) | st.text(max_size=8), values, max_size=len(keys) + 1)


plan_shaped = st.fixed_dictionaries(
    {"version": st.sampled_from([1, 1, 1, 2, 0, "1", None])},
    optional={
        "hostname": values, "topology": st.sampled_from(P.TOPOLOGIES) | values,
        "renderer": st.sampled_from(P.RENDERERS) | values,
        "machine_network": _section(P.SECTION_KEYS["machine_network"]) | values,
        "uplink": _section(P.SECTION_KEYS["uplink"]) | values,
        "wifi": _section(P.SECTION_KEYS["wifi"]) | values,
        "cellular": _section(P.SECTION_KEYS["cellular"]) | values,
        "dns": _section(P.SECTION_KEYS["dns"]) | values, "ntp": _section(P.SECTION_KEYS["ntp"]) | values,
        "proxy": _section(P.SECTION_KEYS["proxy"]) | values, "tls": _section(P.SECTION_KEYS["tls"]) | values,
        "profiles": st.lists(st.sampled_from(["machinemetrics", "siemens-industrial-edge", "x"]) | values),
        "profile_params": values,
        "machines": st.lists(_section(P.SECTION_KEYS["machines"]) | values, max_size=3) | values,
        "extra": values,
    })

"""The whole combination matrix, judged by the real tools.

topology x uplink (dhcp/static) x renderer (netplan on networkd, netplan on NetworkManager,
NetworkManager keyfiles; where legal) x DNS mode x NTP mode x with/without proxy. WiFi
security (WPA2, WPA3, transition) and hidden networks rotate through the WiFi cells, so each
appears many times without multiplying the matrix.
"""

from __future__ import annotations

import itertools

from installer.planning import plan as P
from installer.planning.validate import validate
from installer.render import Target, netplan_backend, render
from installer.writing.writer import write_files
from tests.judges import judge_trees, require_tools
from tests.strategies import PKI

RENDERERS = {
    "netplan-networkd": ("netplan", Target(networkmanager=False)),
    "netplan-networkmanager": ("netplan", Target(networkmanager=True)),
    "keyfile": ("networkmanager", Target(networkmanager=True)),
}
UPLINKS = {"single": "enp2s0", "isolated": "enp2s0", "wifi": "wlan0", "wireless-bridge": "wlan0",
           "cellular": "cdc-wdm0"}


def matrix():
    """Every legal cell as (name, plan, target)."""
    cells = []
    wifi_turn = itertools.cycle([("wpa2-psk", False), ("wpa3-sae", True), ("wpa2-wpa3", False),
                                 ("wpa2-enterprise", False), ("wpa2-psk", True), ("wpa3-sae", False),
                                 ("wpa2-wpa3", True), ("wpa3-enterprise", True)])
    for topology, addressing, renderer, dns, ntp, proxy in itertools.product(
            P.TOPOLOGIES, ("dhcp", "static"), RENDERERS, P.DNS_MODES, P.NTP_MODES, (False, True)):
        if topology == "cellular" and addressing == "static":
            continue  # a modem takes its address from the network
        if addressing == "static" and "dhcp" in (dns, ntp):
            continue  # nothing would hand out those servers
        renderer_name, target = RENDERERS[renderer]
        mn = None
        if topology != "single":
            ports = ("eno1", "eno2") if topology == "wireless-bridge" else ("eno1",)
            mn = P.MachineNetwork(ports, "192.168.50.2/24")
        uplink = P.Uplink(UPLINKS[topology], "dhcp")
        if addressing == "static":
            uplink = P.Uplink(UPLINKS[topology], "static", "10.20.0.15/24", "10.20.0.1")
        wifi = None
        if topology in ("wifi", "wireless-bridge"):
            security, hidden = next(wifi_turn)
            wifi = P.Wifi("Plant Floor", security, "correct horse #;= battery", hidden)
            if security in P.WIFI_ENTERPRISE:  # PEAP and EAP-TLS in turn, with the test PKI's real files
                tls = security == "wpa3-enterprise"
                wifi = P.Wifi("Plant Floor", security, None, hidden, country="DE", eap_method="tls" if tls else "peap",
                              identity="edge-01@plant.example", eap_password=None if tls else "rad #;= secret",
                              ca_certificate=str(PKI / "radius-ca.pem"),
                              client_certificate=str(PKI / "edge.pem") if tls else None,
                              private_key=str(PKI / "edge.key") if tls else None,
                              private_key_password="test key password" if tls else None)
        cellular = P.Cellular("internet", "plant", "apn:secret", True, 5000) if topology == "cellular" else None
        plan = P.Plan(
            topology=topology, renderer=renderer_name, machine_network=mn, uplink=uplink, wifi=wifi,
            cellular=cellular, dns=P.Dns(dns, ("10.20.0.53", "fd00:20::53") if dns == "custom" else ()),
            ntp=P.Ntp(ntp, ("ntp.plant.local",) if ntp == "custom" else ()),
            proxy=P.Proxy("http://proxy.plant.local:3128", "edge", "p@ss:w#rd![") if proxy else None,
            profiles=("machinemetrics",))
        if renderer == "netplan-networkd" and netplan_backend(plan, target) != "networkd":
            continue  # a modem or WPA3 on netplan 0.106 needs NetworkManager: not legal on networkd
        cells.append((f"{topology}-{addressing}-{renderer}-dns_{dns}-ntp_{ntp}-{'proxy' if proxy else 'direct'}",
                      plan, target))
    return cells


def test_the_matrix_covers_every_axis():
    cells = matrix()
    assert {p.topology for _, p, _ in cells} == set(P.TOPOLOGIES)
    assert {(p.renderer, netplan_backend(p, t)) for _, p, t in cells} >= {
        ("netplan", "networkd"), ("netplan", "NetworkManager"), ("networkmanager", "NetworkManager")}
    assert {p.wifi.security for _, p, _ in cells if p.wifi} == set(P.WIFI_SECURITY)
    assert len(cells) > 300


def test_every_cell_validates_and_the_real_tools_accept_it(tmp_path):
    require_tools()
    roots = []
    for name, plan, target in matrix():
        assert validate(plan) == [], name
        root = tmp_path / name
        root.mkdir()
        write_files(root, render(plan, target))
        roots.append(root)
    failures = judge_trees(roots)
    assert not failures, f"{len(failures)} of {len(roots)} cells refused:\n" + "\n".join(failures[:20])

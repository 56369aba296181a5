"""The lab's nftables rules, rendered from the fault state: one table per namespace.

Edge: output NAT only, so the profiles' public addresses (the NATS IPs, Google DNS) reach
their lab servers without ever leaving the edge's veths. Cloud: the "firewall between edge
and cloud" (input, from the edge's link only, so the proxy's own connections pass as they
would at a plant), TLS interception (a DNAT of the cloud's TLS ports to the DPI server),
and the NAT of public addresses for connections the proxy makes. Plant: the firewall in
front of the machines.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from tests.lab import topology as T

TABLE = "edgelab"
INTERCEPT_PORTS = (*T.HTTPS_PORTS, T.COAP_PORT)


@dataclass(frozen=True)
class Block:
    """A firewall rule between the edge and a lab address: drop (silence) or reject."""

    port: int
    proto: str           # "tcp" | "udp" | "icmp" (echo requests: Lab.block_ping)
    action: str          # "drop" | "reject"
    address: str | None  # lab address as the edge dials it after translation; None = any


def _verdict(proto: str, action: str) -> str:
    if action == "drop":
        return "drop"
    return "reject with tcp reset" if proto == "tcp" else "reject"  # udp: ICMP port unreachable


def _replace(body: str) -> str:
    # Create-then-delete makes the delete safe when the table is absent; one nft -f is one
    # transaction, so the namespace never sees a half-written table.
    return f"add table ip {TABLE}\ndelete table ip {TABLE}\ntable ip {TABLE} {{\n{body}}}\n"


def _nat_rules(table: Mapping[tuple[str, str, int], str]) -> list[str]:
    return [f"        ip daddr {addr} {proto} dport {port} dnat to {target}"
            for (addr, proto, port), target in sorted(table.items())]


def edge(translations: Mapping[tuple[str, str, int], str]) -> str:
    """The edge's table: `translations` maps (public address, proto, port) to a lab address."""
    rules = "\n".join(_nat_rules(translations) + [
        f"        ip daddr {addr} icmp type echo-request dnat to {target}"
        for addr, target in sorted(T.ICMP_TRANSLATIONS.items())])
    return _replace(f"    chain nat_out {{\n        type nat hook output priority -100; policy accept;\n"
                    f"{rules}\n    }}\n")


def cloud(blocks: Sequence[Block], intercept: bool,
          translations: Mapping[tuple[str, str, int], str], *, portal: str | None = None,
          mtu: tuple[int, str | None] | None = None, hello_drops: Sequence[tuple[str, int]] = ()) -> str:
    """The cloud's table: the edge-facing firewall, interception, NAT for the proxy; a captive
    portal (every web port from the edge to the portal server at address `portal`), a path-MTU black hole (`mtu`:
    packets to the edge larger than mtu bytes vanish, optionally only from one address) and
    name filters that drop a connection's data after the TCP handshake (`hello_drops`)."""
    ports = ", ".join(str(p) for p in INTERCEPT_PORTS)
    # The CloudLink address (OpenVPN sharing 443 with HTTPS) is inspected like the cloud's.
    dpi = [f"        ip daddr {{ {T.CLOUD}, {T.OPENVPN} }} tcp dport {{ {ports} }} dnat to {T.SERVERS['dpi']}"
           ] if intercept else []
    pre = []
    if portal:
        pre.append(f'        iifname "{T.CLOUD_IF}" ip daddr != {{ {T.PORTAL}, {T.BLOCK_PAGE}, {T.PORTAL_PLAIN} }} '
                      f"tcp dport {{ 80, {ports} }} dnat to {portal}")
    post = []
    if mtu is not None:
        source = f" ip saddr {mtu[1]}" if mtu[1] else ""
        post.append(f'        oifname "{T.CLOUD_IF}"{source} meta length > {mtu[0]} drop')
    from tests.lab import dtls  # DTLS on UDP 5684: to the s_server pools (interception: the DPI's)
    inp = [f"        ip daddr {T.DROP_HOLE} drop",
           f"        ip daddr {T.REJECT_HOLE} meta l4proto tcp reject with tcp reset",
           f"        ip daddr {T.REJECT_HOLE} reject"]
    for b in blocks:
        match = f'iifname "{T.CLOUD_IF}"'
        if b.address is not None:
            # The address the edge dialled, even when interception rewrote it on the way in.
            match += f" ct original ip daddr {b.address}"
        if b.proto == "icmp":  # Lab.block_ping: echo requests vanish (no port to match)
            inp.append(f"        {match} icmp type echo-request drop")
            continue
        inp.append(f"        {match} {b.proto} dport {b.port} {_verdict(b.proto, b.action)}")
    for address, port in hello_drops:
        # The handshake's SYN and ACKs pass; the first packet with data (the ClientHello) and
        # every later one vanish: a firewall that drops the connection once it sees the name.
        inp.append(f'        iifname "{T.CLOUD_IF}" ct original ip daddr {address} tcp dport {port} '
                   f"tcp flags & (syn | rst | fin) == 0 meta length > 100 drop")
    nl = "\n"
    return _replace(
        f"    chain nat_pre {{\n        type nat hook prerouting priority -100; policy accept;\n"
        f"{nl.join(pre + dpi + dtls.nat_rules(intercept))}\n    }}\n"
        f"    chain nat_out {{\n        type nat hook output priority -100; policy accept;\n"
        f"{nl.join(dpi + _nat_rules(translations))}\n    }}\n"
        f"    chain input {{\n        type filter hook input priority 0; policy accept;\n"
        f"{nl.join(inp)}\n    }}\n"
        f"    chain post {{\n        type filter hook postrouting priority 0; policy accept;\n"
        f"{nl.join(post)}\n    }}\n")


def plant(blocks: Sequence[Block]) -> str:
    """The plant's table: blocks in front of the machines (addressed blocks only)."""
    rules = [f'        iifname "{T.PLANT_IF}" ip daddr {b.address} {b.proto} dport {b.port} '
             f"{_verdict(b.proto, b.action)}" for b in blocks]
    return _replace("    chain input {\n        type filter hook input priority 0; policy accept;\n"
                    + "\n".join(rules) + "\n    }\n")


SESSION_TABLE = "edgelab_session"


def cloud_session(openvpn_blocked: str | None, snat_to: str | None) -> str:
    """The cloud's second table, for faults that look past the first packet or rewrite the
    edge's source: a DPI-like reset of OpenVPN to CloudLink's port 443 (tests/lab/openvpn.py),
    and a source NAT of everything the edge sends (the servers see `snat_to`; replies are
    translated back by conntrack, so the edge notices nothing but the address servers report)."""
    from tests.lab import openvpn

    dpi = openvpn.fault_rules(openvpn_blocked) if openvpn_blocked else []  # "reset" or "drop"
    snat = [f'        iifname "{T.CLOUD_IF}" ip saddr {T.EDGE_UPLINK} snat to {snat_to}'] if snat_to else []
    nl = "\n"
    body = (f"    chain input {{\n        type filter hook input priority -10; policy accept;\n{nl.join(dpi)}\n    }}\n"
            f"    chain nat_in {{\n        type nat hook input priority 100; policy accept;\n{nl.join(snat)}\n    }}\n")
    return (f"add table ip {SESSION_TABLE}\ndelete table ip {SESSION_TABLE}\n"
            f"table ip {SESSION_TABLE} {{\n{body}}}\n")

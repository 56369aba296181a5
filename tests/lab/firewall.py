"""The lab's nftables rules, rendered from the fault state: one table per namespace.

Edge: output NAT only, so the profiles' public addresses (the NATS IPs, Google DNS) reach
their lab servers without ever leaving the edge's veths. Cloud: the "firewall between edge
and cloud" (input, from the edge's link only, so the proxy's own connections pass as they
would at a plant), TLS interception (a DNAT of the cloud's TLS ports to the DPI server),
and the NAT of public addresses for connections the proxy makes. Plant: the firewall in
front of the machines.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

from tests.lab import topology as T

TABLE = "edgelab"
INTERCEPT_PORTS = (*T.HTTPS_PORTS, T.COAP_PORT)


@dataclass(frozen=True)
class Block:
    """A firewall rule between the edge and a lab address: drop (silence) or reject."""

    port: int
    proto: str           # "tcp" | "udp"
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
    rules = "\n".join(_nat_rules(translations))
    return _replace(f"    chain nat_out {{\n        type nat hook output priority -100; policy accept;\n"
                    f"{rules}\n    }}\n")


def cloud(blocks: Sequence[Block], intercept: bool,
          translations: Mapping[tuple[str, str, int], str]) -> str:
    """The cloud's table: the edge-facing firewall, interception, NAT for the proxy."""
    ports = ", ".join(str(p) for p in INTERCEPT_PORTS)
    dpi = [f"        ip daddr {T.CLOUD} tcp dport {{ {ports} }} dnat to {T.SERVERS['dpi']}"] if intercept else []
    inp = [f"        ip daddr {T.DROP_HOLE} drop",
           f"        ip daddr {T.REJECT_HOLE} meta l4proto tcp reject with tcp reset",
           f"        ip daddr {T.REJECT_HOLE} reject"]
    for b in blocks:
        match = f'iifname "{T.CLOUD_IF}"'
        if b.address is not None:
            # The address the edge dialled, even when interception rewrote it on the way in.
            match += f" ct original ip daddr {b.address}"
        inp.append(f"        {match} {b.proto} dport {b.port} {_verdict(b.proto, b.action)}")
    nl = "\n"
    return _replace(
        f"    chain nat_pre {{\n        type nat hook prerouting priority -100; policy accept;\n"
        f"{nl.join(dpi)}\n    }}\n"
        f"    chain nat_out {{\n        type nat hook output priority -100; policy accept;\n"
        f"{nl.join(dpi + _nat_rules(translations))}\n    }}\n"
        f"    chain input {{\n        type filter hook input priority 0; policy accept;\n"
        f"{nl.join(inp)}\n    }}\n")


def plant(blocks: Sequence[Block]) -> str:
    """The plant's table: blocks in front of the machines (addressed blocks only)."""
    rules = [f'        iifname "{T.PLANT_IF}" ip daddr {b.address} {b.proto} dport {b.port} '
             f"{_verdict(b.proto, b.action)}" for b in blocks]
    return _replace("    chain input {\n        type filter hook input priority 0; policy accept;\n"
                    + "\n".join(rules) + "\n    }\n")

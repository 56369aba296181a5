"""The lab's DNS beyond one resolver: an authoritative server for the Izuma zone, and the
resolver faults the DNS diagnoses are proven on.

- An authoritative server (dnsmasq in auth mode, `auth-zone`) for `mbedcloud.com` on
  203.0.113.54 (ns1.mbedcloud.com), TTL 30 s, the zone's records being the lab's answers
  for names under it. The lab resolver forwards the zone there (`server=/mbedcloud.com/`)
  and caches, as a plant's resolver forwarding to the internet does; a resolver fault that
  extends TTLs (`min-cache-ttl`) is then visible against the zone's own TTL.
- A DNS filter: `address=/name/addr` in the resolver (0.0.0.0 / "#" as a sinkhole does, or a
  block page's address).
- A large answer: a name with many A records (an extra hosts file), larger than the
  1232-byte EDNS payload: UDP answers come back truncated (TC), TCP 53 gives all of them.
- Lost queries: an nftables table of its own in the cloud that drops exactly the first N
  UDP queries to port 53 (optionally only type-A queries for one name, matched on the
  question's bytes), counting with `numgen inc`; later queries pass.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from tests.lab import topology as T

ZONE = T.AUTH_ZONE
NS_NAME = f"ns1.{ZONE}"
ZONE_TTL = 30
TABLE = "edgelabdns"
MAX_MIN_CACHE_TTL = 3600  # dnsmasq's ceiling for min-cache-ttl


def in_zone(name: str) -> bool:
    """True for a name the authoritative server answers."""
    return name == ZONE or name.endswith("." + ZONE)


LARGE_FIRST = 160  # 203.0.113.160-.250: the extra addresses of a large answer (no server)
LARGE_MAX = 92


def large_addresses(count: int) -> list[str]:
    """The addresses of a large answer: the cloud server first, then 203.0.113.160 onwards
    (which the edge sends to the cloud server too, see edge_table)."""
    return [T.CLOUD] + [f"203.0.113.{LARGE_FIRST + i}" for i in range(count - 1)]


def edge_table(large: bool) -> str:
    """The edge's table for a large answer: its extra addresses lead to the cloud server
    (an output NAT, as for the public addresses), so any of them a client picks works."""
    last = LARGE_FIRST + LARGE_MAX - 2
    rules = (f"        ip daddr 203.0.113.{LARGE_FIRST}-203.0.113.{last} dnat to {T.CLOUD}\n" if large else "")
    return (f"add table ip {TABLE}\ndelete table ip {TABLE}\ntable ip {TABLE} {{\n"
            f"    chain nat_out {{\n        type nat hook output priority -90; policy accept;\n"
            f"{rules}    }}\n}}\n")


def resolver_lines(d: Path, records: Mapping[str, str], filtered: Mapping[str, str],
                   large: Mapping[str, int], min_cache_ttl: int) -> tuple[list[str], dict[Path, str]]:
    """The resolver's extra configuration lines and files: the zone forwarded to the
    authoritative server (with a digest of its records, so that the resolver restarts with
    an empty cache whenever they change), the filter, the large answers, the TTL fault."""
    zone = {n: a for n, a in records.items() if in_zone(n)}
    digest = hashlib.sha256(repr(sorted(zone.items())).encode()).hexdigest()[:16]
    lines = [f"# {ZONE} is forwarded to its authoritative server (zone digest {digest})",
             f"server=/{ZONE}/{T.DNS_AUTH}"]
    files: dict[Path, str] = {}
    for name, address in sorted(filtered.items()):
        lines.append(f"address=/{name}/{address}")
    if large:
        hosts = d / "dnsmasq" / "large.hosts"
        files[hosts] = "".join(f"{a} {name}\n" for name, n in sorted(large.items()) for a in large_addresses(n))
        lines.append(f"addn-hosts={hosts}")
    if min_cache_ttl:
        lines.append(f"min-cache-ttl={min(int(min_cache_ttl), MAX_MIN_CACHE_TTL)}")
    return lines, files


def auth(d: Path, records: Mapping[str, str]):
    """The authoritative server of the zone: its names from `records` (with the faults that
    change them: serve_from, nxdomain), NS and SOA, TTL 30 s."""
    from tests.lab import servers

    zone = {n: a for n, a in records.items() if in_zone(n)}
    zone[NS_NAME] = T.DNS_AUTH
    lines = [f"auth-server={NS_NAME},{T.DNS_AUTH}", f"auth-zone={ZONE}", f"auth-ttl={ZONE_TTL}",
             f"auth-soa=1,hostmaster.{ZONE},1200,180,1209600,{ZONE_TTL}"]
    lines += [f"host-record={n},{a}" for n, a in sorted(zone.items())]
    return servers._dnsmasq(d, "dns-auth", T.DNS_AUTH, 53, lines,
                            (("udp", T.DNS_AUTH, 53), ("tcp", T.DNS_AUTH, 53)))


def qname_match(name: str, qtype: int = 1) -> str:
    """nftables raw payload matches for a DNS question (name and type) in a UDP packet: the
    question starts 12 bytes into the payload (bit 160 from the UDP header); one match per
    16 bytes (nftables' largest)."""
    wire = b"".join(bytes([len(label)]) + label.encode("ascii") for label in name.rstrip(".").split("."))
    wire += b"\0" + qtype.to_bytes(2, "big")
    parts = []
    for i in range(0, len(wire), 16):
        chunk = wire[i:i + 16]
        parts.append(f"@th,{160 + i * 8},{len(chunk) * 8} 0x{chunk.hex()}")
    return " ".join(parts)


def cloud_table(drops: Sequence[tuple[int, str | None]]) -> str:
    """The cloud's DNS fault table: for each (first, name), drop the first `first` UDP
    queries to port 53 from the edge's link (only type-A queries for `name` when given)."""
    rules = []
    for first, name in drops:
        match = f"udp dport 53 {qname_match(name)}" if name else "udp dport 53"
        rules.append(f'        iifname "{T.CLOUD_IF}" {match} numgen inc mod 1000000000 < {int(first)} drop')
    return (f"add table ip {TABLE}\ndelete table ip {TABLE}\ntable ip {TABLE} {{\n"
            f"    chain input {{\n        type filter hook input priority -5; policy accept;\n"
            + "".join(r + "\n" for r in rules) + "    }\n}\n")

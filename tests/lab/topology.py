"""The lab's addresses and names: one table that servers, firewall and plan all read.

    <name>-edge  enp2s0 203.0.113.2/24 (default via .1) ----- site0  <name>-cloud
                 eno1   198.51.100.2/24 (no default)  --+      203.0.113.1/24 + service addresses
                                                        +-- floor0 <name>-plant
                                                               198.51.100.21-.25 (machines)

Addresses come only from the documentation ranges 198.51.100.0/24 and 203.0.113.0/24 and
exist only inside the lab's namespaces. Public addresses the profiles name (the NATS IPs,
Google DNS) are translated inside the namespaces and never leave them.
"""

from __future__ import annotations

from dataclasses import dataclass

from installer.vendors.profiles import Catalog

# Interfaces (names as on a real box, seed 000: eno1 = machine network, enp2s0 = uplink).
UPLINK_IF, MACHINE_IF = "enp2s0", "eno1"
CLOUD_IF, PLANT_IF = "site0", "floor0"

EDGE_UPLINK = "203.0.113.2"
EDGE_MACHINE = "198.51.100.2"
GATEWAY = "203.0.113.1"
PREFIX = 24

DNS = "203.0.113.53"
NTP = "203.0.113.123"
PROXY = "203.0.113.30"
PROXY_PORT = 3128
# Where serve_from() can point a name; "cloud" is the healthy default.
SERVERS = {
    "cloud": "203.0.113.10",
    "dpi": "203.0.113.11",
    "expired": "203.0.113.12",
    "wrong-name": "203.0.113.13",
    "not-nats": "203.0.113.21",
}
CLOUD = SERVERS["cloud"]
TLS_SERVERS = ("cloud", "dpi", "expired", "wrong-name")
# Targets of translated public addresses that a block() fault redirects: everything sent to
# DROP_HOLE is dropped in the cloud, everything sent to REJECT_HOLE is rejected.
DROP_HOLE = "203.0.113.98"
REJECT_HOLE = "203.0.113.99"
# openssl s_server pools serving DTLS on UDP 5684 for the cloud and dpi servers (tests/lab/dtls.py).
DTLS_BACKENDS = {"cloud": tuple(f"203.0.113.{40 + i}" for i in range(4)),
                 "dpi": tuple(f"203.0.113.{44 + i}" for i in range(4))}
CLOUD_ADDRESSES = (GATEWAY, DNS, NTP, PROXY, *SERVERS.values(), DROP_HOLE, REJECT_HOLE,
                   *DTLS_BACKENDS["cloud"], *DTLS_BACKENDS["dpi"])
# A captive portal's and a web filter's block-page server (tests/lab/portal.py).
PORTAL = "203.0.113.77"
BLOCK_PAGE = "203.0.113.78"
PORTAL_PLAIN = "203.0.113.79"  # a portal that answers every port, 443 too, in plain HTTP
CLOUD_ADDRESSES += (PORTAL, BLOCK_PAGE, PORTAL_PLAIN)
# The authoritative server of the Izuma zone, which the lab resolver forwards to (tests/lab/dnsauth.py).
DNS_AUTH = "203.0.113.54"
AUTH_ZONE = "mbedcloud.com"
CLOUD_ADDRESSES += (DNS_AUTH,)

# CloudLink's OpenVPN server (TCP 443, HTTPS shared with nginx: tests/lab/openvpn.py), where
# the CloudLink names resolve, and the NATS middlebox that cuts sessions (tests/lab/natscut.py).
OPENVPN = "203.0.113.14"
OPENVPN_HOSTS = ("cloudlink.balena-cloud.com", "cloudlink.balena.machinemetrics-us-gov.com")
NATS_CUT = "203.0.113.22"
CLOUD_ADDRESSES += (OPENVPN, NATS_CUT)

HTTPS_PORTS = (443, 9443, 9444)
COAP_PORT = 5684
NATS_PORT = 7422
IEM_PLAIN_PORTS = (32500, 50051)  # Siemens IEM remote access (SSH) and gRPC
PROXY_CONNECT_PORTS = (443, 7422, 5684, 9443, 9444)
GOOGLE_DNS = ("8.8.8.8", "8.8.4.4")
# ICMP echo to these public addresses reaches a lab address instead (ping 8.8.8.8, seed 000's
# diagnostic step 4): a separate edge NAT rule, ICMP having no port.
ICMP_TRANSLATIONS = {"8.8.8.8": DNS}

IEM_HOST = "iem.plant.local"
PROXY_HOST = "proxy.plant.local"
NTP_HOST = "ntp.plant.local"
# Names a plan may use for NTP (pool mode, the MachineMetrics profiles' resinio pool).
NTP_POOL_NAMES = tuple(f"{i}.{d}" for d in ("pool.ntp.org", "resinio.pool.ntp.org") for i in range(4))


@dataclass(frozen=True)
class Machine:
    """A machine on the plant network: where it listens and what it is."""

    name: str
    address: str
    port: int
    controller: str


MACHINES = (
    Machine("Lathe 3 (FANUC)", "198.51.100.21", 8193, "fanuc-focas"),
    Machine("Mill 7 (MTConnect agent)", "198.51.100.22", 5000, "mtconnect-agent"),
    Machine("Press 2 (Siemens OPC UA)", "198.51.100.23", 4840, "siemens-opc-ua"),
    Machine("Compressor (Modbus)", "198.51.100.24", 502, "modbus-tcp"),
    Machine("Grinder 1 (MTConnect adapter)", "198.51.100.25", 7878, "mtconnect-adapter"),
)


def namespaces(name: str) -> dict[str, str]:
    """The lab's namespace names by role."""
    return {"edge": f"{name}-edge", "cloud": f"{name}-cloud", "plant": f"{name}-plant"}


def dns_records(catalog: Catalog) -> dict[str, str]:
    """Every name the lab's DNS answers in the healthy state, with its address.

    Every concrete host of every profile (wildcards are firewall rules, not names), the
    Siemens IEM, and the plant's proxy and NTP names (at the proxy and NTP servers), plus
    the NTP pool names a plan in pool mode would use.
    """
    records = {}
    for profile in catalog.profiles.values():
        for endpoint in profile.endpoints:
            if endpoint.host and not endpoint.wildcard:
                records[endpoint.host] = CLOUD
    for name in OPENVPN_HOSTS:
        if name in records:
            records[name] = OPENVPN
    records[IEM_HOST] = CLOUD
    records[PROXY_HOST] = PROXY
    records[NTP_HOST] = NTP
    for n in NTP_POOL_NAMES:
        records[n] = NTP
    return dict(sorted(records.items()))


def nats_addresses(catalog: Catalog) -> tuple[str, ...]:
    """The public NATS addresses of the profiles (standard and GovCloud), translated to the lab."""
    found = []
    for profile in catalog.profiles.values():
        for endpoint in profile.endpoints:
            if endpoint.service == "nats":
                found.extend(a for a in endpoint.addresses if a not in found)
    return tuple(found)


def translations(catalog: Catalog) -> dict[tuple[str, str, int], str]:
    """(public address, proto, port) -> lab address, for the edge's output NAT."""
    table = {}
    for addr in nats_addresses(catalog):
        table[(addr, "tcp", NATS_PORT)] = CLOUD
    for addr in GOOGLE_DNS:
        table[(addr, "udp", 53)] = DNS
        table[(addr, "tcp", 53)] = DNS
    return table

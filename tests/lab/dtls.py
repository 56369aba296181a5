"""DTLS on UDP 5684 (CoAP over UDP, seed 002) in the lab: OpenSSL's own server, `openssl
s_server -dtls`, with the ARM Bootstrap CA's certificate (the "cloud") or the DPI CA's (the
"dpi" server, what interception shows).

One s_server serves one DTLS client at a time on an unconnected socket, and a second
client's datagrams arriving mid-handshake would be fed into the first one's session. The
checks run the three UDP endpoints of the Izuma profile at once, so each server is a pool:
`POOL` s_server processes on addresses of their own, and the cloud's prerouting NAT sends
each new UDP flow to the next one (nftables `numgen inc`; conntrack keeps a flow on its
backend). Only the address changes, never the port, so the edge-facing firewall's
`udp dport 5684` blocks still apply.

The "wrong-name" server (serve_from(name, "wrong-name")) answers UDP 5684 with something that
is not DTLS: a CoAP Reset message, as a CoAP server without security (NoSec) would send.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tests.lab import topology as T
from tests.lab.pki import DEFAULT_CERT, Pki
from tests.lab.servers import Service

BACKENDS = T.DTLS_BACKENDS  # server -> the addresses of its s_server processes
POOL = len(BACKENDS["cloud"])
ADDRESSES = tuple(a for pool in BACKENDS.values() for a in pool)


def services(d: Path, pki: Pki) -> list[Service]:
    """The s_server processes: `dtls-<server>-<i>`, each on <backend>:5684/udp, presenting the
    server's CoAP certificate (the one for clients without a known SNI name: it covers every
    lab name; what the checks judge is its issuer)."""
    out = []
    for server, pool in BACKENDS.items():
        certs = pki.servers[server]["coap"]
        for i, address in enumerate(pool):
            out.append(Service(
                f"dtls-{server}-{i}", "cloud",
                ("openssl", "s_server", "-dtls", "-accept", f"{address}:{T.COAP_PORT}",
                 "-cert", str(certs.directory / f"{DEFAULT_CERT}.crt"), "-key", str(certs.key), "-quiet"),
                (("udp", address, T.COAP_PORT),)))
    # A CoAP server without security (NoSec) answers what it cannot parse with an empty Reset
    # message, 0x70 00 00 00 (RFC 7252, sections 3 and 4.2): no packaged server does only that.
    address = T.SERVERS["wrong-name"]
    code = ("import socket\n"
            f"s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.bind(({address!r}, {T.COAP_PORT}))\n"
            "while True:\n"
            "    _, peer = s.recvfrom(65535)\n"
            "    s.sendto(bytes([0x70, 0, 0, 0]), peer)\n")
    out.append(Service("dtls-not-dtls", "cloud", (sys.executable, "-c", code), (("udp", address, T.COAP_PORT),)))
    return out


def service_keys() -> list[str]:
    """The keys of every DTLS server process."""
    return [f"dtls-{server}-{i}" for server in BACKENDS for i in range(POOL)] + ["dtls-not-dtls"]


def nat_rules(intercept: bool) -> list[str]:
    """The cloud's prerouting rules: UDP 5684 to the cloud address (the DPI pool when TLS is
    intercepted) or to the dpi address, spread over the pool's servers."""
    def to(server: str) -> str:
        pool = ", ".join(f"{i} : {a}" for i, a in enumerate(BACKENDS[server]))
        return f"dnat to numgen inc mod {POOL} map {{ {pool} }}"
    return [f"        ip daddr {T.CLOUD} udp dport {T.COAP_PORT} {to('dpi' if intercept else 'cloud')}",
            f"        ip daddr {T.SERVERS['dpi']} udp dport {T.COAP_PORT} {to('dpi')}"]

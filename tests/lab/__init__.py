"""The network lab the live checks are tested in: namespaces, real servers, switchable faults.

    from tests.lab import Lab, LabError

    with Lab(name="eilab", workdir=Path("/tmp/eilab")) as lab:
        lab.write_plan("/tmp/eilab/plan.yaml")
        lab.block(443, action="reject")
        lab.edge([".venv/bin/edge-installer", "check", "--plan", "/tmp/eilab/plan.yaml", "--json"])
        lab.reset()

Three namespaces joined by veth links (see tests/lab/topology.py for every address):
`<name>-edge` where the checks run (enp2s0 uplink, eno1 machine network), `<name>-cloud` (the
plant's IT network and the internet: dnsmasq, chronyd, nginx, nats-server, squid, socat) and
`<name>-plant` (the machines). Only 198.51.100.0/24 and 203.0.113.0/24 are used, only inside
the namespaces; the servers reach nothing outside the lab.

Faults and what a client in the edge sees (each undone by `reset()`):

- block(port, action="drop"): no answer at all; connect() times out.
- block(port, action="reject"): TCP reset, connect() raises ConnectionRefusedError; UDP gets
  ICMP port unreachable (an unconnected UDP socket, as dnspython's and ntplib's, still only
  times out).
- no_route(address): connect() fails at once with EHOSTUNREACH ("No route to host").
- dns_nxdomain / dns_servfail / dns_refused: the rcode NXDOMAIN / SERVFAIL / REFUSED, from
  dnsmasq's own configuration (SERVFAIL: DNSSEC validation of an unsigned answer fails).
- serve_from(name, where): the name resolves to the "dpi", "expired", "wrong-name" or
  "not-nats" server (a NATS IP is re-translated instead).
- intercept_tls(): the cloud's TLS ports present the DPI CA's certificates.
- ntp_offset(s): NTP answers with the clock `s` seconds off.
- stop(service): the server is gone, its port refuses connections.
- proxy_auth(False): the proxy lets anyone through.
- unplug(interface): the edge interface loses carrier.

By hand: `sudo tests/lab/up` and `sudo tests/lab/down` (or `python -m tests.lab up|down|status`).
"""

from tests.lab.lab import Lab, LabError

__all__ = ["Lab", "LabError"]

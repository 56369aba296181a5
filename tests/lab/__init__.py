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
the namespaces; the servers reach nothing outside the lab. Public addresses are translated in
the edge: the NATS IPs, DNS to 8.8.8.8/8.8.4.4, and ping to 8.8.8.8 (answered by 203.0.113.53).
DTLS on UDP 5684 is served by pools of `openssl s_server -dtls` (tests/lab/dtls.py).

Faults and what a client in the edge sees (each undone by `reset()`):

- block(port, action="drop"): no answer at all; connect() times out.
- block(port, action="reject"): TCP reset, connect() raises ConnectionRefusedError; UDP gets
  ICMP port unreachable (an unconnected UDP socket, as dnspython's and ntplib's, still only
  times out).
- no_route(address): connect() fails at once with EHOSTUNREACH ("No route to host").
- dns_nxdomain / dns_servfail / dns_refused: the rcode NXDOMAIN / SERVFAIL / REFUSED, from
  dnsmasq's own configuration (SERVFAIL: DNSSEC validation of an unsigned answer fails).
- serve_from(name, where): the name resolves to the "dpi", "expired", "wrong-name" or
  "not-nats" server (a NATS IP is re-translated instead). On UDP 5684 "dpi" serves DTLS with
  the DPI CA's certificate and "wrong-name" answers with a CoAP Reset, not DTLS.
- dns_filter(name, address="0.0.0.0"): the resolver (a DNS filter) answers `name` with
  `address` (0.0.0.0, 127.0.0.1, "::", "#" for 0.0.0.0 and ::, a private block page, ...).
- dns_large_answer(name, count=90): `name` has `count` A records: the UDP answer is truncated
  (TC), TCP 53 gives all of them (the extra addresses lead to the cloud server).
- dns_drop(first=1, name=None): exactly the first `first` UDP queries (type A for `name`) vanish.
- dns_extend_ttl(seconds=3600): the resolver serves cached records with TTL up to `seconds`;
  the Izuma zone (mbedcloud.com) is always forwarded to its authoritative server, ns1 at
  203.0.113.54, TTL 30 s (tests/lab/dnsauth.py).
- intercept_tls(): the cloud's TLS ports present the DPI CA's certificates (DTLS on UDP 5684
  too: openssl s_server with the DPI CA's certificate).
- poor_link(delay_ms=0, loss_pct=0.0, jitter_ms=0): the uplink loses loss_pct % of the packets
  either way, silently, and adds delay_ms (+- jitter_ms) to every round trip (nftables and an
  NFQUEUE delayer, tests/lab/badlink.py: this kernel has no netem).
- block_ping(): ICMP echo requests from the edge are dropped (gateway, cloud, 8.8.8.8).
- captive_portal(by="nat"|"dns"): every web port (80, 443, 9443, 9444, 5684) of the cloud leads to a captive
  portal: one self-signed certificate for "portal.login.example", HTTP redirected to
  http://203.0.113.77/login (a login form).
- block_page(*names): DNS sends those names to a web filter's block page (certificate for
  "blocked.webfilter.example" from an untrusted CA; 403 "blocked" page).
- mtu_blackhole(mtu=1280, address=None): packets from the cloud to the edge larger than `mtu`
  vanish without ICMP (a small-MTU hop that drops "fragmentation needed"): TCP connects, the
  TLS server's certificate flight never arrives unless the client announces a small MSS.
- sni_filter(address, port=443): the first data packet (the ClientHello) and all later ones
  to address:port are dropped: the TLS handshake never gets an answer, whatever the MSS.
- nats_cut_after_connect(): NATS addresses reach nats-server through a middlebox that lets INFO
  through and resets the connection (RST) when the client sends CONNECT.
- proxy_connect_ports(ports): the proxy answers "403 Forbidden" to CONNECT to any other port.
- block_openvpn(action="reset"): TCP to CloudLink's 443 opens and TLS passes, but a segment
  starting like an OpenVPN client's hard reset is answered with a TCP reset ("drop": silence);
  cloudlink.balena-cloud.com is an OpenVPN server sharing 443 with HTTPS in the healthy lab.
- nat(address="203.0.113.200"): the cloud sees the edge's connections come from `address`
  (NATS INFO reports it as client_ip); the edge's own address is unchanged.
- ntp_offset(s): NTP answers with the clock `s` seconds off.
- stop(service): the server is gone, its port refuses connections.
- proxy_auth(False): the proxy lets anyone through.
- unplug(interface): the edge interface loses carrier.

For the ARP probes (installer/checks/neighbours.py): tests/lab/neighbours.py gives the plant or
the cloud namespace an address the edge holds too (`holding`), and builds a switched segment
where the box has two ports (`Segment`); tests/lab/arprun.py runs a probe or apply in a namespace.

By hand: `sudo tests/lab/up` and `sudo tests/lab/down` (or `python -m tests.lab up|down|status`).
"""

from tests.lab.lab import Lab, LabError

__all__ = ["Lab", "LabError"]

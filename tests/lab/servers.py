"""Debian's real servers, configured for the lab: the command line and files of each.

A `Service` is what to run (argv, environment, files to write first) in which namespace, and
which sockets prove it is up. Every function here is pure: it takes the lab's directory and
the wanted state and returns Services; `tests.lab.lab` starts them. Each configuration keeps
its server inside the lab: listening on lab addresses only, no upstream servers, no pools.
"""

from __future__ import annotations

import hashlib
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tests.lab import topology as T
from tests.lab.pki import DEFAULT_CERT, Pki

# Binaries the lab runs, with the Debian package that provides each.
BINARIES = {
    "ip": "iproute2", "nft": "nftables", "dnsmasq": "dnsmasq-base", "chronyd": "chrony",
    "nginx": "nginx-light", "nats-server": "nats-server", "squid": "squid", "socat": "socat",
    "openssl": "openssl", "iptables-nft": "iptables", "openvpn": "openvpn",
}
FAKETIME_LIBS = ("/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1",
                 "/usr/lib/aarch64-linux-gnu/faketime/libfaketime.so.1",
                 "/usr/lib/faketime/libfaketime.so.1")
SQUID_USER = "proxy"  # Debian's squid runs as this user; its files must be reachable by it
# A DS record that matches no key: a trust anchor under which no answer can validate.
_BOGUS_DS = "12345,13,2," + "5A" * 32


@dataclass(frozen=True)
class Service:
    """One server process of the lab."""

    key: str                         # "dns", "ntp", "machines:502", ...
    role: str                        # namespace role: "cloud" or "plant"
    argv: tuple[str, ...]
    listens: tuple[tuple[str, str, int], ...]   # (proto, address, port) that prove it is up
    env: Mapping[str, str] = field(default_factory=dict)
    files: Mapping[Path, str] = field(default_factory=dict)  # written before start
    owner: str | None = None         # user that must own the service's own directory

    def signature(self) -> str:
        """Changes whenever what would run changes: the lab restarts the service then."""
        h = hashlib.sha256(repr((self.argv, sorted(self.env.items()))).encode())
        for path, text in sorted(self.files.items()):
            h.update(str(path).encode() + b"\0" + text.encode())
        return h.hexdigest()


@dataclass(frozen=True)
class DnsState:
    """What the lab's resolver answers: per-name overrides, or REFUSED for everything."""

    records: Mapping[str, str]        # name -> address (healthy answers plus serve_from)
    servfail: tuple[str, ...] = ()    # names whose answers fail DNSSEC validation
    refused: bool = False
    # tests/lab/dnsauth.py: a DNS filter (name -> address), large answers (name -> count of A
    # records), a resolver that extends TTLs (min-cache-ttl seconds, 0: none)
    filtered: Mapping[str, str] = field(default_factory=dict)
    large: Mapping[str, int] = field(default_factory=dict)
    min_cache_ttl: int = 0


def dns(d: Path, state: DnsState) -> Service:
    """dnsmasq on 203.0.113.53 (udp+tcp 53), answers with TTL 0, NXDOMAIN for unknown names;
    the Izuma zone (mbedcloud.com) is forwarded to its authoritative server and cached
    (tests/lab/dnsauth.py), as are the DNS filter, large answers and the TTL fault.

    SERVFAIL is real: the name is forwarded to a lab upstream (`dns_upstream`) and the
    resolver holds a DNSSEC trust anchor for it, so the unsigned answer is BOGUS. REFUSED is
    dnsmasq with no data and no upstream at all: it refuses every query.
    """
    from tests.lab import dnsauth  # imports this module

    lines: list[str] = []
    files: dict[Path, str] = {}
    if state.refused:
        lines.append("# REFUSED for everything: no local data, no upstream server")
    else:
        lines += [f"host-record={name},{addr}" for name, addr in sorted(state.records.items())
                  if not dnsauth.in_zone(name)]
        lines += ["# every other name: NXDOMAIN, never forwarded", "local=/#/"]
        more, files = dnsauth.resolver_lines(d, state.records, state.filtered, state.large, state.min_cache_ttl)
        lines += more
        if state.servfail:
            lines += ["dnssec", "trust-anchor=.,20326,8,2,"
                      "E06D44B80B8F1D39A95C0B0D7C65D08458E880409BBC683457104237C7F8EC8D"]
            for name in state.servfail:
                lines += [f"server=/{name}/127.0.0.1#5353", f"trust-anchor={name},{_BOGUS_DS}"]
    return _dnsmasq(d, "dns", T.DNS, 53, lines, (("udp", T.DNS, 53), ("tcp", T.DNS, 53)), files)


def dns_upstream(d: Path, records: Mapping[str, str]) -> Service:
    """A second dnsmasq (127.0.0.1:5353 in the cloud) that answers unsigned: the upstream a
    SERVFAIL name is forwarded to."""
    lines = [f"host-record={n},{a}" for n, a in sorted(records.items())] + ["local=/#/"]
    return _dnsmasq(d, "dns-upstream", "127.0.0.1", 5353, lines, (("udp", "127.0.0.1", 5353),))


def _dnsmasq(d: Path, key: str, address: str, port: int, lines: list[str],
             listens: tuple[tuple[str, str, int], ...], files: Mapping[Path, str] | None = None) -> Service:
    conf = d / "dnsmasq" / f"{key}.conf"
    text = "\n".join([
        "# edge-installer lab: no resolv.conf, no /etc/hosts, no upstream but the lab's",
        "no-resolv", "no-hosts", "no-poll", "bind-interfaces", f"listen-address={address}",
        f"port={port}", "user=root", "group=root", "local-ttl=0",
        f"pid-file={d / 'run' / key}.pid", f"log-facility={d / 'logs' / key}.log", "log-queries",
        *lines]) + "\n"
    return Service(key, "cloud", ("dnsmasq", "--keep-in-foreground", f"--conf-file={conf}"),
                   listens, files={conf: text, **(files or {})})


def ntp(d: Path, offset: float, faketime_lib: str | None) -> Service:
    """chronyd on 203.0.113.123, its own clock as the reference (`local stratum 8`), never
    touching the system clock (-x). An offset runs it under libfaketime."""
    conf = d / "chrony" / "chrony.conf"
    text = textwrap.dedent(f"""\
        # edge-installer lab: serve the local clock, reach no server, touch no clock.
        local stratum 8
        allow 203.0.113.0/24
        allow 198.51.100.0/24
        bindaddress {T.NTP}
        port 123
        cmdport 0
        bindcmdaddress /
        pidfile {d / 'run' / 'chronyd.pid'}
        """)
    env = {}
    if offset:
        if faketime_lib is None:
            raise ValueError("libfaketime is missing (Debian package libfaketime)")
        env = {"LD_PRELOAD": faketime_lib, "FAKETIME": f"{offset:+.3f}",
               "FAKETIME_DONT_FAKE_MONOTONIC": "1", "FAKETIME_NO_CACHE": "1"}
    return Service("ntp", "cloud", ("chronyd", "-d", "-x", "-u", "root", "-f", str(conf)),
                   (("udp", T.NTP, 123),), env=env, files={conf: text})


def https(d: Path, pki: Pki) -> Service:
    """nginx: HTTPS on 443/9443/9444 and TLS on 5684 for each of the cloud, dpi, expired and
    wrong-name addresses; the certificate is chosen by SNI; /ping answers 200."""
    root = d / "nginx-cloud"
    sni = "\n".join(f'        "{n}" "{n}";' for n in pki.names)
    blocks = [f"""
    # The certificate file for the name the client asked for (SNI), or the default one.
    map $ssl_server_name $lab_cert {{
        default "{DEFAULT_CERT}";
{sni}
    }}"""]
    for server in T.TLS_SERVERS:
        addr = T.SERVERS[server]
        web, coap = pki.servers[server]["https"], pki.servers[server]["coap"]
        listens = "\n".join(f"        listen {addr}:{p} ssl;" for p in T.HTTPS_PORTS)
        blocks.append(f"""
    server {{  # {server}
{listens}
        ssl_certificate {web.directory}/$lab_cert.crt;
        ssl_certificate_key {web.key};
        location = /ping {{ return 200 "pong\\n"; }}
        location / {{ return 200 "edge-installer lab: {server}\\n"; }}
    }}
    server {{  # {server}, CoAP over TLS port (TLS only: the checks read the certificate)
        listen {addr}:{T.COAP_PORT} ssl;
        ssl_certificate {coap.directory}/$lab_cert.crt;
        ssl_certificate_key {coap.key};
        return 444;
    }}""")
    text = _nginx_conf(d, root, "nginx-cloud", "".join(blocks))
    listens = tuple(("tcp", T.SERVERS[s], p) for s in T.TLS_SERVERS
                    for p in (*T.HTTPS_PORTS, T.COAP_PORT))
    return _nginx_service("https", "cloud", root, text, listens)


def mtconnect_agent(d: Path, machine: T.Machine) -> Service:
    """nginx on the plant network answering GET /probe with an MTConnectDevices document."""
    root = d / "nginx-plant"
    probe = root / "probe.xml"
    server = f"""
    server {{
        listen {machine.address}:{machine.port};
        location = /probe {{ default_type application/xml; alias {probe}; }}
        location = / {{ default_type application/xml; alias {probe}; }}
        location / {{ return 404; }}
    }}"""
    text = _nginx_conf(d, root, "nginx-plant", server)
    return _nginx_service(f"machines:{machine.port}", "plant", root, text,
                          (("tcp", machine.address, machine.port),), {probe: MTCONNECT_PROBE})


def _nginx_conf(d: Path, root: Path, key: str, servers: str) -> str:
    temp = "\n".join(f"    {kind}_temp_path {root / 'tmp' / kind};"
                     for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"))
    return f"""# edge-installer lab
worker_processes 1;
user root root;
pid {d / 'run' / key}.pid;
error_log {d / 'logs' / key}.error.log info;
events {{ worker_connections 256; }}
http {{
    access_log {d / 'logs' / key}.access.log;
{temp}
    default_type text/plain;
    server_tokens off;
    map_hash_bucket_size 128;  # host names up to ~100 characters
{servers}
}}
"""


def _nginx_service(key: str, role: str, root: Path, text: str,
                   listens: tuple[tuple[str, str, int], ...],
                   extra: Mapping[Path, str] | None = None) -> Service:
    conf = root / "nginx.conf"
    files = {conf: text, **(extra or {})}
    return Service(key, role, ("nginx", "-e", str(root / "startup.log"), "-p", str(root),
                               "-c", str(conf), "-g", "daemon off;"), listens, files=files)


def nats(d: Path) -> Service:
    """nats-server on 203.0.113.10:7422: sends its `INFO {...}` line to every client."""
    return Service("nats", "cloud", ("nats-server", "-a", T.CLOUD, "-p", str(T.NATS_PORT),
                                     "-n", "edge-lab", "-P", str(d / "run" / "nats.pid"),
                                     "-l", str(d / "logs" / "nats.log")),
                   (("tcp", T.CLOUD, T.NATS_PORT),))


def proxy(d: Path, user: str, password_hash: str, auth: bool, shm_name: str,
          connect_ports: Sequence[int] = T.PROXY_CONNECT_PORTS, records: Mapping[str, str] | None = None) -> Service:
    """squid on 203.0.113.30:3128: CONNECT to the vendors' ports only (`connect_ports`), Basic
    authentication (any characters in the password, as htpasswd stores it), DNS from the lab
    resolver. squid keeps DNS answers for a while: it restarts whenever the lab's `records`
    change, as if its cache had expired, so no test sees the previous test's addresses."""
    import hashlib

    root = d / "squid"
    dns_digest = hashlib.sha256(repr(sorted((records or {}).items())).encode()).hexdigest()[:16]
    conf, passwd = root / "squid.conf", root / "passwd"
    ports = " ".join(str(p) for p in connect_ports)
    auth_lines = (f"auth_param basic program /usr/lib/squid/basic_ncsa_auth {passwd}\n"
                  "auth_param basic children 2 startup=1 idle=1\n"
                  "auth_param basic realm plant proxy\n"
                  "acl authed proxy_auth REQUIRED\n"
                  "http_access allow lab authed\n") if auth else "http_access allow lab\n"
    text = f"""# edge-installer lab: the plant's web proxy. No cache, no peers, the lab's DNS only.
# lab DNS records {dns_digest}
http_port {T.PROXY}:{T.PROXY_PORT}
visible_hostname {T.PROXY_HOST}
cache_effective_user {SQUID_USER}
pid_filename {root / 'squid.pid'}
coredump_dir {root}
cache deny all
cache_mem 0 MB
access_log stdio:{root / 'access.log'}
cache_log {root / 'cache.log'}
cache_store_log none
logfile_rotate 0
dns_nameservers {T.DNS}
hosts_file none
dns_timeout 3 seconds
connect_timeout 5 seconds
shutdown_lifetime 0 seconds
pinger_enable off
icp_port 0
htcp_port 0
snmp_port 0
netdb_filename none
acl lab src 203.0.113.0/24 198.51.100.0/24
acl vendor_ports port {ports}
acl CONNECT method CONNECT
http_access deny CONNECT !vendor_ports
{auth_lines}http_access deny all
"""
    # -n: squid names its shared-memory segments (/dev/shm/<name>-*) after the service, so
    # two labs (a demo and a test session) never share them.
    return Service("proxy", "cloud", ("squid", "-N", "-n", shm_name, "-f", str(conf)),
                   (("tcp", T.PROXY, T.PROXY_PORT),),
                   files={conf: text, passwd: f"{user}:{password_hash}\n"}, owner=SQUID_USER)


def listener(d: Path, key: str, role: str, address: str, port: int, banner: str | None = None) -> Service:
    """socat accepting TCP on address:port: silent (reads and discards), or sending a banner
    line first, as SSH does."""
    target = "OPEN:/dev/null,wronly"
    files: dict[Path, str] = {}
    if banner is not None:
        script = d / "banners" / f"{key.replace(':', '-')}.sh"
        files[script] = f"#!/bin/sh\nprintf '%s\\r\\n' '{banner}'\nexec cat >/dev/null\n"
        target = f"EXEC:{script}"
    argv = ("socat", *(("-u",) if banner is None else ()),
            f"TCP-LISTEN:{port},bind={address},reuseaddr,fork,backlog=64", target)
    return Service(key, role, argv, (("tcp", address, port),), files=files)


def plain_listeners(d: Path) -> list[Service]:
    """The plain TCP endpoints: Siemens IEM SSH and gRPC, the not-NATS port, the machines."""
    services = [
        listener(d, "iem-ssh", "cloud", T.CLOUD, 32500, "SSH-2.0-OpenSSH_9.2p1 Debian-2+deb12u3"),
        listener(d, "iem-grpc", "cloud", T.CLOUD, 50051),
        listener(d, "not-nats", "cloud", T.SERVERS["not-nats"], T.NATS_PORT,
                 "SSH-2.0-OpenSSH_9.2p1 not-a-nats-server"),
    ]
    for m in T.MACHINES:
        if m.controller != "mtconnect-agent":
            services.append(listener(d, f"machines:{m.port}", "plant", m.address, m.port))
    return services


MTCONNECT_PROBE = """<?xml version="1.0" encoding="UTF-8"?>
<MTConnectDevices xmlns="urn:mtconnect.org:MTConnectDevices:1.3">
  <Header creationTime="2024-01-01T00:00:00Z" sender="edge-lab" instanceId="1" version="1.3.0" assetBufferSize="1024" assetCount="0" bufferSize="131072"/>
  <Devices>
    <Device id="mill7" name="Mill7" uuid="edge-lab-mill-7">
      <Description manufacturer="Edge Lab" model="VMC">Lab mill 7</Description>
      <DataItems>
        <DataItem category="EVENT" id="avail" type="AVAILABILITY"/>
      </DataItems>
      <Components>
        <Controller id="cont" name="controller">
          <DataItems>
            <DataItem category="EVENT" id="exec" type="EXECUTION"/>
            <DataItem category="EVENT" id="mode" type="CONTROLLER_MODE"/>
          </DataItems>
        </Controller>
      </Components>
    </Device>
  </Devices>
</MTConnectDevices>
"""  # noqa: E501 - an agent's probe document as served, byte for byte


def all_services(d: Path, pki: Pki, dns_state: DnsState, healthy_records: Mapping[str, str],
                 ntp_offset: float, faketime_lib: str | None, proxy_user: str,
                 proxy_hash: str, proxy_auth: bool, lab_name: str,
                 proxy_ports: Sequence[int] = T.PROXY_CONNECT_PORTS) -> list[Service]:
    """Every service of the lab in the given state."""
    from tests.lab import (  # CloudLink's OpenVPN, the NATS middlebox (import this module)
        dnsauth,  # the Izuma zone's authoritative server (imports this module)
        dtls,  # imports this module
        natscut,
        openvpn,
        portal,  # the captive portal and block page (imports this module)
    )

    agent = next(m for m in T.MACHINES if m.controller == "mtconnect-agent")
    return [dns(d, dns_state), dns_upstream(d, healthy_records), ntp(d, ntp_offset, faketime_lib),
            https(d, pki), nats(d),
            proxy(d, proxy_user, proxy_hash, proxy_auth, squid_service_name(lab_name), proxy_ports,
                  dns_state.records),
            openvpn.service(d), natscut.service(),
            mtconnect_agent(d, agent), *plain_listeners(d), *dtls.services(d, pki), portal.service(d),
            dnsauth.auth(d, dns_state.records)]


def squid_service_name(lab_name: str) -> str:
    """squid's service name (-n) for a lab; its shared memory is /dev/shm/<this>-*."""
    return f"{lab_name}proxy"


def service_keys() -> Sequence[str]:
    """The names `Lab.stop()` accepts (besides the aliases)."""
    keys = ["dns", "dns-upstream", "dns-auth", "ntp", "https", "nats", "proxy", "iem-ssh", "iem-grpc",
            "not-nats", "portal"]
    from tests.lab import dtls

    return keys + [f"machines:{m.port}" for m in T.MACHINES] + dtls.service_keys() + ["openvpn", "nats-cut"]

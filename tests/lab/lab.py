"""`Lab`: the network lab the live checks are tested in (see tests/lab/__init__.py).

The lab is a desired state (healthy, plus the faults asked for) and one `_sync()` that makes
the namespaces match it: it rewrites the nftables tables that changed, the edge's routes
and links, and restarts exactly the servers whose command line or files changed (or died).
Every fault method changes the state and syncs; `reset()` restores the healthy state and
syncs, so it only undoes what was done.
"""

from __future__ import annotations

import ipaddress
import json
import os
import pwd
import shutil
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from installer.vendors.profiles import load_catalog
from tests.lab import badlink, dnsauth, firewall, netns, network, pki, servers
from tests.lab import topology as T
from tests.lab.errors import LabError
from tests.lab.firewall import Block
from tests.lab.processes import Supervisor, killpg, remove_shm

REPO = Path(__file__).resolve().parents[2]
_PROXY_ENV = {"http_proxy", "https_proxy", "all_proxy", "no_proxy", "ftp_proxy"}
_MACHINE_SUBNET = ipaddress.ip_network("198.51.100.0/24")
_NAME_OK = set("abcdefghijklmnopqrstuvwxyz0123456789")


@dataclass
class _State:
    """The faults in force; a fresh _State is the healthy lab."""

    dns: dict[str, str] = field(default_factory=dict)      # name -> address (serve_from)
    nxdomain: set[str] = field(default_factory=set)
    servfail: set[str] = field(default_factory=set)
    refused: bool = False
    ip_serve: dict[str, str] = field(default_factory=dict)  # public IP -> lab server address
    blocks: list[Block] = field(default_factory=list)
    intercept: bool = False
    no_route: set[str] = field(default_factory=set)
    unplugged: set[str] = field(default_factory=set)
    ntp_offset: float = 0.0
    proxy_auth: bool = True
    stopped: set[str] = field(default_factory=set)
    link: tuple[int, float, int] = (0, 0.0, 0)              # poor_link(): delay ms, loss %, jitter ms
    portal: str | None = None                               # captive_portal(): the portal's address
    mtu: tuple[int, str | None] | None = None               # mtu_blackhole(): (bytes, from address)
    hello_drops: list[tuple[str, int]] = field(default_factory=list)  # sni_filter()
    proxy_ports: tuple[int, ...] = T.PROXY_CONNECT_PORTS   # proxy_connect_ports()
    openvpn_blocked: str | None = None                      # block_openvpn(): "reset" | "drop"
    nat_source: str | None = None                           # nat()
    dns_filter: dict[str, str] = field(default_factory=dict)  # dns_filter(): name -> answer
    dns_large: dict[str, int] = field(default_factory=dict)   # dns_large_answer(): name -> A records
    dns_min_ttl: int = 0                                       # dns_extend_ttl()
    dns_drops: list[tuple[int, str | None]] = field(default_factory=list)  # dns_drop()


class Lab:
    """Three network namespaces (edge, cloud, plant) with real servers and switchable faults.

    `Lab(name, workdir).up()` builds it (tearing down a leftover lab of the same name
    first); `down()` removes every trace. Use as a context manager, or through the pytest
    fixtures in tests.lab.fixtures. Faults are undone by `reset()`.
    """

    proxy_user = "edge"
    # Every character here must be percent-encoded in a proxy URL's user info, and "%41"
    # catches a client that decodes a password it never encoded.
    proxy_password = "p@ss:w#rd![x]/?%41 &"
    dpi_ca_name = pki.DPI_CA_NAME
    public_ca_name = pki.PUBLIC_CA_NAME
    proxy_url = f"http://{T.PROXY}:{T.PROXY_PORT}"

    def __init__(self, name: str = "eilab", workdir: Path | str | None = None) -> None:
        if not (1 <= len(name) <= 16 and set(name) <= _NAME_OK and name[0].isalpha()):
            raise LabError(f"lab name {name!r}: use 1-16 lower-case letters and digits, "
                           "starting with a letter")
        self.name = name
        self.workdir = Path(workdir) if workdir is not None else Path("/tmp") / name
        self.ns = T.namespaces(name)
        catalog = load_catalog()
        self._healthy_records = T.dns_records(catalog)
        self._translations = T.translations(catalog)
        # The translated public addresses (NATS IPs, Google DNS): routed in the cloud for its proxy.
        self._public_addresses = tuple(sorted({k[0] for k in self._translations}))
        self._nats_names = tuple(sorted({e.host for p in catalog.profiles.values() for e in p.endpoints
                                         if e.service == "nats" and e.host}))
        self._state = _State()
        self._services = Supervisor(name, self.workdir, self.ns)
        self._applied_fw: dict[str, str] = {}
        self._applied_routes: set[str] = set()
        self._applied_unplugged: set[str] = set()
        self._applied_link: tuple[int, float, int] = (0, 0.0, 0)
        self._pki: pki.Pki | None = None
        self._proxy_hash = ""
        self._faketime: str | None = None
        self._up = False
        self.timings: dict[str, float] = {}
        self.down_problems: list[str] = []

    # --- life cycle --------------------------------------------------------------------

    def __enter__(self) -> Lab:
        return self.up()

    def __exit__(self, *exc: Any) -> None:
        self.down()

    def up(self) -> Lab:
        """Build and start the lab; when it is already up, just reset() it."""
        if self._up and all(netns.exists(ns) for ns in self.ns.values()):
            self.reset()
            return self
        self._preflight()
        start = time.monotonic()
        self.down()
        try:
            self._build()
        except BaseException as exc:
            self.down()
            if isinstance(exc, LabError):
                raise
            if isinstance(exc, (netns.NetnsError, OSError, ValueError)):
                raise LabError(f"lab {self.name} did not start: {exc}") from exc
            raise
        self._up = True
        self.timings["up"] = time.monotonic() - start
        return self

    def down(self) -> None:
        """Kill every lab process, delete the namespaces, /etc/netns entries and tables.

        Also removes a leftover lab of the same name made by another process. Never raises;
        what could not be removed is listed in `down_problems`.
        """
        self.down_problems = []
        for key in self._services.keys():  # noqa: SIM118 - a Supervisor, not a dict: keys() is its snapshot
            self._guard(f"stop {key}", self._services.stop, key)
        killed: list[int] = []
        for ns in self.ns.values():
            self._guard(f"kill processes in {ns}", lambda n: killed.extend(netns.kill_all(n)), ns)
            self._guard(f"delete {ns}", netns.delete, ns)
        self._guard("remove shared memory", remove_shm, self.name, killed)
        self._services.forget()
        self._applied_fw.clear()
        self._applied_routes.clear()
        self._applied_unplugged.clear()
        self._applied_one_segment = False
        self._applied_link = (0, 0.0, 0)
        self._state = _State()
        self._up = False

    def _guard(self, what: str, fn: Any, *args: Any) -> None:
        try:
            fn(*args)
        except Exception as exc:  # down() must finish whatever happens
            self.down_problems.append(f"{what}: {exc}")

    def reset(self) -> None:
        """Back to healthy: no faults, default DNS, NTP without offset, every server up."""
        self._require_up()
        start = time.monotonic()
        self._state = _State()
        self._sync()
        self.timings["reset"] = time.monotonic() - start

    @property
    def is_up(self) -> bool:
        """True between a successful up() and down()."""
        return self._up

    # --- what tests use ----------------------------------------------------------------

    @property
    def public_ca_file(self) -> Path:
        """PEM of the lab's public CA: the trust anchor a plan gives as tls.extra_ca_file."""
        return self._pki_files().public_ca

    @property
    def dpi_ca_file(self) -> Path:
        """PEM of the DPI appliance's CA (trusted by nobody)."""
        return self._pki_files().dpi_ca

    @property
    def arm_ca_file(self) -> Path:
        """PEM of the lab's "ARM Bootstrap CA", issuer of every certificate on port 5684."""
        return self._pki_files().arm_ca

    @property
    def edge_ns(self) -> str:
        """The namespace the checks run in."""
        return self.ns["edge"]

    def edge(self, argv: Sequence[str], timeout: float = 30, input: str | None = None,
             env: Mapping[str, str] | None = None) -> subprocess.CompletedProcess:
        """Run argv inside the edge namespace (text mode, output captured).

        The environment is this process's, without any *_proxy variable (the plan says which
        proxy to use), plus `env`. A command still running after `timeout` seconds is killed
        with its children and subprocess.TimeoutExpired raised.
        """
        self._require_up()
        full_env = {k: v for k, v in os.environ.items() if k.lower() not in _PROXY_ENV}
        full_env.update(env or {})
        proc = subprocess.Popen(netns.exec_argv(self.edge_ns, [str(a) for a in argv]),
                                stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=full_env, start_new_session=True)
        try:
            out, err = proc.communicate(input=input, timeout=timeout)
        except subprocess.TimeoutExpired:
            killpg(proc.pid)
            out, err = proc.communicate()
            raise subprocess.TimeoutExpired(proc.args, timeout, out, err) from None
        return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)

    def probe(self, *specs: Mapping[str, Any], timeout: float = 30) -> list[dict[str, Any]]:
        """Run probes (see tests.lab.probe) inside the edge in one process; their results."""
        env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
        proc = self.edge([sys.executable, "-m", "tests.lab.probe", json.dumps(list(specs))],
                         timeout=timeout, env=env)
        if proc.returncode != 0:
            raise LabError(f"probe failed (exit {proc.returncode}): {proc.stderr.strip()}")
        return json.loads(proc.stdout)

    def plan(self, **changes: Any) -> dict[str, Any]:
        """A valid plan (format version 1) for the edge namespace; `changes` replace top-level keys.

        Siemens Industrial Edge gets its IEM (iem.plant.local) unless profile_params is given.
        """
        data: dict[str, Any] = {
            "version": 1,
            "topology": "isolated",
            "renderer": "netplan",
            "machine_network": {"interfaces": [T.MACHINE_IF], "address": f"{T.EDGE_MACHINE}/{T.PREFIX}"},
            "uplink": {"interface": T.UPLINK_IF, "ipv4": "static",
                       "address": f"{T.EDGE_UPLINK}/{T.PREFIX}", "gateway": T.GATEWAY},
            "dns": {"mode": "custom", "servers": [T.DNS]},
            "ntp": {"mode": "custom", "servers": [T.NTP]},
            "tls": {"extra_ca_file": str(self.public_ca_file)},
            "profiles": ["machinemetrics"],
            "profile_params": {},
            "machines": [{"name": m.name, "address": m.address, "controller": m.controller}
                         for m in T.MACHINES],
        }
        data.update(changes)
        if "profile_params" not in changes and "siemens-industrial-edge" in (data.get("profiles") or []):
            data["profile_params"] = {"siemens-industrial-edge": {"iem_host": T.IEM_HOST}}
        return data

    def write_plan(self, path: Path | str, **changes: Any) -> Path:
        """Write plan(**changes) as YAML to `path`; return the path."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(self.plan(**changes), sort_keys=False, allow_unicode=True))
        return path

    def proxy_settings(self, credentials: bool = True) -> dict[str, Any]:
        """The plan's `proxy` section for the lab's proxy, with or without the credentials."""
        return {"url": self.proxy_url, "username": self.proxy_user if credentials else None,
                "password": self.proxy_password if credentials else None, "no_proxy": []}

    # --- faults (each undone by reset()) -------------------------------------------------

    def block(self, port: int, proto: str = "tcp", action: str = "drop",
              address: str | None = None) -> None:
        """A firewall between edge and cloud: `drop` (silence: the client times out) or
        `reject` (TCP reset: connection refused; UDP: ICMP port unreachable) for traffic to
        `port`, optionally only to `address`: a cloud address, a translated public address
        (NATS IPs, 8.8.8.8/8.8.4.4), or a machine's address (then the plant's firewall)."""
        self._require_up()
        if proto not in ("tcp", "udp"):
            raise LabError(f"block: proto must be tcp or udp, got {proto!r}")
        if action not in ("drop", "reject"):
            raise LabError(f"block: action must be drop or reject, got {action!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise LabError(f"block: port must be 1-65535, got {port!r}")
        if address is not None:
            address = self._ip(address, "block")
            known = ((address, proto, port) in self._translations or address in T.CLOUD_ADDRESSES
                     or ipaddress.ip_address(address) in _MACHINE_SUBNET)
            if not known:
                raise LabError(f"block: {address} is not an address the lab serves "
                               f"({proto}/{port}); give a cloud or machine address, or a "
                               "translated public address")
        self._state.blocks.append(Block(port, proto, action, address))
        self._sync()

    def no_route(self, address: str) -> None:
        """The edge has no route to `address`: connect() fails at once with EHOSTUNREACH."""
        self._require_up()
        self._state.no_route.add(self._ip(address, "no_route"))
        self._sync()

    def dns_nxdomain(self, name: str) -> None:
        """The lab resolver answers NXDOMAIN for `name`."""
        self._require_up()
        name = _host(name)
        self._forget_name(name)
        self._state.nxdomain.add(name)
        self._sync()

    def dns_servfail(self, name: str) -> None:
        """The lab resolver answers SERVFAIL for `name` (its DNSSEC validation of the
        upstream's unsigned answer fails, as with a broken chain of trust)."""
        self._require_up()
        name = _host(name)
        self._forget_name(name)
        self._state.servfail.add(name)
        self._sync()

    def dns_refused(self) -> None:
        """The lab resolver answers REFUSED to every query (it serves no data, no upstream)."""
        self._require_up()
        self._state.refused = True
        self._sync()

    def serve_from(self, name: str, where: str) -> None:
        """Point `name` at another server: "cloud", "dpi", "expired", "wrong-name" or
        "not-nats". A host name changes its DNS answer; a translated public address (a
        NATS IP) changes where the edge's NAT sends it."""
        self._require_up()
        if where not in T.SERVERS:
            raise LabError(f"serve_from: where must be one of {', '.join(T.SERVERS)}, got {where!r}")
        try:
            ipaddress.ip_address(name)
        except ValueError:
            name = _host(name)
            self._forget_name(name)
            self._state.dns[name] = T.SERVERS[where]
        else:
            if not any(k[0] == name for k in self._translations):
                raise LabError(f"serve_from: {name} is not a translated public address "
                               f"({', '.join(self._public_addresses)})")
            self._state.ip_serve[name] = T.SERVERS[where]
        self._sync()

    def intercept_tls(self) -> None:
        """A DPI firewall on the path: TLS to the cloud (443, 9443, 9444, 5684) gets the DPI
        CA's certificates, direct or through the proxy; so does DTLS on UDP 5684."""
        self._require_up()
        self._state.intercept = True
        self._sync()

    def captive_portal(self, by: str = "nat", tls: bool = True) -> None:
        """The uplink is a guest network with a captive portal the box has not logged in to.
        `by="nat"`: every TCP connection from the edge to a web port (80, 443, 9443, 9444,
        5684) of any cloud address reaches the portal server instead (DNS is untouched);
        `by="dns"`: the resolver answers the portal's address (203.0.113.77) for every
        vendor name. HTTPS shows one self-signed certificate for "portal.login.example"
        whatever the name; plain HTTP (and HTTP inside that TLS) is redirected to
        http://203.0.113.77/login, a login form. `tls=False` (with NAT): a portal that answers
        every port, 443 too, in plain HTTP (redirecting to http://203.0.113.79/login)."""
        self._require_up()
        if by not in ("nat", "dns"):
            raise LabError(f"captive_portal: by must be nat or dns, got {by!r}")
        if by == "nat":
            self._state.portal = T.PORTAL if tls else T.PORTAL_PLAIN
        else:
            for name, address in self._healthy_records.items():
                if address not in (T.NTP, T.PROXY):  # every vendor name; not the plant's own
                    self._forget_name(name)
                    self._state.dns[name] = T.PORTAL
        self._sync()

    def block_page(self, *names: str) -> None:
        """A DNS filter: `names` resolve to the web filter's block-page server, whose TLS
        certificate is for "blocked.webfilter.example", issued by the "Plant Web Filter CA"
        (trusted by nobody); HTTP and HTTPS requests get 403 and a "blocked" page."""
        self._require_up()
        if not names:
            raise LabError("block_page: give at least one host name")
        for name in names:
            name = _host(name)
            self._forget_name(name)
            self._state.dns[name] = T.BLOCK_PAGE
        self._sync()

    def mtu_blackhole(self, mtu: int = 1280, address: str | None = None) -> None:
        """A hop with a small MTU that drops ICMP "fragmentation needed": IP packets from the
        cloud to the edge larger than `mtu` bytes vanish without any ICMP error (optionally
        only those from `address`). TCP connects and small answers (DNS, NTP, NATS INFO)
        arrive; a TLS server's certificate flight (~1.5 kB) never does, unless the client
        announces a small MSS."""
        self._require_up()
        if isinstance(mtu, bool) or not isinstance(mtu, int) or not 576 <= mtu <= 1499:
            raise LabError(f"mtu_blackhole: mtu must be 576-1499 bytes, got {mtu!r}")
        if address is not None:
            address = self._ip(address, "mtu_blackhole")
            if address not in T.CLOUD_ADDRESSES:
                raise LabError(f"mtu_blackhole: {address} is not a cloud address")
        self._state.mtu = (mtu, address)
        self._sync()

    def sni_filter(self, address: str, port: int = 443) -> None:
        """A firewall that silently drops a TLS connection once it has seen the ClientHello
        (as a name filter on SNI does), for connections the edge opens to address:port: TCP
        connects, the handshake never gets an answer, whatever the MSS."""
        self._require_up()
        address = self._ip(address, "sni_filter")
        if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
            raise LabError(f"sni_filter: port must be 1-65535, got {port!r}")
        self._state.hello_drops.append((address, port))
        self._sync()

    def nats_cut_after_connect(self) -> None:
        """An IPS on port 7422: connections to every NATS address (and NATS host name) reach
        the real nats-server through a middlebox that lets its INFO line through, then resets
        the connection (RST) as soon as the client sends CONNECT; direct or through the proxy."""
        self._require_up()
        for addr in {k[0] for k in self._translations if k[2] == T.NATS_PORT}:
            self._state.ip_serve[addr] = T.NATS_CUT
        for name in self._nats_names:
            self._forget_name(name)
            self._state.dns[name] = T.NATS_CUT
        self._sync()

    def proxy_connect_ports(self, ports: Sequence[int]) -> None:
        """The proxy tunnels (CONNECT) only to `ports` (squid's vendor_ports acl): a CONNECT to
        any other port gets "403 Forbidden" at once, as with squid's default SSL_ports rule."""
        self._require_up()
        ports = tuple(ports)
        if not ports or any(isinstance(p, bool) or not isinstance(p, int) or not 1 <= p <= 65535 for p in ports):
            raise LabError(f"proxy_connect_ports: give ports 1-65535, got {ports!r}")
        self._state.proxy_ports = ports
        self._sync()

    def block_openvpn(self, action: str = "reset") -> None:
        """A VPN-blocking / DPI rule in front of CloudLink: a TCP connection to its port 443
        opens, TLS (HTTPS) passes, but the first segment that looks like an OpenVPN client's
        hard reset is answered with a TCP reset (action "reset"; behind the proxy's tunnel the
        proxy then closes the client's tunnel) or silently dropped ("drop": no answer ever)."""
        self._require_up()
        if action not in ("reset", "drop"):
            raise LabError(f"block_openvpn: action must be reset or drop, got {action!r}")
        self._state.openvpn_blocked = action
        self._sync()

    def nat(self, address: str = "203.0.113.200") -> None:
        """The edge's uplink is behind NAT: the cloud sees every connection from the edge coming
        from `address` (a source NAT in the cloud; replies are translated back). The edge's own
        address is unchanged; servers that report the client's address (NATS INFO client_ip)
        report `address`."""
        self._require_up()
        address = self._ip(address, "nat")
        if ipaddress.ip_address(address) not in ipaddress.ip_network("203.0.113.0/24"):
            raise LabError(f"nat: {address} is not a lab address (203.0.113.0/24)")
        if address in T.CLOUD_ADDRESSES or address == T.EDGE_UPLINK:
            raise LabError(f"nat: {address} is in use in the lab; pick an unused 203.0.113.x")
        self._state.nat_source = address
        self._sync()

    def dns_filter(self, name: str, address: str = "0.0.0.0") -> None:
        """A DNS filter in the lab resolver: `name` and its subdomains get `address` as their
        answer (dnsmasq `address=/name/address`): 0.0.0.0 (A, a sinkhole; AAAA gets no
        record), "::" (AAAA ::, A none), "#" (A 0.0.0.0 and AAAA ::), 127.0.0.1, a private
        address (a filter's internal block page) or any other. The zone's own name server is
        not asked."""
        self._require_up()
        name = _host(name)
        if address != "#":
            try:
                address = str(ipaddress.ip_address(address))
            except ValueError:
                raise LabError(f"dns_filter: {address!r} is not an IP address (or '#')") from None
        self._forget_name(name)
        self._state.dns_filter[name] = address
        self._sync()

    def dns_large_answer(self, name: str, count: int = 90) -> None:
        """`name` resolves to `count` A records (the cloud server first, then 203.0.113.160
        onwards, where nothing answers): more than the 1232-byte EDNS payload, so the UDP
        answer comes back truncated (TC, part of the records); TCP 53 gives all of them."""
        self._require_up()
        name = _host(name)
        if isinstance(count, bool) or not isinstance(count, int) or not 2 <= count <= dnsauth.LARGE_MAX:
            raise LabError(f"dns_large_answer: count must be 2-{dnsauth.LARGE_MAX}, got {count!r}")
        self._forget_name(name)
        self._state.dns_large[name] = count
        self._sync()

    def dns_extend_ttl(self, seconds: int = 3600) -> None:
        """The lab resolver keeps what it caches for at least `seconds` (dnsmasq min-cache-ttl,
        at most 3600), whatever the record's TTL: after its first answer (forwarded, with the
        owner's TTL) it serves the Izuma zone's records (TTL 30 s at ns1.mbedcloud.com,
        203.0.113.54) with TTL up to `seconds`."""
        self._require_up()
        if isinstance(seconds, bool) or not isinstance(seconds, int) or not 60 <= seconds <= dnsauth.MAX_MIN_CACHE_TTL:
            raise LabError(f"dns_extend_ttl: seconds must be 60-{dnsauth.MAX_MIN_CACHE_TTL}, got {seconds!r}")
        self._state.dns_min_ttl = seconds
        self._sync()

    def dns_drop(self, first: int = 1, name: str | None = None) -> None:
        """Exactly the first `first` UDP DNS queries from the edge to the cloud vanish (only
        type-A queries for `name`, when given); every later one is answered. A client that
        re-sends an unanswered query gets its answer; one that does not, times out."""
        self._require_up()
        if isinstance(first, bool) or not isinstance(first, int) or not 1 <= first <= 100:
            raise LabError(f"dns_drop: first must be 1-100, got {first!r}")
        self._state.dns_drops.append((first, _host(name) if name is not None else None))
        self._sync()

    def poor_link(self, delay_ms: int = 0, loss_pct: float = 0.0, jitter_ms: int = 0) -> None:
        """A poor uplink between edge and cloud (tests/lab/badlink.py; this kernel has no
        netem): every packet, either way, is lost with probability `loss_pct` %, silently (the
        sender sees nothing); what the edge sends arrives `delay_ms` (+- `jitter_ms`) late, so
        every round trip grows by delay_ms. Pings to the gateway, DNS, TCP and TLS all suffer."""
        self._require_up()
        for value, what in ((delay_ms, "delay_ms"), (jitter_ms, "jitter_ms")):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 10000:
                raise LabError(f"poor_link: {what} must be 0-10000 (ms), got {value!r}")
        if isinstance(loss_pct, bool) or not isinstance(loss_pct, (int, float)) or not 0 <= loss_pct <= 100:
            raise LabError(f"poor_link: loss_pct must be 0-100, got {loss_pct!r}")
        if jitter_ms > delay_ms:
            raise LabError(f"poor_link: jitter_ms ({jitter_ms}) must not exceed delay_ms ({delay_ms})")
        self._state.link = (delay_ms, float(loss_pct), jitter_ms)
        self._sync()

    def block_ping(self) -> None:
        """A firewall between edge and cloud that drops ICMP echo requests (ping) from the
        edge: to the gateway, to any cloud address and to the translated 8.8.8.8 alike."""
        self._require_up()
        self._state.blocks.append(Block(0, "icmp", "drop", None))
        self._sync()

    def ntp_offset(self, seconds: float) -> None:
        """The NTP server's clock is off by `seconds` (chronyd under libfaketime)."""
        self._require_up()
        self._state.ntp_offset = float(seconds)
        self._sync()

    def stop(self, service: str) -> None:
        """Stop a server: "proxy", "nats", "dns", "ntp", "https", "machines:<port>" (or any of
        servers.service_keys()). Its port is closed: TCP clients are refused."""
        self._require_up()
        if service not in servers.service_keys():
            raise LabError(f"stop: unknown service {service!r}; one of {', '.join(servers.service_keys())}")
        self._state.stopped.add(service)
        self._sync()

    def proxy_auth(self, required: bool = True) -> None:
        """Whether the proxy demands credentials (HTTP 407 without them)."""
        self._require_up()
        self._state.proxy_auth = bool(required)
        self._sync()

    def unplug(self, interface: str) -> None:
        """Pull the cable of an edge interface (enp2s0 or eno1): it loses carrier."""
        self._require_up()
        if interface not in (T.UPLINK_IF, T.MACHINE_IF):
            raise LabError(f"unplug: interface must be {T.UPLINK_IF} or {T.MACHINE_IF}, got {interface!r}")
        self._state.unplugged.add(interface)
        self._sync()

    def _forget_name(self, name: str) -> None:
        self._state.dns.pop(name, None)
        self._state.dns_filter.pop(name, None)
        self._state.dns_large.pop(name, None)
        self._state.nxdomain.discard(name)
        self._state.servfail.discard(name)

    # --- building ------------------------------------------------------------------------

    def _require_up(self) -> None:
        if not self._up:
            raise LabError(f"lab {self.name} is not up: call up() first")

    def _pki_files(self) -> pki.Pki:
        if self._pki is None:
            raise LabError(f"lab {self.name} has no certificates yet: call up() first")
        return self._pki

    @staticmethod
    def _ip(address: str, what: str) -> str:
        try:
            return str(ipaddress.IPv4Address(address))
        except ValueError:
            raise LabError(f"{what}: {address!r} is not an IPv4 address") from None

    def _preflight(self) -> None:
        if os.geteuid() != 0:
            raise LabError("the lab needs root: it creates network namespaces, veth links and "
                           "nftables rules (run the tests as root, e.g. sudo ./dev test)")
        missing = [f"{b} (Debian package {pkg})" for b, pkg in servers.BINARIES.items()
                   if shutil.which(b, path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin") is None]
        if not Path("/usr/lib/squid/basic_ncsa_auth").exists():
            missing.append("/usr/lib/squid/basic_ncsa_auth (Debian package squid)")
        self._faketime = next((p for p in servers.FAKETIME_LIBS if Path(p).exists()), None)
        if self._faketime is None:
            missing.append("libfaketime.so.1 (Debian package libfaketime)")
        if missing:
            pkgs = sorted({m.split("package ")[1].rstrip(")") for m in missing})
            raise LabError("the lab cannot start, missing: " + "; ".join(missing)
                           + ". Install with: apt-get install -y --no-install-recommends "
                           + " ".join(pkgs) + " (./dev test does it)")
        try:
            pwd.getpwnam(servers.SQUID_USER)
        except KeyError:
            raise LabError(f"user {servers.SQUID_USER!r} (made by Debian's squid package) is missing") from None

    def _build(self) -> None:
        d = self.workdir
        for sub in ("run", "logs", "pki", "chrony", "banners", "squid",
                    *(f"nginx-{n}/tmp" for n in ("cloud", "plant"))):
            (d / sub).mkdir(parents=True, exist_ok=True)
        d.chmod(0o755)
        _check_reachable_by_squid(d)
        sq = pwd.getpwnam(servers.SQUID_USER)
        os.chown(d / "squid", sq.pw_uid, sq.pw_gid)
        self._pki = pki.build(d / "pki", list(self._healthy_records), list(T.SERVERS.values()))
        self._proxy_hash = netns.run(["openssl", "passwd", "-apr1", "-stdin"],
                                     input=self.proxy_password + "\n").stdout.strip()
        network.build(self.ns, self._public_addresses)
        self._sync()

    # --- making the namespaces match the state -------------------------------------------

    def _dns_state(self) -> servers.DnsState:
        s = self._state
        records = {n: a for n, a in self._healthy_records.items() if n not in s.nxdomain | s.servfail}
        records.update(s.dns)
        for name in (*s.dns_filter, *s.dns_large):  # answered by the filter / the large hosts file
            records.pop(name, None)
        return servers.DnsState(records, tuple(sorted(s.servfail)), s.refused, filtered=dict(s.dns_filter),
                                large=dict(s.dns_large), min_cache_ttl=s.dns_min_ttl)

    def _edge_translations(self) -> dict[tuple[str, str, int], str]:
        table = {}
        for key, target in self._translations.items():
            addr, proto, port = key
            target = self._state.ip_serve.get(addr, target)
            for b in self._state.blocks:
                if (b.address, b.proto, b.port) == key:
                    target = T.DROP_HOLE if b.action == "drop" else T.REJECT_HOLE
            table[key] = target
        return table

    def _sync(self) -> None:
        s = self._state
        machine_blocks = [b for b in s.blocks if b.address is not None
                          and ipaddress.ip_address(b.address) in _MACHINE_SUBNET]
        cloud_blocks = [b for b in s.blocks if b not in machine_blocks
                        and (b.address, b.proto, b.port) not in self._translations]
        proxy_nat = {k: s.ip_serve.get(k[0], v) for k, v in self._translations.items()}
        tables = {"edge": firewall.edge(self._edge_translations()),
                  "cloud": firewall.cloud(cloud_blocks, s.intercept, proxy_nat, portal=s.portal, mtu=s.mtu,
                                          hello_drops=s.hello_drops),
                  "plant": firewall.plant(machine_blocks)}
        for role, text in tables.items():
            if self._applied_fw.get(role) != text:
                netns.run(netns.exec_argv(self.ns[role], ["nft", "-f", "-"]), input=text)
                self._applied_fw[role] = text
        session = firewall.cloud_session(s.openvpn_blocked, s.nat_source)  # block_openvpn(), nat()
        if self._applied_fw.get("cloud-session") != session:
            netns.run(netns.exec_argv(self.ns["cloud"], ["nft", "-f", "-"]), input=session)
            self._applied_fw["cloud-session"] = session
        self._one_segment_per_packet(s.mtu is not None)
        for role, text in (("cloud", dnsauth.cloud_table(s.dns_drops)),  # dns_drop()
                           ("edge", dnsauth.edge_table(bool(s.dns_large)))):  # dns_large_answer()
            if self._applied_fw.get(f"{role}-dns") != text:
                netns.run(netns.exec_argv(self.ns[role], ["nft", "-f", "-"]), input=text)
                self._applied_fw[f"{role}-dns"] = text
        network.set_no_route(self.edge_ns, s.no_route, self._applied_routes)
        self._applied_routes = set(s.no_route)
        network.set_unplugged(self.ns, s.unplugged, self._applied_unplugged, self._public_addresses)
        self._applied_unplugged = set(s.unplugged)
        wanted = servers.all_services(
            self.workdir, self._pki_files(), self._dns_state(), self._healthy_records,
            s.ntp_offset, self._faketime, self.proxy_user, self._proxy_hash, s.proxy_auth, self.name,
            proxy_ports=s.proxy_ports)
        self._services.sync(wanted, s.stopped)
        self._sync_link(s.link)

    def _sync_link(self, link: tuple[int, float, int]) -> None:
        """Make the poor link (tests/lab/badlink.py) match `link`: loss tables in both
        namespaces, the delayer and its NFQUEUE rule in the cloud."""
        if link == self._applied_link:
            return
        delay, loss, jitter = link
        old_delay, old_loss, old_jitter = self._applied_link
        if loss != old_loss:
            for role, iface in (("cloud", T.CLOUD_IF), ("edge", T.UPLINK_IF)):
                netns.run(netns.exec_argv(self.ns[role], ["nft", "-f", "-"]), input=badlink.loss_table(iface, loss))
        if (delay, jitter) != (old_delay, old_jitter):
            if old_delay:
                for argv in badlink.delay_rules(False):
                    netns.run(netns.exec_argv(self.ns["cloud"], argv))
                self._services.stop("badlink")
            if delay:
                self._services.sync([badlink.service(self.workdir, delay, jitter)], set())
                for argv in badlink.delay_rules(True):
                    netns.run(netns.exec_argv(self.ns["cloud"], argv))
        self._applied_link = link

    def _one_segment_per_packet(self, on: bool) -> None:
        # With mtu_blackhole() the cloud's TCP must put one segment in each packet, so that the
        # firewall's "meta length" sees what the wire would carry (GSO would hand it 64 kB
        # super-packets and the small segments of a low MSS would vanish with the big ones).
        if getattr(self, "_applied_one_segment", False) != on:
            netns.run(["ip", "-n", self.ns["cloud"], "link", "set", T.CLOUD_IF,
                       "gso_max_segs", "1" if on else "65535"])
            self._applied_one_segment = on

    # --- status (for the command line) ---------------------------------------------------

    def status(self) -> dict[str, Any]:
        """The namespaces that exist and the processes in each (works from any process)."""
        report: dict[str, Any] = {}
        for role, ns in self.ns.items():
            if not netns.exists(ns):
                report[role] = None
                continue
            procs = []
            for pid in netns.pids(ns):
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
                except OSError:
                    continue
                procs.append((pid, cmd))
            report[role] = {"namespace": ns, "processes": procs}
        return report


# --- helpers ------------------------------------------------------------------------------

def _host(name: str) -> str:
    name = name.strip().rstrip(".").lower()
    if not name or " " in name or "/" in name:
        raise LabError(f"not a host name: {name!r}")
    return name


def _check_reachable_by_squid(d: Path) -> None:
    for parent in [d, *d.parents]:
        if not parent.stat().st_mode & 0o001:
            raise LabError(f"workdir {d}: {parent} is not searchable by other users, but the "
                           f"proxy (squid) runs as user {servers.SQUID_USER!r} and reads its "
                           "files there; use a workdir such as /tmp/<name>")
